// Package datapath loads, pins and drives the eBPF datapath of a team.
//
// A team interface is one end of a veth pair. A tcx egress program on it
// hashes every frame to one of NumBuckets buckets and redirects the frame
// out of the member the bucket names (some frames out of the primary or a
// pinned port's member, see Config.Primary and Config.PortAffinity); a tcx ingress program on every member
// redirects received frames into the team interface. The control plane
// steers traffic only by rewriting maps: the bucket table on failover and
// rebalancing, the config and member entries on MAC or primary changes.
//
// Everything of one team is pinned under one bpffs directory, so the
// datapath keeps forwarding when the daemon exits and a restarted daemon
// adopts it with Open instead of reloading:
//
//	dir/config, buckets, members, member_stats, bucket_stats,
//	    egress_drops, flowlets, flowlet_moves,
//	    placement, placed, affinity                 maps
//	dir/prog_egress, dir/prog_ingress               programs (for attaching members after Open)
//	dir/egress                                      tcx egress link on the team interface
//	dir/member-<ifindex>                            tcx ingress link on a member
//
// With Config.Flowlet set, the egress program also remembers where each flow
// (by its full hash) went last, and moves a flow to its bucket's member only
// after the flow has been idle for longer than the gap, or at once when the
// member it is on has left the bucket table. Rewriting the bucket table then
// moves flows without reordering them. A TCP connection it first sees at its
// SYN is placed rather than hashed: it takes the next bucket in an order
// that interleaves the members by their share of the table (SetBuckets
// writes it), so connections that open together start spread over the
// members and need no move, which under load could reorder them.
//
// SetAffinity pins a source MAC behind the team to a member: with Hash
// HashSourceMAC (HyperVPort) all its frames leave there, with
// Config.PortAffinity (Dynamic) its broadcast and neighbour discovery. MACs
// without a pin follow their bucket.
package datapath

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// NumBuckets is the size of the bucket table (bucket = hash % NumBuckets).
const NumBuckets = 256

// Config is the per-team configuration the programs read on every frame.
type Config struct {
	// TeamIfindex is the team interface: where the egress program is
	// attached (fixed at Create) and where members deliver received frames.
	TeamIfindex int
	// TeamMAC is the team's MAC. Frames arriving addressed to a member's
	// own MAC are rewritten to it; members with MemberTxOwnMAC replace it
	// as source MAC with their own.
	TeamMAC net.HardwareAddr
	// Hash selects the header fields that pick a bucket.
	Hash HashPolicy
	// Primary is the member ifindex that owns the team MAC. Only its
	// broadcast and multicast frames reach the team: the switch floods them
	// to every member and the other copies are duplicates. 0 means none:
	// all are dropped. Broadcast and multicast leave through it, and so do
	// the frames the team sends from TeamMAC that are ARP or IPv6
	// neighbour discovery (ICMPv6 133-137 right behind the IPv6 header),
	// whatever their bucket, so peers and learning switches tie the team's
	// addresses to the port that owns its MAC; under Hash HashSourceMAC
	// all of the team's own frames do (the team NIC is one more port).
	// Other senders' unicast ARP and ND follow their bucket, and with
	// Primary 0 everything does.
	Primary int
	// BroadcastAll delivers broadcast and multicast from every member, for
	// switch-dependent modes (Static, Lacp) where the switch sends each
	// flooded frame once, on one port of the aggregate. Primary is then
	// ignored, and ARP and ND follow their bucket.
	BroadcastAll bool
	// PortAffinity treats the source MACs pinned with SetAffinity as ports
	// behind the team (HyperVPort, Dynamic), when switch independent: their
	// broadcast, multicast, ARP and ND leave through their member, and so
	// do all their frames under Hash HashSourceMAC; their frames hashed to
	// another member carry that member's MAC; and copies of their
	// broadcast and multicast that the switch floods back in are dropped.
	PortAffinity bool
	// Flowlet is the idle gap after which a flow follows its bucket to a
	// new member; 0 turns flowlets off, and every frame follows its bucket
	// at once. It must exceed the largest difference in delay between the
	// members' paths, or a moved flow can overtake its own frames. It is
	// kept in nanoseconds. With flowlets on, TCP connections seen opening
	// are placed rather than hashed (see the package comment).
	Flowlet time.Duration
}

// DefaultFlowlet is a flowlet gap for members whose paths differ in delay by
// well under it: veth paths by a few µs to tens of µs, NIC queues bounded by
// BQL and a switch's buffers by tens to a few hundred µs. It is still short
// enough for the pauses of request/response and window-limited TCP traffic
// to let flows move. Shaped or congested members queue for milliseconds,
// longer than a busy flow ever pauses: a flow moved off one can overtake
// its own frames, which is why connections are placed as they open
// (the load-balancing figure in docs/benchmarks.md).
const DefaultFlowlet = 500 * time.Microsecond

// Counters count frames and their bytes (skb->len: a GSO frame counts once
// with its full length).
type Counters struct{ Packets, Bytes uint64 }

// MemberCounters are a member's counters as the datapath sees them: tx on the
// team's egress by the member chosen, rx on the member's ingress. RxDropped
// counts broadcast/multicast duplicates on non-primary members, copies of a
// pinned port's own broadcasts flooded back (Config.PortAffinity), and
// frames dropped because the member is not receiving. TxFallback counts, of
// TxPackets, the frames the member sent in place of a member without
// carrier (Team.Failover).
type MemberCounters struct{ TxPackets, TxBytes, RxPackets, RxBytes, RxDropped, TxFallback uint64 }

// MemberFlags change how the datapath treats one member.
type MemberFlags uint32

// Member flags; the values are shared with bpf/team.c.
const (
	// MemberTxOwnMAC makes frames leaving through this member with the
	// team MAC as source carry the member's own MAC instead (Windows'
	// source MAC replacement for non-primary members in switch-independent
	// address-hash teams, so a learning switch never sees the team MAC on
	// two ports).
	MemberTxOwnMAC MemberFlags = 1 << iota
	// MemberRxDisabled drops everything the member receives except slow
	// protocol frames (a LACP port that is not collecting).
	MemberRxDisabled
)

// memberInTable (MEMBER_IN_TABLE in bpf/team.c) is set exactly while some
// bucket names the member. The datapath keeps it itself (SetBuckets,
// AttachMember) and SetMemberFlags leaves it alone: it is what lets a flowlet
// stay on a member and a pinned MAC leave through it, so taking a member out
// of the bucket table moves its flows and MACs at once, with no other call.
const memberInTable MemberFlags = 4

// conf.flags in bpf/team.c
const (
	cfgBroadcastAll = 1
	cfgPortAffinity = 2
)

// Pin names inside a team's directory.
const (
	pinEgressLink   = "egress"
	pinMemberPrefix = "member-"
	pinEgressProg   = "prog_egress"
	pinIngressProg  = "prog_ingress"
)

// Team is the loaded or adopted datapath of one team. Its methods may be
// called from several goroutines.
type Team struct {
	dir     string
	maps    teamMaps
	egress  *ebpf.Program
	ingress *ebpf.Program
	learn   *ebpf.Program // team_learn_dev; nil when egress has no failover (failover.go)
	link    link.Link     // tcx egress on the team interface

	mu      sync.Mutex
	members map[int]link.Link // guarded by mu; tcx ingress per member ifindex
}

// Create loads the programs, pins maps and programs into dir (creating it),
// writes cfg, attaches the egress program to cfg.TeamIfindex and pins that
// link as dir/egress. The bucket table starts empty, so every frame is
// dropped (and counted by EgressDrops) until SetBuckets. dir must be missing
// or empty (else the error wraps os.ErrExist), and on error everything Create
// did is undone. The calling thread must be in the team interface's network
// namespace.
func Create(dir string, cfg Config) (_ *Team, err error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("create datapath in %s: %w", dir, err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("create datapath in %s: directory not empty: %w", dir, os.ErrExist)
	}

	created, err := mkdirs(dir)
	if err != nil {
		return nil, fmt.Errorf("create datapath in %s: %w", dir, err)
	}
	t := &Team{dir: dir, members: map[int]link.Link{}}
	defer func() {
		if err == nil {
			return
		}
		t.close()
		// dir was empty, so every pin in it is ours.
		_ = removePins(dir)
		for _, d := range slices.Backward(created) {
			_ = os.Remove(d)
		}
	}()

	if err := t.loadObjects(); err != nil {
		return nil, fmt.Errorf("create datapath in %s: load programs: %w", dir, err)
	}

	if err := t.writeConfig(cfg); err != nil {
		return nil, fmt.Errorf("create datapath in %s: %w", dir, err)
	}
	for name, m := range t.mapFields() {
		if err := (*m).Pin(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("create datapath in %s: pin map %s: %w", dir, name, err)
		}
	}
	for name, p := range map[string]*ebpf.Program{pinEgressProg: t.egress, pinIngressProg: t.ingress} {
		if err := p.Pin(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("create datapath in %s: pin program %s: %w", dir, name, err)
		}
	}

	t.link, err = link.AttachTCX(link.TCXOptions{Interface: cfg.TeamIfindex, Program: t.egress, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return nil, fmt.Errorf("create datapath in %s: attach egress to ifindex %d: %w", dir, cfg.TeamIfindex, err)
	}
	if err := t.link.Pin(filepath.Join(dir, pinEgressLink)); err != nil {
		return nil, fmt.Errorf("create datapath in %s: pin egress link: %w", dir, err)
	}
	return t, nil
}

// Open adopts the datapath pinned in dir: maps, programs, the egress link and
// every member link, as they are; nothing is reloaded or detached. An error
// wraps os.ErrNotExist when dir holds no (complete) team.
func Open(dir string) (_ *Team, err error) {
	spec, err := loadTeam()
	if err != nil {
		return nil, fmt.Errorf("open datapath in %s: %w", dir, err)
	}
	t := &Team{dir: dir, members: map[int]link.Link{}}
	defer func() {
		if err != nil {
			t.close()
		}
	}()

	for name, field := range t.mapFields() {
		if *field, err = ebpf.LoadPinnedMap(filepath.Join(dir, name), nil); err != nil {
			return nil, fmt.Errorf("open datapath in %s: map %s: %w", dir, name, err)
		}
		// A map of another layout (a different nicteam version) would be
		// misread silently.
		if err := spec.Maps[name].Compatible(*field); err != nil {
			return nil, fmt.Errorf("open datapath in %s: map %s: %w", dir, name, err)
		}
	}
	if t.egress, err = ebpf.LoadPinnedProgram(filepath.Join(dir, pinEgressProg), nil); err != nil {
		return nil, fmt.Errorf("open datapath in %s: program %s: %w", dir, pinEgressProg, err)
	}
	if t.ingress, err = ebpf.LoadPinnedProgram(filepath.Join(dir, pinIngressProg), nil); err != nil {
		return nil, fmt.Errorf("open datapath in %s: program %s: %w", dir, pinIngressProg, err)
	}
	if err := t.adoptFailover(); err != nil {
		return nil, fmt.Errorf("open datapath in %s: %w", dir, err)
	}
	if t.link, err = link.LoadPinnedLink(filepath.Join(dir, pinEgressLink), nil); err != nil {
		return nil, fmt.Errorf("open datapath in %s: egress link: %w", dir, err)
	}
	ifindexes, err := pinnedMembers(dir)
	if err != nil {
		return nil, fmt.Errorf("open datapath in %s: %w", dir, err)
	}
	for _, ifindex := range ifindexes {
		l, err := link.LoadPinnedLink(memberPin(dir, ifindex), nil)
		if err != nil {
			return nil, fmt.Errorf("open datapath in %s: link of member %d: %w", dir, ifindex, err)
		}
		t.members[ifindex] = l
	}
	return t, nil
}

// Dir is the bpffs directory the team is pinned in.
func (t *Team) Dir() string { return t.dir }

// SetConfig rewrites the configuration. The team ifindex cannot change: the
// egress link is attached to it (Destroy and Create to move a team).
func (t *Team) SetConfig(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	cur, err := t.Config()
	if err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	if cur.TeamIfindex != cfg.TeamIfindex {
		return fmt.Errorf("set config: team ifindex %d differs from %d the egress program is attached to", cfg.TeamIfindex, cur.TeamIfindex)
	}
	if err := t.writeConfig(cfg); err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	return nil
}

func (t *Team) writeConfig(cfg Config) error {
	c := teamConf{TeamIfindex: uint32(cfg.TeamIfindex), Hash: uint32(cfg.Hash), Primary: uint32(cfg.Primary), FlowletNs: uint64(cfg.Flowlet)}
	if cfg.BroadcastAll {
		c.Flags |= cfgBroadcastAll
	}
	if cfg.PortAffinity {
		c.Flags |= cfgPortAffinity
	}
	copy(c.TeamMac[:], cfg.TeamMAC)
	if err := t.maps.Config.Put(uint32(0), &c); err != nil {
		return fmt.Errorf("write config map: %w", err)
	}
	return nil
}

// Config reads the configuration back from the map.
func (t *Team) Config() (Config, error) {
	var c teamConf
	if err := t.maps.Config.Lookup(uint32(0), &c); err != nil {
		return Config{}, fmt.Errorf("read config map: %w", err)
	}
	return Config{
		TeamIfindex:  int(c.TeamIfindex),
		TeamMAC:      net.HardwareAddr(c.TeamMac[:]),
		Hash:         HashPolicy(c.Hash),
		Primary:      int(c.Primary),
		BroadcastAll: c.Flags&cfgBroadcastAll != 0,
		PortAffinity: c.Flags&cfgPortAffinity != 0,
		Flowlet:      time.Duration(c.FlowletNs),
	}, nil
}

func (c Config) validate() error {
	if c.TeamIfindex <= 0 || c.TeamIfindex > math.MaxInt32 {
		return fmt.Errorf("invalid team ifindex %d", c.TeamIfindex)
	}
	if len(c.TeamMAC) != 6 {
		return fmt.Errorf("invalid team MAC %q: want 6 bytes", c.TeamMAC)
	}
	if !c.Hash.valid() {
		return fmt.Errorf("invalid hash policy %s", c.Hash)
	}
	if c.Primary < 0 || c.Primary > math.MaxInt32 {
		return fmt.Errorf("invalid primary ifindex %d", c.Primary)
	}
	if c.Flowlet < 0 {
		return fmt.Errorf("invalid flowlet gap %v", c.Flowlet)
	}
	return nil
}

// AttachMember attaches the ingress program to the member (tcx ingress,
// pinned as dir/member-<ifindex>) and records its MAC. On a member already
// attached it only updates the MAC, keeping its flags and counters. The
// calling thread must be in the member's network namespace.
func (t *Team) AttachMember(ifindex int, mac net.HardwareAddr) error {
	if ifindex <= 0 || ifindex > math.MaxInt32 {
		return fmt.Errorf("attach member: invalid ifindex %d", ifindex)
	}
	if len(mac) != 6 {
		return fmt.Errorf("attach member %d: invalid MAC %q: want 6 bytes", ifindex, mac)
	}
	t.mu.Lock()
	defer t.mu.Unlock()

	key := uint32(ifindex)
	var m teamMember
	err := t.maps.Members.Lookup(key, &m)
	isNew := errors.Is(err, ebpf.ErrKeyNotExist)
	if err != nil && !isNew {
		return fmt.Errorf("attach member %d: read members map: %w", ifindex, err)
	}
	copy(m.Mac[:], mac)
	if isNew {
		// The table may name the member before it is attached.
		table, err := t.Buckets()
		if err != nil {
			return fmt.Errorf("attach member %d: %w", ifindex, err)
		}
		if slices.Contains(table[:], key) {
			m.Flags |= uint32(memberInTable)
		}
	}
	// Map entries first: the program must know the member's MAC from
	// the first frame it sees.
	if err := t.maps.Members.Put(key, &m); err != nil {
		return fmt.Errorf("attach member %d: write members map: %w", ifindex, err)
	}
	if err := t.learnDevLocked(ifindex); err != nil {
		return t.undoMember(ifindex, isNew, fmt.Errorf("attach member %d: %w", ifindex, err))
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return t.undoMember(ifindex, isNew, fmt.Errorf("attach member %d: %w", ifindex, err))
	}
	zero := make([]teamMemberCounters, ncpu)
	if err := t.maps.MemberStats.Update(key, zero, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return t.undoMember(ifindex, isNew, fmt.Errorf("attach member %d: create counters: %w", ifindex, err))
	}

	if l, ok := t.members[ifindex]; ok {
		if linkAlive(l, ifindex) {
			return nil
		}
		// The interface went away (and an ifindex can come back): the
		// old link is defunct and must not hide a missing attachment.
		delete(t.members, ifindex)
		_ = detach(l, memberPin(t.dir, ifindex))
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: t.ingress, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return t.undoMember(ifindex, isNew, fmt.Errorf("attach ingress to ifindex %d: %w", ifindex, err))
	}
	if err := l.Pin(memberPin(t.dir, ifindex)); err != nil {
		_ = l.Close()
		return t.undoMember(ifindex, isNew, fmt.Errorf("attach member %d: pin link: %w", ifindex, err))
	}
	t.members[ifindex] = l
	return nil
}

// undoMember removes the map entries of a member AttachMember added before
// failing, and returns err.
func (t *Team) undoMember(ifindex int, isNew bool, err error) error {
	if isNew {
		_ = t.maps.Members.Delete(uint32(ifindex))
		_ = t.maps.MemberStats.Delete(uint32(ifindex))
	}
	return err
}

func linkAlive(l link.Link, ifindex int) bool {
	got, ok := tcxIfindex(l)
	return ok && got == ifindex
}

// SetMemberFlags replaces the flags of an attached member.
func (t *Team) SetMemberFlags(ifindex int, flags MemberFlags) error {
	if flags&memberInTable != 0 {
		return fmt.Errorf("set flags of member %d: flag %#x is the datapath's own", ifindex, uint32(memberInTable))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	key := uint32(ifindex)
	var m teamMember
	if err := t.maps.Members.Lookup(key, &m); err != nil {
		return fmt.Errorf("set flags of member %d: %w", ifindex, err)
	}
	m.Flags = uint32(flags) | m.Flags&uint32(memberInTable)
	if err := t.maps.Members.Update(key, &m, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("set flags of member %d: %w", ifindex, err)
	}
	return nil
}

// DetachMember detaches, unpins and closes the member's ingress link and
// deletes its map entries (MAC, flags, counters). A member not attached is a no-op. Take
// the member out of the bucket table first: egress does not need the link
// and keeps sending to whatever the buckets name.
func (t *Team) DetachMember(ifindex int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.members[ifindex]; ok {
		if err := detach(l, memberPin(t.dir, ifindex)); err != nil {
			return fmt.Errorf("detach member %d: %w", ifindex, err)
		}
		delete(t.members, ifindex)
	}
	for _, m := range []*ebpf.Map{t.maps.Members, t.maps.MemberStats} {
		if err := m.Delete(uint32(ifindex)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("detach member %d: %w", ifindex, err)
		}
	}
	return nil
}

// Members lists the ifindexes with an ingress link, in ascending order.
func (t *Team) Members() ([]int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ifindexes := make([]int, 0, len(t.members))
	for ifindex := range t.members {
		ifindexes = append(ifindexes, ifindex)
	}
	slices.Sort(ifindexes)
	return ifindexes, nil
}

// SetBuckets makes the bucket table b. Only entries that differ are written,
// in one batch: entries left alone keep steering their flows without a blip.
// A member that b no longer names loses its flowlets at once: the next frame
// of each follows its bucket whatever the gap (see memberInTable). The
// placement order for opening connections is rewritten after the table (a
// 256-entry write, kept out of the failover path); an error
// that names it comes with the table already in place.
func (t *Team) SetBuckets(b [NumBuckets]uint32) error {
	// Under mu so that concurrent callers cannot interleave their diffs.
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, err := t.Buckets()
	if err != nil {
		return fmt.Errorf("set buckets: %w", err)
	}
	var keys, values []uint32
	for i := range b {
		if b[i] != cur[i] {
			keys = append(keys, uint32(i))
			values = append(values, b[i])
		}
	}
	if len(keys) == 0 {
		return nil
	}
	// Members joining the table first, members leaving it after the
	// table: the bucket write is the one that moves traffic, and a
	// flowlet must never stay on a member once no bucket names it.
	if err := t.markInTableLocked(b, cur, true); err != nil {
		return fmt.Errorf("set buckets: %w", err)
	}
	if _, err := t.maps.Buckets.BatchUpdate(keys, values, nil); err != nil {
		// Members the table still does not name must not keep the flag:
		// no later diff would clear it.
		return errors.Join(fmt.Errorf("set buckets: %w", err), t.markInTableLocked(b, cur, false))
	}
	if err := t.markInTableLocked(cur, b, false); err != nil {
		return fmt.Errorf("set buckets: %w", err)
	}
	// Until the order is written, connections that open are spread by
	// the old shares; each still follows its bucket wherever the new
	// table sends it.
	order := placementOrder(b)
	slots := make([]uint32, NumBuckets)
	for i := range slots {
		slots[i] = uint32(i)
	}
	if _, err := t.maps.Placement.BatchUpdate(slots, order[:], nil); err != nil {
		return fmt.Errorf("set buckets: placement: %w", err)
	}
	return nil
}

// markInTableLocked sets (or clears) memberInTable on the attached members
// that table next names and table prev does not.
func (t *Team) markInTableLocked(next, prev [NumBuckets]uint32, set bool) error {
	done := map[uint32]bool{0: true}
	for _, id := range next {
		if done[id] || slices.Contains(prev[:], id) {
			continue
		}
		done[id] = true
		var m teamMember
		err := t.maps.Members.Lookup(id, &m)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue // AttachMember sets it from the table
		}
		if err != nil {
			return fmt.Errorf("member %d: %w", id, err)
		}
		if set {
			m.Flags |= uint32(memberInTable)
		} else {
			m.Flags &^= uint32(memberInTable)
		}
		if err := t.maps.Members.Update(id, &m, ebpf.UpdateExist); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("member %d: %w", id, err)
		}
	}
	return nil
}

// Buckets reads the bucket table.
func (t *Team) Buckets() ([NumBuckets]uint32, error) {
	var b [NumBuckets]uint32
	keys := make([]uint32, NumBuckets)
	if err := lookupAll(t.maps.Buckets, keys, b[:]); err != nil {
		return b, fmt.Errorf("read buckets: %w", err)
	}
	return b, nil
}

// BucketStats returns how many frames (and bytes) each bucket carried,
// summed over CPUs: a frame counts in its flow's bucket, the one its hash
// names or the one a TCP connection was placed in (Config.Flowlet); frames
// dropped for an empty bucket count too. Frames sent
// through the primary or a pinned port's member regardless of their hash
// (Config.Primary, Config.PortAffinity) count in no bucket.
func (t *Team) BucketStats() ([NumBuckets]Counters, error) {
	var out [NumBuckets]Counters
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return out, fmt.Errorf("read bucket stats: %w", err)
	}
	keys := make([]uint32, NumBuckets)
	vals := make([]teamCounters, NumBuckets*ncpu)
	if err := lookupAll(t.maps.BucketStats, keys, vals); err != nil {
		return out, fmt.Errorf("read bucket stats: %w", err)
	}
	for i, v := range vals {
		out[i/ncpu].Packets += v.Packets
		out[i/ncpu].Bytes += v.Bytes
	}
	return out, nil
}

// lookupAll reads a whole array map in one batch.
func lookupAll(m *ebpf.Map, keys []uint32, values any) error {
	var cursor ebpf.MapBatchCursor
	n, err := m.BatchLookup(&cursor, keys, values, nil)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	if n != len(keys) {
		return fmt.Errorf("batch lookup returned %d of %d entries", n, len(keys))
	}
	return nil
}

// MemberStats returns the counters of every attached member, summed over
// CPUs.
func (t *Team) MemberStats() (map[int]MemberCounters, error) {
	out := map[int]MemberCounters{}
	var key uint32
	var vals []teamMemberCounters
	it := t.maps.MemberStats.Iterate()
	for it.Next(&key, &vals) {
		var c MemberCounters
		for _, v := range vals {
			c.TxPackets += v.TxPackets
			c.TxBytes += v.TxBytes
			c.RxPackets += v.RxPackets
			c.RxBytes += v.RxBytes
			c.RxDropped += v.RxDropped
			c.TxFallback += v.TxFallback
		}
		out[int(key)] = c
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read member stats: %w", err)
	}
	return out, nil
}

// EgressDrops is the number of frames dropped on egress because their bucket
// named no member.
func (t *Team) EgressDrops() (uint64, error) {
	n, err := sumPerCPU(t.maps.EgressDrops)
	if err != nil {
		return 0, fmt.Errorf("read egress drops: %w", err)
	}
	return n, nil
}

// sumPerCPU reads a one-entry per-CPU counter.
func sumPerCPU(m *ebpf.Map) (uint64, error) {
	var vals []uint64
	if err := m.Lookup(uint32(0), &vals); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range vals {
		n += v
	}
	return n, nil
}

// SetAffinity pins frames with source MAC mac to member ifindex: under Hash
// HashSourceMAC they leave through it whatever their bucket, under
// Config.PortAffinity its broadcast, ARP and ND do, while the bucket table
// names it. When SetBuckets takes a member out of the table
// its MACs follow their buckets at once, until they are pinned elsewhere.
func (t *Team) SetAffinity(mac net.HardwareAddr, ifindex int) error {
	if len(mac) != 6 {
		return fmt.Errorf("set affinity: invalid MAC %q: want 6 bytes", mac)
	}
	if ifindex <= 0 || ifindex > math.MaxInt32 {
		return fmt.Errorf("set affinity of %s: invalid ifindex %d", mac, ifindex)
	}
	if err := t.maps.Affinity.Put(teamMacKey{Mac: [6]byte(mac)}, uint32(ifindex)); err != nil {
		return fmt.Errorf("set affinity of %s: %w", mac, err)
	}
	return nil
}

// DeleteAffinity unpins mac; a MAC not pinned is a no-op.
func (t *Team) DeleteAffinity(mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("delete affinity: invalid MAC %q: want 6 bytes", mac)
	}
	if err := t.maps.Affinity.Delete(teamMacKey{Mac: [6]byte(mac)}); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete affinity of %s: %w", mac, err)
	}
	return nil
}

// Affinities returns every pinned source MAC and its member, so that a
// restarted daemon can take over the pins it finds.
func (t *Team) Affinities() (map[[6]byte]int, error) {
	out := map[[6]byte]int{}
	var k teamMacKey
	var ifindex uint32
	it := t.maps.Affinity.Iterate()
	for it.Next(&k, &ifindex) {
		out[k.Mac] = int(ifindex)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read affinities: %w", err)
	}
	return out, nil
}

// FlowletMoves is the number of times a flow changed member: after an idle
// gap longer than Config.Flowlet, or at once because its member left the
// bucket table. A flow's first frame is no move.
func (t *Team) FlowletMoves() (uint64, error) {
	n, err := sumPerCPU(t.maps.FlowletMoves)
	if err != nil {
		return 0, fmt.Errorf("read flowlet moves: %w", err)
	}
	return n, nil
}

// Close releases the team's file descriptors. Everything stays pinned and
// attached and keeps forwarding, as after the daemon exits or is killed.
func (t *Team) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.close()
	return nil
}

func (t *Team) close() {
	for _, l := range t.members {
		_ = l.Close()
	}
	if t.link != nil {
		_ = t.link.Close()
	}
	// Close is a no-op on nil maps and programs (a half-built Team).
	_ = t.egress.Close()
	_ = t.ingress.Close()
	_ = t.learn.Close()
	for _, m := range t.mapFields() {
		_ = (*m).Close()
	}
	t.maps, t.egress, t.ingress, t.learn, t.link, t.members = teamMaps{}, nil, nil, nil, nil, map[int]link.Link{}
}

// Destroy detaches all links and removes all pins and the directory. The
// Team is unusable afterwards.
func (t *Team) Destroy() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for ifindex, l := range t.members {
		if err := detach(l, memberPin(t.dir, ifindex)); err != nil {
			errs = append(errs, fmt.Errorf("member %d: %w", ifindex, err))
		}
	}
	if t.link != nil {
		if err := detach(t.link, filepath.Join(t.dir, pinEgressLink)); err != nil {
			errs = append(errs, fmt.Errorf("egress: %w", err))
		}
	}
	// Links detach left open (it failed) are closed here with the rest.
	t.close()
	if err := Remove(t.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroy datapath in %s: %w", t.dir, err)
	}
	return nil
}

// Remove detaches and removes whatever team datapath is pinned in dir,
// complete or half-built (a Create killed midway), and dir itself. A missing
// dir is not an error.
func Remove(dir string) error {
	if err := removePins(dir); err != nil {
		return fmt.Errorf("remove datapath in %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove datapath in %s: %w", dir, err)
	}
	return nil
}

// removePins detaches every pinned link in dir and removes every pin the
// datapath creates there.
func removePins(dir string) error {
	var errs []error
	ifindexes, err := pinnedMembers(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	linkPins := []string{filepath.Join(dir, pinEgressLink)}
	for _, ifindex := range ifindexes {
		linkPins = append(linkPins, memberPin(dir, ifindex))
	}
	for _, pin := range linkPins {
		l, err := link.LoadPinnedLink(pin, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			// Detach explicitly: another process may still hold the
			// link open, and then unpinning alone would keep it attached.
			if err = detach(l, pin); err != nil {
				_ = l.Close()
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	names := []string{pinEgressProg, pinIngressProg}
	for name := range (&Team{}).mapFields() {
		names = append(names, name)
	}
	for _, name := range names {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// detach unpins l, detaches it from its hook and closes it; on error l
// stays open. A link whose interface is gone is already detached by the
// kernel. The close is what frees it: a detached link lives on in the
// kernel, defunct, for as long as a file descriptor holds it, and the
// garbage collector may close a forgotten one much later or never.
func detach(l link.Link, pin string) error {
	if err := os.Remove(pin); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin %s: %w", pin, err)
	}
	if err := l.Detach(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("detach %s: %w", pin, err)
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("close link %s: %w", pin, err)
	}
	return nil
}

func memberPin(dir string, ifindex int) string {
	return filepath.Join(dir, pinMemberPrefix+strconv.Itoa(ifindex))
}

// pinnedMembers lists the ifindexes of the member links pinned in dir.
func pinnedMembers(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ifindexes []int
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), pinMemberPrefix)
		if !ok {
			continue
		}
		ifindex, err := strconv.Atoi(s)
		if err != nil || ifindex <= 0 {
			return nil, fmt.Errorf("unexpected pin %s", filepath.Join(dir, e.Name()))
		}
		ifindexes = append(ifindexes, ifindex)
	}
	return ifindexes, nil
}

// mkdirs is os.MkdirAll that reports the directories it created, outermost
// first, so that Create can remove exactly those on failure.
func mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	slices.Reverse(missing)
	var created []string
	for _, d := range missing {
		err := os.Mkdir(d, 0o700)
		if errors.Is(err, os.ErrExist) {
			continue // made meanwhile by someone else: not ours to remove
		}
		if err != nil {
			for _, c := range slices.Backward(created) {
				_ = os.Remove(c)
			}
			return nil, err
		}
		created = append(created, d)
	}
	return created, nil
}

// mapFields maps pin names to the Team's map fields.
func (t *Team) mapFields() map[string]**ebpf.Map {
	return map[string]**ebpf.Map{
		teamMapConfig: &t.maps.Config, teamMapBuckets: &t.maps.Buckets, teamMapMembers: &t.maps.Members,
		teamMapMemberStats: &t.maps.MemberStats, teamMapBucketStats: &t.maps.BucketStats, teamMapEgressDrops: &t.maps.EgressDrops,
		teamMapFlowlets: &t.maps.Flowlets, teamMapFlowletMoves: &t.maps.FlowletMoves, teamMapAffinity: &t.maps.Affinity,
		teamMapPlacement: &t.maps.Placement, teamMapPlaced: &t.maps.Placed,
	}
}
