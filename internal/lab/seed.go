package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/datapath"
	"github.com/nicteam/nicteam/internal/team"
)

// The names in the Seed topology.
const (
	TeamName = "Team0" // the team on each node, as in the seed
	VXLANDev = "vx0"   // each node's tunnel endpoint, on the team
	VXLANID  = 42
	// VXLANPort is the IANA VXLAN port.
	VXLANPort = 4789

	containerBridge = "cbr0" // on each node: the VXLAN device and the container's veth
	containerIf     = "eth0" // in each container
)

// SeedNICs are the NICs of each compute node, both cabled to the switch and
// teamed, the first being the primary.
var SeedNICs = []string{"eth1", "eth2"}

// bpffsRoot is nicteamd's default --bpffs.
const bpffsRoot = "/sys/fs/bpf"

// Timeouts of NewSeed's waits.
const (
	daemonTimeout = 10 * time.Second // until nicteamd answers on its socket
	teamUpTimeout = 5 * time.Second  // until Team0 is Up
	warmTimeout   = 5 * time.Second  // until the containers reach each other
	apiTimeout    = 10 * time.Second // one API call while closing
)

// SwitchProfile says how the Seed's switch forwards.
type SwitchProfile string

const (
	// ProfileLearning is an ordinary learning bridge: it learns source
	// MACs and floods unknown unicast.
	ProfileLearning SwitchProfile = "learning"
	// ProfileStatic behaves like a VMware vSwitch: every port owns the
	// MAC of the NIC plugged into it (a static entry), nothing is learned,
	// unicast to any other MAC is dropped; broadcast and multicast are
	// still flooded.
	ProfileStatic SwitchProfile = "static"
)

// ParseSwitchProfile accepts "learning" and "static".
func ParseSwitchProfile(s string) (SwitchProfile, error) {
	switch p := SwitchProfile(strings.ToLower(s)); p {
	case ProfileLearning, ProfileStatic:
		return p, nil
	}
	return "", fmt.Errorf("unknown switch profile %q (want learning or static)", s)
}

// SeedOptions configure NewSeed.
type SeedOptions struct {
	Profile SwitchProfile `json:"profile"` // "" means ProfileLearning
	// MACPolicy goes to the daemon with the team (keep, follow, auto); ""
	// leaves the daemon's default.
	MACPolicy string `json:"macPolicy,omitempty"`
	// IPv6 puts the underlay and the overlay on IPv6 instead of IPv4.
	IPv6 bool `json:"ipv6,omitempty"`
	// Daemon is the path to nicteamd.
	Daemon string `json:"daemon"`
	// StateRoot holds, for each node, a directory named after it with the
	// daemon's socket, state directory and (Detached) log.
	StateRoot string `json:"stateRoot"`
	// Detached starts the daemons with StartDetached, so that they outlive
	// the caller; AttachSeed and Close stop them later.
	Detached bool `json:"detached,omitempty"`
}

// Seed is the topology of the seed scenario: two compute nodes, each with
// Team0 = eth1 + eth2 cabled to one switch and a nicteamd running it, and
// on each a container whose traffic crosses to the other node's container
// through a VXLAN tunnel between the team addresses.
//
//	c1 ─ cbr0 ─ vx0 ─ Team0 ═ eth1,eth2 ─┐          ┌─ eth1,eth2 ═ Team0 ─ vx0 ─ cbr0 ─ c2
//	          node1                      └─ switch ─┘                  node2
type Seed struct {
	*Lab
	Options SeedOptions
	Switch  *Switch
	Nodes   [2]*Node // node1, node2; methods number them 1 and 2

	closeOnce sync.Once
	closeErr  error
}

// Node is one compute node of a Seed.
type Node struct {
	Name      string // "node1", "node2"
	Host      *Host  // eth1, eth2, Team0, vx0, cbr0
	Container *Host  // eth0 with OverlayIP
	// Daemon is the node's nicteamd, nil in a Seed from AttachSeed;
	// DaemonPID is its pid either way.
	Daemon    *Proc
	DaemonPID int
	Socket    string // the daemon's API socket
	StateDir  string // the daemon's --state-dir
	LogPath   string // the daemon's output, when Detached
	// UnderlayIP is Team0's address, OverlayIP the container's (no
	// prefix length).
	UnderlayIP, OverlayIP string
	// PinDir is where the daemon pins this node's datapath.
	PinDir string
	// NICMACs are the MACs of eth1 and eth2 as they were cabled, which on
	// a static switch are the MACs their ports own.
	NICMACs map[string]string
}

// Client returns an API client for the node's daemon.
func (n *Node) Client() *api.Client { return api.NewClient(n.Socket) }

// addressing is where a Seed's addresses come from.
type addressing struct {
	underlay, overlay [2]string
	underlayBits      int
	overlayBits       int
	mtu               int // of the VXLAN device and the containers
}

func (o SeedOptions) addressing() addressing {
	if o.IPv6 {
		// 1500 - 40 (IPv6) - 8 (UDP) - 8 (VXLAN) - 14 (inner Ethernet)
		return addressing{
			underlay: [2]string{"fd10::1", "fd10::2"}, overlay: [2]string{"fd20::1", "fd20::2"},
			underlayBits: 64, overlayBits: 64, mtu: 1430,
		}
	}
	// 1500 - 20 (IPv4) - 8 - 8 - 14
	return addressing{
		underlay: [2]string{"10.10.0.1", "10.10.0.2"}, overlay: [2]string{"10.20.0.1", "10.20.0.2"},
		underlayBits: 24, overlayBits: 24, mtu: 1450,
	}
}

func (o SeedOptions) check() (SeedOptions, error) {
	if o.Profile == "" {
		o.Profile = ProfileLearning
	}
	if _, err := ParseSwitchProfile(string(o.Profile)); err != nil {
		return o, err
	}
	if o.Daemon == "" {
		return o, errors.New("no nicteamd given (SeedOptions.Daemon)")
	}
	if fi, err := os.Stat(o.Daemon); err != nil {
		return o, fmt.Errorf("nicteamd: %w", err)
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return o, fmt.Errorf("nicteamd: %s is not an executable file", o.Daemon)
	}
	if o.StateRoot == "" {
		return o, errors.New("no state directory given (SeedOptions.StateRoot)")
	}
	return o, nil
}

// NewSeed builds the Seed topology in namespaces named "<prefix>-sw",
// "-node1", "-node2", "-c1" and "-c2", starts a nicteamd in each node,
// creates Team0 = eth1,eth2 with o.MACPolicy through it, waits until the
// team is Up, and puts the tunnel and the containers on top. When it
// returns, the containers have pinged each other once, so every neighbour
// cache on the way is warm. On error it tears down what it built.
func NewSeed(prefix string, o SeedOptions) (*Seed, error) {
	o, err := o.check()
	if err != nil {
		return nil, fmt.Errorf("build seed lab: %w", err)
	}
	s := &Seed{Lab: New(prefix), Options: o}
	if err := s.build(); err != nil {
		if cerr := s.Close(); cerr != nil {
			err = fmt.Errorf("%w (cleaning up: %v)", err, cerr)
		}
		return nil, fmt.Errorf("build seed lab: %w", err)
	}
	return s, nil
}

func (s *Seed) build() error {
	a := s.Options.addressing()
	var err error
	if s.Switch, err = s.AddSwitch("sw"); err != nil {
		return err
	}
	for i := range s.Nodes {
		n := &Node{
			Name:       fmt.Sprintf("node%d", i+1),
			UnderlayIP: a.underlay[i],
			OverlayIP:  a.overlay[i],
			NICMACs:    make(map[string]string),
		}
		s.Nodes[i] = n
		dir := filepath.Join(s.Options.StateRoot, n.Name)
		n.Socket = filepath.Join(dir, "nicteamd.sock")
		n.StateDir = filepath.Join(dir, "state")
		if s.Options.Detached {
			n.LogPath = filepath.Join(dir, "nicteamd.log")
		}
		if n.Host, err = s.AddHost(n.Name); err != nil {
			return err
		}
		if n.PinDir, err = n.Host.PinDir(); err != nil {
			return err
		}
		if n.Container, err = s.AddHost(fmt.Sprintf("c%d", i+1)); err != nil {
			return err
		}
		// The container bridge must not hand its frames to iptables.
		if _, err := run("netns", "exec", n.Host.NS, "sysctl", "-q", "-e", "-w",
			"net.bridge.bridge-nf-call-iptables=0",
			"net.bridge.bridge-nf-call-ip6tables=0",
			"net.bridge.bridge-nf-call-arptables=0"); err != nil {
			return err
		}
		for _, nic := range SeedNICs {
			if err := s.Connect(n.Host, nic, s.Switch); err != nil {
				return err
			}
			l, err := n.Host.Link(nic)
			if err != nil {
				return err
			}
			n.NICMACs[nic] = l.Attrs().HardwareAddr.String()
		}
	}
	if s.Options.Profile == ProfileStatic {
		if err := s.makeStatic(); err != nil {
			return err
		}
	}
	if err := s.startDaemons(); err != nil {
		return err
	}
	for i, n := range s.Nodes {
		if err := s.buildNode(n, a, a.underlay[1-i]); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return s.warm()
}

// PinDir returns the directory a nicteamd with the default --bpffs pins to
// in h's namespace. It is keyed on the namespace's cookie, which no other
// namespace ever has, so a fresh namespace finds nothing pinned there.
func (h *Host) PinDir() (string, error) {
	var dir string
	err := h.Do(func() (err error) {
		dir, err = datapath.NamespaceDir(bpffsRoot)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("pin directory of %s: %w", h.Name, err)
	}
	return dir, nil
}

// makeStatic turns the switch into the static profile: on every port no
// learning and no flooding of unknown unicast, broadcast and multicast
// flooded, and a static entry for the MAC of the NIC on the other end.
func (s *Seed) makeStatic() error {
	for _, n := range s.Nodes {
		for _, nic := range SeedNICs {
			port := s.SwitchPort(n.Host, nic)
			if _, err := bridge("-n", s.Switch.NS, "link", "set", "dev", port,
				"learning", "off", "flood", "off", "mcast_flood", "on", "bcast_flood", "on"); err != nil {
				return err
			}
			// replace: the port may have learned the MAC while being cabled.
			if _, err := bridge("-n", s.Switch.NS, "fdb", "replace", n.NICMACs[nic],
				"dev", port, "master", "static"); err != nil {
				return err
			}
		}
	}
	// Anything else learned before learning went off goes too.
	fdb, err := s.Switch.FDB()
	if err != nil {
		return err
	}
	for _, e := range fdb {
		if !e.Static {
			if _, err := bridge("-n", s.Switch.NS, "fdb", "del", e.MAC, "dev", e.Port, "master"); err != nil {
				return err
			}
		}
	}
	return nil
}

// startDaemons starts a nicteamd in each node and waits until both answer.
func (s *Seed) startDaemons() error {
	for _, n := range s.Nodes {
		if err := os.MkdirAll(filepath.Dir(n.Socket), 0o700); err != nil {
			return err
		}
		args := []string{"--socket", n.Socket, "--state-dir", n.StateDir}
		var err error
		if s.Options.Detached {
			n.Daemon, err = n.Host.StartDetached(n.LogPath, s.Options.Daemon, args...)
		} else {
			n.Daemon, err = n.Host.Start(s.Options.Daemon, args...)
		}
		if err != nil {
			return err
		}
		n.DaemonPID = n.Daemon.Pid()
	}
	ctx, cancel := context.WithTimeout(context.Background(), daemonTimeout)
	defer cancel()
	for _, n := range s.Nodes {
		err := Poll(ctx, 0, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
			if err := n.Daemon.Exited(); err != nil {
				return true, err
			}
			_, err := n.Client().Teams(ctx)
			return err == nil, err
		})
		if err != nil {
			return fmt.Errorf("nicteamd on %s did not answer on %s within %v: %w", n.Name, n.Socket, daemonTimeout, err)
		}
	}
	return nil
}

// buildNode creates the node's team through its daemon, gives it its
// underlay address, and builds the tunnel, the container bridge and the
// container's cable.
func (s *Seed) buildNode(n *Node, a addressing, remote string) error {
	ctx, cancel := context.WithTimeout(context.Background(), teamUpTimeout)
	defer cancel()
	c := n.Client()
	if _, err := c.NewTeam(ctx, api.NewTeam{Name: TeamName, Members: SeedNICs, SetTeam: api.SetTeam{MACPolicy: s.Options.MACPolicy}}); err != nil {
		return fmt.Errorf("create %s: %w", TeamName, err)
	}
	for {
		t, err := c.Team(ctx, TeamName)
		if err == nil && t.Status == team.Up {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not Up within %v (status %v, err %v)", TeamName, teamUpTimeout, t.Status, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	ns, cns := n.Host.NS, n.Container.NS
	mtu := strconv.Itoa(a.mtu)
	vethNode := "v" + strings.TrimPrefix(n.Container.NS, s.Prefix+"-") // vc1, vc2
	// AddHost turned duplicate address detection off: IPv6 addresses are
	// usable at once.
	if err := n.Host.AddAddr(TeamName, n.UnderlayIP+"/"+strconv.Itoa(a.underlayBits)); err != nil {
		return err
	}
	steps := [][]string{
		{"link", "set", TeamName, "up"},
		{"link", "add", VXLANDev, "mtu", mtu, "type", "vxlan", "id", strconv.Itoa(VXLANID),
			"local", n.UnderlayIP, "remote", remote, "dstport", strconv.Itoa(VXLANPort), "dev", TeamName},
		{"link", "add", containerBridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"link", "add", vethNode, "mtu", mtu, "type", "veth", "peer", "name", containerIf, "mtu", mtu, "netns", cns},
		{"link", "set", VXLANDev, "master", containerBridge, "up"},
		{"link", "set", vethNode, "master", containerBridge, "up"},
		{"link", "set", containerBridge, "up"},
	}
	for _, st := range steps {
		if _, err := run(append([]string{"-n", ns}, st...)...); err != nil {
			return err
		}
	}
	if err := n.Container.AddAddr(containerIf, n.OverlayIP+"/"+strconv.Itoa(a.overlayBits)); err != nil {
		return err
	}
	if _, err := run("-n", cns, "link", "set", containerIf, "up"); err != nil {
		return err
	}
	return nil
}

// warm has each container ping the other until one answers, which fills
// every neighbour cache and forwarding table on the way.
func (s *Seed) warm() error {
	ctx, cancel := context.WithTimeout(context.Background(), warmTimeout)
	defer cancel()
	for i, n := range s.Nodes {
		dst := s.Nodes[1-i].OverlayIP
		err := Poll(ctx, 0, 50*time.Millisecond, func(context.Context) (bool, error) {
			out, err := n.Container.Run("ping", "-n", "-c", "1", "-W", "1", dst)
			if err != nil {
				return false, errors.New(strings.TrimSpace(out))
			}
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("container of %s cannot reach %s: %w", n.Name, dst, err)
		}
	}
	return nil
}

// node returns node number i (1 or 2).
func (s *Seed) node(i int) (*Node, error) {
	if i < 1 || i > len(s.Nodes) || s.Nodes[i-1] == nil {
		return nil, fmt.Errorf("no node %d (want 1 or 2)", i)
	}
	return s.Nodes[i-1], nil
}

// Node returns node number i (1 or 2), or nil.
func (s *Seed) Node(i int) *Node {
	n, _ := s.node(i)
	return n
}

// NodeIndex returns the number of the node named name ("node1", "1"), or
// an error.
func NodeIndex(name string) (int, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "node"))
	if err != nil || i < 1 || i > 2 {
		return 0, fmt.Errorf("unknown node %q (want node1 or node2)", name)
	}
	return i, nil
}

// Fail pulls the cable of node's nic (node 1 or 2): its switch port goes
// down, so the NIC loses carrier.
func (s *Seed) Fail(node int, nic string) error {
	n, err := s.node(node)
	if err != nil {
		return fmt.Errorf("fail %s: %w", nic, err)
	}
	return s.Lab.Fail(n.Host, nic)
}

// Restore plugs the cable of node's nic back in.
func (s *Seed) Restore(node int, nic string) error {
	n, err := s.node(node)
	if err != nil {
		return fmt.Errorf("restore %s: %w", nic, err)
	}
	return s.Lab.Restore(n.Host, nic)
}

// Neighbor is one entry of a neighbour (ARP / NDP) cache.
type Neighbor struct {
	IP    string `json:"ip"`
	MAC   string `json:"mac,omitempty"`   // "" while unresolved or absent
	State string `json:"state,omitempty"` // REACHABLE, STALE, …; "" when there is no entry
}

func (n Neighbor) String() string {
	switch {
	case n.State == "":
		return n.IP + " (no entry)"
	case n.MAC == "":
		return n.IP + " " + n.State
	}
	return n.IP + " " + n.MAC + " " + n.State
}

// PeerNeighbor returns the other node's neighbour entry, on its Team0,
// for node's underlay address: the MAC the other node sends node's
// tunnelled traffic to.
func (s *Seed) PeerNeighbor(node int) (Neighbor, error) {
	n, err := s.node(node)
	if err != nil {
		return Neighbor{}, fmt.Errorf("peer neighbour: %w", err)
	}
	peer := s.Nodes[2-node]
	return neighbor(peer.Host, TeamName, n.UnderlayIP)
}

func neighbor(h *Host, dev, ip string) (Neighbor, error) {
	out, err := run("-n", h.NS, "-j", "neigh", "show", ip, "dev", dev)
	if err != nil {
		return Neighbor{}, fmt.Errorf("neighbour %s on %s: %w", ip, h.Name, err)
	}
	var entries []struct {
		Dst    string   `json:"dst"`
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil && strings.TrimSpace(out) != "" {
		return Neighbor{}, fmt.Errorf("neighbour %s on %s: %w: %q", ip, h.Name, err, out)
	}
	nb := Neighbor{IP: ip}
	if len(entries) > 0 {
		nb.MAC = entries[0].LLAddr
		nb.State = strings.Join(entries[0].State, ",")
		if nb.State == "" {
			nb.State = "NONE"
		}
	}
	return nb, nil
}

// FDBEntry is one forwarding entry of the switch: frames to MAC go out of
// Port.
type FDBEntry struct {
	MAC    string `json:"mac"`
	Port   string `json:"port"`
	Static bool   `json:"static"` // configured; otherwise learned
}

func (e FDBEntry) String() string {
	kind := "learned"
	if e.Static {
		kind = "static"
	}
	return e.MAC + " → " + e.Port + " (" + kind + ")"
}

// FDB returns the switch's forwarding entries for the hosts' MACs, learned
// or static, sorted by port and MAC; the entries of the switch's own
// interfaces are left out.
func (s *Switch) FDB() ([]FDBEntry, error) {
	out, err := bridge("-n", s.NS, "-j", "fdb", "show", "br", s.Bridge)
	if err != nil {
		return nil, fmt.Errorf("switch fdb: %w", err)
	}
	var raw []struct {
		MAC    string `json:"mac"`
		IfName string `json:"ifname"`
		Master string `json:"master"`
		State  string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return nil, fmt.Errorf("switch fdb: %w", err)
	}
	var fdb []FDBEntry
	for _, r := range raw {
		// "self" entries belong to the port devices, "permanent" ones are
		// the switch's own addresses.
		if r.Master == "" || r.State == "permanent" {
			continue
		}
		fdb = append(fdb, FDBEntry{MAC: r.MAC, Port: r.IfName, Static: r.State == "static"})
	}
	slices.SortFunc(fdb, func(a, b FDBEntry) int {
		if c := strings.Compare(a.Port, b.Port); c != 0 {
			return c
		}
		return strings.Compare(a.MAC, b.MAC)
	})
	return fdb, nil
}

// SwitchPortOf returns the switch port of node's nic.
func (s *Seed) SwitchPortOf(node int, nic string) string {
	n, err := s.node(node)
	if err != nil {
		return ""
	}
	return s.SwitchPort(n.Host, nic)
}

// TeamMAC returns the MAC Team0 of node has now.
func (s *Seed) TeamMAC(node int) (string, error) { return s.NICMAC(node, TeamName) }

// NICMAC returns the MAC node's interface nic has now.
func (s *Seed) NICMAC(node int, nic string) (string, error) {
	n, err := s.node(node)
	if err != nil {
		return "", fmt.Errorf("mac of %s: %w", nic, err)
	}
	l, err := n.Host.Link(nic)
	if err != nil {
		return "", err
	}
	return l.Attrs().HardwareAddr.String(), nil
}

// ContainerPing pings from the container of node from (1 or 2) to the
// other node's container, count requests one every interval, with
// timestamps (-D) so that SendTimes can place every request in time. opts
// go to ping as in PingFlood.
func (s *Seed) ContainerPing(ctx context.Context, from int, interval time.Duration, count int, opts ...string) (PingResult, error) {
	n, err := s.node(from)
	if err != nil {
		return PingResult{}, fmt.Errorf("container ping: %w", err)
	}
	dst := s.Nodes[2-from].OverlayIP
	return n.Container.PingFlood(ctx, dst, interval, count, append([]string{"-D"}, opts...)...)
}

// Close removes the teams through each daemon (as `nicteam rm` would), so
// that the members are restored and the pins removed by their owner; stops
// the daemons; deletes every namespace; and removes whatever is left of the
// daemons' pin directories. It goes on after errors and returns them all;
// calling it again returns the same.
func (s *Seed) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Seed) close() error {
	var errs []error
	for _, n := range s.Nodes {
		if n == nil || !n.DaemonRuns() {
			continue
		}
		if err := removeTeams(n.Client()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	for _, n := range s.Nodes {
		if n == nil {
			continue
		}
		var err error
		switch {
		case n.Daemon != nil:
			err = n.Daemon.Stop()
		case n.DaemonPID > 0:
			err = StopPID(n.DaemonPID, n.Socket)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	if err := s.Lab.Close(); err != nil {
		errs = append(errs, err)
	}
	for _, n := range s.Nodes {
		if n == nil || n.PinDir == "" {
			continue
		}
		if err := os.RemoveAll(n.PinDir); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove pins: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

// DaemonRuns reports whether the node's nicteamd is still running.
func (n *Node) DaemonRuns() bool {
	if n.Daemon != nil {
		select {
		case <-n.Daemon.Done():
			return false
		default:
			return true
		}
	}
	return n.DaemonPID > 0 && pidRuns(n.DaemonPID, n.Socket)
}

func removeTeams(c *api.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	ts, err := c.Teams(ctx)
	if err != nil {
		return fmt.Errorf("list teams: %w", err)
	}
	var errs []error
	for _, t := range ts {
		if err := c.RemoveTeam(ctx, t.Name); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

// SeedState is what a later process needs to take over a Seed that
// another one built with Detached daemons: see State and AttachSeed.
type SeedState struct {
	Prefix  string      `json:"prefix"`
	Options SeedOptions `json:"options"`
	Nodes   []NodeState `json:"nodes"`
}

// NodeState is the part of SeedState about one node.
type NodeState struct {
	Name      string            `json:"name"`
	DaemonPID int               `json:"daemonPid"`
	Socket    string            `json:"socket"`
	StateDir  string            `json:"stateDir"`
	LogPath   string            `json:"logPath,omitempty"`
	PinDir    string            `json:"pinDir"`
	NICMACs   map[string]string `json:"nicMacs"`
}

// State returns what AttachSeed needs to take this Seed over.
func (s *Seed) State() SeedState {
	st := SeedState{Prefix: s.Prefix, Options: s.Options}
	for _, n := range s.Nodes {
		if n == nil {
			continue
		}
		st.Nodes = append(st.Nodes, NodeState{
			Name: n.Name, DaemonPID: n.DaemonPID, Socket: n.Socket, StateDir: n.StateDir,
			LogPath: n.LogPath, PinDir: n.PinDir, NICMACs: n.NICMACs,
		})
	}
	return st
}

// AttachSeed returns the Seed that st describes, built earlier by another
// process, without creating anything. Namespaces that no longer exist are
// left out, so that Close cleans up whatever is left of a Seed whatever
// state it is in; Missing lists them.
func AttachSeed(st SeedState) (*Seed, error) {
	if st.Prefix == "" {
		return nil, errors.New("attach seed lab: no prefix")
	}
	if len(st.Nodes) > 2 {
		return nil, fmt.Errorf("attach seed lab %s: %d nodes, want 2", st.Prefix, len(st.Nodes))
	}
	s := &Seed{Lab: New(st.Prefix), Options: st.Options}
	a := st.Options.addressing()
	s.Switch = &Switch{Name: "sw", NS: st.Prefix + "-sw", Bridge: "br0", ports: make(map[string]bool)}
	s.adopt(s.Switch.NS)
	for i := range s.Nodes {
		n := &Node{Name: fmt.Sprintf("node%d", i+1), UnderlayIP: a.underlay[i], OverlayIP: a.overlay[i]}
		if i < len(st.Nodes) {
			ns := st.Nodes[i]
			if ns.Name != n.Name {
				return nil, fmt.Errorf("attach seed lab %s: node %d is named %q, want %q", st.Prefix, i+1, ns.Name, n.Name)
			}
			n.DaemonPID, n.Socket, n.StateDir, n.LogPath = ns.DaemonPID, ns.Socket, ns.StateDir, ns.LogPath
			n.PinDir, n.NICMACs = ns.PinDir, ns.NICMACs
		}
		n.Host = &Host{Name: n.Name, NS: st.Prefix + "-" + n.Name, lab: s.Lab}
		n.Container = &Host{Name: fmt.Sprintf("c%d", i+1), NS: fmt.Sprintf("%s-c%d", st.Prefix, i+1), lab: s.Lab}
		s.adopt(n.Host.NS)
		s.adopt(n.Container.NS)
		if n.PinDir == "" {
			n.PinDir, _ = n.Host.PinDir()
		}
		for _, nic := range SeedNICs {
			port := portName(n.Name, nic, s.Switch.ports)
			s.Switch.ports[port] = true
			s.ports[hostNIC(n.Host, nic)] = portRef{sw: s.Switch, port: port}
			n.Host.NICs = append(n.Host.NICs, nic)
		}
		s.Nodes[i] = n
	}
	return s, nil
}

// adopt makes ns part of the lab, if it exists.
func (l *Lab) adopt(ns string) {
	if _, err := os.Stat(nsPath(ns)); err == nil {
		l.netns = append(l.netns, ns)
	}
}

// Missing lists the Seed's namespaces that do not exist.
func (s *Seed) Missing() []string {
	var missing []string
	names := []string{s.Switch.NS}
	for _, n := range s.Nodes {
		names = append(names, n.Host.NS, n.Container.NS)
	}
	for _, ns := range names {
		if _, err := os.Stat(nsPath(ns)); err != nil {
			missing = append(missing, ns)
		}
	}
	return missing
}

// bridge runs the bridge command with args and returns its standard output.
func bridge(args ...string) (string, error) {
	out, err := exec.Command("bridge", args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("bridge %s: %s: %w", strings.Join(args, " "), stderr, err)
	}
	return string(out), nil
}
