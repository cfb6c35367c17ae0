package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

// raw sends one request to the daemon as written, for bodies the client
// would never send, and returns the status and the error message.
func (e *env) raw(method, path string, body io.Reader) (int, string) {
	e.t.Helper()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.socket)
		},
	}, Timeout: 30 * time.Second}
	req, err := http.NewRequest(method, "http://nicteamd"+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var ae api.Error
	if err := json.NewDecoder(resp.Body).Decode(&ae); err != nil && resp.StatusCode/100 != 2 {
		e.t.Errorf("%s %s: %d without a JSON error: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, ae.Error
}

// daemonStat reads a line of the daemon's /proc status ("VmRSS") in kB
// and its count of open descriptors.
func (e *env) daemonStat(field string) (kb, fds int) {
	e.t.Helper()
	pid := e.daemon.Pid()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			kb, _ = strconv.Atoi(f[1])
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		e.t.Fatal(err)
	}
	return kb, len(ents)
}

// TestStalledClientsDoNotLockOut opens 2000 connections that never finish
// their headers (more than the daemon keeps: it closes the oldest stalled
// ones) and checks a fresh client is still answered within a second, and
// that the daemon's descriptors stay bounded.
func TestStalledClientsDoNotLockOut(t *testing.T) {
	e := newEnv(t, 1)
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range 2000 {
		c, err := net.Dial("unix", e.socket)
		if err != nil {
			t.Fatalf("stalled connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /v1/teams HTTP/1.1\r\nHost: nicteamd\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := e.client().Teams(ctx); err != nil {
		t.Fatalf("a fresh client behind 2000 stalled ones: %v", err)
	}
	if _, fds := e.daemonStat("VmRSS"); fds > 1200 {
		t.Errorf("nicteamd holds %d descriptors with 2000 stalled clients; want them bounded (1024 connections)", fds)
	}
}

// TestHugeBodyRefused sends a 100 MB request body: it is refused with 413
// after the first MiB, without the daemon's memory growing with it.
func TestHugeBodyRefused(t *testing.T) {
	e := newEnv(t, 1)
	before, _ := e.daemonStat("VmRSS")
	body := io.MultiReader(strings.NewReader(`{"name":"`), io.LimitReader(repeat('a'), 100<<20), strings.NewReader(`"}`))
	code, msg := e.raw("POST", "/v1/teams", body)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "larger than") {
		t.Errorf("100 MB body: %d %q; want 413 naming the limit", code, msg)
	}
	after, _ := e.daemonStat("VmRSS")
	if after-before > 16<<10 {
		t.Errorf("nicteamd RSS grew by %d kB on a refused body (%d → %d kB)", after-before, before, after)
	}
	if _, err := e.client().Teams(context.Background()); err != nil {
		t.Errorf("daemon after a huge body: %v", err)
	}
}

type repeatReader byte

func repeat(b byte) io.Reader { return repeatReader(b) }

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestStateDirMustBeRootOnly starts a second daemon on a state directory
// others may write, holding a planted state file that declares a team of
// eth1: it must refuse to start, name the fix, and leave eth1 alone.
func TestStateDirMustBeRootOnly(t *testing.T) {
	e := newEnv(t, 1)
	links := e.linkNames()
	snap := e.snapshot("eth1")
	planted := `{"version":1,"teams":[{"spec":{"name":"Team9","members":[{"name":"eth1","administrativeMode":"Active"}],` +
		`"teamingMode":"SwitchIndependent","loadBalancingAlgorithm":"Dynamic","macPolicy":"Auto"},` +
		`"macAddress":"02:00:00:00:00:09","peer":"ntp00000009","mtu":1500,"saved":{}}]}`
	for _, c := range []struct {
		name  string
		setup func(dir string) error
		want  string
	}{
		{"world-writable dir", func(dir string) error { return os.Chmod(dir, 0o777) }, "chmod 700 "},
		{"state file of another user", func(dir string) error {
			return os.Chown(filepath.Join(dir, "teams.json"), 65534, 65534)
		}, "chown root:root "},
	} {
		dir := filepath.Join(t.TempDir(), "state")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "teams.json"), []byte(planted), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.setup(dir); err != nil {
			t.Fatal(err)
		}
		p, err := e.b.Host.Start(filepath.Join(bin, "nicteamd"), "--socket", filepath.Join(t.TempDir(), "s.sock"), "--state-dir", dir)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Done():
			if err := p.Wait(); err == nil || !strings.Contains(p.Output(), c.want) {
				t.Errorf("%s: %v, output %q; want a refusal naming %q", c.name, err, p.Output(), c.want)
			}
		case <-time.After(10 * time.Second):
			p.Kill()
			t.Errorf("%s: nicteamd kept running:\n%s", c.name, p.Output())
		}
	}
	if got := e.linkNames(); strings.Join(got, ",") != strings.Join(links, ",") {
		t.Errorf("interfaces changed: %v → %v", links, got)
	}
	if got := e.snapshot("eth1"); fmt.Sprint(got) != fmt.Sprint(snap) {
		t.Errorf("eth1 changed: %v → %v", snap, got)
	}
}

// TestMemberLimit: a team takes 64 members, the datapath's limit; a 65th
// is refused with the limit in the message and the host unchanged.
func TestMemberLimit(t *testing.T) {
	e := newEnv(t, 1)
	var names []string
	var script strings.Builder
	for i := range 65 {
		names = append(names, fmt.Sprintf("m%d", i))
		fmt.Fprintf(&script, "link add m%d type veth peer name p%d\nlink set p%d up\n", i, i, i)
	}
	batch := filepath.Join(t.TempDir(), "links")
	if err := os.WriteFile(batch, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.hostRun("ip", "-batch", batch)
	links := e.linkNames()
	snap := e.snapshot(names...)
	_, errb, code := e.cli("new", "Big", "--members", strings.Join(names, ","))
	if code == 0 || !strings.Contains(errb, "65 members; a team has at most 64") {
		t.Errorf("65 members: exit %d %q", code, errb)
	}
	if got := e.linkNames(); strings.Join(got, ",") != strings.Join(links, ",") {
		t.Errorf("interfaces changed: %v → %v", links, got)
	}
	if got := e.snapshot(names...); fmt.Sprint(got) != fmt.Sprint(snap) {
		t.Errorf("members changed:\n before %v\n after  %v", snap, got)
	}
	if p := e.pins(); len(p) != 0 {
		t.Errorf("pins left: %v", p)
	}
	e.mustCLI("new", "Big", "--members", strings.Join(names[:64], ","))
	e.waitStatus("Big", "Up")
	_, errb, code = e.cli("member", "add", "Big", names[64])
	if code == 0 || !strings.Contains(errb, "at most 64") {
		t.Errorf("65th member: exit %d %q", code, errb)
	}
	if got := e.team("Big"); len(got.Members) != 64 {
		t.Errorf("team has %d members after a refused 65th", len(got.Members))
	}
}
