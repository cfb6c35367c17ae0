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

	"github.com/nicteam/nicteam/internal/api"
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

// fakeRun is a pull of node1's eth1 as the demo makes it: a 1 ms ping from
// 1 s before the pull (at 10:00:01) to 3 s after, with lost the requests
// that went unanswered.
func fakeRun(lost []int) *lab.PullRun {
	base := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	ms := func(f float64) time.Time { return base.Add(time.Duration(f * float64(time.Millisecond))) }
	run := &lab.PullRun{
		Plan:  lab.DefaultPullPlan(),
		Start: base, Pulled: ms(1000), PullTook: 40 * time.Microsecond,
		Restored: ms(3000), RestoreTook: 35 * time.Microsecond,
		From: "c2", To: "c1",
		Ping: lab.PingResult{Transmitted: 4000, Received: 4000 - len(lost), Missing: lost},
		Sent: make([]time.Time, 4001),
	}
	for seq := 1; seq <= 4000; seq++ {
		run.Sent[seq] = ms(float64(seq - 1))
	}
	ev := func(at float64, node, kind, member, detail string) lab.NodeEvent {
		return lab.NodeEvent{Node: node, Event: api.Event{Time: ms(at), Team: "Team0", Kind: kind, Member: member, Detail: detail}}
	}
	run.Events = []lab.NodeEvent{
		ev(1000.386, "node1", api.EventBucketsMoved, "", "128 of 256 buckets moved; eth1 0, eth2 256"),
		ev(1001.782, "node1", api.EventMemberFailed, "eth1", "Active/NoFailure -> Failed/PhysicalMediaDisconnected"),
		ev(3001.202, "node1", api.EventMemberUp, "eth1", ""),
	}
	snap := func(at float64, label, mac string) lab.Snapshot {
		return lab.Snapshot{Label: label, Time: ms(at), TeamMAC: mac,
			Neighbor: lab.Neighbor{IP: "10.10.0.1", MAC: mac, State: "REACHABLE"},
			FDB: []lab.FDBEntry{
				{MAC: "02:00:00:00:01:01", Port: "node1-eth1", Static: true},
				{MAC: "02:00:00:00:01:02", Port: "node1-eth2", Static: true},
			}}
	}
	run.Snapshots = []lab.Snapshot{
		snap(995.5, "before the pull", "02:00:00:00:01:01"),
		snap(1500.25, "500ms after the pull", "02:00:00:00:01:01"),
		snap(3500, "500ms after the restore", "02:00:00:00:01:01"),
	}
	return run
}

var fakeOwners = map[string]string{"02:00:00:00:01:01": "node1 eth1", "02:00:00:00:01:02": "node1 eth2"}

func seqs(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestTimeline(t *testing.T) {
	// Lost from the request just after the pull until the restore, and
	// one stray request later.
	run := fakeRun(append(seqs(1002, 3001), 3500))
	var b bytes.Buffer
	writeTimeline(&b, buildTimeline(run, fakeOwners))
	got := b.String()
	t.Logf("\n%s", got)
	wantInOrder := []string{
		"          ms  source    what\n",
		"   -1000.000  ping      c2 → c1 starts, one request every 1ms\n",
		"      -4.500  snapshot  before the pull\n",
		"                          node1 Team0 MAC              02:00:00:00:01:01 (node1 eth1)\n",
		"                          node2's neighbour 10.10.0.1  02:00:00:00:01:01 (node1 eth1) REACHABLE\n",
		"                          switch table                 02:00:00:00:01:01 (node1 eth1) → port node1-eth1 (static)\n",
		"                                                       02:00:00:00:01:02 (node1 eth2) → port node1-eth2 (static)\n",
		"       0.000  lab       node1 eth1: cable pulled (switch port down, took 40 µs)\n",
		"       0.386  node1     Team0 BucketsMoved: 128 of 256 buckets moved; eth1 0, eth2 256\n",
		"       1.000  ping      no reply from here: seq 1002–3001 (2000 requests) lost\n",
		"       1.782  node1     Team0 MemberFailed eth1: Active/NoFailure -> Failed/PhysicalMediaDisconnected\n",
		"     500.250  snapshot  500ms after the pull\n",
		"    2000.000  lab       node1 eth1: cable plugged back in (took 35 µs)\n",
		"    2001.000  ping      replies again from seq 3002, after 2000.000 ms without\n",
		"    2001.202  node1     Team0 MemberRestored eth1\n",
		"    2499.000  ping      no reply from here: seq 3500 (1 request) lost\n",
		"    2500.000  ping      replies again from seq 3501, after 1.000 ms without\n",
		"    2500.000  snapshot  500ms after the restore\n",
		"    2999.000  ping      last request (seq 4000); 1999 of 4000 answered\n",
	}
	rest := got
	for _, w := range wantInOrder {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("timeline lacks, or has out of order, %q", w)
		}
		rest = rest[i+len(w):]
	}

	v := judge(run)
	if !v.Happened || v.Lost != 2001 || v.Sent != 4000 || v.Longest != 2000*time.Millisecond {
		t.Errorf("judge = %+v", v)
	}
	if l := v.line(); !strings.HasPrefix(l, "pings lost: 2001 of 4000 (seq 1002–3001, 3500); longest outage 2000.000 ms.\n") || !strings.Contains(l, "HAPPENED") {
		t.Errorf("verdict line %q", l)
	}
}

func TestTimelineCapsLossRows(t *testing.T) {
	var lost []int
	for i := 0; i < 20; i++ {
		lost = append(lost, 1500+10*i)
	}
	var b bytes.Buffer
	writeTimeline(&b, buildTimeline(fakeRun(lost), fakeOwners))
	if n := strings.Count(b.String(), "no reply from here"); n != maxLossRows {
		t.Errorf("%d loss rows, want %d", n, maxLossRows)
	}
	if !strings.Contains(b.String(), "… 8 more runs of lost requests, 8 requests in all") {
		t.Errorf("no summary row:\n%s", b.String())
	}
}

func TestJudgeFailover(t *testing.T) {
	// A short outage at the pull is a failover, not the seed's failure.
	v := judge(fakeRun(seqs(1001, 1030)))
	if v.Happened || v.Lost != 30 || v.Longest != 30*time.Millisecond {
		t.Errorf("judge = %+v", v)
	}
	if !strings.Contains(v.line(), "did NOT happen") {
		t.Errorf("verdict line %q", v.line())
	}
}

func TestExplain(t *testing.T) {
	keep := demoOutcome{Run: fakeRun(seqs(1002, 3001)), Owners: fakeOwners}
	keep.Run.Events = append(keep.Run.Events, lab.NodeEvent{Node: "node1", Event: api.Event{
		Time: keep.Run.Pulled.Add(14 * time.Millisecond), Kind: api.EventAnnounced, Member: "eth2"}})
	keep.Verdict = judge(keep.Run)
	auto := demoOutcome{Run: fakeRun(seqs(1002, 1010)), Owners: fakeOwners}
	moved := &auto.Run.Snapshots[1]
	moved.TeamMAC, moved.Neighbor.MAC, moved.Neighbor.State = "02:00:00:00:01:02", "02:00:00:00:01:02", "DELAY"
	auto.Run.Events = append(auto.Run.Events, lab.NodeEvent{Node: "node1", Event: api.Event{
		Time: auto.Run.Pulled.Add(19961 * time.Microsecond), Kind: api.EventMACChanged}})
	auto.Verdict = judge(auto.Run)
	got := explain(keep, auto)
	t.Logf("\n%s", got)
	for _, want := range []string{
		"node1's Team0 kept the MAC 02:00:00:00:01:01 (node1 eth1) while the cable was out.",
		"node2's neighbour entry for 10.10.0.1 still said 02:00:00:00:01:01 (node1 eth1) REACHABLE",
		"The static switch delivers that MAC only to the port of node1 eth1",
		"nicteamd did announce the MAC from eth2 (+14.000 ms)",
		"moved from 02:00:00:00:01:01 (node1 eth1) to 02:00:00:00:01:02 (node1 eth2)",
		"19.961 ms after the pull",
		"neighbour entry followed (02:00:00:00:01:02 (node1 eth2) DELAY)",
		"Traffic went on over node1's other NIC",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q", want)
		}
	}
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
