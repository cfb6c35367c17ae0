package soak

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBound(t *testing.T) {
	for _, c := range []struct {
		name string
		pps  uint64
		want uint64
	}{
		{"kill", 1000, 0},
		{"full", 1000, 0},
		{"flap", 1000, uint64(flapBudget / time.Millisecond)},
		{"rename", 1000, 3 * uint64(flapBudget/time.Millisecond)},
		{"flap", 2000, 2 * uint64(flapBudget/time.Millisecond)},
	} {
		if got := disturbances[c.name].bound(c.pps); got != c.want {
			t.Errorf("%s at %d pps: bound %d, want %d", c.name, c.pps, got, c.want)
		}
	}
	for _, name := range append(All, Pending...) {
		if _, ok := disturbances[name]; !ok && name != checkLinks {
			t.Errorf("%q is in All or Pending but is no disturbance", name)
		}
	}
}

func TestFDKind(t *testing.T) {
	for target, want := range map[string]string{
		"anon_inode:bpf-link":    "bpf-link",
		"anon_inode:bpf-map":     "bpf-map",
		"anon_inode:[eventpoll]": "eventpoll",
		"socket:[123456]":        "socket",
		"pipe:[42]":              "pipe",
		"/dev/null":              "file",
		"/sys/fs/bpf/nicteam/x":  "file",
	} {
		if got := fdKind(target); got != want {
			t.Errorf("fdKind(%q) = %q, want %q", target, got, want)
		}
	}
}

func TestLeaks(t *testing.T) {
	before := NodeSnapshot{
		FDs: 29, FDKind: map[string]int{"socket": 10}, RSSKiB: 10000,
		Interfaces: []string{"eth1 (veth)", "Team0 (veth)"},
		Attached:   map[string]int{"eth1 ingress": 1, "Team0 egress": 1},
		Pins:       []string{"Team0/egress"},
	}
	if got := leaks("node1", before, before, true); len(got) != 0 {
		t.Errorf("the same snapshot twice: %v", got)
	}
	same := before
	same.FDs, same.RSSKiB = 28, 11000 // fewer fds; RSS up exactly 10%
	if got := leaks("node1", before, same, true); len(got) != 0 {
		t.Errorf("fewer fds, RSS up 10%%: %v", got)
	}
	after := NodeSnapshot{
		FDs: 30, FDKind: map[string]int{"socket": 11}, RSSKiB: 11001,
		Interfaces: []string{"eth1 (veth)", "Team0 (veth)", "Team0p (veth)"},
		Attached:   map[string]int{"eth1 ingress": 2, "Team0 egress": 1},
		Pins:       []string{"Team0/egress", "Team0/member-9"},
	}
	if got := strings.Join(leaks("node1", before, after, false), "\n"); strings.Contains(got, "RSS") {
		t.Errorf("RSS judged when not asked to:\n%s", got)
	}
	got := strings.Join(leaks("node1", before, after, true), "\n")
	for _, want := range []string{"30 fds, 29 before", "RSS 11001 KiB", "Team0p (veth)", "2 tcx programs on eth1 ingress", "Team0/member-9"} {
		if !strings.Contains(got, want) {
			t.Errorf("leaks do not mention %q:\n%s", want, got)
		}
	}
}

func TestFloodTally(t *testing.T) {
	good := floodRequest{method: "GET", path: "/v1/teams"}
	bad := floodRequest{method: "PATCH", path: "/v1/teams/Team0", body: "{}", bad: true}
	var tally floodTally
	tally.add(good, 200, time.Millisecond, nil)
	tally.add(bad, 400, time.Millisecond, nil)
	if tally.requests != 2 || tally.rejected != 1 || tally.nFailed != 0 {
		t.Fatalf("answered right: %d requests, %d rejected, %d failed", tally.requests, tally.rejected, tally.nFailed)
	}
	tally.add(bad, 500, time.Millisecond, nil)              // a bad request is no server error
	tally.add(bad, 200, time.Millisecond, nil)              // nor accepted
	tally.add(good, 404, time.Millisecond, nil)             // a good one succeeds
	tally.add(good, 200, 2*floodLatency, nil)               // in time
	tally.add(good, 0, time.Millisecond, errors.New("EOF")) // and is answered
	if tally.nFailed != 5 || tally.slowest != 2*floodLatency {
		t.Errorf("%d failed, slowest %v; want 5, %v: %v", tally.nFailed, tally.slowest, 2*floodLatency, tally.failed)
	}
}
