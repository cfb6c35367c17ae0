package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/seqstream"
)

// The timeline of one pull, from the start of the stream.
const (
	// lead lets the stream settle before the carrier is looked for.
	lead = 200 * time.Millisecond
	// carrierWindow is how long member counters are watched to find the
	// member carrying the stream.
	carrierWindow = 100 * time.Millisecond
	// down is how long the cable stays out.
	down = 500 * time.Millisecond
	// tail keeps the stream going after the team is Up again, so that an
	// outage caused by the restore shows.
	tail = 300 * time.Millisecond
	// streamCap bounds the stream should the benchmark die before it stops
	// the processes; they are stopped long before in any normal run.
	streamCap = "60s"
	// streamPort is where the peer receives the stream.
	streamPort = "7700"
)

// The targets: a pull costs the stream at most half a millisecond in the
// median and 2 ms at worst.
const (
	outageTarget    = 500 * time.Microsecond
	maxOutageTarget = 2 * time.Millisecond
)

// The trace of the received rate around a pull, for the plot: 1 ms bins,
// from shortly before the pull to well past either bond's usual outage.
const (
	traceBin    = time.Millisecond
	traceBefore = 5 * time.Millisecond
	traceAfter  = 25 * time.Millisecond
)

// bond is a teamed path whose carrying member is pulled: nicteam's team
// or the OVS bond.
type bond struct {
	name string
	dst  string // the peer's address routed over it
	// carrier returns the member carrying a stream at pps.
	carrier func(ctx context.Context, pps uint64) (string, error)
	// waitUp waits until every member carries traffic again.
	waitUp func(context.Context) error
	// reacted returns when the bond logged moving traffic off the pulled
	// member, between from and until; nil when it does not log that.
	reacted func(ctx context.Context, from, until time.Time) (time.Time, error)
}

// bonds are the team and the OVS bond.
func (e *env) bonds() []bond {
	return []bond{
		{name: "team", dst: lab.PeerIPv4, waitUp: e.waitUp, reacted: e.bucketsMoved,
			carrier: func(ctx context.Context, pps uint64) (string, error) { return e.carrier(ctx, teamMembers, pps) }},
		{name: "ovs", dst: ovsPeer, waitUp: e.waitBondUp, carrier: e.activeMember},
	}
}

// measureFailover pulls the cable of the member carrying a stream
// cfg.Pulls times per bond, alternating the bonds, one stream per pull.
func measureFailover(ctx context.Context, e *env, cfg Config) (*Failover, error) {
	res := &Failover{PPS: cfg.PPS, Down: down.String(),
		TargetUs: outageTarget.Microseconds(), MaxTargetUs: maxOutageTarget.Microseconds()}
	bonds := e.bonds()
	for _, b := range bonds {
		res.Bonds = append(res.Bonds, BondFailover{Bond: b.name})
	}
	for i := range cfg.Pulls {
		for k := range bonds {
			j := (i + k) % len(bonds)
			p, err := e.pull(ctx, bonds[j], cfg.PPS)
			if err != nil {
				return nil, fmt.Errorf("measure failover: %s pull %d: %w", bonds[j].name, i+1, err)
			}
			p.Pull = i + 1
			fmt.Fprintf(e.log, "  %s pull %d of %s: outage %dµs, %d missing, reacted after %dµs; on restore %d outages\n",
				bonds[j].name, p.Pull, p.Member, p.OutageUs, p.Missing, p.MovedAfterUs, p.RestoreOutages)
			res.Bonds[j].Pulls = append(res.Bonds[j].Pulls, p)
		}
	}
	for i := range res.Bonds {
		res.Bonds[i].summarize(outageTarget, maxOutageTarget)
	}
	return res, nil
}

// summarize fills in the medians, maxima, whether the targets were met,
// and the trace of the pull with the median outage.
func (res *BondFailover) summarize(target, maxTarget time.Duration) {
	var outages, missing, lost, moved []float64
	for _, p := range res.Pulls {
		outages = append(outages, float64(p.OutageUs))
		missing = append(missing, float64(p.Missing))
		lost = append(lost, float64(p.LostUs))
		moved = append(moved, float64(p.MovedAfterUs))
		res.MaxOutageUs = max(res.MaxOutageUs, p.OutageUs)
		res.MaxMissing = max(res.MaxMissing, p.Missing)
		res.RestoreOutages += p.RestoreOutages
	}
	res.MedianOutageUs = median(outages)
	res.MedianMissing = median(missing)
	res.MedianLostUs = median(lost)
	res.MedianMovedAfterUs = median(moved)
	res.Met = res.MedianOutageUs <= float64(target.Microseconds()) && res.MaxOutageUs <= maxTarget.Microseconds()
	res.RestoreMet = res.RestoreOutages == 0
	res.Trace = nil
	for _, i := range medianOrder(outages) {
		if t := res.Pulls[i].trace; t != nil {
			t.Pull, t.OutageUs = res.Pulls[i].Pull, res.Pulls[i].OutageUs
			res.Trace = t
			break
		}
	}
}

// medianOrder returns the indexes of xs ordered by distance from the
// median element outwards: the median first (the lower one of an even
// count), then its neighbours in sorted order.
func medianOrder(xs []float64) []int {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(xs[a], xs[b]) })
	mid := (len(idx) - 1) / 2
	order := make([]int, 0, len(idx))
	for d := 0; len(order) < len(idx); d++ {
		if mid-d >= 0 {
			order = append(order, idx[mid-d])
		}
		if d > 0 && mid+d < len(idx) {
			order = append(order, idx[mid+d])
		}
	}
	return order
}

// pull runs one stream from the host to the peer over b, pulls the
// carrying member's cable, plugs it back after down, waits for b to carry
// on every member again, and reads the receiver's report and, for the
// team, the daemon's events.
func (e *env) pull(ctx context.Context, b bond, pps uint64) (Pull, error) {
	s, err := e.startStream(ctx, b.dst, pps)
	if err != nil {
		return Pull{}, err
	}
	defer s.kill()
	if err := sleep(ctx, lead); err != nil {
		return Pull{}, err
	}
	member, err := b.carrier(ctx, pps)
	if err != nil {
		return Pull{}, err
	}
	pulled, err := e.setCable(member, false)
	if err != nil {
		return Pull{}, err
	}
	if err := sleep(ctx, time.Until(pulled.Add(down))); err != nil {
		return Pull{}, err
	}
	restored, err := e.setCable(member, true)
	if err != nil {
		return Pull{}, err
	}
	if err := b.waitUp(ctx); err != nil {
		return Pull{}, err
	}
	upAfter := time.Since(restored)
	if err := sleep(ctx, tail); err != nil {
		return Pull{}, err
	}
	rep, sentPPS, err := s.finish(ctx)
	if err != nil {
		return Pull{}, err
	}
	// Outages are told apart by when their last packet before the gap was
	// sent: before the midpoint between pull and restore, the pull's.
	mid := pulled.Add(restored.Sub(pulled) / 2).Sub(s.started)
	p := classify(rep, pps, mid)
	p.Member, p.SentPPS = member, sentPPS
	p.UpAfterMs = float64(upAfter.Microseconds()) / 1000
	p.trace = trace(rep.Bins, pps, pulled)
	if b.reacted != nil {
		moved, err := b.reacted(ctx, pulled, restored)
		if err != nil {
			return Pull{}, err
		}
		p.MovedAfterUs = moved.Sub(pulled).Microseconds()
	}
	return p, nil
}

// binSeqs is how many packets of a stream at pps are due per traceBin.
func binSeqs(pps uint64) uint64 { return max(1, pps*uint64(traceBin)/uint64(time.Second)) }

// trace cuts the blocks sent from traceBefore before the pull to
// traceAfter after it out of b; nil if b does not cover that window. The
// send times are the sender's clock, in the lab the benchmark's too. A
// block is placed at when it was sent, not when it was due, so that a
// sender that fell behind on a busy machine does not move the loss of the
// pull to before it.
func trace(b *seqstream.Bins, pps uint64, pulled time.Time) *Trace {
	if b == nil || len(b.Counts) == 0 || len(b.SentNs) != len(b.Counts) {
		return nil
	}
	at := sentTimes(b.SentNs, time.Duration(b.Seqs)*time.Second/time.Duration(pps))
	from, to := pulled.Add(-traceBefore).UnixNano(), pulled.Add(traceAfter).UnixNano()
	if at[0] > from || at[len(at)-1] < to {
		return nil
	}
	t := &Trace{Seqs: b.Seqs}
	for i, ns := range at {
		if ns >= from && ns <= to {
			t.AtUs = append(t.AtUs, (ns-pulled.UnixNano())/1000)
			t.Counts = append(t.Counts, b.Counts[i])
		}
	}
	return t
}

// sentTimes returns the blocks' send times with those of blocks none of
// whose packets arrived (0) filled in: evenly between their neighbours',
// and a block's length apart after the last known. The first block has a
// time: it holds the first packet to arrive.
func sentTimes(sent []int64, block time.Duration) []int64 {
	out := slices.Clone(sent)
	known := -1
	for i, ns := range out {
		if ns == 0 {
			continue
		}
		for j := known + 1; known >= 0 && j < i; j++ {
			out[j] = out[known] + (ns-out[known])*int64(j-known)/int64(i-known)
		}
		known = i
	}
	for j := known + 1; known >= 0 && j < len(out); j++ {
		out[j] = out[known] + int64(j-known)*int64(block)
	}
	return out
}

// stream is one run of nicteam-seqstream, receiver on the peer, sender on
// the host.
type stream struct {
	recv, send *lab.Proc
	// started is when the sender was started. The process needs a moment
	// before it sends, so sequence numbers map to times a little early;
	// pull and restore are half a second apart, far more than that.
	started time.Time
}

func (e *env) startStream(ctx context.Context, dst string, pps uint64) (*stream, error) {
	exe := filepath.Join(e.bin, "nicteam-seqstream")
	addr := net.JoinHostPort(dst, streamPort)
	recv, err := e.lab.Peer.Start(exe, "recv", "--listen", addr, "--duration", streamCap,
		"--bins", strconv.FormatUint(binSeqs(pps), 10), "-o", "json")
	if err != nil {
		return nil, err
	}
	s := &stream{recv: recv}
	if err := waitOutput(ctx, recv, "listening on"); err != nil {
		s.kill()
		return nil, err
	}
	if s.send, err = e.lab.Host.Start(exe, "send", "--to", addr, "--pps", strconv.FormatUint(pps, 10), "--duration", streamCap); err != nil {
		s.kill()
		return nil, err
	}
	s.started = time.Now()
	return s, nil
}

// finish stops the sender, which then sends its end marker, so that the
// receiver reports and exits; it returns the report and the sender's rate.
func (s *stream) finish(ctx context.Context) (seqstream.Report, float64, error) {
	if err := s.send.Stop(); err != nil {
		return seqstream.Report{}, 0, fmt.Errorf("%w: %s", err, s.send.Output())
	}
	rep, err := report(ctx, s.recv)
	return rep, sentRate(s.send.Output()), err
}

// kill ends whatever of the stream still runs; after finish, nothing.
func (s *stream) kill() {
	for _, p := range []*lab.Proc{s.send, s.recv} {
		if p != nil {
			p.Kill()
		}
	}
}

// bucketsMoved returns when the daemon logged moving buckets between from
// and until.
func (e *env) bucketsMoved(ctx context.Context, from, until time.Time) (time.Time, error) {
	var at time.Time
	err := e.client.Events(ctx, false, func(ev api.Event) error {
		if at.IsZero() && ev.Kind == api.EventBucketsMoved && ev.Time.After(from) && ev.Time.Before(until) {
			at = ev.Time
		}
		return nil
	})
	if err != nil {
		return at, fmt.Errorf("read daemon events: %w", err)
	}
	if at.IsZero() {
		return at, fmt.Errorf("the daemon moved no buckets within %v of the pull", until.Sub(from))
	}
	return at, nil
}

// classify splits rep's outages (gaps where packets went missing; a gap
// that late packets filled was reordering) into the pull's, whose last
// packet before the gap was sent before mid into the stream, and the
// restore's.
func classify(rep seqstream.Report, pps uint64, mid time.Duration) Pull {
	var p Pull
	for _, o := range rep.Outages {
		if o.Missing == 0 {
			continue
		}
		at := time.Duration(float64(o.FromSeq) / float64(pps) * float64(time.Second))
		if at < mid {
			p.Outages++
			p.Missing += o.Missing
			p.OutageUs = max(p.OutageUs, o.DurationUs)
			continue
		}
		p.RestoreOutages++
		p.RestoreMissing += o.Missing
	}
	p.Sent, p.Received = rep.Sent, rep.Received
	p.LostUs = int64(float64(p.Missing) / float64(pps) * 1e6)
	return p
}

// carrier returns the one of members whose transmit counter grows by most
// of the stream's packets over carrierWindow.
func (e *env) carrier(ctx context.Context, members []string, pps uint64) (string, error) {
	before, _, err := e.txCounters(members)
	if err != nil {
		return "", err
	}
	if err := sleep(ctx, carrierWindow); err != nil {
		return "", err
	}
	after, _, err := e.txCounters(members)
	if err != nil {
		return "", err
	}
	best, _ := busiest(members, before, after)
	most := after[best] - before[best]
	// A quarter of the expected count, enough to tell the stream from
	// stray frames: the window is timed loosely, and on a busy machine
	// the OVS bond's userspace forwarding falls behind the stream.
	if want := uint64(float64(pps)*carrierWindow.Seconds()) / 4; most < want {
		return "", fmt.Errorf("find the member carrying the stream: at most %d packets sent by a member in %v, want %d", most, carrierWindow, want)
	}
	return best, nil
}

// txCounters reads the transmit packet and byte counters of members.
func (e *env) txCounters(members []string) (packets, bytes map[string]uint64, err error) {
	packets, bytes = map[string]uint64{}, map[string]uint64{}
	for _, m := range members {
		l, err := e.lab.Host.Link(m)
		if err != nil {
			return nil, nil, err
		}
		if s := l.Attrs().Statistics; s != nil {
			packets[m], bytes[m] = s.TxPackets, s.TxBytes
		}
	}
	return packets, bytes, nil
}

// report waits for the receiver to exit and decodes its JSON report.
func report(ctx context.Context, recv *lab.Proc) (seqstream.Report, error) {
	var rep seqstream.Report
	select {
	case <-recv.Done():
	case <-ctx.Done():
		return rep, ctx.Err()
	case <-time.After(5 * time.Second):
		return rep, fmt.Errorf("receiver did not exit after the end marker: %s", recv.Output())
	}
	out := recv.Output()
	if err := recv.Wait(); err != nil {
		return rep, fmt.Errorf("receiver: %w: %s", err, out)
	}
	// The report follows the "listening on" line on the shared output.
	i := strings.Index(out, "{")
	if i < 0 {
		return rep, fmt.Errorf("receiver: no report: %s", out)
	}
	if err := json.Unmarshal([]byte(out[i:]), &rep); err != nil {
		return rep, fmt.Errorf("receiver: parse report: %w", err)
	}
	if !rep.Ended {
		return rep, fmt.Errorf("receiver: the end marker did not arrive: %s", out)
	}
	return rep, nil
}

var sentPPS = regexp.MustCompile(`\((\d+) pps\)`)

// sentRate reads the rate the sender achieved from its summary line; 0
// when it is missing.
func sentRate(out string) float64 {
	m := sentPPS.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	r, _ := strconv.ParseFloat(m[1], 64)
	return r
}

// waitOutput waits until p has written want.
func waitOutput(ctx context.Context, p *lab.Proc, want string) error {
	return lab.Poll(ctx, 5*time.Second, 5*time.Millisecond, func(context.Context) (bool, error) {
		if strings.Contains(p.Output(), want) {
			return true, nil
		}
		if err := p.Exited(); err != nil {
			return true, err
		}
		return false, fmt.Errorf("wait for %s to say %q: %s", p.Name, want, p.Output())
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
