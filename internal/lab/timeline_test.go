package lab

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

// fakeRun is a pull of node1's eth1 as the demo makes it: a 1 ms ping from
// 1 s before the pull (at 10:00:01) to 3 s after, with lost the requests
// that went unanswered.
func fakeRun(lost []int) *PullRun {
	base := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	ms := func(f float64) time.Time { return base.Add(time.Duration(f * float64(time.Millisecond))) }
	run := &PullRun{
		Plan:  DefaultPullPlan(),
		Start: base, Pulled: ms(1000), PullTook: 40 * time.Microsecond,
		Restored: ms(3000), RestoreTook: 35 * time.Microsecond,
		From: "c2", To: "c1",
		Ping: PingResult{Transmitted: 4000, Received: 4000 - len(lost), Missing: lost},
		Sent: make([]time.Time, 4001),
	}
	for seq := 1; seq <= 4000; seq++ {
		run.Sent[seq] = ms(float64(seq - 1))
	}
	ev := func(at float64, node, kind, member, detail string) NodeEvent {
		return NodeEvent{Node: node, Event: api.Event{Time: ms(at), Team: "Team0", Kind: kind, Member: member, Detail: detail}}
	}
	run.Events = []NodeEvent{
		ev(1000.386, "node1", api.EventBucketsMoved, "", "128 of 256 buckets moved; eth1 0, eth2 256"),
		ev(1001.782, "node1", api.EventMemberFailed, "eth1", "Active/NoFailure -> Failed/PhysicalMediaDisconnected"),
		ev(3001.202, "node1", api.EventMemberUp, "eth1", ""),
	}
	snap := func(at float64, label, mac string) Snapshot {
		return Snapshot{Label: label, Time: ms(at), TeamMAC: mac,
			Neighbor: Neighbor{IP: "10.10.0.1", MAC: mac, State: "REACHABLE"},
			FDB: []FDBEntry{
				{MAC: "02:00:00:00:01:01", Port: "node1-eth1", Static: true},
				{MAC: "02:00:00:00:01:02", Port: "node1-eth2", Static: true},
			}}
	}
	run.Snapshots = []Snapshot{
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
	if l := v.String(); !strings.HasPrefix(l, "pings lost: 2001 of 4000 (seq 1002–3001, 3500); longest outage 2000.000 ms.\n") || !strings.Contains(l, "HAPPENED") {
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
