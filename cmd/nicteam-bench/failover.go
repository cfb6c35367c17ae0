package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
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

// outageTarget is the median outage a pull should cost at most.
const outageTarget = time.Millisecond

// measureFailover pulls the cable of the member carrying a stream
// cfg.pulls times, one stream per pull.
func measureFailover(ctx context.Context, e *env, cfg config) (Failover, error) {
	res := Failover{PPS: cfg.pps, Down: down.String(), TargetUs: outageTarget.Microseconds()}
	for i := range cfg.pulls {
		p, err := e.pull(ctx, cfg.pps)
		if err != nil {
			return res, fmt.Errorf("measure failover: pull %d: %w", i+1, err)
		}
		p.Pull = i + 1
		fmt.Fprintf(e.log, "  pull %d of %s: outage %dµs, %d missing, buckets moved after %dµs; on restore %d outages\n",
			p.Pull, p.Member, p.OutageUs, p.Missing, p.MovedAfterUs, p.RestoreOutages)
		res.Pulls = append(res.Pulls, p)
	}
	res.summarize()
	return res, nil
}

// summarize fills in the medians, maxima and targets from res.Pulls.
func (res *Failover) summarize() {
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
	res.Met = res.MedianOutageUs <= float64(res.TargetUs)
	res.RestoreMet = res.RestoreOutages == 0
}

// pull runs one stream from the host to the peer through the team, pulls
// the carrying member's cable, plugs it back after down, waits for the
// team to be Up, and reads the receiver's report and the daemon's events.
func (e *env) pull(ctx context.Context, pps uint64) (Pull, error) {
	s, err := e.startStream(ctx, pps)
	if err != nil {
		return Pull{}, err
	}
	defer s.kill()
	if err := sleep(ctx, lead); err != nil {
		return Pull{}, err
	}
	member, err := e.carrier(ctx, pps)
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
	if err := e.waitUp(ctx); err != nil {
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
	moved, err := e.bucketsMoved(ctx, pulled, restored)
	if err != nil {
		return Pull{}, err
	}
	p.MovedAfterUs = moved.Sub(pulled).Microseconds()
	return p, nil
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

func (e *env) startStream(ctx context.Context, pps uint64) (*stream, error) {
	exe := filepath.Join(e.bin, "nicteam-seqstream")
	addr := net.JoinHostPort(lab.PeerIPv4, streamPort)
	recv, err := e.lab.Peer.Start(exe, "recv", "--listen", addr, "--duration", streamCap, "-o", "json")
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

// carrier returns the member whose transmit counter grows by most of the
// stream's packets over carrierWindow.
func (e *env) carrier(ctx context.Context, pps uint64) (string, error) {
	before, err := e.txPackets()
	if err != nil {
		return "", err
	}
	if err := sleep(ctx, carrierWindow); err != nil {
		return "", err
	}
	after, err := e.txPackets()
	if err != nil {
		return "", err
	}
	best := busiest(before, after)
	most := after[best] - before[best]
	// Half the expected count: the window is timed loosely.
	if want := uint64(float64(pps)*carrierWindow.Seconds()) / 2; most < want {
		return "", fmt.Errorf("find the member carrying the stream: at most %d packets sent by a member in %v, want %d", most, carrierWindow, want)
	}
	return best, nil
}

// txPackets reads the members' transmit counters.
func (e *env) txPackets() (map[string]uint64, error) {
	tx := map[string]uint64{}
	for _, m := range teamMembers {
		l, err := e.lab.Host.Link(m)
		if err != nil {
			return nil, err
		}
		if s := l.Attrs().Statistics; s != nil {
			tx[m] = s.TxPackets
		}
	}
	return tx, nil
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
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for !strings.Contains(p.Output(), want) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to say %q: %w: %s", p.Name, want, ctx.Err(), p.Output())
		case <-p.Done():
			return fmt.Errorf("%s exited: %v: %s", p.Name, p.Wait(), p.Output())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
