package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
)

// settings are what joining changes on an interface.
type settings struct {
	MTU     int
	Up      bool
	Promisc bool
}

type fakeLink struct {
	Index int
	Ours  bool
	settings
}

type fakeDatapath struct {
	Complete  bool
	TeamIndex int
	Attached  map[int]bool
}

// intended is one team's persisted intent, as the daemon's state file
// holds it.
type intended struct {
	Members  []string
	Saved    map[string]settings
	Removing bool
	MTU      int
}

// world is an in-memory host and state directory. Steps change it as the
// daemon's driver changes the real ones.
type world struct {
	links  map[string]fakeLink
	pins   map[string]fakeDatapath
	intent map[string]intended // what the state file says
	next   int                 // the next ifindex the kernel hands out

	// crashAfter stops the world (the daemon is killed) once that many
	// steps ran; torn makes the step that crashes leave its work half done
	// where a step can (a Create killed midway leaves incomplete pins).
	crashAfter int
	torn       bool
	ran        int
}

var errCrash = errors.New("killed")

func newWorld() *world {
	w := &world{links: map[string]fakeLink{}, pins: map[string]fakeDatapath{}, intent: map[string]intended{}, next: 10, crashAfter: -1}
	for _, n := range []string{"eth1", "eth2", "eth3"} {
		w.addLink(n, false, settings{MTU: 1500})
	}
	return w
}

func (w *world) addLink(name string, ours bool, s settings) {
	w.next++
	w.links[name] = fakeLink{Index: w.next, Ours: ours, settings: s}
}

func (w *world) team(name string) Team {
	in := w.intent[name]
	return Team{Name: name, Members: in.Members, Captured: slices.Sorted(maps.Keys(in.Saved)), Removing: in.Removing}
}

func (w *world) Observe(t Team) (Host, error) {
	h := Host{Links: map[string]Link{}, Datapaths: map[string]Datapath{}}
	for n, l := range w.links {
		h.Links[n] = Link{Index: l.Index, Ours: l.Ours}
	}
	for n, dp := range w.pins {
		alive := []int{}
		for i := range dp.Attached {
			for _, l := range w.links {
				if l.Index == i {
					alive = append(alive, i) // a deleted link's attachment is gone
				}
			}
		}
		slices.Sort(alive)
		h.Datapaths[n] = Datapath{Complete: dp.Complete, TeamIndex: dp.TeamIndex, Attached: alive}
	}
	return h, nil
}

func (w *world) Do(s Step) error {
	if w.crashAfter >= 0 && w.ran >= w.crashAfter {
		return errCrash
	}
	w.ran++
	tearing := w.torn && w.crashAfter >= 0 && w.ran == w.crashAfter
	in := w.intent[s.Team]
	switch s.Kind {
	case RemovePins:
		delete(w.pins, s.Team)
	case CreateNIC:
		w.addLink(s.Team, true, settings{MTU: in.MTU, Up: true})
	case CreateDatapath:
		w.pins[s.Team] = fakeDatapath{Complete: !tearing, TeamIndex: w.links[s.Team].Index, Attached: map[int]bool{}}
	case Capture:
		in.Saved = maps.Clone(in.Saved)
		if in.Saved == nil {
			in.Saved = map[string]settings{}
		}
		in.Saved[s.Member] = w.links[s.Member].settings
		w.intent[s.Team] = in
	case Join:
		// Torn: set up at the team's MTU, killed before the attach.
		l := w.links[s.Member]
		l.MTU, l.Up = in.MTU, true
		w.links[s.Member] = l
		if !tearing {
			w.pins[s.Team].Attached[l.Index] = true
		}
	case Detach:
		delete(w.pins[s.Team].Attached, s.Index)
	case Restore:
		l := w.links[s.Member]
		l.settings = in.Saved[s.Member]
		w.links[s.Member] = l
		in.Saved = maps.Clone(in.Saved)
		delete(in.Saved, s.Member)
		w.intent[s.Team] = in
	case DeleteNIC:
		delete(w.links, s.Team)
	case Forget:
		delete(w.intent, s.Team)
	default:
		return fmt.Errorf("unknown step %v", s)
	}
	return nil
}

// snapshot is the world as a comparable value, ifindexes left out (a
// rebuilt team NIC gets a new one).
func (w *world) snapshot() string {
	type link struct {
		Ours bool
		settings
	}
	links := map[string]link{}
	for n, l := range w.links {
		links[n] = link{l.Ours, l.settings}
	}
	pins := map[string][]string{}
	for n, dp := range w.pins {
		var names []string
		for i := range dp.Attached {
			for ln, l := range w.links {
				if l.Index == i {
					names = append(names, ln)
				}
			}
		}
		slices.Sort(names)
		pins[n] = append(names, fmt.Sprintf("complete=%v nic=%v", dp.Complete, dp.TeamIndex == w.links[n].Index))
	}
	return fmt.Sprintf("links %v\npins %v\nintent %v", links, pins, w.intent)
}

// change is an operation as the daemon makes it: the intent first, then
// the host, by Run.
type change struct {
	name   string
	before func(w *world) // the state the change starts from
	intent func(w *world) // the write-ahead change of the intent
}

var changes = []change{
	{
		name:   "create",
		before: func(w *world) {},
		intent: func(w *world) { w.intent["Team0"] = intended{Members: []string{"eth1", "eth2"}, MTU: 9000} },
	},
	{
		name:   "remove",
		before: created,
		intent: func(w *world) { in := w.intent["Team0"]; in.Removing = true; w.intent["Team0"] = in },
	},
	{
		name:   "add member",
		before: created,
		intent: func(w *world) {
			in := w.intent["Team0"]
			in.Members = append(slices.Clone(in.Members), "eth3")
			w.intent["Team0"] = in
		},
	},
	{
		name:   "remove member",
		before: created,
		intent: func(w *world) { in := w.intent["Team0"]; in.Members = []string{"eth2"}; w.intent["Team0"] = in },
	},
	{
		name: "rebuild after the team NIC was deleted",
		before: func(w *world) {
			created(w)
			delete(w.links, "Team0")
		},
		intent: func(w *world) {},
	},
}

// created brings the world to a built Team0 of eth1 and eth2.
func created(w *world) {
	w.intent["Team0"] = intended{Members: []string{"eth1", "eth2"}, MTU: 9000}
	if err := Run(w.team("Team0"), w); err != nil {
		panic(err)
	}
}

// TestCrashAfterEveryStep kills the daemon after each host step of each
// change in turn (and, torn, in the middle of that step), restarts it,
// and checks the host converges to the intent: the same world as the
// change that was never interrupted, and nothing left to do.
func TestCrashAfterEveryStep(t *testing.T) {
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			clean := newWorld()
			c.before(clean)
			clean.ran = 0
			c.intent(clean)
			if err := Run(clean.team("Team0"), clean); err != nil {
				t.Fatal(err)
			}
			want := clean.snapshot()
			steps := clean.ran
			for crash := 0; crash <= steps; crash++ {
				for _, torn := range []bool{false, true} {
					w := newWorld()
					c.before(w)
					w.ran = 0
					c.intent(w)
					w.crashAfter, w.torn = crash, torn
					err := Run(w.team("Team0"), w)
					if crash < steps && !errors.Is(err, errCrash) {
						t.Fatalf("crash after %d of %d steps: Run returned %v", crash, steps, err)
					}
					// The restart: a new daemon reads the intent, observes
					// the host and finishes what the intent still names.
					w.crashAfter, w.torn = -1, false
					if _, ok := w.intent["Team0"]; ok {
						if err := Run(w.team("Team0"), w); err != nil {
							t.Fatalf("crash after %d: restart: %v", crash, err)
						}
					}
					if got := w.snapshot(); got != want {
						t.Errorf("crash after %d (torn %v):\n got %s\nwant %s", crash, torn, got, want)
					}
					assertSettled(t, w)
				}
			}
		})
	}
}

// assertSettled checks that a second Run has nothing to do.
func assertSettled(t *testing.T, w *world) {
	t.Helper()
	if _, ok := w.intent["Team0"]; !ok {
		return // removed: the snapshot already shows nothing is left
	}
	h, _ := w.Observe(w.team("Team0"))
	steps, err := Plan(w.team("Team0"), h)
	if err != nil || len(steps) > 0 {
		t.Errorf("not settled: %v %v", steps, err)
	}
}

func TestRemovalRestoresMembers(t *testing.T) {
	w := newWorld()
	created(w)
	if l := w.links["eth1"]; l.MTU != 9000 || !l.Up {
		t.Fatalf("eth1 not joined: %+v", l)
	}
	in := w.intent["Team0"]
	in.Removing = true
	w.intent["Team0"] = in
	if err := Run(w.team("Team0"), w); err != nil {
		t.Fatal(err)
	}
	want := newWorld()
	if got, want := w.snapshot(), want.snapshot(); got != want {
		t.Errorf("after removal:\n got %s\nwant %s", got, want)
	}
}

func TestAdoptionAttachesWhatIsMissing(t *testing.T) {
	// A restart finds eth2 with buckets but no ingress program (the issue's
	// 85% loss): the plan attaches it and touches nothing else.
	w := newWorld()
	created(w)
	delete(w.pins["Team0"].Attached, w.links["eth2"].Index)
	h, _ := w.Observe(w.team("Team0"))
	steps, err := Plan(w.team("Team0"), h)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Step{{Kind: Join, Team: "Team0", Member: "eth2"}}; !reflect.DeepEqual(steps, want) {
		t.Errorf("plan %v, want %v", steps, want)
	}
}

func TestForeignInterfaceWithTheTeamsName(t *testing.T) {
	w := newWorld()
	w.addLink("Team0", false, settings{MTU: 1500})
	w.intent["Team0"] = intended{Members: []string{"eth1"}}
	if err := Run(w.team("Team0"), w); err == nil {
		t.Fatal("a foreign Team0 was taken over")
	}
	if w.ran != 0 {
		t.Errorf("%d steps ran", w.ran)
	}
}

func TestOrphans(t *testing.T) {
	got := Orphans([]string{"Team0"}, []string{"Team0", "Team1"}, []string{"Team1", "Team2", "Team0"})
	if want := []string{"Team1", "Team2"}; !slices.Equal(got, want) {
		t.Errorf("orphans %v, want %v", got, want)
	}
	// An orphan is removed like a team being removed, with nothing to
	// restore: its pins and its NIC go.
	w := newWorld()
	created(w)
	delete(w.intent, "Team0")
	if err := Run(Team{Name: "Team0", Removing: true}, w); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.links["Team0"]; ok {
		t.Error("orphan NIC left")
	}
	if len(w.pins) > 0 {
		t.Error("orphan pins left")
	}
}
