package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/lab"
)

// ppsPayload is the UDP payload of the small-packet figure: 64 bytes, a
// 106-byte Ethernet frame.
const ppsPayload = 64

// ppsPaths: the small-packet figure is the team's per-packet cost, so it
// compares the team with the plain NIC only.
var ppsPaths = []path{teamPath, plainPath}

// PPS is the small-packet figure: how many 64-byte UDP datagrams per
// second get through the team and through the plain NIC.
type PPS struct {
	Tool         string         `json:"tool"` // the sender and receiver, as run
	PayloadBytes int            `json:"payloadBytes"`
	Duration     string         `json:"duration"` // of each run
	Directions   []PPSDirection `json:"directions"`
}

// PPSDirection compares the paths in one direction.
type PPSDirection struct {
	Direction     string   `json:"direction"`
	Runs          []UDPRun `json:"runs"` // in the order run, paths alternating
	TeamKpps      float64  `json:"teamKpps"`
	PlainKpps     float64  `json:"plainKpps"`
	Ratio         float64  `json:"ratio"`         // team / plain medians, received
	TeamSentKpps  float64  `json:"teamSentKpps"`  // median
	PlainSentKpps float64  `json:"plainSentKpps"` // median
}

// UDPRun is one iperf3 UDP test.
type UDPRun struct {
	Run          int     `json:"run"`
	Path         string  `json:"path"` // team or plain
	SentKpps     float64 `json:"sentKpps"`
	ReceivedKpps float64 `json:"receivedKpps"`
}

// ppsTool is how the small-packet figure is measured: iperf3 sending
// 64-byte datagrams as fast as it can (-b 0), counting at the receiver.
var ppsTool = "iperf3 -u -l " + strconv.Itoa(ppsPayload) + " -b 0"

// measurePPS runs the small-packet test cfg.Runs times per direction and
// path, alternating the paths, and takes the medians. Each run lasts
// cfg.Duration; UDP has no slow start to discard.
func measurePPS(ctx context.Context, e *env, cfg Config) (*PPS, error) {
	srv, err := e.iperfServer(ctx)
	if err != nil {
		return nil, fmt.Errorf("measure pps: %w", err)
	}
	defer srv.Kill()
	res := &PPS{Tool: ppsTool, PayloadBytes: ppsPayload, Duration: cfg.Duration.String()}
	runs := make([][]UDPRun, len(directions))
	for i := range cfg.Runs {
		for d, dir := range directions {
			for k := range ppsPaths {
				p := ppsPaths[(i+k)%len(ppsPaths)]
				r, err := udpFlood(ctx, e.lab.Host, p, dir, cfg.Duration)
				if err != nil {
					return nil, fmt.Errorf("measure pps: %w", err)
				}
				r.Run = i + 1
				fmt.Fprintf(e.log, "  run %d, %s, %s: %.0f kpps received of %.0f sent\n", r.Run, dir.name, p.name, r.ReceivedKpps, r.SentKpps)
				runs[d] = append(runs[d], r)
			}
		}
	}
	for d, dir := range directions {
		res.Directions = append(res.Directions, summarizePPS(dir.name, runs[d]))
	}
	return res, nil
}

// udpFlood runs one iperf3 UDP test of small packets from h over p.
func udpFlood(ctx context.Context, h *lab.Host, p path, dir direction, d time.Duration) (UDPRun, error) {
	args := []string{"-c", p.dst, "-J", "--connect-timeout", "3000", "-u", "-b", "0",
		"-l", strconv.Itoa(ppsPayload), "-t", strconv.Itoa(int(d / time.Second))}
	if dir.reverse {
		args = append(args, "-R")
	}
	r, err := runIperf(ctx, h, args, d, parseUDP)
	r.Path = p.name
	return r, err
}

// parseUDP reads iperf3 -J output of a UDP test: the packets sent, and of
// them those the receiver did not report lost, per second of the test.
func parseUDP(out []byte) (UDPRun, error) {
	rep, err := decodeIperf(out)
	if err != nil {
		return UDPRun{}, err
	}
	sent, recv := rep.End.SumSent, rep.End.SumReceived
	if sent.Seconds <= 0 || recv.Seconds <= 0 || recv.Packets == 0 || recv.LostPackets > recv.Packets {
		return UDPRun{}, errors.New("parse iperf3 output: no UDP packet counts")
	}
	return UDPRun{
		SentKpps:     float64(sent.Packets) / sent.Seconds / 1e3,
		ReceivedKpps: float64(recv.Packets-recv.LostPackets) / recv.Seconds / 1e3,
	}, nil
}

// summarizePPS takes the medians of runs and their ratio.
func summarizePPS(name string, runs []UDPRun) PPSDirection {
	recv, sent := map[string][]float64{}, map[string][]float64{}
	for _, r := range runs {
		recv[r.Path] = append(recv[r.Path], r.ReceivedKpps)
		sent[r.Path] = append(sent[r.Path], r.SentKpps)
	}
	d := PPSDirection{
		Direction: name, Runs: runs,
		TeamKpps: median(recv["team"]), PlainKpps: median(recv["plain"]),
		TeamSentKpps: median(sent["team"]), PlainSentKpps: median(sent["plain"]),
	}
	if d.PlainKpps > 0 {
		d.Ratio = d.TeamKpps / d.PlainKpps
	}
	return d
}

// writePPS is the small-packet section of the report.
func writePPS(b *strings.Builder, p *PPS, cpus int) {
	b.WriteString("## Small packets\n\n")
	fmt.Fprintf(b, "`%s`: iperf3 sends %d-byte UDP datagrams (%d-byte frames) as fast as it can for %s per run, "+
		"through the team and through the plain NIC back to back in each iteration; the rate is of the "+
		"datagrams the receiver got, per second. The sender gets further ahead of the receiver than the "+
		"path lets through, and the surplus is dropped at the receiving socket, so *sent* is shown too.\n\n",
		p.Tool, p.PayloadBytes, p.PayloadBytes+8+20+14, p.Duration)
	for _, d := range p.Directions {
		fmt.Fprintf(b, "### %s\n\n", d.Direction)
		b.WriteString("| run | team kpps received | of sent | plain kpps received | of sent |\n|---|---|---|---|---|\n")
		for _, g := range groupRuns(d.Runs, func(r UDPRun) (int, string) { return r.Run, r.Path }) {
			t, pl := g["team"], g["plain"]
			fmt.Fprintf(b, "| %d | %.0f | %.0f | %.0f | %.0f |\n", t.Run, t.ReceivedKpps, t.SentKpps, pl.ReceivedKpps, pl.SentKpps)
		}
		fmt.Fprintf(b, "| **median** | **%.0f** | %.0f | **%.0f** | %.0f |\n\n", d.TeamKpps, d.TeamSentKpps, d.PlainKpps, d.PlainSentKpps)
		fmt.Fprintf(b, "team / plain = **%.3f**.\n\n", d.Ratio)
	}
	fmt.Fprintf(b, "What it means: for traffic of small packets (DNS, VoIP, telemetry, TCP ACKs), the team "+
		"delivers %s of the packet rate a plain NIC does. Unlike TCP's 64 KiB GSO frames, each of these "+
		"frames runs the team's eBPF program and redirect on its own, so this is where a per-frame cost "+
		"would show.\n\n", roleText(p.Directions, func(d PPSDirection) string { return d.Direction },
		func(d PPSDirection) string { return fmt.Sprintf("%.2f×", d.Ratio) }))
	fmt.Fprintf(b, "What bounds it: the CPU. Sender, receiver and the softirq work of veths, bridge and "+
		"programs share %d cores, and one iperf3 thread on each end does a system call per datagram, so "+
		"the applications, not the paths, set most of the rate; the ratio, from alternated runs, is what "+
		"carries over. A NIC would add its own per-packet limit to both paths alike.\n\n", cpus)
}
