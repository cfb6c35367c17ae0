// Package daemon is nicteamd: it owns the declared teams, builds and adopts
// their datapaths, follows link events and serves the API.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/balance"
	"github.com/nicteam/nicteam/internal/datapath"
	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/team"
	"golang.org/x/sys/unix"
)

// The datapath's table and the model's must have the same size.
var _ [datapath.NumBuckets]uint32 = team.Table{}

// Config is nicteamd's configuration.
type Config struct {
	Socket   string // API socket path
	StateDir string // where declared teams are persisted
	BPFFS    string // bpf filesystem mount point; mounted when absent
	// ConfigFile is a teams file applied at start (after the persisted
	// teams are restored): it wins for the teams it names. Empty for none.
	ConfigFile string
	Log        *slog.Logger
}

// Aliases mark the interfaces the daemon made, so listings can tell them apart.
const (
	teamAlias = "nicteam Multiplexor Driver"
	peerAlias = "nicteam carrier peer"
)

// Daemon is a running nicteamd.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	events *eventLog
	pinDir string // per network namespace directory for the teams' pins

	mu    sync.Mutex
	teams map[string]*teamRT // guarded by mu; by team name
	order []string           // guarded by mu; team names in creation order

	// dirty asks the persister to save the state: changes made on the
	// failover path (the primary moved) are saved off that path.
	dirty   chan struct{}
	snapSeq uint64 // guarded by mu; numbers the state snapshots taken

	saveMu   sync.Mutex // orders writes of the state file; taken after mu, never before
	savedSeq uint64     // guarded by saveMu; the newest snapshot written

	// facts are ethtool's answers for listings, forgotten on each link
	// event; it has a lock of its own, never held with mu.
	facts host.FactsCache
	// listing lets one listing of the host's interfaces run at a time:
	// however many clients ask, their work keeps at most one core from
	// the link events. Never held with mu.
	listing sync.Mutex
}

// teamRT is one team at run time. Every field is guarded by Daemon.mu.
type teamRT struct {
	rec     record
	dp      *datapath.Team
	index   int                             // team NIC ifindex
	links   map[string]team.LinkState       // observed member state
	ifindex map[string]int                  // member ifindex, absent while the NIC is absent
	timers  map[string]*time.Timer          // pending up-delays
	macs    map[string]net.HardwareAddr     // members' own MACs
	promisc map[string]bool                 // members' promiscuous flag as last set
	flags   map[string]datapath.MemberFlags // members' datapath flags as last set
	table   team.Table
	eval    team.Evaluation
	// stopNotify cancels the running announcement (and auto check), so a
	// newer primary is never contradicted by an older one's frames.
	stopNotify context.CancelFunc
	// stopEndpoints cancels the running announcement of endpoints only.
	stopEndpoints context.CancelFunc
	// balancer places a Dynamic team's buckets by load; nil otherwise.
	balancer *balance.Rebalancer
	// nextRebalance is when the balancer runs next.
	nextRebalance time.Time
	// lacp runs the protocol of a Lacp team; nil for other modes.
	lacp *lacpRT
	// resumeLACP lists the members of an adopted team that held buckets,
	// whose LACP ports resume collecting rather than start over.
	resumeLACP map[string]bool
	// ports pins the endpoints behind a HyperVPort or Dynamic team to
	// members; nil for other algorithms.
	ports *balance.Affinity
	// bridge is the ifindex of the bridge the team NIC is a port of, whose
	// forwarding database lists the ports; 0 for none.
	bridge int
	// stopPorts cancels, by member, the running announcement of the ports
	// that moved to it.
	stopPorts map[string]context.CancelFunc
	// nicDown says an operator set the team NIC down (see follow.go).
	nicDown bool
}

// stopAnnouncements cancels every announcement the team is sending.
func (t *teamRT) stopAnnouncements() {
	for _, stop := range append(slices.Collect(maps.Values(t.stopPorts)), t.stopNotify, t.stopEndpoints) {
		if stop != nil {
			stop()
		}
	}
}

func newTeamRT(rec record) *teamRT {
	return &teamRT{
		rec: rec, links: map[string]team.LinkState{}, ifindex: map[string]int{},
		timers: map[string]*time.Timer{}, macs: map[string]net.HardwareAddr{}, promisc: map[string]bool{},
		flags:     map[string]datapath.MemberFlags{},
		stopPorts: map[string]context.CancelFunc{},
	}
}

// New prepares a daemon: it checks the kernel, mounts the bpf filesystem,
// takes the state directory's lock and adopts or rebuilds persisted teams.
func New(cfg Config) (*Daemon, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := datapath.Probe(); err != nil {
		return nil, err
	}
	if err := datapath.ProbeFailover(); err != nil {
		cfg.Log.Warn("in-datapath failover off: new teams fail over when the daemon hears of a carrier loss", "err", err)
	}
	if err := prepareStateDir(cfg.StateDir); err != nil {
		return nil, err
	}
	if err := datapath.MountBPFFS(cfg.BPFFS); err != nil {
		return nil, err
	}
	pins, err := pinDir(cfg.BPFFS, cfg.Log)
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg:    cfg,
		log:    cfg.Log,
		events: newEventLog(4096),
		pinDir: pins,
		teams:  map[string]*teamRT{},
		dirty:  make(chan struct{}, 1),
	}
	return d, nil
}

// lockStateDir makes a second daemon on the same state dir fail at once.
func lockStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock state dir %s: another nicteamd uses it", dir)
	}
	return f, nil
}

// Run serves until ctx ends. Teams stay in place when it returns: their
// datapath is pinned and keeps forwarding without the daemon.
func (d *Daemon) Run(ctx context.Context) error {
	ln, err := listen(d.cfg.Socket)
	if err != nil {
		return err
	}
	defer os.Remove(d.cfg.Socket)
	defer ln.Close()
	lock, err := lockStateDir(d.cfg.StateDir)
	if err != nil {
		return err
	}
	defer lock.Close()

	// Subscribe before reading link state, so no change falls in between.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan host.Link, 1024)
	if err := host.Watch(ctx, updates, func(err error) { d.log.Warn("link events", "err", err) }); err != nil {
		return err
	}
	fdb := make(chan host.FDBEntry, 1024)
	if err := host.WatchFDB(ctx, fdb, func(err error) { d.log.Warn("bridge fdb events", "err", err) }); err != nil {
		return err
	}
	if err := d.restore(); err != nil {
		return err
	}
	go func() {
		for l := range updates {
			d.linkChanged(l)
		}
	}()
	go func() {
		for e := range fdb {
			d.fdbChanged(e)
		}
	}()
	if err := d.followHost(ctx); err != nil {
		return err
	}
	go d.persister(ctx)
	go d.backstop(ctx)
	go d.rebalancer(ctx)
	if d.cfg.ConfigFile != "" {
		d.applyFile(d.cfg.ConfigFile)
	}

	srv := d.server()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	d.log.Info("nicteamd serving", "socket", d.cfg.Socket, "state", d.cfg.StateDir, "pins", d.pinDir)
	err = srv.Serve(ln)
	d.mu.Lock()
	if perr := d.persistLocked(); perr != nil { // what the persister had not saved yet
		d.log.Warn("persist", "err", perr)
	}
	for _, t := range d.teams {
		d.stopLACPLocked(t)
		t.stopAnnouncements()
		if t.dp == nil {
			continue
		}
		t.dp.Close()
		for _, tm := range t.timers {
			tm.Stop()
		}
	}
	d.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// listen opens the API socket, root-only. A socket that answers belongs to
// another daemon; one that does not is a leftover and is replaced.
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen on %s: another nicteamd is already serving this socket", path)
	}
	os.Remove(path)
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return ln, nil
}

func (d *Daemon) teamPinDir(name string) string { return filepath.Join(d.pinDir, name) }

// peerName derives the hidden veth end's name from the team's: short enough
// for any team name, stable across restarts.
func peerName(teamName string) string {
	h := fnv.New32a()
	h.Write([]byte(teamName))
	return fmt.Sprintf("ntp%08x", h.Sum32())
}

// persistLocked writes every team's record.
func (d *Daemon) persistLocked() error {
	seq, b, err := d.snapshotLocked()
	if err != nil {
		return err
	}
	return d.write(seq, b)
}

// snapshotLocked encodes every team's record and numbers the snapshot.
func (d *Daemon) snapshotLocked() (uint64, []byte, error) {
	recs := make([]record, 0, len(d.order))
	for _, name := range d.order {
		recs = append(recs, d.teams[name].rec)
	}
	b, err := encodeState(recs)
	d.snapSeq++
	return d.snapSeq, b, err
}

// write saves snapshot seq unless a newer one is saved already. It needs
// only saveMu, so the persister's fsync holds up no failover.
func (d *Daemon) write(seq uint64, b []byte) error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	if seq <= d.savedSeq {
		return nil
	}
	if err := writeState(d.cfg.StateDir, b); err != nil {
		return err
	}
	d.savedSeq = seq
	return nil
}

// persistSoonLocked saves the state in the background, soon: for changes
// the daemon derives itself, where an fsync must not delay failover.
func (d *Daemon) persistSoonLocked() {
	select {
	case d.dirty <- struct{}{}:
	default: // a save is already due and will include this change
	}
}

func (d *Daemon) persister(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.dirty:
			d.mu.Lock()
			seq, b, err := d.snapshotLocked()
			d.mu.Unlock()
			if err == nil {
				err = d.write(seq, b)
			}
			if err != nil {
				d.log.Warn("persist", "err", err)
			}
		}
	}
}

// restore brings back the persisted teams: the host is reconciled to each
// team's intent, adopting a datapath that is still pinned and attached as
// it runs, building what is missing and finishing a change a killed daemon
// left half done (a removal is completed).
func (d *Daemon) restore() error {
	recs, err := loadState(d.cfg.StateDir)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, rec := range recs {
		t := newTeamRT(rec)
		d.teams[rec.Spec.Name] = t
		d.order = append(d.order, rec.Spec.Name)
		built, err := d.reconcileLocked(t)
		if rec.Removing {
			if err != nil {
				d.log.Error("finish removing team", "team", rec.Spec.Name, "err", err)
			} else {
				d.events.add(rec.Spec.Name, api.EventTeamRemoved, "", "removal finished after a restart")
			}
			continue
		}
		if err != nil {
			// Keep the declaration: a later link event or restart may
			// succeed. Members the datapath lacks show as not present.
			d.log.Error("restore team", "team", rec.Spec.Name, "err", err)
			if t.dp == nil {
				continue
			}
		}
		kind := api.EventTeamAdopted
		if built {
			kind = api.EventTeamCreated
		}
		d.events.add(rec.Spec.Name, kind, "", "")
		d.settleLocked(t)
	}
	return nil
}

// settleLocked reads the state of members no step touched and derives the
// team's state from them.
func (d *Daemon) settleLocked(t *teamRT) {
	for _, m := range t.rec.Spec.Members {
		if _, ok := t.links[m.Name]; !ok {
			d.refreshMemberLocked(t, m.Name, false)
		}
	}
	d.recomputeLocked(t)
}

// hashOf maps an algorithm onto the datapath's hash. Dynamic hashes on the
// 4-tuple, like TransportPorts.
func hashOf(a team.Algorithm) datapath.HashPolicy {
	switch a {
	case team.IPAddresses:
		return datapath.HashIPAddresses
	case team.MacAddresses:
		return datapath.HashMacAddresses
	case team.HyperVPort:
		return datapath.HashSourceMAC
	}
	return datapath.HashTransportPorts
}

// joinLocked makes a NIC that appeared a working member: its settings are
// saved into the intent first (once, so a rebuild after a restart does not
// overwrite the originals), then it is attached.
func (d *Daemon) joinLocked(t *teamRT, name string) error {
	if _, ok := t.rec.Saved[name]; !ok {
		if err := d.captureLocked(t, name); err != nil {
			return fmt.Errorf("join %s to %s: %w", name, t.rec.Spec.Name, err)
		}
	}
	return d.attachLocked(t, name)
}

// attachLocked sets a member up at the team's MTU and attaches the ingress
// program. Promiscuity and source MAC follow from the MAC rules in
// recomputeLocked. On error the member's saved settings are put back.
func (d *Daemon) attachLocked(t *teamRT, name string) error {
	l, err := host.Get(name)
	if errors.Is(err, os.ErrNotExist) {
		t.links[name] = team.LinkState{}
		return nil // NicNotPresent until it appears
	}
	if err != nil {
		return err
	}
	fail := func(err error) error {
		d.putBackLocked(t, name)
		return fmt.Errorf("join %s to %s: %w", name, t.rec.Spec.Name, err)
	}
	if l.MTU != t.rec.MTU {
		if err := host.SetMTU(name, t.rec.MTU); err != nil {
			return fail(err)
		}
	}
	if !l.AdminUp {
		if err := host.SetUp(name, true); err != nil {
			return fail(err)
		}
	}
	if err := t.dp.AttachMember(l.Index, l.MAC); err != nil {
		return fail(err)
	}
	t.ifindex[name] = l.Index
	t.promisc[name] = l.Promisc
	delete(t.flags, name) // a new attachment starts without flags
	d.refreshMemberLocked(t, name, false)
	return nil
}

// forgetMemberLocked drops the run-time state of a member that leaves:
// its timers and its ports' announcements, which would contradict those
// of their new member.
func (d *Daemon) forgetMemberLocked(t *teamRT, name string) {
	if tm := t.timers[name]; tm != nil {
		tm.Stop()
	}
	if stop := t.stopPorts[name]; stop != nil {
		stop()
	}
	delete(t.stopPorts, name)
	delete(t.timers, name)
	delete(t.ifindex, name)
	delete(t.links, name)
	delete(t.macs, name)
	delete(t.promisc, name)
	delete(t.flags, name)
}

// putBackLocked restores a member's saved settings without dropping them
// from the intent: it stays a member and joins again later.
func (d *Daemon) putBackLocked(t *teamRT, name string) {
	s, ok := t.rec.Saved[name]
	if !ok {
		return
	}
	d.restoreMember(t, name)
	t.rec.Saved[name] = s
}

// restoreMember puts back the NIC settings saved when it joined.
func (d *Daemon) restoreMember(t *teamRT, name string) {
	s, ok := t.rec.Saved[name]
	if !ok {
		return
	}
	l, err := host.Get(name)
	if err == nil {
		for _, step := range []struct {
			need bool
			do   func() error
		}{
			{l.Promisc != s.Promisc, func() error { return host.SetPromisc(name, s.Promisc) }},
			{l.MTU != s.MTU && s.MTU > 0, func() error { return host.SetMTU(name, s.MTU) }},
			{l.AdminUp != s.Up, func() error { return host.SetUp(name, s.Up) }},
		} {
			if step.need {
				if err := step.do(); err != nil {
					d.log.Warn("restore member", "member", name, "err", err)
				}
			}
		}
	}
	delete(t.rec.Saved, name)
}

// refreshMemberLocked reads a member's link state from the kernel.
func (d *Daemon) refreshMemberLocked(t *teamRT, name string, adopt bool) {
	l, err := host.Get(name)
	if err != nil {
		t.links[name] = team.LinkState{}
		return
	}
	if adopt {
		t.ifindex[name] = l.Index
		t.promisc[name] = l.Promisc
	}
	t.macs[name] = l.MAC
	t.links[name] = team.LinkState{Present: true, AdminUp: l.AdminUp, Carrier: l.Carrier, Speed: host.Speed(name)}
}

// linkChanged handles one netlink notification.
func (d *Daemon) linkChanged(l host.Link) {
	d.facts.Forget(l.Index)
	// Most notifications are about interfaces no team holds (containers'
	// veths, the hidden peers): they cost no syscall.
	if !d.concerns(l) {
		return
	}
	// A notification says something changed; what is true is what the
	// kernel says now. Notifications queued while a team was being built
	// (a cable plugged during set-up) would otherwise replay a stale
	// "no carrier" onto a member that has it, and move the team's MAC.
	// Asked by ifindex: a member renamed since is still that member.
	if !l.Deleted {
		switch cur, err := host.GetByIndex(l.Index); {
		case err == nil:
			l = cur
		case errors.Is(err, os.ErrNotExist):
			l.Deleted = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.followLinkLocked(l)
}

func (d *Daemon) memberChangedLocked(t *teamRT, l host.Link) {
	old := t.links[l.Name]
	if l.Deleted {
		if idx, ok := t.ifindex[l.Name]; ok && idx == l.Index {
			t.dp.DetachMember(idx)
			delete(t.ifindex, l.Name)
			delete(t.flags, l.Name)
		}
		t.links[l.Name] = team.LinkState{}
		d.recomputeLocked(t)
		return
	}
	if idx, ok := t.ifindex[l.Name]; !ok || idx != l.Index {
		// The NIC appeared (again): make it a member as on creation.
		if ok {
			t.dp.DetachMember(idx)
		}
		if err := d.joinLocked(t, l.Name); err != nil {
			d.log.Error("rejoin member", "member", l.Name, "err", err)
		}
		d.recomputeLocked(t)
		return
	}
	t.macs[l.Name] = l.MAC
	st := team.LinkState{Present: true, AdminUp: l.AdminUp, Carrier: l.Carrier, Speed: old.Speed, Waiting: old.Waiting}
	if st.Carrier && !old.Carrier {
		// Speed is renegotiated with the link; read it only when carrier
		// comes back, keeping the ethtool call off the failure path.
		st.Speed = host.Speed(l.Name)
		if delay := t.rec.Spec.UpDelay; delay > 0 {
			st.Waiting = true
			d.startUpDelayLocked(t, l.Name, delay)
		}
	}
	if !st.Carrier {
		st.Waiting = false
		if tm := t.timers[l.Name]; tm != nil {
			tm.Stop()
			delete(t.timers, l.Name)
		}
	}
	if st == old {
		return
	}
	t.links[l.Name] = st
	d.recomputeLocked(t)
}

func (d *Daemon) startUpDelayLocked(t *teamRT, member string, delay time.Duration) {
	if tm := t.timers[member]; tm != nil {
		tm.Stop()
	}
	teamName := t.rec.Spec.Name
	t.timers[member] = time.AfterFunc(delay, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		t, ok := d.teams[teamName]
		if !ok {
			return
		}
		delete(t.timers, member)
		st := t.links[member]
		if !st.Waiting {
			return
		}
		st.Waiting = false
		t.links[member] = st
		d.recomputeLocked(t)
	})
}

// recomputeLocked derives t's state from its members' and pushes it to the
// datapath. The bucket table goes first: it is what moves traffic.
func (d *Daemon) recomputeLocked(t *teamRT) {
	name := t.rec.Spec.Name
	prev := t.eval
	d.syncLACPLocked(t)
	d.portsLocked(t)
	e := team.Evaluate(&t.rec.Spec, d.lacpStatesLocked(t))
	weights := carrierWeightsLocked(t, e.Carriers)
	table := placeLocked(t, weights)
	if moved := team.Moved(t.table, table); moved > 0 {
		if err := t.dp.SetBuckets(table); err != nil {
			d.log.Error("write buckets", "team", name, "err", err)
			return
		}
		d.events.add(name, api.EventBucketsMoved, "", fmt.Sprintf("%d of %d buckets moved; %s", moved, team.NumBuckets, d.shareLocked(t, table)))
	}
	t.table = table
	plan := d.planMACLocked(t, e)
	cfg := datapath.Config{
		TeamIfindex:  t.index,
		TeamMAC:      mustMAC(t.rec.MAC),
		Hash:         hashOf(t.rec.Spec.Algorithm),
		Primary:      t.ifindex[plan.Primary],
		BroadcastAll: t.rec.Spec.Mode != team.SwitchIndependent,
		Flowlet:      flowletOf(&t.rec.Spec),
		PortAffinity: t.ports != nil,
	}
	if cur, err := t.dp.Config(); err != nil || !sameConfig(cur, cfg) {
		if err := t.dp.SetConfig(cfg); err != nil {
			d.log.Error("write config", "team", name, "err", err)
		}
	}
	if t.ports != nil {
		d.movePortsLocked(t, weights)
	}
	d.applyMACPlanLocked(t, plan, len(prev.Members) > 0 && !slices.Equal(prev.Carriers, e.Carriers))
	// The team NIC has carrier exactly while some member carries traffic.
	if (e.Status == team.Down) != (prev.Status == team.Down) || len(prev.Members) == 0 {
		if err := host.SetUp(t.rec.Peer, e.Status != team.Down); err != nil {
			d.log.Warn("set team carrier", "team", name, "err", err)
		}
	}
	t.eval = e
	d.writeFallbacksLocked(t)
	d.memberEventsLocked(name, prev, e)
	if len(prev.Members) > 0 && prev.Status != e.Status {
		d.events.add(name, api.EventStatusChanged, "", fmt.Sprintf("%s -> %s", prev.Status, e.Status))
	}
}

func sameConfig(a, b datapath.Config) bool {
	return a.TeamIfindex == b.TeamIfindex && a.Hash == b.Hash && a.Primary == b.Primary &&
		a.BroadcastAll == b.BroadcastAll && a.Flowlet == b.Flowlet && a.PortAffinity == b.PortAffinity &&
		a.TeamMAC.String() == b.TeamMAC.String()
}

// memberEventsLocked logs members whose operational status changed.
func (d *Daemon) memberEventsLocked(teamName string, prev, next team.Evaluation) {
	before := map[string]team.MemberView{}
	for _, m := range prev.Members {
		before[m.Name] = m
	}
	for _, m := range next.Members {
		b, ok := before[m.Name]
		if !ok || (b.Oper == m.Oper && b.Reason == m.Reason) {
			continue
		}
		kind := api.EventMemberUp
		switch {
		case m.Reason == team.WaitingForStableConnectivity:
			kind = api.EventMemberWaiting
		case m.Oper == team.OperFailed:
			kind = api.EventMemberFailed
		}
		d.events.add(teamName, kind, m.Name, fmt.Sprintf("%s/%s -> %s/%s", b.Oper, b.Reason, m.Oper, m.Reason))
	}
}

// shareLocked describes how many buckets each member holds in table.
func (d *Daemon) shareLocked(t *teamRT, table team.Table) string {
	n := map[uint32]int{}
	for _, id := range table {
		n[id]++
	}
	s := ""
	for _, m := range t.rec.Spec.Members {
		if s != "" {
			s += ", "
		}
		held := 0
		if idx, ok := t.ifindex[m.Name]; ok {
			held = n[uint32(idx)]
		}
		s += fmt.Sprintf("%s %d", m.Name, held)
	}
	return s
}
