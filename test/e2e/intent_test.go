package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/nicteam/nicteam/internal/api"
)

// mountTinyStateDir moves the daemon's state directory onto a tmpfs of its
// own, small enough to fill, with the daemon stopped meanwhile. The mount is
// undone in t.Cleanup.
func (e *env) mountTinyStateDir() {
	e.t.Helper()
	if err := e.daemon.Stop(); err != nil {
		e.t.Fatal(err)
	}
	saved, err := os.ReadFile(filepath.Join(e.state, "teams.json"))
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "nicteam-test", e.state).CombinedOutput(); err != nil {
		e.t.Skipf("cannot mount a tmpfs for the state directory: %v: %s", err, out)
	}
	e.t.Cleanup(func() { exec.Command("umount", "-l", e.state).Run() })
	if saved != nil {
		if err := os.WriteFile(filepath.Join(e.state, "teams.json"), saved, 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
	e.startDaemon()
}

// fillStateDir fills the state directory's filesystem; the returned func
// frees it.
func (e *env) fillStateDir() func() {
	e.t.Helper()
	junk := filepath.Join(e.state, "junk")
	exec.Command("dd", "if=/dev/zero", "of="+junk, "bs=4k").Run() // ends with ENOSPC
	return func() { os.Remove(junk) }
}

// TestFullStateDirChangesNothing checks that a change whose intent cannot
// be saved is refused with the reason and leaves the host as it was, and
// that the team keeps forwarding and comes back whole after a restart.
func TestFullStateDirChangesNothing(t *testing.T) {
	e := newEnv(t, 4)
	e.mountTinyStateDir()
	e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--lb", "transport-ports")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	e.ping("10.77.0.2", 3, 10*time.Millisecond)

	free := e.fillStateDir()
	nics := e.snapshot("eth1", "eth2", "eth3", "eth4")
	links := e.linkNames()
	pins := e.pins()
	teamBefore := e.mustCLI("get", "Team0", "-o", "json")

	for _, args := range [][]string{
		{"new", "Team1", "--members", "eth3,eth4"},
		{"member", "add", "Team0", "eth3"},
		{"member", "remove", "Team0", "eth2"},
		{"rm", "Team0"},
	} {
		_, stderr, code := e.cli(args...)
		if code == 0 {
			t.Errorf("nicteam %s succeeded with a full state directory", strings.Join(args, " "))
			continue
		}
		if !strings.Contains(stderr, "nothing changed") || !strings.Contains(stderr, "no space left") {
			t.Errorf("nicteam %s: error %q should say nothing changed and why", strings.Join(args, " "), stderr)
		}
	}
	if got := e.snapshot("eth1", "eth2", "eth3", "eth4"); !maps.Equal(got, nics) {
		t.Errorf("NICs changed by refused changes:\n got %+v\nwant %+v", got, nics)
	}
	if got := e.linkNames(); !slices.Equal(got, links) {
		t.Errorf("links changed by refused changes:\n got %v\nwant %v", got, links)
	}
	if got := e.pins(); !slices.Equal(got, pins) {
		t.Errorf("pins changed by refused changes:\n got %v\nwant %v", got, pins)
	}
	if got := e.mustCLI("get", "Team0", "-o", "json"); got != teamBefore {
		t.Errorf("Team0 changed by refused changes:\n%s\nbefore:\n%s", got, teamBefore)
	}
	if r := e.ping("10.77.0.2", 200, time.Millisecond); r.Received != r.Transmitted {
		t.Errorf("Team0 with a full state dir: %d of %d pings answered", r.Received, r.Transmitted)
	}

	// Space back, the daemon killed and started: the team is as declared.
	free()
	if err := e.daemon.Kill(); err != nil {
		t.Fatal(err)
	}
	e.startDaemon()
	e.waitStatus("Team0", "Up")
	if r := e.ping("10.77.0.2", 200, time.Millisecond); r.Received != r.Transmitted {
		t.Errorf("Team0 after the restart: %d of %d pings answered", r.Received, r.Transmitted)
	}
	e.mustCLI("rm", "Team0")
	if got := e.snapshot("eth1", "eth2"); got["eth1"] != nics["eth1"] || got["eth2"] != nics["eth2"] {
		t.Errorf("members not restored after rm: %+v, want %+v", got, nics)
	}
}

// TestRestartAttachesWhatIsMissing detaches a member's ingress program
// while the daemon is down, as a crash between the bucket write and the
// attach would leave it: the restarted daemon must attach it again, not
// adopt a member that holds buckets but receives nothing.
func TestRestartAttachesWhatIsMissing(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2", "--lb", "transport-ports")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	e.ping("10.77.0.2", 3, 10*time.Millisecond)
	if err := e.daemon.Kill(); err != nil {
		t.Fatal(err)
	}
	l, err := e.b.Host.Link("eth2")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := e.b.Host.PinDir()
	if err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(dir, "Team0", fmt.Sprintf("member-%d", l.Attrs().Index))
	ml, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		t.Fatalf("eth2's pinned link: %v", err)
	}
	if err := ml.Detach(); err != nil {
		t.Fatal(err)
	}
	ml.Close()
	os.Remove(pin)
	// Flows hashed to eth2 get no answers now: the loss the test guards
	// against, with the daemon down.
	e.startDaemon()
	e.waitStatus("Team0", "Up")
	if _, err := os.Stat(pin); err != nil {
		t.Errorf("eth2 not attached again after the restart: %v", err)
	}
	// With eth1's cable pulled every frame crosses eth2.
	if err := e.b.Fail(e.b.Host, "eth1"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("Team0", "Degraded")
	if r := e.ping("10.77.0.2", 100, 2*time.Millisecond); r.Received < r.Transmitted-2 {
		t.Errorf("ping through eth2 after the restart: %d of %d answered", r.Received, r.Transmitted)
	}
}

// TestOrphanListedAndRemoved deletes the state file under a running team:
// the restarted daemon lists what it finds as orphaned, and rm removes it.
func TestOrphanListedAndRemoved(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	e.waitStatus("Team0", "Up")
	if err := e.daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(e.state, "teams.json")); err != nil {
		t.Fatal(err)
	}
	e.startDaemon()
	var ts []api.Team
	e.getJSON(&ts, "get")
	if len(ts) != 1 || ts[0].Name != "Team0" || !ts[0].Orphaned {
		t.Fatalf("get after the state file was deleted: %+v, want Team0 orphaned", ts)
	}
	if out := e.mustCLI("get"); !strings.Contains(out, "Orphaned") {
		t.Errorf("get does not say Team0 is orphaned:\n%s", out)
	}
	e.mustCLI("rm", "Team0")
	if slices.Contains(e.linkNames(), "Team0") {
		t.Error("Team0 left after rm of the orphan")
	}
	if p := e.pins(); len(p) > 0 {
		t.Errorf("pins left after rm of the orphan: %v", p)
	}
	if _, stderr, code := e.cli("rm", "Team0"); code == 0 || !strings.Contains(stderr, "no team") {
		t.Errorf("second rm: exit %d, %q", code, stderr)
	}
}

// TestRemovalFinishedAfterRestart starts a daemon on a state file that
// marks a team's removal begun, as a daemon killed right after writing that
// mark leaves it: the removal is finished and the members get back their
// settings.
func TestRemovalFinishedAfterRestart(t *testing.T) {
	e := newEnv(t, 2)
	before := e.snapshot("eth1", "eth2")
	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	e.waitStatus("Team0", "Up")
	if err := e.daemon.Kill(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.state, "teams.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	st["teams"].([]any)[0].(map[string]any)["removing"] = true
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.startDaemon()
	if ts, err := e.client().Teams(context.Background()); err != nil || len(ts) != 0 {
		t.Errorf("teams after the removal was finished: %+v %v", ts, err)
	}
	if slices.Contains(e.linkNames(), "Team0") {
		t.Error("Team0 still there")
	}
	if p := e.pins(); len(p) > 0 {
		t.Errorf("pins left: %v", p)
	}
	if got := e.snapshot("eth1", "eth2"); got["eth1"] != before["eth1"] || got["eth2"] != before["eth2"] {
		t.Errorf("members not restored: %+v, want %+v", got, before)
	}
}
