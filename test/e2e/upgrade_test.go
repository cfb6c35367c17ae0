package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

// TestUpgradeFromInodePinsLosesNoPing: a team pinned by an older nicteam,
// under nicteam/ns<netns inode>/, is adopted by a restarted daemon without
// a lost ping, and its pins move to the cookie-keyed directory.
func TestUpgradeFromInodePinsLosesNoPing(t *testing.T) {
	e := newEnv(t, 2)
	e.mustCLI("new", "Team0", "--members", "eth1,eth2")
	e.waitStatus("Team0", "Up")
	e.hostRun("ip", "addr", "add", "10.77.0.1/24", "dev", "Team0")
	e.ping("10.77.0.2", 3, 10*time.Millisecond) // resolve the neighbour first
	if err := e.daemon.Stop(); err != nil {
		t.Fatal(err)
	}

	// Lay the pins out as the older release did.
	ino := strings.TrimSpace(e.hostRun("stat", "-L", "-c", "%i", "/proc/self/ns/net"))
	old := filepath.Join(filepath.Dir(e.pinDir), "ns"+ino)
	t.Cleanup(func() { os.RemoveAll(old) })
	if err := os.Mkdir(old, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(e.pinDir, "Team0"), filepath.Join(old, "Team0")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.pinDir); err != nil {
		t.Fatal(err)
	}

	result := e.pingInBackground("10.77.0.2", time.Millisecond, 2000)
	time.Sleep(500 * time.Millisecond)
	e.startDaemon()
	if got := <-result; got != "2000/2000" {
		t.Errorf("pings across the upgrade: %s received, want 2000/2000", got)
	}
	var events []api.Event
	e.client().Events(context.Background(), false, func(ev api.Event) error { events = append(events, ev); return nil })
	if len(events) == 0 || events[0].Kind != api.EventTeamAdopted {
		t.Errorf("the upgraded daemon should adopt the team, events: %+v", events)
	}
	e.waitStatus("Team0", "Up")
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old pin directory %s after the upgrade: %v", old, err)
	}
	if _, err := os.Stat(filepath.Join(e.pinDir, "Team0", "egress")); err != nil {
		t.Errorf("team not pinned in %s after the upgrade: %v", e.pinDir, err)
	}
}
