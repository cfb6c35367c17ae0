// Package e2e runs the real nicteamd and nicteam binaries against real eBPF
// programs in network namespaces. It needs root; without it every test
// skips with the reason.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
)

// bin holds the binaries built once for the whole package.
var bin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipping: needs root (network namespaces, eBPF)")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "nicteam-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/nicteam/nicteam/cmd/...").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build binaries: %v\n%s", err, out)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and loads eBPF programs")
	}
}

// env is one test's world: a Basic lab topology and a daemon in its host.
type env struct {
	t      *testing.T
	b      *lab.Basic
	socket string
	state  string
	pinDir string // where the daemon pins its teams
	daemon *lab.Proc
	// daemonEnv is added to the daemon's environment ("KEY=value").
	daemonEnv []string
}

// newEnv builds a switch, a host with nics NICs and a peer, and starts
// nicteamd in the host's namespace. Everything is undone in t.Cleanup:
// the daemon's teams and pins first (newHostEnv), then the namespaces.
func newEnv(t *testing.T, nics int) *env {
	needRoot(t)
	b, err := lab.NewBasic(lab.UniquePrefix("e"), nics)
	if err != nil {
		t.Fatalf("build lab: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	e := newHostEnv(t, b.Lab, b.Host)
	e.b = b
	return e
}

// newHostEnv starts nicteamd on h and returns an env for it; the daemon's
// teams are removed and it is stopped in t.Cleanup, before the lab closes
// (cleanups run last registered first).
func newHostEnv(t *testing.T, l *lab.Lab, h *lab.Host) *env {
	dir := t.TempDir()
	e := &env{t: t, b: &lab.Basic{Lab: l, Host: h}, socket: filepath.Join(dir, "nicteamd.sock"), state: filepath.Join(dir, "state")}
	var err error
	if e.pinDir, err = h.PinDir(); err != nil {
		t.Fatal(err)
	}
	e.startDaemon()
	t.Cleanup(func() {
		if ts, err := e.client().Teams(context.Background()); err == nil {
			for _, tm := range ts {
				e.client().RemoveTeam(context.Background(), tm.Name)
			}
		}
		e.daemon.Stop()
		if t.Failed() {
			t.Logf("nicteamd on %s log:\n%s", h.Name, e.daemon.Output())
		}
		os.RemoveAll(e.pinDir)
	})
	return e
}

func (e *env) startDaemon() {
	e.t.Helper()
	p, err := e.b.Host.StartEnv(e.daemonEnv, filepath.Join(bin, "nicteamd"), "--socket", e.socket, "--state-dir", e.state)
	if err != nil {
		e.t.Fatalf("start nicteamd: %v", err)
	}
	e.daemon = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.client().Teams(context.Background()); err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("nicteamd did not answer on %s within 10s:\n%s", e.socket, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) client() *api.Client { return api.NewClient(e.socket) }

// cli runs the nicteam binary and returns stdout, stderr and the exit code.
func (e *env) cli(args ...string) (string, string, int) {
	cmd := exec.Command(filepath.Join(bin, "nicteam"), append([]string{"--socket", e.socket}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run nicteam: %v", err)
	}
	return out.String(), errb.String(), code
}

// mustCLI runs nicteam and fails the test on a non-zero exit.
func (e *env) mustCLI(args ...string) string {
	e.t.Helper()
	out, errb, code := e.cli(args...)
	if code != 0 {
		e.t.Fatalf("nicteam %s: exit %d: %s", strings.Join(args, " "), code, errb)
	}
	return out
}

func (e *env) getJSON(v any, args ...string) {
	e.t.Helper()
	out := e.mustCLI(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("nicteam %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (e *env) team(name string) api.Team {
	e.t.Helper()
	var tm api.Team
	e.getJSON(&tm, "get", name)
	return tm
}

// waitStatus polls the API until the team reports want: the daemon reacts
// to events, the test only waits to observe it.
func (e *env) waitStatus(name, want string) api.Team {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tm, err := e.client().Team(context.Background(), name)
		if err == nil && tm.Status.String() == want {
			return tm
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("team %s: status %v (err %v), want %s", name, tm.Status, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) member(teamName, name string) api.Member {
	e.t.Helper()
	ms, err := e.client().Members(context.Background(), teamName)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range ms {
		if m.Name == name {
			return m
		}
	}
	e.t.Fatalf("team %s has no member %s", teamName, name)
	return api.Member{}
}

// hostRun runs a command in the host namespace and fails on error.
func (e *env) hostRun(args ...string) string {
	e.t.Helper()
	out, err := e.b.Host.Run(args...)
	if err != nil {
		e.t.Fatalf("%v", err)
	}
	return out
}

// ping sends count pings every interval from the host to dst.
func (e *env) ping(dst string, count int, interval time.Duration, extra ...string) lab.PingResult {
	e.t.Helper()
	r, err := e.b.Host.PingFlood(context.Background(), dst, interval, count, extra...)
	if err != nil {
		e.t.Fatalf("ping %s: %v", dst, err)
	}
	return r
}

// pingInBackground sends count pings every interval from the host to dst
// and sends "received/transmitted", or the error, on the channel returned
// when they are done.
func (e *env) pingInBackground(dst string, interval time.Duration, count int) <-chan string {
	result := make(chan string, 1)
	go func() {
		res, err := e.b.Host.PingFlood(context.Background(), dst, interval, count)
		if err != nil {
			result <- err.Error()
			return
		}
		result <- fmt.Sprintf("%d/%d", res.Received, res.Transmitted)
	}()
	return result
}
