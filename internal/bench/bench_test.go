package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/seqstream"
)

func TestParseIperf(t *testing.T) {
	out, err := os.ReadFile("testdata/iperf3.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseIperf(out)
	if err != nil {
		t.Fatal(err)
	}
	// testdata/iperf3.json is a real 1 s run over loopback.
	if math.Abs(r.Gbps-25.453366351871284) > 1e-9 || r.Retransmits != 0 {
		t.Errorf("got %+v, want 25.45 Gbit/s and no retransmits", r)
	}

	out, err = os.ReadFile("testdata/iperf3-error.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseIperf(out); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("error report: got %v, want iperf3's error", err)
	}
	for _, bad := range []string{"", "iperf3: error - unable to connect", `{"end": {}}`} {
		if _, err := parseIperf([]byte(bad)); err == nil {
			t.Errorf("parseIperf(%q) succeeded", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("median reordered its input: %v", in)
			}
		}
	}
}

func TestSummarize(t *testing.T) {
	c := summarize(throughputCase{8, directions[1]}, []TCPRun{
		{Run: 1, Path: "team", Gbps: 10}, {Run: 1, Path: "plain", Gbps: 10}, {Run: 1, Path: "ovs", Gbps: 1},
		{Run: 2, Path: "team", Gbps: 9}, {Run: 2, Path: "plain", Gbps: 12}, {Run: 2, Path: "ovs", Gbps: 0.8},
		{Run: 3, Path: "team", Gbps: 2}, {Run: 3, Path: "plain", Gbps: 11}, {Run: 3, Path: "ovs", Gbps: 0.9},
	})
	if c.Flows != 8 || c.Direction != directions[1].name || c.TeamGbps != 9 || c.PlainGbps != 11 || c.OVSGbps != 0.9 ||
		math.Abs(c.Ratio-9.0/11) > 1e-12 || c.Met || math.Abs(c.OVSRatio-10) > 1e-12 || !c.OVSMet {
		t.Errorf("got %+v, want medians 9, 11 and 0.9, ratios 0.818 (not met) and 10 (met)", c)
	}
}

func TestBusiest(t *testing.T) {
	before := map[string]uint64{"eth1": 100, "eth2": 50}
	after := map[string]uint64{"eth1": 400, "eth2": 150}
	if m, share := busiest(teamMembers, before, after); m != "eth1" || share != 0.75 {
		t.Errorf("busiest = %s, %v; want eth1, 0.75", m, share)
	}
	if m, share := busiest(nil, before, after); m != "" || share != 0 {
		t.Errorf("busiest of no members = %q, %v", m, share)
	}
}

func TestParseUDP(t *testing.T) {
	out, err := os.ReadFile("testdata/iperf3-udp.json")
	if err != nil {
		t.Fatal(err)
	}
	// testdata/iperf3-udp.json is a real 1 s run of 64-byte datagrams
	// over loopback: 301640 sent in 1.00009 s, 14532 of them lost.
	r, err := parseUDP(out)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.SentKpps-301640/1.00009/1e3) > 1e-9 || math.Abs(r.ReceivedKpps-(301640-14532)/1.000218/1e3) > 1e-9 {
		t.Errorf("got %+v", r)
	}
	tcp, err := os.ReadFile("testdata/iperf3.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseUDP(tcp); err == nil {
		t.Error("parseUDP of a TCP test succeeded")
	}
}

func TestSummarizePPS(t *testing.T) {
	d := summarizePPS("send", []UDPRun{
		{Run: 1, Path: "team", SentKpps: 200, ReceivedKpps: 100}, {Run: 1, Path: "plain", SentKpps: 210, ReceivedKpps: 120},
		{Run: 2, Path: "plain", SentKpps: 190, ReceivedKpps: 80}, {Run: 2, Path: "team", SentKpps: 180, ReceivedKpps: 90},
	})
	if d.TeamKpps != 95 || d.PlainKpps != 100 || d.Ratio != 0.95 || d.TeamSentKpps != 190 || d.PlainSentKpps != 200 {
		t.Errorf("got %+v", d)
	}
}

func TestEnabledMembers(t *testing.T) {
	out, err := os.ReadFile("testdata/ovs-bond-show.txt")
	if err != nil {
		t.Fatal(err)
	}
	// A real bond/show of an active-backup bond with eth4's cable pulled.
	if got := enabledMembers(string(out)); !slices.Equal(got, []string{"eth5"}) {
		t.Errorf("enabledMembers = %v, want [eth5]", got)
	}
	if got := activeIn(string(out)); got != "eth5" {
		t.Errorf("activeIn = %q, want eth5", got)
	}
	if got := activeIn("---- bond0 ----\nmember eth4: disabled\n  may_enable: false\n"); got != "" {
		t.Errorf("activeIn without an active member = %q", got)
	}
}

func TestProcParsing(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (nicteamd (x) y) S 1 4242 4242 0 -1 4194560 2203 0 0 0 17 9 0 0 20 0 8 0 12345 1286234112 3921 18446744073709551615"
	if got, err := parseCPUTicks(stat); err != nil || got != 26 {
		t.Errorf("parseCPUTicks = %d, %v; want 17+9", got, err)
	}
	for _, bad := range []string{"", "4242 nicteamd S 1", "4242 (nicteamd) S 1 2 3", "4242 (n) S 1 4242 4242 0 -1 4194560 2203 0 0 0 x 9 0"} {
		if _, err := parseCPUTicks(bad); err == nil {
			t.Errorf("parseCPUTicks(%q) succeeded", bad)
		}
	}
	status := "Name:\tnicteamd\nVmHWM:\t   18000 kB\nVmRSS:\t   15628 kB\n"
	if got, err := statusKiB(status, "VmRSS"); err != nil || got != 15628 {
		t.Errorf("statusKiB VmRSS = %d, %v", got, err)
	}
	if _, err := statusKiB(status, "VmSwap"); err == nil {
		t.Error("statusKiB of a missing field succeeded")
	}
	if _, err := statusKiB("VmRSS:\t12 MB\n", "VmRSS"); err == nil {
		t.Error("statusKiB in MB succeeded")
	}
}

func TestSummarizeLifecycle(t *testing.T) {
	s := summarizeLifecycle(8, []LifecycleRun{
		{Run: 1, NewMs: 10, UpMs: 11, RmMs: 5, GoneMs: 6},
		{Run: 2, NewMs: 30, UpMs: 40, RmMs: 7, GoneMs: 9},
		{Run: 3, NewMs: 20, UpMs: 21, RmMs: 6, GoneMs: 7},
	})
	want := LifecycleRun{NewMs: 20, UpMs: 21, RmMs: 6, GoneMs: 7}
	if s.Members != 8 || s.Median != want || s.MaxUpMs != 40 || s.MaxGoneMs != 9 {
		t.Errorf("got %+v", s)
	}
}

func TestPickSections(t *testing.T) {
	all, err := pickSections(SectionNames())
	if err != nil || len(all) != len(sections) {
		t.Fatalf("pickSections(all) = %d sections, %v", len(all), err)
	}
	// In the order they run, whatever the order asked.
	some, err := pickSections([]string{"failover", "pps"})
	if err != nil || len(some) != 2 || some[0].name != "pps" || some[1].name != "failover" {
		t.Errorf("pickSections(failover,pps) = %v, %v", some, err)
	}
	if _, err := pickSections([]string{"pps", "bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("pickSections with an unknown section: %v", err)
	}
}

func TestParseOffloads(t *testing.T) {
	out := `Features for Team0:
rx-checksumming: on
tx-checksumming: on
	tx-checksum-ipv4: off [fixed]
scatter-gather: on
tcp-segmentation-offload: on
generic-segmentation-offload: on
generic-receive-offload: off
`
	got := parseOffloads(out, offloadFeatures)
	want := map[string]string{
		"tx-checksumming": "on", "scatter-gather": "on", "tcp-segmentation-offload": "on",
		"generic-segmentation-offload": "on", "generic-receive-offload": "off",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestMachineParsing(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if got := cpuModel(cpuinfo); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel("processor : 0\n"); got != "unknown" {
		t.Errorf("cpuModel without a model = %q", got)
	}
	gib, err := memTotalGiB("MemTotal:       24641536 kB\nMemFree:  1 kB\n")
	if err != nil || math.Abs(gib-23.5) > 0.01 {
		t.Errorf("memTotalGiB = %v, %v; want 23.5", gib, err)
	}
	if _, err := memTotalGiB("MemFree: 1 kB\n"); err == nil {
		t.Error("memTotalGiB without MemTotal succeeded")
	}
}

func TestClassify(t *testing.T) {
	const pps = 1000 // one packet per ms: seq n is sent at n ms
	rep := seqstream.Report{
		Sent: 2000, Received: 1960,
		Outages: []seqstream.Outage{
			{FromSeq: 100, ToSeq: 103, Missing: 0, DurationUs: 3000},   // reordering, filled
			{FromSeq: 300, ToSeq: 310, Missing: 9, DurationUs: 10000},  // the pull
			{FromSeq: 400, ToSeq: 421, Missing: 20, DurationUs: 21000}, // the pull, longer
			{FromSeq: 900, ToSeq: 912, Missing: 11, DurationUs: 12000}, // after the restore
		},
	}
	p := classify(rep, pps, 600*time.Millisecond)
	if p.Outages != 2 || p.Missing != 29 || p.OutageUs != 21000 || p.LostUs != 29000 {
		t.Errorf("pull: got %+v, want 2 outages, 29 missing, longest 21000µs, 29000µs lost", p)
	}
	if p.RestoreOutages != 1 || p.RestoreMissing != 11 {
		t.Errorf("restore: got %d outages, %d missing; want 1, 11", p.RestoreOutages, p.RestoreMissing)
	}
}

func TestFailoverSummarize(t *testing.T) {
	f := BondFailover{Bond: "team", Pulls: []Pull{
		{Pull: 1, OutageUs: 400, Missing: 8, LostUs: 400, MovedAfterUs: 350, trace: &Trace{Counts: []uint32{1}}},
		{Pull: 2, OutageUs: 9000, Missing: 180, LostUs: 9000, MovedAfterUs: 8800, RestoreOutages: 1, trace: &Trace{Counts: []uint32{2}}},
		{Pull: 3, OutageUs: 600, Missing: 12, LostUs: 600, MovedAfterUs: 500},
	}}
	f.summarize(time.Millisecond, 10*time.Millisecond)
	if f.MedianOutageUs != 600 || f.MaxOutageUs != 9000 || f.MedianMissing != 12 || f.MaxMissing != 180 ||
		f.MedianLostUs != 600 || f.MedianMovedAfterUs != 500 || !f.Met || f.RestoreOutages != 1 || f.RestoreMet {
		t.Errorf("got %+v", f)
	}
	// The median pull (3) has no trace; the nearest below it does.
	if f.Trace == nil || f.Trace.Pull != 1 || f.Trace.OutageUs != 400 {
		t.Errorf("trace %+v, want pull 1's", f.Trace)
	}
	f.summarize(time.Millisecond, 5*time.Millisecond)
	if f.Met {
		t.Error("met with a longest outage of 9 ms against 5 ms")
	}
}

func TestMedianOrder(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want []int
	}{
		{nil, []int{}},
		{[]float64{7}, []int{0}},
		{[]float64{30, 10, 20}, []int{2, 1, 0}},
		{[]float64{4, 1, 3, 2, 5}, []int{2, 3, 0, 1, 4}},
		{[]float64{4, 1, 3, 2}, []int{3, 1, 2, 0}},
	} {
		if got := medianOrder(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("medianOrder(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestTrace(t *testing.T) {
	// 1000 pps in blocks of 2 packets, 2 ms each, sent from t0 on time,
	// except that none of block 12 arrived and block 13 went 1 ms late.
	t0 := time.Unix(1_700_000_000, 0)
	b := &seqstream.Bins{Seqs: 2, Counts: make([]uint32, 40), SentNs: make([]int64, 40)}
	for i := range b.Counts {
		b.Counts[i], b.SentNs[i] = 2, t0.Add(time.Duration(2*i)*time.Millisecond).UnixNano()
	}
	b.Counts[12], b.SentNs[12] = 0, 0
	b.SentNs[13] += int64(time.Millisecond)
	// Pulled 30.5 ms in: blocks sent from 25.5 ms (13, at 27) to 55.5 ms
	// (block 27, at 54); block 12 is placed between 11 and 13, at 24.5 ms.
	tr := trace(b, 1000, t0.Add(30500*time.Microsecond))
	if tr == nil || tr.Seqs != 2 || len(tr.AtUs) != 15 || len(tr.Counts) != 15 ||
		tr.AtUs[0] != -3500 || tr.AtUs[1] != -2500 || tr.AtUs[14] != 23500 || tr.Counts[0] != 2 {
		t.Errorf("trace %+v", tr)
	}
	if tr := trace(b, 1000, t0.Add(29*time.Millisecond)); tr == nil || tr.AtUs[0] != -4500 || tr.Counts[0] != 0 {
		t.Errorf("trace with the lost block first: %+v", tr)
	}
	if tr := trace(b, 1000, t0.Add(2*time.Millisecond)); tr != nil {
		t.Errorf("a window before the first block: %+v", tr)
	}
	if tr := trace(b, 1000, t0.Add(60*time.Millisecond)); tr != nil {
		t.Errorf("a window past the last block: %+v", tr)
	}
	if tr := trace(nil, 1000, t0); tr != nil {
		t.Errorf("no bins: %+v", tr)
	}
}

func TestSentTimes(t *testing.T) {
	// Gaps inside are spread evenly; after the last known block, blocks
	// follow a block's length apart.
	got := sentTimes([]int64{100, 0, 0, 160, 170, 0, 0}, 10)
	if want := []int64{100, 120, 140, 160, 170, 180, 190}; !slices.Equal(got, want) {
		t.Errorf("sentTimes = %v, want %v", got, want)
	}
}

// sampleResults is a run's results as the renderers get them.
func sampleResults() *Results {
	res := &Results{
		Command: "go run ./cmd/nicteam-bench -o docs/benchmarks.md",
		Date:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Machine: Machine{Kernel: "6.18.0", CPU: "Test CPU", CPUs: 2, MemoryGiB: 8, Go: "go1.26", Iperf3: "iperf 3.12",
			OVS: "ovs-vswitchd (Open vSwitch) 3.1.0", LoadBefore: "0.10 0.20 0.30", LoadAfter: "1.00 0.50 0.40"},
		Settings: Settings{Runs: 2, Pulls: 2, PPS: 20000, Duration: "3s", Sections: SectionNames()},
		Throughput: &Throughput{Duration: "3s", Omit: "1s", Target: throughputTarget, OVSTarget: ovsTarget, Plot: "bench-throughput.svg",
			Offloads: []Offloads{{Interface: "Team0", Features: map[string]string{"tcp-segmentation-offload": "on"}}}},
		PPS: &PPS{Tool: ppsTool, PayloadBytes: ppsPayload, Duration: "2s"},
		Failover: &Failover{PPS: 20000, Down: "500ms", TargetUs: 500, MaxTargetUs: 2000, Plot: "bench-failover.svg", Bonds: []BondFailover{
			{Bond: "team", Pulls: []Pull{
				{Pull: 1, Member: "eth1", OutageUs: 412, Missing: 8, LostUs: 400, MovedAfterUs: 380, UpAfterMs: 2.5, SentPPS: 20001},
				{Pull: 2, Member: "eth2", OutageUs: 1730, Missing: 35, LostUs: 1750, MovedAfterUs: 1600, UpAfterMs: 3, SentPPS: 19998},
			}},
			{Bond: "ovs", Pulls: []Pull{
				{Pull: 1, Member: "eth4", OutageUs: 2500, Missing: 50, LostUs: 2500, UpAfterMs: 30, SentPPS: 20000},
				{Pull: 2, Member: "eth5", OutageUs: 3500, Missing: 70, LostUs: 3500, UpAfterMs: 40, SentPPS: 15000},
			}},
		}},
		Control: &Control{
			Idle: DaemonUsage{Teams: "Team0 idle", Window: "5s", RSSKiB: 15360, PeakKiB: 16384, CPUResolution: 0.2},
			Busy: DaemonUsage{Teams: "Team0 busy", Window: "5s", RSSKiB: 16384, PeakKiB: 17408, CPUPercent: 0.4, CPUResolution: 0.2, CarriedGbps: 2, Moves: 3},
		},
	}
	for _, tc := range throughputCases() {
		res.Throughput.Cases = append(res.Throughput.Cases, summarize(tc, []TCPRun{
			{Run: 1, Path: "team", Gbps: 16.5, Retransmits: 12, Member: "eth2", Share: 1}, {Run: 1, Path: "plain", Gbps: 17.25},
			{Run: 1, Path: "ovs", Gbps: 1.25, Retransmits: 7, Member: "eth4", Share: 1},
			{Run: 2, Path: "ovs", Gbps: 1.75, Member: "eth4", Share: 1},
			{Run: 2, Path: "team", Gbps: 17.5, Member: "eth1", Share: 0.625}, {Run: 2, Path: "plain", Gbps: 16.75, Retransmits: 3},
		}))
	}
	for _, dir := range directions {
		res.PPS.Directions = append(res.PPS.Directions, summarizePPS(dir.name, []UDPRun{
			{Run: 1, Path: "team", SentKpps: 300, ReceivedKpps: 150}, {Run: 1, Path: "plain", SentKpps: 310, ReceivedKpps: 160},
		}))
	}
	for i := range res.Failover.Bonds {
		res.Failover.Bonds[i].summarize(outageTarget, maxOutageTarget)
	}
	for _, n := range teamSizes {
		res.Control.Sizes = append(res.Control.Sizes, summarizeLifecycle(n, []LifecycleRun{
			{Run: 1, NewMs: float64(n), UpMs: float64(n) + 0.5, RmMs: 3, GoneMs: 3.5},
		}))
	}
	return res
}

func TestRenderMarkdown(t *testing.T) {
	md := renderMarkdown(sampleResults())
	for _, want := range []string{
		"`go run ./cmd/nicteam-bench -o docs/benchmarks.md`",
		"2026-01-02 03:04:05 UTC",
		"| kernel | 6.18.0 |", "| CPU | Test CPU |", "| CPUs (nproc) | 2 |", "| memory | 8.0 GiB |",
		"0.10 0.20 0.30 → 1.00 0.50 0.40", "| Open vSwitch | ovs-vswitchd (Open vSwitch) 3.1.0 |",
		// Summary.
		"| TCP, 1 flow, host → peer (the team transmits): team / plain | 1.000 (17.00 / 17.00 Gbit/s) | ≥ 0.97 | yes |",
		"| TCP, 8 flows, peer → host (the team receives): team / OVS bond | 11.3 (17.00 / 1.50 Gbit/s) | ≥ 10 | yes |",
		"| 64-byte UDP, host → peer (the team transmits): team / plain | 0.938 (150 / 160 kpps) | – | – |",
		"| failover outage at 20000 pps, team, median of 2 pulls | 1071 µs (max 1730 µs) | ≤ 500 µs (max ≤ 2000 µs) | **no** |",
		"| failover outage at 20000 pps, OVS bond, median of 2 pulls | 3000 µs (max 3500 µs) | – | – |",
		"| outages when the cable is plugged back, team | 0 | 0 | yes |",
		"| team of 32 members: create until Up, remove until gone (medians) | 32.5 ms, 3.5 ms | – | – |",
		"| nicteamd idle: RSS, CPU | 15.0 MiB, < 0.20% | – | – |",
		"| nicteamd with a Dynamic team carrying 8 flows: RSS, CPU | 16.0 MiB, 0.40% | – | – |",
		// Throughput.
		"### 1 flow, host → peer (the team transmits)", "### 8 flows, peer → host (the team receives)",
		"| 1 | 16.50 | eth2 | 17.25 | 1.25 | 12 / 0 / 7 |",
		"| 2 | 17.50 | eth1 (62%) | 16.75 | 1.75 | 0 / 3 / 0 |",
		"| **median** | **17.00** | | **17.00** | **1.50** | |",
		"eth1 1 runs, median 17.50 Gbit/s (1.029 of plain); eth2 1 runs, median 16.50 Gbit/s (0.971 of plain);",
		"team / plain = **1.000**; target ≥ 0.97: met. team / OVS bond = **11.3**; target ≥ 10: met.",
		"| Team0 | on | – |", "transmit checksumming off on the switch ports",
		"![TCP throughput medians: team, plain NIC, OVS bond](bench-throughput.svg)",
		// Small packets.
		"## Small packets", "`iperf3 -u -l 64 -b 0`", "| 1 | 150 | 300 | 160 | 310 |", "team / plain = **0.938**.",
		// Failover.
		"### team", "### OVS bond",
		"| 1 | eth1 | 412 | 8 | 400 | 380 | 0 | 2.5 | 20001 |",
		"| 1 | eth4 | 2500 | 50 | 2500 | – | 0 | 30.0 | 20000 |",
		"| **median** | | **1071** | **22** | **1075** | **990** | | | |",
		"| **max** | | **1730** | **35** |",
		"target ≤ 500 µs, longest ≤ 2000 µs: **not met**",
		"Outages on restore: 0; target 0: met. The sender held its rate in every pull.",
		"**The sender fell more than 5% behind its rate in 1 of 2 pulls**",
		// Control.
		"## Control plane", "| 32 | 32.0 | 32.5 | 3.0 | 3.5 | 1 | 32.5 | 3.5 |",
		"needs to wait for nothing but the command", "about 1.0 ms each",
		"![Share of the stream delivered around the median pull, team and OVS bond](bench-failover.svg)",
		"packets in blocks of 20, 1ms's worth",
		"| Team0 busy | 5s | 16.0 MiB | 17.0 MiB | 0.40% | 2.00 | 3 |",
		"What it means:", "What bounds it:",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	for _, unwanted := range []string{"Quick mode", "was busy", "Only some sections"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("markdown of a full run on an idle machine has %q", unwanted)
		}
	}
	busyRes := sampleResults()
	busyRes.Machine.LoadBefore = "1.50 1.00 0.50"
	if md := renderMarkdown(busyRes); !strings.Contains(md, "The machine was busy") {
		t.Error("markdown does not say that a load of 1.5 on 2 CPUs is busy")
	}
	if t.Failed() {
		t.Logf("markdown:\n%s", md)
	}
}

// TestRenderMarkdownSomeSections renders a run of one section only.
func TestRenderMarkdownSomeSections(t *testing.T) {
	res := sampleResults()
	res.Throughput, res.Failover, res.Control = nil, nil, nil
	res.Settings.Sections = []string{"pps"}
	md := renderMarkdown(res)
	if !strings.Contains(md, "Only some sections were measured: pps.") || !strings.Contains(md, "## Small packets") {
		t.Errorf("markdown lacks the pps section or says it is partial:\n%s", md)
	}
	for _, unwanted := range []string{"## TCP throughput", "## Failover", "## Control plane", "TCP, 1 flow"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("markdown of a pps run has %q", unwanted)
		}
	}
}

func TestRenderJSON(t *testing.T) {
	want := sampleResults()
	b, err := renderJSON(want)
	if err != nil {
		t.Fatal(err)
	}
	var got Results
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Failover.Bonds[0].MedianOutageUs != want.Failover.Bonds[0].MedianOutageUs || len(got.Throughput.Cases) != 4 ||
		got.Throughput.Cases[0].Ratio != want.Throughput.Cases[0].Ratio || !got.Date.Equal(want.Date) ||
		got.PPS.Directions[1].Ratio != want.PPS.Directions[1].Ratio || got.Control.Sizes[2].Members != 32 {
		t.Errorf("round trip: got %+v", got)
	}
}

func TestChartSVG(t *testing.T) {
	steps := func(from int64, n int) []int64 {
		var at []int64
		for i := range n {
			at = append(at, from+int64(i)*1000)
		}
		return at
	}
	f := &Failover{PPS: 50000, Bonds: []BondFailover{
		{Bond: "team", Trace: &Trace{Pull: 3, OutageUs: 420, Seqs: 50, AtUs: steps(-5200, 8), Counts: []uint32{50, 50, 50, 50, 50, 29, 50, 50}}},
		{Bond: "ovs", Trace: &Trace{Pull: 7, OutageUs: 2600, Seqs: 50, AtUs: steps(-5100, 9), Counts: []uint32{50, 50, 50, 50, 50, 10, 0, 0, 50}}},
	}}
	svg := failoverChart(f).svg()
	// One line per bond, their legends, the pull's mark and the axes'
	// labels.
	if n := elements(t, svg, "polyline"); n != 2 {
		t.Errorf("%d polylines, want 2", n)
	}
	for _, want := range []string{"team (pull 3, outage 420 µs)", "OVS bond (pull 7, outage 2600 µs)", "cable pulled",
		"ms from the pull, when the packets were sent", "delivered, % of sent", ">-4<", ">0<", ">2<", ">100<",
		// The team's sixth block, 29 of 50 packets, sent from -0.2 ms; the
		// x axis spans -5.2 to 3.9 ms, the y axis 0 to 110%.
		fmt.Sprintf("%.1f,%.1f", 70+(-0.2+5.2)/(3.9+5.2)*670, 50+280-58.0/110*280)} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(svg)
	}
}

// elements checks that svg is well-formed XML and counts its elements
// called name.
func elements(t *testing.T, svg, name string) int {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("svg is not well-formed: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == name {
			n++
		}
	}
}

func TestBarsSVG(t *testing.T) {
	svg := throughputBars(sampleResults().Throughput).svg()
	// A white background, the frame, and a bar per case and path.
	if n := elements(t, svg, "rect"); n != 2+4*3 {
		t.Errorf("%d rects, want %d", n, 2+4*3)
	}
	for _, want := range []string{"TCP throughput", "Gbit/s", ">team<", ">plain NIC<", ">OVS bond<",
		">1 flow, host → peer<", ">8 flows, peer → host<", ">17.0<", ">1.5<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(svg)
	}
}

func TestEmptyChart(t *testing.T) {
	svg := chart{title: "nothing"}.svg()
	if elements(t, svg, "polyline") != 0 || strings.Contains(svg, "Inf") || strings.Contains(svg, "NaN") {
		t.Errorf("empty chart:\n%s", svg)
	}
}

func TestWritePlots(t *testing.T) {
	dir := t.TempDir()
	res := sampleResults()
	res.Throughput.Plot, res.Failover.Plot = "", ""
	res.Failover.Bonds[0].Trace = &Trace{Pull: 1, OutageUs: 412, Seqs: 20, AtUs: []int64{-1000, 0, 1000, 2000}, Counts: []uint32{20, 20, 0, 20}}
	if err := writePlots(filepath.Join(dir, "bench.md"), res); err != nil {
		t.Fatal(err)
	}
	if res.Throughput.Plot != "bench-throughput.svg" || res.Failover.Plot != "bench-failover.svg" {
		t.Errorf("plots %q, %q", res.Throughput.Plot, res.Failover.Plot)
	}
	for _, name := range []string{res.Throughput.Plot, res.Failover.Plot} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Without a trace there is no failover plot to link.
	res = sampleResults()
	res.Throughput, res.Failover.Plot = nil, ""
	if err := writePlots(filepath.Join(dir, "other.md"), res); err != nil || res.Failover.Plot != "" {
		t.Errorf("failover plot %q without traces, %v", res.Failover.Plot, err)
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct {
		span float64
		n    int
		want float64
	}{{30, 8, 5}, {9.1, 8, 2}, {60, 4, 20}, {0.7, 8, 0.1}, {100, 4, 50}, {0, 8, 1}} {
		if got := niceStep(tc.span, tc.n); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("niceStep(%v, %d) = %v, want %v", tc.span, tc.n, got, tc.want)
		}
	}
}

// TestQuickSmoke runs the benchmark of `nicteam-bench -quick` end to end,
// as make test does, and checks that every section measured something and that nothing
// is left behind.
func TestQuickSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a lab and runs the daemon; not a short test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and loads eBPF programs")
	}
	if err := lab.OVSInstalled(); err != nil {
		t.Skipf("the OVS bond needs it: %v", err)
	}
	dir := t.TempDir()
	md := filepath.Join(dir, "bench.md")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	cfg := Quick()
	cfg.Out, cfg.JSONOut = md, filepath.Join(dir, "bench.json")
	cfg.Command = "go test -run TestQuickSmoke ./internal/bench"
	if err := Run(ctx, cfg, &stdout, &stderr); err != nil {
		t.Fatalf("nicteam-bench -quick: %v\n%s", err, stderr.String())
	}
	t.Logf("took %v\n%s", time.Since(start).Round(time.Millisecond), stderr.String())

	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	for _, l := range []LabInfo{res.Lab, res.Balance.Lab} {
		if left := leftovers(l.Prefix, l.Pins); l.Prefix == "" || l.Pins == "" || len(left) > 0 {
			t.Errorf("lab %+v: left behind %v", l, left)
		}
	}
	// One case, each algorithm once.
	if b := res.Balance; len(b.Cases) != 1 || len(b.Runs) != len(balanceAlgorithms) || b.Cases[0].Dynamic.Ratio <= 0 ||
		b.Cases[0].TransportPorts.Ratio <= 0 || b.Runs[0].Segments == 0 {
		t.Errorf("balance: %+v, want one case with a positive run of each algorithm", b)
	}
	if c := res.Contention; c == nil || len(c.Loads) != 2 || len(c.Loads[0].Pulls) != 1 || len(c.Loads[1].Pulls) != 1 ||
		c.Loads[0].MedianUs <= 0 || c.Loads[1].MedianUs <= 0 || c.Ratio <= 0 {
		t.Errorf("contention: %+v, want one pull with a reaction per load", c)
	} else if left := leftovers(c.Lab.Prefix, c.Lab.Pins); c.Lab.Prefix == "" || len(left) > 0 {
		t.Errorf("contention lab %+v: left behind %v", c.Lab, left)
	}
	if res.Throughput == nil || res.PPS == nil || res.Failover == nil || res.Control == nil {
		t.Fatalf("a section is missing: %+v", res)
	}
	if len(res.Throughput.Cases) != len(throughputCases()) {
		t.Fatalf("%d throughput cases, want %d", len(res.Throughput.Cases), len(throughputCases()))
	}
	for _, c := range res.Throughput.Cases {
		if len(c.Runs) != len(paths) || c.TeamGbps <= 0 || c.PlainGbps <= 0 || c.OVSGbps <= 0 || c.Ratio <= 0 || c.OVSRatio <= 0 {
			t.Errorf("%s, %d flows: %+v, want one positive run per path", c.Direction, c.Flows, c)
		}
	}
	for _, d := range res.PPS.Directions {
		if len(d.Runs) != len(ppsPaths) || d.TeamKpps <= 0 || d.PlainKpps <= 0 {
			t.Errorf("pps %s: %+v, want one positive run per path", d.Direction, d)
		}
	}
	if len(res.Failover.Bonds) != 2 {
		t.Fatalf("%d bonds pulled, want 2", len(res.Failover.Bonds))
	}
	for _, bf := range res.Failover.Bonds {
		if len(bf.Pulls) != 1 {
			t.Fatalf("%s: %d pulls, want 1", bf.Bond, len(bf.Pulls))
		}
		// A pull may lose nothing if the bond is quick enough, so the
		// outage itself may be zero; the stream and the trace may not,
		// nor the team daemon's reaction.
		p := bf.Pulls[0]
		if p.Member == "" || p.Sent == 0 || p.Received == 0 || p.SentPPS <= 0 || p.UpAfterMs <= 0 ||
			(bf.Bond == "team" && p.MovedAfterUs <= 0) || bf.Trace == nil {
			t.Errorf("%s pull: %+v, trace %+v; want a member, a stream, a trace and the reaction", bf.Bond, p, bf.Trace)
		}
	}
	for _, plot := range []string{res.Throughput.Plot, res.Failover.Plot} {
		if svg, err := os.ReadFile(filepath.Join(dir, plot)); plot == "" || err != nil || !bytes.HasPrefix(svg, []byte("<svg")) {
			t.Errorf("plot %q: %v", plot, err)
		}
	}
	c := res.Control
	if len(c.Sizes) != len(teamSizes) || c.Idle.RSSKiB == 0 || c.Busy.RSSKiB == 0 || c.Busy.CarriedGbps <= 0 {
		t.Errorf("control: %+v", c)
	}
	for _, s := range c.Sizes {
		if len(s.Runs) != 1 || s.Median.UpMs <= 0 || s.Median.GoneMs <= 0 {
			t.Errorf("team of %d: %+v", s.Members, s)
		}
	}
	report, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Quick mode", "## TCP throughput", "## Small packets", "## Failover outage",
		"## Control plane", "## Failover while the API is hammered", "## Load balancing", res.Throughput.Plot, res.Failover.Plot, res.Machine.Kernel} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
