package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/team"
)

// The load-balancing figure: how much of its members' bandwidth a team
// gives several TCP flows, under TransportPorts (a flow stays where its
// hash put it) and Dynamic (the daemon moves buckets by load and flows
// follow at their pauses), and what the moves cost in reordering. Every
// host NIC is held to a fixed rate by a token bucket, far below what the
// machine can push through a team, so the members, not the CPU, are the
// bottleneck, and a member left idle shows as a lost fraction of the sum.

// Each member's shaping: tbf on its egress (the team → peer direction).
// 4 × 200 Mbit/s is a few percent of what a 2-core machine pushes through
// a team unshaped (15-25 Gbit/s here), and one TCP flow fills 200 Mbit/s
// with this bucket. burst must hold more than a frame: tbf cuts larger GSO
// frames into segments, so TCP's frames need not fit. The queue, rate ×
// latency = 1.25 MB, absorbs the start of 8 BBR flows on 2 members without
// drops, which would blur reordering with loss (10 and 20 ms dropped).
const (
	balanceRateMbit = 200
	balanceBurst    = "32kb"
	balanceLatency  = "50ms"
)

// balanceTarget is the least aggregate / ceiling Dynamic should reach when
// there are at least as many flows as members.
const balanceTarget = 0.95

// reorderSlack is how many more out-of-order segments per 1000 Dynamic may
// show than TransportPorts and still count as no worse: the lab's own
// noise. veth hands each frame to the backlog of the CPU that sent it, so
// frames of a flow that never changes member still arrive out of order
// now and then (up to 2 per 1000 in single TransportPorts runs, 0.01 in
// their medians).
const reorderSlack = 0.1

// Runs of the figure. A run is 2 s after -omit's warm-up (the rebalancer
// acts within its first 250-500 ms): 6 cases × 2 algorithms × 3 runs took
// 114 s in the committed docs/benchmarks.json (balance.seconds).
const (
	defaultBalanceRuns = 3
	balanceDuration    = 2 * time.Second
	quickBalanceRuns   = 1
)

// The cases measured; -quick measures the first of each.
var (
	balanceMembers    = []int{2, 4}
	balanceFlows      = []int{2, 4, 8}
	balanceAlgorithms = []team.Algorithm{team.TransportPorts, team.Dynamic}
)

// Reordering counters read from `nstat -az` in a namespace. The receiver's
// own view is TcpExtTCPOFOQueue (segments it queued out of order); the
// sender infers reordering from SACKs and timestamps (TcpExtTCPSACKReorder,
// TcpExtTCPTSReorder, TcpExtTCPRenoReorder). The balance benchmark reports
// both: receiverReorder as "the reordering the receiver saw".
var reorderCounters = []string{
	"TcpExtTCPOFOQueue", "TcpExtTCPSACKReorder", "TcpExtTCPTSReorder", "TcpExtTCPRenoReorder",
}

// receiverReorder is the counter reported as the reordering the receiver saw.
const receiverReorder = "TcpExtTCPOFOQueue"

// segmentsOut counts the segments the sender sent, the denominator of the
// receiver's reordering. Not the receiver's TcpInSegs: it counts a batch
// that GRO merged once, and how much GRO merges varies with the flows.
const segmentsOut = "TcpOutSegs"

// Balance is the load-balancing figure.
type Balance struct {
	Lab LabInfo `json:"lab"` // its own, with up to 4 members
	// RateMbit is each member's token-bucket rate on the wire;
	// CeilingMbit the TCP payload that leaves in it (payloadFraction):
	// what the team can give its flows per member.
	RateMbit    float64 `json:"rateMbit"`
	CeilingMbit float64 `json:"ceilingMbit"`
	Burst       string  `json:"burst"`
	Latency     string  `json:"latency"`
	Duration    string  `json:"duration"` // of each run
	Omit        string  `json:"omit"`     // warm-up iperf3 discarded
	RunsPerCase int     `json:"runsPerCase"`
	// CongestionControl is the sender's TCP congestion control: how
	// flows fill a member's queue decides how much a move reorders.
	CongestionControl string        `json:"congestionControl"`
	Target            float64       `json:"target"`
	ReorderSlack      float64       `json:"reorderSlack"` // per 1000 segments
	Cases             []BalanceCase `json:"cases"`
	Runs              []BalanceRun  `json:"runs"` // in the order run
	// Met: Dynamic reached Target in every case with flows ≥ members;
	// ReorderMet: it reordered no more than TransportPorts in every case.
	Met        bool    `json:"met"`
	ReorderMet bool    `json:"reorderMet"`
	Seconds    float64 `json:"seconds"` // the figure's wall time
}

// BalanceCase compares the algorithms at one number of members and flows.
type BalanceCase struct {
	Members int `json:"members"`
	Flows   int `json:"flows"`
	// Best is the most any placement reaches: flows fill at most one
	// member each.
	Best float64 `json:"best"`
	// Expected is TransportPorts' average under a uniform hash
	// (hashExpectation).
	Expected       float64     `json:"expected"`
	TransportPorts AlgoSummary `json:"transportPorts"`
	Dynamic        AlgoSummary `json:"dynamic"`
	TargetApplies  bool        `json:"targetApplies"` // flows ≥ members
	Met            bool        `json:"met"`           // Dynamic ≥ target, where it applies
	ReorderMet     bool        `json:"reorderMet"`
}

// AlgoSummary is the medians of one algorithm's runs in a case.
type AlgoSummary struct {
	Runs  int     `json:"runs"`
	Mbit  float64 `json:"mbit"`  // aggregate TCP payload received
	Ratio float64 `json:"ratio"` // Mbit / (members × CeilingMbit)
	// OFOPer1000 is the receiver's out-of-order queueings per 1000
	// segments sent.
	OFOPer1000    float64 `json:"ofoPer1000"`
	SenderReorder float64 `json:"senderReorder"` // reorderings the sender detected
	Retransmits   float64 `json:"retransmits"`
	FlowletMoves  float64 `json:"flowletMoves"` // flows the datapath moved
}

// BalanceRun is one iperf3 test through a freshly created team.
type BalanceRun struct {
	Run         int     `json:"run"`
	Members     int     `json:"members"`
	Flows       int     `json:"flows"`
	Algorithm   string  `json:"algorithm"`
	Mbit        float64 `json:"mbit"` // as received
	Ratio       float64 `json:"ratio"`
	Retransmits int     `json:"retransmits"`
	// Segments is the sender's TcpOutSegs and OFO the receiver's
	// TcpExtTCPOFOQueue over the whole run, warm-up included: Dynamic
	// moves flows then.
	Segments      uint64 `json:"segments"`
	OFO           uint64 `json:"ofo"`
	SenderReorder uint64 `json:"senderReorder"` // sum of the sender's other reorderCounters
	FlowletMoves  uint64 `json:"flowletMoves"`
	// MemberMbit is what each member sent, averaged over the whole run.
	MemberMbit []float64 `json:"memberMbit"`
}

// payloadFraction is the share of a full-sized TCP frame on the wire that
// is payload: tbf counts whole Ethernet frames (MTU + 14 bytes of header),
// and each carries MTU - 52 bytes (IPv4, TCP and its timestamp option) of
// what iperf3 counts. One flow through one 200 Mbit/s member gets 191.3.
func payloadFraction(mtu int) float64 {
	return float64(mtu-52) / float64(mtu+14)
}

// memberMTU is the members' MTU in the lab (veth's default).
const memberMTU = 1500

// measureBalance builds the figure's own lab (with binaries from bin, or
// built if bin is ""), runs every case with each algorithm cfg's number of
// times, alternating the algorithms, and removes the lab.
func measureBalance(ctx context.Context, cfg Config, bin string, log io.Writer) (_ *Balance, err error) {
	start := time.Now()
	res := &Balance{
		RateMbit: balanceRateMbit, CeilingMbit: balanceRateMbit * payloadFraction(memberMTU),
		Burst: balanceBurst, Latency: balanceLatency,
		Duration: cfg.balanceDuration().String(), Omit: cfg.Omit.String(), RunsPerCase: cfg.BalanceRuns,
		Target: balanceTarget, ReorderSlack: reorderSlack,
	}
	members, flows := balanceMembers, balanceFlows
	if cfg.Quick {
		members, flows = members[:1], flows[:1]
	}
	nics := slices.Max(members)
	e, err := newEnvWith(ctx, bin, log, nics, func(e *env, _ context.Context) error { return e.shapeNICs(nics) })
	if err != nil {
		return nil, fmt.Errorf("measure balance: %w", err)
	}
	defer func() {
		if cerr := e.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("measure balance: clean up: %w", cerr))
		}
	}()
	res.Lab = LabInfo{Prefix: e.lab.Prefix, Pins: e.pins}
	if res.CongestionControl, err = e.lab.Host.Run("sysctl", "-n", "net.ipv4.tcp_congestion_control"); err != nil {
		return nil, fmt.Errorf("measure balance: %w", err)
	}
	res.CongestionControl = strings.TrimSpace(res.CongestionControl)
	srv, err := e.iperfServer(ctx)
	if err != nil {
		return nil, fmt.Errorf("measure balance: %w", err)
	}
	defer srv.Kill()
	fmt.Fprintf(log, "balance: lab %s, %d runs per case and algorithm, members at %d Mbit/s\n", e.lab.Prefix, cfg.BalanceRuns, balanceRateMbit)
	for i := range cfg.BalanceRuns {
		for _, m := range members {
			for _, f := range flows {
				for _, alg := range alternate(balanceAlgorithms, i) {
					r, err := e.balanceRun(ctx, cfg, m, f, alg, res.CeilingMbit)
					if err != nil {
						return nil, fmt.Errorf("measure balance: %d members, %d flows, %v: %w", m, f, alg, err)
					}
					r.Run = i + 1
					fmt.Fprintf(log, "  run %d, %d members, %d flows, %s: %.1f Mbit/s (%.3f), out of order %d of %d segments, %d retransmits, members %s\n",
						r.Run, m, f, r.Algorithm, r.Mbit, r.Ratio, r.OFO, r.Segments, r.Retransmits, mbitList(r.MemberMbit))
					res.Runs = append(res.Runs, r)
				}
			}
		}
	}
	res.summarize()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// balanceDuration is the length of each of the figure's runs.
func (c Config) balanceDuration() time.Duration {
	if c.Quick {
		return quickDuration
	}
	return balanceDuration
}

// alternate returns algs rotated by run, so no algorithm always goes first
// and noise that follows a pattern hits each in turn.
func alternate(algs []team.Algorithm, run int) []team.Algorithm {
	k := run % len(algs)
	return append(slices.Clone(algs[k:]), algs[:k]...)
}

// shapeNICs holds the host NICs eth1..eth<n> to the figure's rate. The
// qdiscs stay while teams come and go, and go with the lab.
func (e *env) shapeNICs(n int) error {
	for i := 1; i <= n; i++ {
		if _, err := e.lab.Host.Run("tc", "qdisc", "replace", "dev", nicName(i), "root", "tbf",
			"rate", strconv.Itoa(balanceRateMbit)+"mbit", "burst", balanceBurst, "latency", balanceLatency); err != nil {
			return fmt.Errorf("shape %s: %w", nicName(i), err)
		}
	}
	return nil
}

func nicName(i int) string { return fmt.Sprintf("eth%d", i) }

// balanceRun creates the team of eth1..eth<members> with alg, sends flows
// TCP flows through it to the peer, and removes it: each run starts from
// the hash's own placement, not from the one a previous run left.
func (e *env) balanceRun(ctx context.Context, cfg Config, members, flows int, alg team.Algorithm, ceiling float64) (BalanceRun, error) {
	r := BalanceRun{Members: members, Flows: flows, Algorithm: alg.String()}
	nics := make([]string, members)
	for i := range nics {
		nics[i] = nicName(i + 1)
	}
	if err := e.createTeam(ctx, nics, alg); err != nil {
		return r, err
	}
	before, err := e.balanceCounters(ctx)
	if err != nil {
		return r, errors.Join(err, e.removeTeam(ctx))
	}
	t0 := time.Now()
	tcp, err := runIperf(ctx, e.lab.Host, tcpArgs(lab.PeerIPv4, cfg.balanceDuration(), cfg.Omit, flows), cfg.balanceDuration()+cfg.Omit, parseIperf)
	if err != nil {
		return r, errors.Join(err, e.removeTeam(ctx))
	}
	elapsed := time.Since(t0)
	after, err := e.balanceCounters(ctx)
	if err := errors.Join(err, e.removeTeam(ctx)); err != nil {
		return r, err
	}
	r.Mbit, r.Retransmits = tcp.Gbps*1000, tcp.Retransmits
	r.Ratio = r.Mbit / (float64(members) * ceiling)
	r.fill(before, after, nics, elapsed)
	return r, nil
}

func (e *env) removeTeam(ctx context.Context) error {
	if err := e.client.RemoveTeam(ctx, teamName); err != nil {
		return fmt.Errorf("remove team: %w", err)
	}
	return nil
}

// balanceSnapshot is what a run reads before and after the flows.
type balanceSnapshot struct {
	receiver, sender map[string]uint64 // nstat counters
	flowletMoves     uint64
	txBytes          map[string]uint64 // by member, as the team counted
}

func (e *env) balanceCounters(ctx context.Context) (balanceSnapshot, error) {
	var s balanceSnapshot
	var err error
	if s.receiver, err = e.nstat(ctx, e.lab.Peer); err != nil {
		return s, err
	}
	if s.sender, err = e.nstat(ctx, e.lab.Host); err != nil {
		return s, err
	}
	st, err := e.client.Stats(ctx, teamName)
	if err != nil {
		return s, fmt.Errorf("read team stats: %w", err)
	}
	s.flowletMoves = st.FlowletMoves
	s.txBytes = map[string]uint64{}
	for _, m := range st.Members {
		s.txBytes[m.Name] = m.TxBytes
	}
	return s, nil
}

// fill sets r's counters from the snapshots around it.
func (r *BalanceRun) fill(before, after balanceSnapshot, members []string, elapsed time.Duration) {
	r.OFO = counterDeltas(before.receiver, after.receiver, []string{receiverReorder})[receiverReorder]
	for n, d := range counterDeltas(before.sender, after.sender, append([]string{segmentsOut}, reorderCounters...)) {
		switch n {
		case segmentsOut:
			r.Segments = d
		case receiverReorder:
			// The sender's own out-of-order queue holds ACK-path
			// reordering, not the flows'.
		default:
			r.SenderReorder += d
		}
	}
	r.FlowletMoves = after.flowletMoves - before.flowletMoves
	tx := counterDeltas(before.txBytes, after.txBytes, members)
	r.MemberMbit = make([]float64, len(members))
	for i, m := range members {
		r.MemberMbit[i] = float64(tx[m]) * 8 / elapsed.Seconds() / 1e6
	}
}

// nstat reads h's network counters, all of them, as absolute values. -s
// keeps nstat from updating its history file, and NSTAT_HISTORY points it
// at one of the benchmark's own rather than the user's.
func (e *env) nstat(ctx context.Context, h *lab.Host) (map[string]uint64, error) {
	cmd := h.Exec(ctx, "nstat", "-azs")
	cmd.Env = append(os.Environ(), "NSTAT_HISTORY="+filepath.Join(e.dir, "nstat.history"))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("nstat in %s: %w", h.NS, err)
	}
	return parseNstat(string(out))
}

// summarize groups the runs by case, takes each algorithm's medians and
// judges the targets.
func (b *Balance) summarize() {
	b.Cases = nil
	idx := map[[2]int]int{}
	for _, r := range b.Runs {
		k := [2]int{r.Members, r.Flows}
		if _, ok := idx[k]; !ok {
			idx[k] = len(b.Cases)
			b.Cases = append(b.Cases, BalanceCase{
				Members: r.Members, Flows: r.Flows, TargetApplies: r.Flows >= r.Members,
				Best:     min(float64(r.Flows)/float64(r.Members), 1),
				Expected: hashExpectation(r.Members, r.Flows),
			})
		}
	}
	b.Met, b.ReorderMet = true, true
	for i := range b.Cases {
		c := &b.Cases[i]
		c.TransportPorts = summarizeAlgo(b.Runs, c.Members, c.Flows, team.TransportPorts)
		c.Dynamic = summarizeAlgo(b.Runs, c.Members, c.Flows, team.Dynamic)
		c.Met = !c.TargetApplies || c.Dynamic.Ratio >= b.Target
		c.ReorderMet = c.Dynamic.OFOPer1000 <= c.TransportPorts.OFOPer1000+b.ReorderSlack
		b.Met = b.Met && c.Met
		b.ReorderMet = b.ReorderMet && c.ReorderMet
	}
}

// summarizeAlgo takes the medians of alg's runs with members and flows.
func summarizeAlgo(runs []BalanceRun, members, flows int, alg team.Algorithm) AlgoSummary {
	var mbit, ratio, ofo, sender, retr, moves []float64
	for _, r := range runs {
		if r.Members != members || r.Flows != flows || r.Algorithm != alg.String() {
			continue
		}
		mbit = append(mbit, r.Mbit)
		ratio = append(ratio, r.Ratio)
		ofo = append(ofo, per1000(r.OFO, r.Segments))
		sender = append(sender, float64(r.SenderReorder))
		retr = append(retr, float64(r.Retransmits))
		moves = append(moves, float64(r.FlowletMoves))
	}
	return AlgoSummary{
		Runs: len(mbit), Mbit: median(mbit), Ratio: median(ratio), OFOPer1000: median(ofo),
		SenderReorder: median(sender), Retransmits: median(retr), FlowletMoves: median(moves),
	}
}

// per1000 is n per 1000 of total; 0 for no total.
func per1000(n, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) * 1000 / float64(total)
}

// parseNstat reads `nstat -az` output ("#kernel" header, then lines of
// "Name value rate") into counter values.
func parseNstat(out string) (map[string]uint64, error) {
	got := map[string]uint64{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse nstat line %q: %w", strings.TrimSpace(line), err)
		}
		got[f[0]] = v
	}
	return got, nil
}

// counterDeltas is after-before for each of names; a counter that went
// backwards (reset) or is absent counts 0.
func counterDeltas(before, after map[string]uint64, names []string) map[string]uint64 {
	d := map[string]uint64{}
	for _, n := range names {
		if after[n] >= before[n] {
			d[n] = after[n] - before[n]
		}
	}
	return d
}

// worstDynamic is Dynamic's lowest ratio among the cases the target
// applies to; 0 if none does.
func (bl *Balance) worstDynamic() float64 {
	worst := 0.0
	for _, c := range bl.Cases {
		if c.TargetApplies && (worst == 0 || c.Dynamic.Ratio < worst) {
			worst = c.Dynamic.Ratio
		}
	}
	return worst
}
