package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/lab"
)

// throughputTarget is the least team/plain ratio the team should reach.
const throughputTarget = 0.95

// iperfPort is iperf3's default, where the peer's server listens.
const iperfPort = "5201"

// path is one way from the host to the peer.
type path struct {
	name string // as reported: "team" or "plain"
	dst  string // the peer's address routed that way
}

// paths are compared in this order within each run, so neither always
// goes first.
var paths = []path{{"team", lab.PeerIPv4}, {"plain", plainPeer}}

// direction is which end sends the flow.
type direction struct {
	name    string
	reverse bool // iperf3 -R: the peer sends, the host receives
}

// directions: the team's transmit path (egress program, redirect out of a
// member) and its receive path (member ingress program, redirect into the
// team NIC) are different code, so each is measured.
var directions = []direction{
	{"host → peer (the team transmits)", false},
	{"peer → host (the team receives)", true},
}

// offloadFeatures are the ethtool features that decide whether TCP hands
// the stack 64 KiB GSO frames or MTU-sized ones, which is most of the
// difference a path can make to single-flow throughput.
var offloadFeatures = []string{
	"tcp-segmentation-offload", "generic-segmentation-offload",
	"generic-receive-offload", "tx-checksumming", "scatter-gather",
}

// measureThroughput runs iperf3 cfg.runs times per direction and path,
// alternating the paths, and takes the medians.
func measureThroughput(ctx context.Context, e *env, cfg config) (Throughput, error) {
	res := Throughput{Duration: cfg.duration.String(), Omit: cfg.omit.String(), Target: throughputTarget}
	var err error
	if res.Offloads, err = e.offloads(); err != nil {
		return res, err
	}
	srv, err := e.startIperfServer(ctx)
	if err != nil {
		return res, fmt.Errorf("measure throughput: %w", err)
	}
	// The server holds nothing worth a clean exit.
	defer srv.Kill()
	runs := make([][]TCPRun, len(directions))
	for i := range cfg.runs {
		for d, dir := range directions {
			for _, p := range paths {
				before, err := e.txPackets()
				if err != nil {
					return res, fmt.Errorf("measure throughput: %w", err)
				}
				r, err := iperf(ctx, e.lab.Host, p, dir, cfg)
				if err != nil {
					return res, fmt.Errorf("measure throughput: %w", err)
				}
				after, err := e.txPackets()
				if err != nil {
					return res, fmt.Errorf("measure throughput: %w", err)
				}
				if p.name == "team" {
					r.Member = busiest(before, after)
				}
				r.Run = i + 1
				fmt.Fprintf(e.log, "  run %d, %s, %s: %.2f Gbit/s %s\n", r.Run, dir.name, p.name, r.Gbps, r.Member)
				runs[d] = append(runs[d], r)
			}
		}
	}
	for d, dir := range directions {
		res.Directions = append(res.Directions, summarize(dir.name, runs[d]))
	}
	return res, nil
}

// busiest is the member whose transmit counter grew most.
func busiest(before, after map[string]uint64) string {
	best, most := "", uint64(0)
	for _, m := range teamMembers {
		if d := after[m] - before[m]; d > most {
			best, most = m, d
		}
	}
	return best
}

// summarize takes the medians of runs and their ratio.
func summarize(name string, runs []TCPRun) DirectionResult {
	by := map[string][]float64{}
	for _, r := range runs {
		by[r.Path] = append(by[r.Path], r.Gbps)
	}
	d := DirectionResult{
		Direction: name, Runs: runs,
		TeamGbps: median(by["team"]), PlainGbps: median(by["plain"]),
	}
	if d.PlainGbps > 0 {
		d.Ratio = d.TeamGbps / d.PlainGbps
	}
	d.Met = d.Ratio >= throughputTarget
	return d
}

// startIperfServer starts iperf3's server on the peer and waits until it
// listens.
func (e *env) startIperfServer(ctx context.Context) (*lab.Proc, error) {
	srv, err := e.lab.Peer.Start("iperf3", "-s")
	if err != nil {
		return nil, err
	}
	if err := waitListen(ctx, e.lab.Peer, iperfPort); err != nil {
		srv.Kill()
		return nil, fmt.Errorf("iperf3 server: %w: %s", err, srv.Output())
	}
	return srv, nil
}

// iperf runs one iperf3 test from h over p.
func iperf(ctx context.Context, h *lab.Host, p path, dir direction, cfg config) (TCPRun, error) {
	var extra []string
	if dir.reverse {
		extra = append(extra, "-R")
	}
	r, err := runIperf(ctx, h, p.dst, cfg.duration, cfg.omit, extra...)
	r.Path = p.name
	return r, err
}

// runIperf runs iperf3 from h to dst for d (whole seconds) after omit of
// warm-up, with extra arguments.
func runIperf(ctx context.Context, h *lab.Host, dst string, d, omit time.Duration, extra ...string) (TCPRun, error) {
	ctx, cancel := context.WithTimeout(ctx, d+omit+15*time.Second)
	defer cancel()
	args := append([]string{"-c", dst, "-J", "--connect-timeout", "3000",
		"-t", strconv.Itoa(int(d / time.Second)),
		"-O", strconv.Itoa(int(omit / time.Second))}, extra...)
	out, runErr := h.Exec(ctx, "iperf3", args...).Output()
	if err := ctx.Err(); err != nil {
		// Killed half way: what it wrote is not worth parsing.
		return TCPRun{}, fmt.Errorf("iperf3 %s: %w", strings.Join(args, " "), err)
	}
	r, err := parseIperf(out)
	if err != nil {
		return r, fmt.Errorf("iperf3 %s: %w", strings.Join(args, " "), errors.Join(err, runErr))
	}
	return r, nil
}

// iperfReport is the part of iperf3's -J output the benchmark reads.
type iperfReport struct {
	End struct {
		SumSent struct {
			Retransmits int `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// parseIperf reads iperf3 -J output. The rate is the receiver's: what
// arrived, not what was written into the socket.
func parseIperf(out []byte) (TCPRun, error) {
	var rep iperfReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return TCPRun{}, fmt.Errorf("parse iperf3 output: %w", err)
	}
	if rep.Error != "" {
		return TCPRun{}, fmt.Errorf("iperf3: %s", rep.Error)
	}
	bps := rep.End.SumReceived.BitsPerSecond
	if bps <= 0 {
		return TCPRun{}, errors.New("parse iperf3 output: no received rate")
	}
	return TCPRun{Gbps: bps / 1e9, Retransmits: rep.End.SumSent.Retransmits}, nil
}

// waitListen waits until something listens on TCP port in h.
func waitListen(ctx context.Context, h *lab.Host, port string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		out, err := h.Run("ss", "-Hltn", "sport = :"+port)
		if err == nil && strings.TrimSpace(out) != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for a listener on port %s: %w", port, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// offloads reads the offload features of the team NIC, a member and the
// plain NIC.
func (e *env) offloads() ([]Offloads, error) {
	var all []Offloads
	for _, ifname := range []string{teamName, teamMembers[0], plainNIC} {
		out, err := e.lab.Host.Run("ethtool", "-k", ifname)
		if err != nil {
			return nil, fmt.Errorf("read offloads: %w", err)
		}
		all = append(all, Offloads{Interface: ifname, Features: parseOffloads(out, offloadFeatures)})
	}
	return all, nil
}

// parseOffloads picks the features named in want out of `ethtool -k`
// output ("name: on [fixed]"); a feature ethtool did not list is absent.
func parseOffloads(out string, want []string) map[string]string {
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	got := map[string]string{}
	for line := range strings.Lines(out) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && wanted[name] {
			got[name] = strings.TrimSpace(val)
		}
	}
	return got
}
