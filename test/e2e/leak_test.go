package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
)

// soakCyclesEnv sets how many cycles TestDaemonDoesNotLeak runs; `make
// soak` asks for 1000.
const soakCyclesEnv = "NICTEAM_SOAK_CYCLES"

// defaultLeakCycles keeps the test within seconds in `make test`.
const defaultLeakCycles = 15

// leakWarmup cycles run before the baseline is taken, for the Go runtime's
// heap to reach its working size.
const leakWarmup = 20

// eventLogSize is how many events nicteamd keeps (newEventLog in
// internal/daemon).
const eventLogSize = 4096

// eventCount is how many events the daemon's log holds.
func eventCount(t *testing.T, c *api.Client) int {
	t.Helper()
	n := 0
	if err := c.Events(context.Background(), false, func(api.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// leakGOGC runs the daemon under test with a small heap target, so that its
// RSS follows what it keeps rather than how much garbage it has not
// collected yet: with the default, the heap swings by a tenth of the RSS
// between two collections.
const leakGOGC = "GOGC=10"

// daemonUsage is what TestDaemonDoesNotLeak watches of nicteamd.
type daemonUsage struct {
	fds, links int   // open file descriptors; of them, BPF links
	rss        int64 // resident set, bytes
	// kinds counts fds by what they are ("socket:", "anon_inode:bpf-map"),
	// to say what leaked.
	kinds map[string]int
}

func (u daemonUsage) String() string {
	return fmt.Sprintf("%d fds (%d BPF links), RSS %.1f MiB", u.fds, u.links, float64(u.rss)/(1<<20))
}

// readUsage reads pid's fds from /proc/PID/fd, which of them are BPF links
// from their fdinfo, and its RSS from /proc/PID/status.
func readUsage(pid int) (daemonUsage, error) {
	u := daemonUsage{kinds: map[string]int{}}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return u, err
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, fd.Name()))
		info, ierr := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil || ierr != nil {
			continue // closed meanwhile
		}
		kind, _, _ := strings.Cut(target, "[")
		u.kinds[kind]++
		u.fds++
		if strings.Contains(string(info), "\nlink_type:") {
			u.links++
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return u, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			u.rss = kb << 10
		}
	}
	return u, nil
}

// settledUsage waits until the daemon's fd count has stopped changing
// (announcement sockets are closed in the background) and returns its
// usage then.
func settledUsage(t *testing.T, pid int) daemonUsage {
	t.Helper()
	var last daemonUsage
	stable := 0
	err := lab.Poll(context.Background(), 10*time.Second, 100*time.Millisecond, func(context.Context) (bool, error) {
		u, err := readUsage(pid)
		if err != nil {
			return true, err
		}
		if u.fds == last.fds && u.links == last.links {
			stable++
		} else {
			stable = 0
		}
		last = u
		return stable >= 10, nil
	})
	if err != nil {
		t.Fatalf("nicteamd's fds did not settle (last %v): %v", last, err)
	}
	return last
}

// tcxLinks returns the IDs of the tcx links on the host's interface name
// in direction attach.
func tcxLinks(t *testing.T, e *env, name string, attach ebpf.AttachType) []link.ID {
	t.Helper()
	l, err := e.b.Host.Link(name)
	if err != nil {
		t.Fatal(err)
	}
	var ids []link.ID
	err = e.b.Host.Do(func() error {
		res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: attach})
		if err != nil {
			return err
		}
		for _, p := range res.Programs {
			if id, ok := p.LinkID(); ok {
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("query tcx links on %s: %v", name, err)
	}
	return ids
}

// TestDaemonDoesNotLeak creates and removes a two-member team, and adds
// and removes a member of a team, NICTEAM_SOAK_CYCLES times each. nicteamd
// must end with the fds it had, its RSS within 10 %, and nothing of the
// teams left: no BPF link (attached, or detached but alive in the kernel),
// no pin, no interface.
func TestDaemonDoesNotLeak(t *testing.T) {
	cycles := defaultLeakCycles
	if v := os.Getenv(soakCyclesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of cycles", soakCyclesEnv, v)
		}
		cycles = n
	}
	e := newEnv(t, 3)
	if err := e.daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	e.daemonEnv = []string{leakGOGC}
	e.startDaemon()
	linksBefore := e.linkNames()
	ctx := context.Background()
	// One client for everything: the daemon's fds are what is counted,
	// and a client's idle keep-alive connection would be one of them.
	c := e.client()
	pid := e.daemon.Pid()
	var seen []link.ID // every link the daemon made, to check they are freed

	waitUp := func(what string) {
		t.Helper()
		var tm api.Team
		err := lab.Poll(ctx, 5*time.Second, 5*time.Millisecond, func(ctx context.Context) (bool, error) {
			var err error
			tm, err = c.Team(ctx, "Team0")
			return err == nil && tm.Status.String() == "Up", nil
		})
		if err != nil {
			t.Fatalf("%s: Team0 %+v, want Up", what, tm)
		}
	}
	createRemove := func(i int) {
		t.Helper()
		if _, err := c.NewTeam(ctx, api.NewTeam{Name: "Team0", Members: []string{"eth1", "eth2"}}); err != nil {
			t.Fatalf("create/remove cycle %d: new: %v", i, err)
		}
		waitUp(fmt.Sprintf("create/remove cycle %d", i))
		seen = append(seen, tcxLinks(t, e, "Team0", ebpf.AttachTCXEgress)...)
		seen = append(seen, tcxLinks(t, e, "eth1", ebpf.AttachTCXIngress)...)
		if err := c.RemoveTeam(ctx, "Team0"); err != nil {
			t.Fatalf("create/remove cycle %d: rm: %v", i, err)
		}
	}
	addRemove := func(i int) {
		t.Helper()
		if err := c.AddMember(ctx, "Team0", api.AddMember{Name: "eth3"}); err != nil {
			t.Fatalf("member cycle %d: add: %v", i, err)
		}
		waitUp(fmt.Sprintf("member cycle %d", i))
		seen = append(seen, tcxLinks(t, e, "eth3", ebpf.AttachTCXIngress)...)
		if err := c.RemoveMember(ctx, "Team0", "eth3"); err != nil {
			t.Fatalf("member cycle %d: remove: %v", i, err)
		}
	}

	for i := range leakWarmup {
		createRemove(i)
	}
	// The event log is a ring of a few thousand events that grows until
	// it is full; with enough cycles to fill it, the baseline is taken
	// once it has, so its growth is not counted as a leak.
	if cycles >= 500 {
		for i := 0; eventCount(t, c) < eventLogSize; i++ {
			createRemove(i)
		}
	}
	before := settledUsage(t, pid)
	start := time.Now()
	for i := range cycles {
		createRemove(i)
		if (i+1)%max(1, cycles/10) == 0 {
			u, _ := readUsage(pid)
			t.Logf("after %d create/remove cycles: %v", i+1, u)
		}
	}
	teamCycles := time.Since(start)
	afterTeams := settledUsage(t, pid)

	if _, err := c.NewTeam(ctx, api.NewTeam{Name: "Team0", Members: []string{"eth1", "eth2"}}); err != nil {
		t.Fatal(err)
	}
	waitUp("team for the member cycles")
	for i := range leakWarmup {
		addRemove(i)
	}
	withTeam := settledUsage(t, pid)
	start = time.Now()
	for i := range cycles {
		addRemove(i)
	}
	memberCycles := time.Since(start)
	afterMembers := settledUsage(t, pid)
	if err := c.RemoveTeam(ctx, "Team0"); err != nil {
		t.Fatal(err)
	}
	end := settledUsage(t, pid)

	t.Logf("%d create/remove cycles in %v: %v before, %v after", cycles, teamCycles.Round(time.Millisecond), before, afterTeams)
	t.Logf("%d member add/remove cycles in %v: %v before, %v after", cycles, memberCycles.Round(time.Millisecond), withTeam, afterMembers)
	t.Logf("team removed: %v", end)
	for _, step := range []struct {
		what          string
		before, after daemonUsage
	}{
		{"create/remove cycles", before, afterTeams},
		{"member add/remove cycles", withTeam, afterMembers},
		{"all cycles and the team's removal", before, end},
	} {
		// Growth is a leak. One fewer socket is not: a netlink
		// subscription the kernel ended (EAGAIN under a burst of events)
		// is made again, and the sample may fall between the two.
		if step.after.fds > step.before.fds || step.after.links > step.before.links {
			t.Errorf("%s: nicteamd went from %v to %v; fds by kind %v to %v", step.what, step.before, step.after, step.before.kinds, step.after.kinds)
		}
		if step.after.rss > step.before.rss*110/100 {
			t.Errorf("%s: nicteamd's RSS grew by more than 10%%: %v to %v", step.what, step.before, step.after)
		}
	}
	if end.links != 0 {
		t.Errorf("nicteamd holds %d BPF links with no team", end.links)
	}

	// Nothing of the teams is left on the host.
	for _, nic := range []string{"eth1", "eth2", "eth3"} {
		if ids := tcxLinks(t, e, nic, ebpf.AttachTCXIngress); len(ids) != 0 {
			t.Errorf("tcx links left on %s: %v", nic, ids)
		}
	}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(seen))) {
		l, err := link.NewFromID(id)
		if err == nil {
			l.Close()
			t.Errorf("link %d still exists: an fd or a pin holds it", id)
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("look up link %d: %v", id, err)
		}
	}
	if pins := e.pins(); len(pins) != 0 {
		t.Errorf("pins left: %v", pins)
	}
	if got := e.linkNames(); !slices.Equal(got, linksBefore) {
		t.Errorf("interfaces: %v before, %v after", linksBefore, got)
	}
}
