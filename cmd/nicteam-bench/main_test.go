package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	d := summarize("send", []TCPRun{
		{Run: 1, Path: "team", Gbps: 10}, {Run: 1, Path: "plain", Gbps: 10},
		{Run: 2, Path: "team", Gbps: 9}, {Run: 2, Path: "plain", Gbps: 12},
		{Run: 3, Path: "team", Gbps: 2}, {Run: 3, Path: "plain", Gbps: 11},
	})
	if d.TeamGbps != 9 || d.PlainGbps != 11 || math.Abs(d.Ratio-9.0/11) > 1e-12 || d.Met {
		t.Errorf("got %+v, want medians 9 and 11, ratio 0.818, not met", d)
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
	f := Failover{TargetUs: 1000, Pulls: []Pull{
		{OutageUs: 400, Missing: 8, LostUs: 400, MovedAfterUs: 350},
		{OutageUs: 9000, Missing: 180, LostUs: 9000, MovedAfterUs: 8800, RestoreOutages: 1},
		{OutageUs: 600, Missing: 12, LostUs: 600, MovedAfterUs: 500},
	}}
	f.summarize()
	if f.MedianOutageUs != 600 || f.MaxOutageUs != 9000 || f.MedianMissing != 12 || f.MaxMissing != 180 ||
		f.MedianLostUs != 600 || f.MedianMovedAfterUs != 500 || !f.Met || f.RestoreOutages != 1 || f.RestoreMet {
		t.Errorf("got %+v", f)
	}
}

func TestSentRate(t *testing.T) {
	if got := sentRate("sent 30000 packets in 1.5s (20001 pps)\n"); got != 20001 {
		t.Errorf("sentRate = %v, want 20001", got)
	}
	if got := sentRate("garbage"); got != 0 {
		t.Errorf("sentRate of garbage = %v, want 0", got)
	}
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	cfg, err := parseFlags([]string{"-o", "docs/benchmarks.md"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.runs != defaultRuns || cfg.pulls != defaultPulls || cfg.pps != defaultPPS || cfg.balanceRuns != defaultBalanceRuns ||
		cfg.duration != defaultDuration || cfg.omit != defaultOmit || cfg.jsonOut != "docs/benchmarks.json" || cfg.only != "" {
		t.Errorf("defaults: got %+v", cfg)
	}
	cfg, err = parseFlags([]string{"-quick", "-pulls", "3"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.runs != quickRuns || cfg.pulls != 3 || cfg.duration != quickDuration || cfg.omit != 0 || cfg.jsonOut != "" ||
		cfg.balanceRuns != quickBalanceRuns {
		t.Errorf("-quick -pulls 3: got %+v", cfg)
	}
	for _, bad := range [][]string{
		{"-runs", "0"}, {"-pulls", "0"}, {"-pps", "10"}, {"-duration", "1500ms"}, {"extra"},
		{"-balance-runs", "0"}, {"-only", "throughput"},
	} {
		if _, err := parseFlags(bad, &stderr); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
}

// sampleResults is a run's results as the renderers get them.
func sampleResults() *Results {
	res := &Results{
		Command: "go run ./cmd/nicteam-bench -o docs/benchmarks.md",
		Date:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Machine: Machine{Kernel: "6.18.0", CPU: "Test CPU", CPUs: 2, MemoryGiB: 8, Go: "go1.26", Iperf3: "iperf 3.12",
			LoadBefore: "0.10 0.20 0.30", LoadAfter: "1.00 0.50 0.40"},
		Settings: Settings{Runs: 2, Pulls: 2, PPS: 20000, Duration: "3s"},
		Throughput: Throughput{Duration: "3s", Omit: "1s", Target: throughputTarget,
			Offloads: []Offloads{{Interface: "Team0", Features: map[string]string{"tcp-segmentation-offload": "on"}}}},
		Failover: Failover{PPS: 20000, Down: "500ms", TargetUs: 1000, Pulls: []Pull{
			{Pull: 1, Member: "eth1", OutageUs: 412, Missing: 8, LostUs: 400, MovedAfterUs: 380, UpAfterMs: 2.5, SentPPS: 20001},
			{Pull: 2, Member: "eth2", OutageUs: 1730, Missing: 35, LostUs: 1750, MovedAfterUs: 1600, UpAfterMs: 3, SentPPS: 19998},
		}},
	}
	for _, dir := range directions {
		res.Throughput.Directions = append(res.Throughput.Directions, summarize(dir.name, []TCPRun{
			{Run: 1, Path: "team", Gbps: 16.5, Retransmits: 12, Member: "eth2"}, {Run: 1, Path: "plain", Gbps: 17.25},
			{Run: 2, Path: "team", Gbps: 17.5, Member: "eth1"}, {Run: 2, Path: "plain", Gbps: 16.75, Retransmits: 3},
		}))
	}
	res.Failover.summarize()
	return res
}

func TestRenderMarkdown(t *testing.T) {
	md := renderMarkdown(sampleResults())
	for _, want := range []string{
		"`go run ./cmd/nicteam-bench -o docs/benchmarks.md`",
		"2026-01-02 03:04:05 UTC",
		"| kernel | 6.18.0 |", "| CPU | Test CPU |", "| CPUs (nproc) | 2 |", "| memory | 8.0 GiB |",
		"0.10 0.20 0.30 → 1.00 0.50 0.40",
		"### host → peer (the team transmits)", "### peer → host (the team receives)",
		"| 1 | 16.50 | eth2 | 17.25 | 12 | 0 |",
		"| 2 | 17.50 | eth1 | 16.75 | 0 | 3 |",
		"| **median** | **17.00** | | **17.00** | | |",
		"eth1 1 runs, median 17.50 Gbit/s (1.029 of plain); eth2 1 runs, median 16.50 Gbit/s (0.971 of plain);",
		"team / plain = **1.000**; target ≥ 0.95: met.",
		"| Team0 | on | – |",
		"| 1 | eth1 | 412 | 8 | 400 | 380 | 0 | 2.5 | 20001 |",
		"| **median** | | **1071** | **22** | **1075** | **990** | | | |",
		"| **max** | | **1730** | **35** |",
		"target ≤ 1000 µs: **not met**",
		"Outages on restore: 0; target 0: met. The sender held its rate in every pull.",
		"What it means:", "What bounds it:",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	for _, unwanted := range []string{"Quick mode", "was busy"} {
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
	if got.Failover.MedianOutageUs != want.Failover.MedianOutageUs || len(got.Throughput.Directions) != 2 ||
		got.Throughput.Directions[0].Ratio != want.Throughput.Directions[0].Ratio || !got.Date.Equal(want.Date) {
		t.Errorf("round trip: got %+v", got)
	}
}

// TestQuickSmoke runs `nicteam-bench -quick` end to end, as make test
// does, and checks that it measured something and left nothing behind.
func TestQuickSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a lab and runs the daemon; not a short test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and loads eBPF programs")
	}
	dir := t.TempDir()
	md := filepath.Join(dir, "bench.md")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if err := run(ctx, []string{"-quick", "-o", md}, &stdout, &stderr); err != nil {
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
	if len(res.Throughput.Directions) != len(directions) {
		t.Fatalf("%d throughput directions, want %d", len(res.Throughput.Directions), len(directions))
	}
	for _, d := range res.Throughput.Directions {
		if len(d.Runs) != len(paths) || d.TeamGbps <= 0 || d.PlainGbps <= 0 || d.Ratio <= 0 {
			t.Errorf("%s: %+v, want one positive run per path", d.Direction, d)
		}
	}
	if len(res.Failover.Pulls) != 1 {
		t.Fatalf("%d pulls, want 1", len(res.Failover.Pulls))
	}
	// A pull may lose nothing if the daemon is quick enough, so the outage
	// itself may be zero; the stream and the reaction may not.
	p := res.Failover.Pulls[0]
	if p.Member == "" || p.Sent == 0 || p.Received == 0 || p.SentPPS <= 0 || p.MovedAfterUs <= 0 || p.UpAfterMs <= 0 {
		t.Errorf("pull: %+v, want a member, a stream and the daemon's reaction", p)
	}
	report, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Quick mode", "## Single-flow TCP throughput", "## Failover outage", "## Load balancing", res.Machine.Kernel} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
