// Package reconcile decides, from what nicteamd intends (its persisted
// teams) and what the host has (links and pinned datapaths), the ordered
// steps that make the host match the intent. It is pure: the daemon
// observes the host, asks for a plan and carries it out one step at a time,
// and because every change is written to the intent before the host is
// touched, a daemon killed between two steps plans the rest on restart.
package reconcile

import (
	"fmt"
	"slices"
	"sort"
)

// Team is one team as intended.
type Team struct {
	Name    string
	Members []string // declared members, present on the host or not
	// Captured lists the interfaces whose settings from before they joined
	// are saved in the intent. A captured interface that is not a member
	// (any more) is one to detach and restore: a removal half done.
	Captured []string
	// Removing marks a team being removed: everything it made goes, and
	// then its intent.
	Removing bool
}

// Host is what the host has, for the teams the plan is asked about.
type Host struct {
	// Links are the interfaces present, by name: team NICs, members and
	// captured interfaces. Absent names are missing.
	Links map[string]Link
	// Datapaths are the teams' pinned datapaths, by team name; absent when
	// nothing is pinned.
	Datapaths map[string]Datapath
}

// Link is one interface on the host.
type Link struct {
	Index int
	// Ours marks an interface nicteam made (its alias says so); only such
	// an interface is ever deleted.
	Ours bool
}

// Datapath is what a team's pin directory holds.
type Datapath struct {
	// Complete is true when the datapath opens as a whole; a Create killed
	// midway leaves an incomplete one.
	Complete bool
	// TeamIndex is the ifindex the egress program is attached to.
	TeamIndex int
	// Attached lists the ifindexes whose ingress link is attached.
	Attached []int
}

// Kind is what a step does.
type Kind int

const (
	// RemovePins detaches and removes whatever is pinned for the team.
	RemovePins Kind = iota
	// CreateNIC creates the team NIC and its hidden carrier peer.
	CreateNIC
	// CreateDatapath loads, pins and attaches the team's programs.
	CreateDatapath
	// Capture saves a member's settings into the intent, and persists it,
	// before Join changes them.
	Capture
	// Join sets a captured member up at the team's MTU and attaches it.
	Join
	// Detach detaches the ingress link of an interface that is no member.
	Detach
	// Restore puts back a former member's captured settings and drops them
	// from the intent.
	Restore
	// DeleteNIC deletes the team NIC (and with it its peer).
	DeleteNIC
	// Forget drops a removed team from the intent.
	Forget
)

// Driver observes and changes the host (and the intent) for the daemon;
// tests drive an in-memory host through it.
type Driver interface {
	// Observe reports what the host has for t.
	Observe(t Team) (Host, error)
	// Do carries out one step.
	Do(s Step) error
}

// Run plans t against the host and carries the plan out, stopping at the
// first step that fails. What it leaves undone is planned again by the
// next Run, after a restart too.
func Run(t Team, d Driver) error {
	h, err := d.Observe(t)
	if err != nil {
		return err
	}
	steps, err := Plan(t, h)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if err := d.Do(s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

var kinds = []string{"remove pins", "create team NIC", "create datapath", "capture", "join", "detach", "restore", "delete team NIC", "forget"}

func (k Kind) String() string { return kinds[k] }

// Step is one change to the host or the intent.
type Step struct {
	Kind   Kind
	Team   string
	Member string // Capture, Join, Restore: the interface
	Index  int    // Detach: the ifindex
}

func (s Step) String() string {
	switch s.Kind {
	case Capture, Join, Restore:
		return fmt.Sprintf("%s %s: %s", s.Team, s.Kind, s.Member)
	case Detach:
		return fmt.Sprintf("%s %s: ifindex %d", s.Team, s.Kind, s.Index)
	}
	return fmt.Sprintf("%s %s", s.Team, s.Kind)
}

// Plan returns the steps that bring the host to t. An empty plan means the
// host already matches. Members absent from the host need nothing: they
// join when they appear. The one thing no step can fix is an interface of
// someone else's wearing the team NIC's name.
func Plan(t Team, h Host) ([]Step, error) {
	if t.Removing {
		return planRemoval(t, h), nil
	}
	if nic, ok := h.Links[t.Name]; ok && !nic.Ours {
		return nil, fmt.Errorf("team %s: an interface named %s exists that nicteam did not make; rename or delete it", t.Name, t.Name)
	}
	var steps []Step
	add := func(k Kind, member string, index int) {
		steps = append(steps, Step{Kind: k, Team: t.Name, Member: member, Index: index})
	}
	nic, haveNIC := h.Links[t.Name]
	dp, haveDP := h.Datapaths[t.Name]
	fresh := false // the datapath is (re)created: nothing is attached
	switch {
	case !haveNIC:
		if haveDP {
			add(RemovePins, "", 0) // pins of an older team NIC
		}
		add(CreateNIC, "", 0)
		add(CreateDatapath, "", 0)
		fresh = true
	case !haveDP:
		add(CreateDatapath, "", 0)
		fresh = true
	case !dp.Complete || dp.TeamIndex != nic.Index:
		add(RemovePins, "", 0)
		add(CreateDatapath, "", 0)
		fresh = true
	}
	attached := map[int]bool{}
	if !fresh {
		for _, i := range dp.Attached {
			attached[i] = true
		}
	}
	members := map[int]bool{}
	for _, m := range t.Members {
		l, ok := h.Links[m]
		if !ok {
			continue
		}
		members[l.Index] = true
		if !slices.Contains(t.Captured, m) {
			add(Capture, m, 0)
		}
		if !attached[l.Index] {
			add(Join, m, 0)
		}
	}
	var stray []int
	for i := range attached {
		if !members[i] {
			stray = append(stray, i)
		}
	}
	sort.Ints(stray)
	for _, i := range stray {
		add(Detach, "", i)
	}
	for _, m := range t.Captured {
		if !slices.Contains(t.Members, m) {
			add(Restore, m, 0)
		}
	}
	return steps, nil
}

// planRemoval tears down what a team made, members first so none is left
// with our program and the team's MTU, then the intent.
func planRemoval(t Team, h Host) []Step {
	var steps []Step
	add := func(k Kind, member string, index int) {
		steps = append(steps, Step{Kind: k, Team: t.Name, Member: member, Index: index})
	}
	if dp, ok := h.Datapaths[t.Name]; ok {
		for _, i := range dp.Attached {
			add(Detach, "", i)
		}
	}
	for _, m := range t.Captured {
		add(Restore, m, 0)
	}
	if _, ok := h.Datapaths[t.Name]; ok {
		add(RemovePins, "", 0)
	}
	if l, ok := h.Links[t.Name]; ok && l.Ours {
		add(DeleteNIC, "", 0)
	}
	add(Forget, "", 0)
	return steps
}

// Orphans names what nicteam made that no intended team declares: team
// NICs (links marked ours that are not a team's) and pinned datapaths.
// Such leftovers come from a deleted state file or a daemon killed before
// its intent was written; the daemon lists them and removes them on request.
func Orphans(teams []string, nics []string, datapaths []string) []string {
	var out []string
	for _, n := range append(slices.Clone(nics), datapaths...) {
		if !slices.Contains(teams, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
