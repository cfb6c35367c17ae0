package bench

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

// The targets: a team costs a flow at most 3% against a plain NIC, and
// beats an Open vSwitch userspace bond tenfold.
const (
	throughputTarget = 0.97
	ovsTarget        = 10
)

// iperfPort is iperf3's default, where the peer's server listens.
const iperfPort = "5201"

// path is one way from the host to the peer.
type path struct {
	name string // as reported: "team", "plain" or "ovs"
	dst  string // the peer's address routed that way
	// members are the NICs the path may leave by, whose transmit counters
	// say which carried a run; none for the plain NIC.
	members []string
}

// The paths: the team, the plain NIC, the OVS bond.
var (
	teamPath  = path{"team", lab.PeerIPv4, teamMembers}
	plainPath = path{"plain", plainPeer, nil}
	ovsPath   = path{"ovs", ovsPeer, ovsMembers}
)

// paths are compared back to back in each iteration, starting with a
// different one each time, so none always goes first.
var paths = []path{teamPath, plainPath, ovsPath}

// direction is which end sends the flow.
type direction struct {
	name    string
	role    string // the team's part, for prose
	reverse bool   // iperf3 -R: the peer sends, the host receives
}

// directions: the team's transmit path (egress program, redirect out of a
// member) and its receive path (member ingress program, redirect into the
// team NIC) are different code, so each is measured.
var directions = []direction{
	{"host → peer (the team transmits)", "when the team transmits", false},
	{"peer → host (the team receives)", "when it receives", true},
}

// roleText spells figures with the team's part in each direction, "0.98×
// when the team transmits and 0.97× when it receives"; name is a
// direction's name, as results record it.
func roleText[T any](items []T, name func(T) string, figure func(T) string) string {
	var parts []string
	for _, it := range items {
		role := name(it)
		for _, d := range directions {
			if d.name == role {
				role = d.role
			}
		}
		parts = append(parts, figure(it)+" "+role)
	}
	return strings.Join(parts, " and ")
}

// flowCounts: one flow is what a single connection gets; 8 are enough to
// spread over both members and to keep both cores busy.
var flowCounts = []int{1, 8}

// throughputCase is one row of the comparison: a number of flows in one
// direction.
type throughputCase struct {
	flows int
	dir   direction
}

func throughputCases() []throughputCase {
	var cs []throughputCase
	for _, n := range flowCounts {
		for _, d := range directions {
			cs = append(cs, throughputCase{n, d})
		}
	}
	return cs
}

// offloadFeatures are the ethtool features that decide whether TCP hands
// the stack 64 KiB GSO frames or MTU-sized ones, which is most of the
// difference a path can make to throughput.
var offloadFeatures = []string{
	"tcp-segmentation-offload", "generic-segmentation-offload",
	"generic-receive-offload", "tx-checksumming", "scatter-gather",
}

// measureThroughput runs iperf3 cfg.Runs times per case and path,
// alternating the paths, and takes the medians.
func measureThroughput(ctx context.Context, e *env, cfg Config) (*Throughput, error) {
	res := &Throughput{Duration: cfg.Duration.String(), Omit: cfg.Omit.String(),
		Target: throughputTarget, OVSTarget: ovsTarget}
	var err error
	if res.Offloads, err = e.offloads(); err != nil {
		return nil, err
	}
	srv, err := e.iperfServer(ctx)
	if err != nil {
		return nil, fmt.Errorf("measure throughput: %w", err)
	}
	// The server holds nothing worth a clean exit.
	defer srv.Kill()
	cases := throughputCases()
	runs := make([][]TCPRun, len(cases))
	for i := range cfg.Runs {
		for c, tc := range cases {
			for k := range paths {
				p := paths[(i+k)%len(paths)]
				r, err := e.iperfRun(ctx, p, tc, cfg)
				if err != nil {
					return nil, fmt.Errorf("measure throughput: %w", err)
				}
				r.Run = i + 1
				fmt.Fprintf(e.log, "  run %d, %s, %s, %s: %.2f Gbit/s %s\n", r.Run, flowsText(tc.flows), tc.dir.name, p.name, r.Gbps, r.Member)
				runs[c] = append(runs[c], r)
			}
		}
	}
	for c, tc := range cases {
		res.Cases = append(res.Cases, summarize(tc, runs[c]))
	}
	return res, nil
}

// iperfRun runs one iperf3 test over p and notes the member that carried
// most of it.
func (e *env) iperfRun(ctx context.Context, p path, tc throughputCase, cfg Config) (TCPRun, error) {
	before, _, err := e.txCounters(p.members)
	if err != nil {
		return TCPRun{}, err
	}
	r, err := iperf(ctx, e.lab.Host, p, tc, cfg)
	if err != nil {
		return r, err
	}
	after, _, err := e.txCounters(p.members)
	if err != nil {
		return r, err
	}
	r.Member, r.Share = busiest(p.members, before, after)
	return r, nil
}

// busiest is the one of members whose transmit counter grew most, and its
// share of their growth; "" for no members.
func busiest(members []string, before, after map[string]uint64) (string, float64) {
	best, most, total := "", uint64(0), uint64(0)
	for _, m := range members {
		d := after[m] - before[m]
		total += d
		if d > most {
			best, most = m, d
		}
	}
	if total == 0 {
		return best, 0
	}
	return best, float64(most) / float64(total)
}

// summarize takes the medians of runs and their ratios.
func summarize(tc throughputCase, runs []TCPRun) ThroughputCase {
	by := map[string][]float64{}
	for _, r := range runs {
		by[r.Path] = append(by[r.Path], r.Gbps)
	}
	c := ThroughputCase{
		Flows: tc.flows, Direction: tc.dir.name, Runs: runs,
		TeamGbps: median(by["team"]), PlainGbps: median(by["plain"]), OVSGbps: median(by["ovs"]),
	}
	if c.PlainGbps > 0 {
		c.Ratio = c.TeamGbps / c.PlainGbps
	}
	if c.OVSGbps > 0 {
		c.OVSRatio = c.TeamGbps / c.OVSGbps
	}
	c.Met = c.Ratio >= throughputTarget
	c.OVSMet = c.OVSRatio >= ovsTarget
	return c
}

// iperf runs one iperf3 TCP test from h over p.
func iperf(ctx context.Context, h *lab.Host, p path, tc throughputCase, cfg Config) (TCPRun, error) {
	args := tcpArgs(p.dst, cfg.Duration, cfg.Omit, tc.flows)
	if tc.dir.reverse {
		args = append(args, "-R")
	}
	r, err := runIperf(ctx, h, args, cfg.Duration+cfg.Omit, parseIperf)
	r.Path = p.name
	return r, err
}

// tcpArgs are iperf3's arguments for flows TCP flows to dst for d (whole
// seconds) after omit of warm-up, with JSON output.
func tcpArgs(dst string, d, omit time.Duration, flows int) []string {
	return []string{"-c", dst, "-J", "--connect-timeout", "3000",
		"-t", strconv.Itoa(int(d / time.Second)),
		"-O", strconv.Itoa(int(omit / time.Second)),
		"-P", strconv.Itoa(flows)}
}

// runIperf runs iperf3 with args (which ask for -J) from h for a test of
// length d and decodes its output with parse.
func runIperf[T any](ctx context.Context, h *lab.Host, args []string, d time.Duration, parse func([]byte) (T, error)) (T, error) {
	var zero T
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	out, runErr := h.Exec(ctx, "iperf3", args...).Output()
	if err := ctx.Err(); err != nil {
		// Killed half way: what it wrote is not worth parsing.
		return zero, fmt.Errorf("iperf3 %s: %w", strings.Join(args, " "), err)
	}
	r, err := parse(out)
	if err != nil {
		return zero, fmt.Errorf("iperf3 %s: %w", strings.Join(args, " "), errors.Join(err, runErr))
	}
	return r, nil
}

// iperfReport is the part of iperf3's -J output the benchmark reads, for
// TCP and UDP tests.
type iperfReport struct {
	End struct {
		SumSent     iperfSum `json:"sum_sent"`
		SumReceived iperfSum `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperfSum is one end's totals. In a UDP test both ends count the
// packets sent, and the receiver those of them that were lost.
type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Retransmits   int     `json:"retransmits"`
	Packets       uint64  `json:"packets"`
	LostPackets   uint64  `json:"lost_packets"`
}

// parseIperf reads iperf3 -J output. The rate is the receiver's: what
// arrived, not what was written into the socket.
func parseIperf(out []byte) (TCPRun, error) {
	rep, err := decodeIperf(out)
	if err != nil {
		return TCPRun{}, err
	}
	bps := rep.End.SumReceived.BitsPerSecond
	if bps <= 0 {
		return TCPRun{}, errors.New("parse iperf3 output: no received rate")
	}
	return TCPRun{Gbps: bps / 1e9, Retransmits: rep.End.SumSent.Retransmits}, nil
}

// decodeIperf decodes iperf3 -J output, or the error it reports.
func decodeIperf(out []byte) (iperfReport, error) {
	var rep iperfReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return rep, fmt.Errorf("parse iperf3 output: %w", err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("iperf3: %s", rep.Error)
	}
	return rep, nil
}

// iperfServer starts an iperf3 server on the peer and waits until it
// listens.
func (e *env) iperfServer(ctx context.Context) (*lab.Proc, error) {
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

// waitListen waits until something listens on TCP port in h.
func waitListen(ctx context.Context, h *lab.Host, port string) error {
	return lab.Poll(ctx, 5*time.Second, 20*time.Millisecond, func(context.Context) (bool, error) {
		out, err := h.Run("ss", "-Hltn", "sport = :"+port)
		if err == nil && strings.TrimSpace(out) != "" {
			return true, nil
		}
		return false, fmt.Errorf("wait for a listener on port %s", port)
	})
}

// offloads reads the offload features of the team NIC, a member, the
// plain NIC, the OVS bridge's port and a bond member on the host, and of
// a switch port facing a bond member (see ovsOffloads).
func (e *env) offloads() ([]Offloads, error) {
	var all []Offloads
	read := func(run func(...string) (string, error), ifname, label string) error {
		out, err := run("ethtool", "-k", ifname)
		if err != nil {
			return fmt.Errorf("read offloads: %w", err)
		}
		all = append(all, Offloads{Interface: label, Features: parseOffloads(out, offloadFeatures)})
		return nil
	}
	for _, ifname := range []string{teamName, teamMembers[0], plainNIC, ovsBridge, ovsMembers[0]} {
		if err := read(e.lab.Host.Run, ifname, ifname); err != nil {
			return nil, err
		}
	}
	port := e.lab.SwitchPort(e.lab.Host, ovsMembers[0])
	if err := read(e.lab.Switch.Run, port, "switch port "+port); err != nil {
		return nil, err
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
