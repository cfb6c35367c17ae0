package bench

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/team"
)

func TestParseNstat(t *testing.T) {
	out := "#kernel\nIpInReceives                    120                0.0\nTcpExtTCPOFOQueue               7                  0.0\nTcpExtTCPSACKReorder            3                  0.0\n"
	got, err := parseNstat(out)
	if err != nil {
		t.Fatal(err)
	}
	if got["TcpExtTCPOFOQueue"] != 7 || got["TcpExtTCPSACKReorder"] != 3 || got["IpInReceives"] != 120 {
		t.Errorf("parseNstat = %v", got)
	}
	if _, err := parseNstat("TcpExtTCPOFOQueue x 0.0\n"); err == nil {
		t.Error("parseNstat accepted a non-number")
	}
	before := map[string]uint64{"TcpExtTCPOFOQueue": 7, "TcpExtTCPTSReorder": 9}
	after := map[string]uint64{"TcpExtTCPOFOQueue": 10, "TcpExtTCPTSReorder": 2}
	d := counterDeltas(before, after, reorderCounters)
	if d[receiverReorder] != 3 || d["TcpExtTCPTSReorder"] != 0 || d["TcpExtTCPSACKReorder"] != 0 {
		t.Errorf("counterDeltas = %v", d)
	}
}

func TestPayloadFraction(t *testing.T) {
	// Measured: one flow through one 200 Mbit/s member received 191.3.
	if got := 200 * payloadFraction(1500); math.Abs(got-191.28) > 0.01 {
		t.Errorf("ceiling of 200 Mbit/s at MTU 1500 = %.2f, want 191.28", got)
	}
}

func TestHashExpectation(t *testing.T) {
	for _, tc := range []struct {
		members, flows int
		want           float64
	}{
		{2, 2, 0.75}, {2, 8, 1 - 1.0/256}, {4, 4, 1 - 81.0/256}, {4, 2, 0.4375},
	} {
		if got := hashExpectation(tc.members, tc.flows); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("hashExpectation(%d, %d) = %v, want %v", tc.members, tc.flows, got, tc.want)
		}
	}
}

func TestAlternate(t *testing.T) {
	algs := []team.Algorithm{team.TransportPorts, team.Dynamic}
	if got := alternate(algs, 0); !slices.Equal(got, algs) {
		t.Errorf("run 0: %v", got)
	}
	if got := alternate(algs, 1); !slices.Equal(got, []team.Algorithm{team.Dynamic, team.TransportPorts}) {
		t.Errorf("run 1: %v", got)
	}
	if !slices.Equal(algs, []team.Algorithm{team.TransportPorts, team.Dynamic}) {
		t.Errorf("alternate changed its input: %v", algs)
	}
}

func TestBalanceRunFill(t *testing.T) {
	before := balanceSnapshot{
		receiver:     map[string]uint64{receiverReorder: 10},
		sender:       map[string]uint64{receiverReorder: 500, "TcpExtTCPSACKReorder": 1, segmentsOut: 1000},
		flowletMoves: 4,
		txBytes:      map[string]uint64{"eth1": 0, "eth2": 1e6},
	}
	after := balanceSnapshot{
		receiver:     map[string]uint64{receiverReorder: 13},
		sender:       map[string]uint64{receiverReorder: 900, "TcpExtTCPSACKReorder": 3, "TcpExtTCPTSReorder": 5, segmentsOut: 101000},
		flowletMoves: 6,
		txBytes:      map[string]uint64{"eth1": 25e6, "eth2": 1e6},
	}
	var r BalanceRun
	r.fill(before, after, []string{"eth1", "eth2"}, 2*time.Second)
	if r.OFO != 3 || r.Segments != 100000 || r.SenderReorder != 7 || r.FlowletMoves != 2 {
		t.Errorf("got %+v, want 3 OFO of 100000 segments, 7 sender reorderings, 2 moves", r)
	}
	if !slices.Equal(r.MemberMbit, []float64{100, 0}) {
		t.Errorf("member Mbit/s = %v, want [100 0]", r.MemberMbit)
	}
}

// sampleBalance is a balance figure as the renderers get it: two runs of
// each algorithm in two cases, Dynamic short of the target in one and
// reordering more than TransportPorts in the other.
func sampleBalance() *Balance {
	b := &Balance{
		RateMbit: 200, CeilingMbit: 200 * payloadFraction(1500), Burst: "32kb", Latency: "20ms",
		Duration: "2s", Omit: "1s", RunsPerCase: 2, CongestionControl: "cubic",
		Target: balanceTarget, ReorderSlack: reorderSlack,
	}
	run := func(n, m, f int, alg team.Algorithm, ratio float64, ofo uint64, memberMbit ...float64) BalanceRun {
		return BalanceRun{Run: n, Members: m, Flows: f, Algorithm: alg.String(), Ratio: ratio,
			Mbit: ratio * float64(m) * b.CeilingMbit, OFO: ofo, Segments: 100000, MemberMbit: memberMbit}
	}
	b.Runs = []BalanceRun{
		run(1, 2, 4, team.TransportPorts, 0.5, 0, 191, 0), run(1, 2, 4, team.Dynamic, 1.0, 5, 190, 191),
		run(1, 4, 2, team.TransportPorts, 0.25, 0), run(1, 4, 2, team.Dynamic, 0.5, 0),
		run(2, 2, 4, team.Dynamic, 0.9, 20), run(2, 2, 4, team.TransportPorts, 1.0, 0),
		run(2, 4, 2, team.Dynamic, 0.5, 0), run(2, 4, 2, team.TransportPorts, 0.5, 0),
	}
	b.summarize()
	return b
}

func TestBalanceSummarize(t *testing.T) {
	b := sampleBalance()
	if len(b.Cases) != 2 {
		t.Fatalf("%d cases, want 2", len(b.Cases))
	}
	c := b.Cases[0]
	if c.Members != 2 || c.Flows != 4 || !c.TargetApplies || c.Best != 1 || c.Expected != 0.9375 {
		t.Errorf("case 0: %+v", c)
	}
	// Medians of two: Dynamic (1.0 + 0.9) / 2, OFO (0.05 + 0.2) / 2 per 1000.
	if c.TransportPorts.Runs != 2 || c.TransportPorts.Ratio != 0.75 || math.Abs(c.Dynamic.Ratio-0.95) > 1e-12 ||
		math.Abs(c.Dynamic.OFOPer1000-0.125) > 1e-12 || c.TransportPorts.OFOPer1000 != 0 {
		t.Errorf("case 0 medians: TransportPorts %+v, Dynamic %+v", c.TransportPorts, c.Dynamic)
	}
	if !c.Met || c.ReorderMet {
		t.Errorf("case 0: met %v, reorder met %v; want the target met and reordering worse by 0.125 > %v", c.Met, c.ReorderMet, reorderSlack)
	}
	c = b.Cases[1]
	if c.TargetApplies || !c.Met || !c.ReorderMet || c.Best != 0.5 || c.Dynamic.Ratio != 0.5 {
		t.Errorf("case 1 (2 flows on 4 members, the target does not apply): %+v", c)
	}
	if b.Met != true || b.ReorderMet {
		t.Errorf("overall: met %v, reorder met %v; want met, reordering not", b.Met, b.ReorderMet)
	}
	if got := per1000(3, 0); got != 0 {
		t.Errorf("per1000 of nothing = %v", got)
	}
}

func TestRenderBalance(t *testing.T) {
	res := sampleResults()
	res.Balance = sampleBalance()
	md := renderMarkdown(res)
	for _, want := range []string{
		"## Load balancing across rate-limited members",
		"this figure alone: `go run ./cmd/nicteam-bench -only balance`",
		"`tc qdisc add dev ethN root tbf rate 200mbit burst 32kb latency 20ms`",
		"members × 191.3 Mbit/s", "medians of 2 runs", "congestion control is cubic",
		"| 2 | 4 | 1.000 | 0.750 (0.938) | 0.950 | yes | 0.00 / 0.12 | 0 / 0 | 0 / 0 | 0 | **no** |",
		"| 4 | 2 | 0.500 | 0.375 (0.438) | 0.500 | n/a (flows < members) | 0.00 / 0.00 |",
		"whenever flows ≥ members: met.",
		"no worse than TransportPorts (Dynamic's median at most 0.1 per 1000 segments above it",
		"): **not met** (2 members, 4 flows).",
		"| 1 | 2 | 4 | Dynamic | 382.6 | 1.000 | 190 / 191 | 5 / 100000 | 0 | 0 |",
		"every 250ms the daemon", "flowlet gap (500µs)", "queues up to 20ms",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("markdown:\n%s", md)
	}
	// Without a balance figure (as in older results) there is no section.
	if md := renderMarkdown(sampleResults()); strings.Contains(md, "Load balancing") {
		t.Error("a run without the balance figure renders its section")
	}
	// -only balance: no shared lab, nor figures of it.
	res.Throughput, res.PPS, res.Failover, res.Control = nil, nil, nil, nil
	res.Lab, res.Settings.Sections = LabInfo{}, []string{"balance"}
	md = renderMarkdown(res)
	for _, unwanted := range []string{"## TCP throughput", "## Failover", "plain NIC", "team / plain"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("-only balance report has %q", unwanted)
		}
	}
	if !strings.Contains(md, "## Load balancing") {
		t.Error("-only balance report lacks its figure")
	}
}
