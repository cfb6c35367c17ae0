package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// PullPlan is the seed's experiment: a container pings the other node's
// container while a cable of one node is pulled and plugged back in.
type PullPlan struct {
	Node     int           // whose cable is pulled: 1 or 2
	NIC      string        // which one, e.g. "eth1"
	From     int           // the pinging container's node; 0 means the other node
	Interval time.Duration // between pings
	Before   time.Duration // ping runs this long before the pull
	Down     time.Duration // the cable is out this long
	After    time.Duration // ping goes on this long after the restore
	// Settle is when, after the pull and after the restore, the second and
	// third snapshot are taken.
	Settle time.Duration
}

// DefaultPullPlan pulls node1's eth1, the primary whose MAC the team
// wears, under a 1 ms ping from node2's container: 1 s before, 2 s out,
// 1 s after.
func DefaultPullPlan() PullPlan {
	return PullPlan{
		Node: 1, NIC: "eth1", Interval: time.Millisecond,
		Before: time.Second, Down: 2 * time.Second, After: time.Second,
		Settle: 500 * time.Millisecond,
	}
}

// Snapshot is what the network thought of the pulled node at one moment.
type Snapshot struct {
	Label   string    `json:"label"`
	Time    time.Time `json:"time"`
	TeamMAC string    `json:"teamMac"` // of the pulled node's Team0
	// Neighbor is the other node's neighbour entry for the pulled node's
	// underlay address.
	Neighbor Neighbor `json:"neighbor"`
	// FDB is the switch's entries for the pulled node's NIC MACs and its
	// team MAC.
	FDB    []FDBEntry `json:"fdb"`
	Errors []string   `json:"errors,omitempty"` // what could not be read
}

// NodeEvent is a daemon's event with the node it happened on.
type NodeEvent struct {
	Node string `json:"node"`
	api.Event
}

// PullRun is what happened during Pull.
type PullRun struct {
	Plan  PullPlan  `json:"plan"`
	Start time.Time `json:"start"` // the ping started
	// Pulled is when the switch port was set down, PullTook how long the
	// call took (the carrier goes within it); Restored likewise.
	Pulled      time.Time     `json:"pulled"`
	PullTook    time.Duration `json:"pullTook"`
	Restored    time.Time     `json:"restored"`
	RestoreTook time.Duration `json:"restoreTook"`
	From, To    string        `json:"-"` // pinging and pinged container names
	Ping        PingResult    `json:"ping"`
	// Sent is when each ping request went out, indexed by icmp_seq.
	Sent      []time.Time `json:"-"`
	Events    []NodeEvent `json:"events"` // both daemons', from Start on, in time order
	Snapshots []Snapshot  `json:"snapshots"`
}

// LostBetween counts the ping requests sent in [from, to) and how many of
// them were never answered.
func (r *PullRun) LostBetween(from, to time.Time) (lost, sent int) {
	missing := make(map[int]bool, len(r.Ping.Missing))
	for _, s := range r.Ping.Missing {
		missing[s] = true
	}
	for seq := 1; seq < len(r.Sent); seq++ {
		if t := r.Sent[seq]; !t.Before(from) && t.Before(to) {
			sent++
			if missing[seq] {
				lost++
			}
		}
	}
	return lost, sent
}

// Pull runs plan: it starts the ping, takes a snapshot, pulls the cable,
// takes a snapshot after plan.Settle, restores the cable after plan.Down,
// takes a snapshot after plan.Settle again, waits for the ping to end, and
// collects both daemons' events. If ctx ends first, it stops and returns
// ctx's error; the cable may then still be out.
func (s *Seed) Pull(ctx context.Context, plan PullPlan) (*PullRun, error) {
	n, err := s.node(plan.Node)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	if plan.From == 0 {
		plan.From = 3 - plan.Node
	}
	from, err := s.node(plan.From)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	if plan.Interval <= 0 {
		return nil, errors.New("pull: no ping interval")
	}
	port := s.SwitchPort(n.Host, plan.NIC)
	if port == "" {
		return nil, fmt.Errorf("pull: %s has no cable %s", n.Name, plan.NIC)
	}
	// The port is switched through a netlink handle opened beforehand, so
	// that the pull's time is known to some microseconds, not to the
	// milliseconds an ip command takes.
	sw, err := s.Switch.Handle()
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	defer sw.Close()
	link, err := sw.LinkByName(port)
	if err != nil {
		return nil, fmt.Errorf("pull: switch port %s: %w", port, err)
	}

	total := plan.Before + plan.Down + plan.After
	count := min(int(total/plan.Interval), maxPings)
	run := &PullRun{Plan: plan, From: from.Container.Name, To: s.Nodes[2-plan.From].Container.Name}
	// While requests go unanswered, iputils ping sends at most one every
	// 10 ms, so an outage as long as the cable is out stretches the run by
	// up to Down; the deadline is for an outage that outlasts the restore.
	pctx, cancel := context.WithTimeout(ctx, total+plan.Down+2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var pingErr error
	run.Start = time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		run.Ping, pingErr = s.ContainerPing(pctx, plan.From, plan.Interval, count)
	}()
	sleep := func(until time.Time) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(until)):
			return nil
		}
	}
	pulled := false
	abort := func(err error) (*PullRun, error) {
		cancel()
		wg.Wait()
		// A pull cut short plugs the cable back: the lab outlives it.
		if pulled {
			if uerr := sw.LinkSetUp(link); uerr != nil {
				err = errors.Join(err, fmt.Errorf("set switch port %s up: %w", port, uerr))
			}
		}
		return nil, fmt.Errorf("pull %s %s: %w", n.Name, plan.NIC, err)
	}

	if err := sleep(run.Start.Add(plan.Before)); err != nil {
		return abort(err)
	}
	run.Snapshots = append(run.Snapshots, s.snapshot("before the pull", plan.Node))
	run.Pulled = time.Now()
	if err := sw.LinkSetDown(link); err != nil {
		return abort(fmt.Errorf("set switch port %s down: %w", port, err))
	}
	pulled = true
	run.PullTook = time.Since(run.Pulled)
	if err := sleep(run.Pulled.Add(plan.Settle)); err != nil {
		return abort(err)
	}
	run.Snapshots = append(run.Snapshots, s.snapshot(fmt.Sprintf("%v after the pull", plan.Settle), plan.Node))
	if err := sleep(run.Pulled.Add(plan.Down)); err != nil {
		return abort(err)
	}
	run.Restored = time.Now()
	if err := sw.LinkSetUp(link); err != nil {
		return abort(fmt.Errorf("set switch port %s up: %w", port, err))
	}
	pulled = false
	run.RestoreTook = time.Since(run.Restored)
	if err := sleep(run.Restored.Add(plan.Settle)); err != nil {
		return abort(err)
	}
	run.Snapshots = append(run.Snapshots, s.snapshot(fmt.Sprintf("%v after the restore", plan.Settle), plan.Node))
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pull %s %s: %w", n.Name, plan.NIC, err)
	}
	if pingErr != nil {
		return nil, fmt.Errorf("pull %s %s: %w", n.Name, plan.NIC, pingErr)
	}
	run.Sent = run.Ping.SendTimes(plan.Interval)
	if run.Events, err = s.events(ctx, run.Start); err != nil {
		return nil, fmt.Errorf("pull %s %s: %w", n.Name, plan.NIC, err)
	}
	return run, nil
}

// snapshot reads the pulled node's team MAC, the other node's neighbour
// entry for it and the switch's entries for its MACs.
func (s *Seed) snapshot(label string, node int) Snapshot {
	snap := Snapshot{Label: label, Time: time.Now()}
	n := s.Nodes[node-1]
	var err error
	if snap.TeamMAC, err = s.TeamMAC(node); err != nil {
		snap.Errors = append(snap.Errors, err.Error())
	}
	if snap.Neighbor, err = s.PeerNeighbor(node); err != nil {
		snap.Errors = append(snap.Errors, err.Error())
	}
	fdb, err := s.Switch.FDB()
	if err != nil {
		snap.Errors = append(snap.Errors, err.Error())
	}
	for _, e := range fdb {
		if e.MAC == snap.TeamMAC || n.NICOf(e.MAC) != "" {
			snap.FDB = append(snap.FDB, e)
		}
	}
	return snap
}

// NICOf returns the NIC of node n that was cabled with mac, or "".
func (n *Node) NICOf(mac string) string {
	for _, nic := range SeedNICs {
		if n.NICMACs[nic] == mac {
			return nic
		}
	}
	return ""
}

// events returns both daemons' events from since on, in time order.
func (s *Seed) events(ctx context.Context, since time.Time) ([]NodeEvent, error) {
	var all []NodeEvent
	for _, n := range s.Nodes {
		err := n.Client().Events(ctx, false, func(e api.Event) error {
			if !e.Time.Before(since) {
				all = append(all, NodeEvent{Node: n.Name, Event: e})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("events of %s: %w", n.Name, err)
		}
	}
	slices.SortStableFunc(all, func(a, b NodeEvent) int { return a.Time.Compare(b.Time) })
	return all, nil
}

// Handle returns a netlink handle whose sockets live in the switch's
// namespace; the caller closes it.
func (sw *Switch) Handle() (*netlink.Handle, error) { return nsHandle(sw.NS) }

// nsHandle returns a netlink handle whose sockets live in namespace ns.
// netlink moves a locked thread there only while it creates the sockets,
// so the caller's goroutines never run inside the namespace.
func nsHandle(ns string) (*netlink.Handle, error) {
	h, err := netns.GetFromPath(nsPath(ns))
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("open netlink in %s: %w", ns, err)
	}
	return nh, nil
}
