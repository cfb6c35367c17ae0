package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/lab"
)

func TestParseLabUp(t *testing.T) {
	o, err := parseLabUp(nil)
	if err != nil || o != (labUpOptions{Profile: lab.ProfileLearning}) {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	o, err = parseLabUp([]string{"--switch", "static", "--mac-policy", "Keep", "--ipv6"})
	if err != nil || o != (labUpOptions{Profile: lab.ProfileStatic, MACPolicy: "keep", IPv6: true}) {
		t.Errorf("all flags: %+v, %v", o, err)
	}
	var ue usageError
	for _, args := range [][]string{
		{"--switch", "vswitch"},
		{"--mac-policy", "sticky"},
		{"extra"},
		{"--bogus"},
	} {
		if _, err := parseLabUp(args); !errors.As(err, &ue) {
			t.Errorf("parseLabUp(%q) = %v, want a usage error", args, err)
		}
	}
	if _, err := parseLabUp([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}

func TestParseNodeNIC(t *testing.T) {
	if n, nic, err := parseNodeNIC([]string{"node2", "eth1"}); err != nil || n != 2 || nic != "eth1" {
		t.Errorf("node2 eth1: %d %q %v", n, nic, err)
	}
	for _, pos := range [][]string{{"node3", "eth1"}, {"node1", "eth3"}, {"c1", "eth0"}} {
		if _, _, err := parseNodeNIC(pos); err == nil {
			t.Errorf("parseNodeNIC(%q) accepted", pos)
		}
	}
}

// run runs nicteam with args and returns stdout, stderr and the exit code.
func runCLI(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestLabHelp(t *testing.T) {
	out, _, code := runCLI("lab", "--help")
	if code != 0 || !strings.Contains(out, "  up [--switch learning|static]") {
		t.Errorf("lab --help: exit %d\n%s", code, out)
	}
	for sub, help := range labHelp {
		out, errb, code := runCLI("lab", sub, "--help")
		if code != 0 || out != help {
			t.Errorf("lab %s --help: exit %d, stderr %q, printed\n%s", sub, code, errb, out)
		}
	}
	for _, args := range [][]string{{"lab"}, {"lab", "bogus"}, {"lab", "fail", "node1"}, {"lab", "ping", "--count", "0"}} {
		if _, _, code := runCLI(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if out, _, _ := runCLI("--help"); !strings.Contains(out, "lab demo") {
		t.Errorf("usage does not mention lab demo:\n%s", out)
	}
}

func TestLabNotUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the lab commands refuse to run without it")
	}
	defer setLabDir(t.TempDir())()
	for _, args := range [][]string{{"lab", "status"}, {"lab", "down"}, {"lab", "fail", "node1", "eth1"}} {
		_, errb, code := runCLI(args...)
		if code != 1 || !strings.Contains(errb, "no lab is up") {
			t.Errorf("%q without a lab: exit %d, %q", args, code, errb)
		}
	}
}

var (
	buildOnce sync.Once
	daemonDir string
	buildErr  error
)

// daemonInPath builds nicteamd once for the package's tests and puts it in
// $PATH for the test: the test binary has no nicteamd next to it.
func daemonInPath(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		daemonDir, buildErr = os.MkdirTemp("", "nicteam-cli-bin-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", daemonDir+"/", "github.com/nicteam/nicteam/cmd/nicteamd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build nicteamd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	t.Setenv("PATH", daemonDir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if daemonDir != "" {
		os.RemoveAll(daemonDir)
	}
	os.Exit(code)
}

func setLabDir(dir string) (restore func()) {
	old := labDir
	labDir = lab.RunDir(dir)
	return func() { labDir = old }
}

// TestLabUpDown drives lab up, status, fail, restore, ping and down as a
// user would, each a separate command sharing only the state file, and
// checks that down leaves nothing behind.
func TestLabUpDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and runs nicteamd")
	}
	daemonInPath(t)
	defer setLabDir(t.TempDir())()

	mustRun := func(args ...string) string {
		t.Helper()
		out, errb, code := runCLI(args...)
		if code != 0 {
			t.Fatalf("nicteam %s: exit %d: %s\n%s", strings.Join(args, " "), code, errb, out)
		}
		return out
	}
	out := mustRun("lab", "up", "--switch", "static", "--mac-policy", "follow")
	st, err := labDir.Read()
	if err != nil {
		t.Fatal(err)
	}
	prefix := st.Seed.Prefix
	t.Cleanup(func() {
		// Whatever happened, leave nothing.
		if _, err := os.Stat(labDir.StatePath()); err == nil {
			runCLI("lab", "down")
		}
		if left, _ := filepath.Glob("/run/netns/" + prefix + "-*"); len(left) > 0 {
			t.Errorf("namespaces left: %v", left)
		}
		for _, n := range st.Seed.Nodes {
			if _, err := os.Stat(n.PinDir); err == nil {
				t.Errorf("pins left: %s", n.PinDir)
			}
			if syscall.Kill(n.DaemonPID, 0) == nil {
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.DaemonPID)); strings.Contains(string(b), n.Socket) {
					t.Errorf("nicteamd of %s (pid %d) still runs", n.Name, n.DaemonPID)
				}
			}
		}
	})
	if st.Building || len(st.Seed.Nodes) != 2 || !st.Seed.Options.Detached {
		t.Fatalf("state after up: %+v", st)
	}
	for _, want := range []string{"lab " + prefix + " is up", "Team0  Up", "node1-eth1  static  node1 eth1"} {
		if !strings.Contains(out, want) {
			t.Errorf("lab up output lacks %q:\n%s", want, out)
		}
	}
	if _, errb, code := runCLI("lab", "up"); code != 1 || !strings.Contains(errb, "already up") {
		t.Errorf("second lab up: exit %d, %q", code, errb)
	}

	mustRun("lab", "fail", "node2", "eth2")
	out = mustRun("lab", "status")
	if !strings.Contains(out, "Degraded") || !strings.Contains(out, "PhysicalMediaDisconnected") {
		t.Errorf("status after fail lacks Degraded and PhysicalMediaDisconnected:\n%s", out)
	}
	mustRun("lab", "restore", "node2", "eth2")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(mustRun("lab", "status"), "Team0  Up      MAC") || strings.Contains(mustRun("lab", "status"), "Degraded") {
		if time.Now().After(deadline) {
			t.Fatalf("team not Up after restore:\n%s", mustRun("lab", "status"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out = mustRun("lab", "ping", "--count", "20", "--interval", "2ms", "--from", "node1"); !strings.Contains(out, "pings lost: 0 of 20") {
		t.Errorf("lab ping:\n%s", out)
	}
	if out = mustRun("lab", "down"); !strings.Contains(out, "lab "+prefix+" is down") {
		t.Errorf("lab down: %s", out)
	}
	if _, err := os.Stat(labDir.StatePath()); err == nil {
		t.Error("state file left after down")
	}
	if _, err := os.Stat(st.Seed.Options.StateRoot); err == nil {
		t.Error("state directory left after down")
	}
}

// TestLabDemo runs what make demo runs and checks its mechanics: both
// scenarios ran, the timeline has the pull and the daemons' events, a
// verdict was given, and nothing is left behind.
func TestLabDemo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and runs nicteamd")
	}
	if testing.Short() {
		t.Skip("takes about 12 s")
	}
	daemonInPath(t)
	before, _ := filepath.Glob("/run/netns/nd*-*")
	start := time.Now()
	out, errb, code := runCLI("lab", "demo")
	t.Logf("lab demo took %v", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("lab demo: exit %d: %s\n%s", code, errb, out)
	}
	for _, want := range []string{
		"=== Scenario 1 of 2: static switch, MAC policy auto (the default)",
		"=== Scenario 2 of 2: static switch, MAC policy keep",
		"node1# nicteam get Team0",
		"node1# nicteam adapters Team0 eth1 eth2",
		"       0.000  lab       node1 eth1: cable pulled",
		"node1     Team0 MemberFailed eth1",
		"node1     Team0 MemberRestored eth1",
		"snapshot  before the pull",
		"snapshot  500ms after the pull",
		"snapshot  500ms after the restore",
		"Why c2 lost c1 with MAC policy keep:",
		"What auto did differently:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if n := strings.Count(out, "\npings lost: "); n != 2 {
		t.Errorf("%d verdicts, want 2", n)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
	after, _ := filepath.Glob("/run/netns/nd*-*")
	for _, ns := range after {
		if !slices.Contains(before, ns) {
			t.Errorf("namespace %s left by the demo", ns)
		}
	}
}
