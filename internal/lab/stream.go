package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/seqstream"
)

// streamCap bounds a Stream's processes should their caller die before it
// stops them; a Stream is finished long before in any normal run.
const streamCap = "30m"

// streamTimeout bounds the receiver's start and its exit after the sender's
// end marker.
const streamTimeout = 5 * time.Second

// Stream is one run of nicteam-seqstream: a receiver listening on one host
// and a sender on another sending it a numbered UDP flow until Finish.
type Stream struct {
	Recv, Send *Proc
	// Started is when the sender was started. It needs a moment before it
	// sends, so sequence numbers map to times a little early.
	Started time.Time
}

// StartStream starts exe (nicteam-seqstream) receiving on to at dst
// (ADDR:PORT), waits until it listens, then starts a sender on from at pps
// packets per second from an ephemeral port.
func StartStream(ctx context.Context, exe string, from, to *Host, dst string, pps uint64) (*Stream, error) {
	recv, err := to.Start(exe, "recv", "--listen", dst, "--duration", streamCap, "-o", "json")
	if err != nil {
		return nil, fmt.Errorf("start stream to %s: %w", dst, err)
	}
	s := &Stream{Recv: recv}
	if err := WaitOutput(ctx, recv, "listening on", streamTimeout); err != nil {
		s.Kill()
		return nil, fmt.Errorf("start stream to %s: %w", dst, err)
	}
	s.Send, err = from.Start(exe, "send", "--to", dst, "--pps", strconv.FormatUint(pps, 10), "--duration", streamCap)
	if err != nil {
		s.Kill()
		return nil, fmt.Errorf("start stream to %s: %w", dst, err)
	}
	s.Started = time.Now()
	return s, nil
}

// Finish stops the sender, which then sends its end marker, waits for the
// receiver to report and returns its report. Should every copy of the end
// marker be lost too, the receiver is stopped after endWait, and the
// report's Sent and Lost are completed from the sender's count.
func (s *Stream) Finish(ctx context.Context) (seqstream.Report, error) {
	var rep seqstream.Report
	if err := s.Send.Stop(); err != nil {
		s.Kill()
		return rep, fmt.Errorf("stream sender: %w: %s", err, s.Send.Output())
	}
	select {
	case <-s.Recv.Done():
	case <-ctx.Done():
		s.Kill()
		return rep, ctx.Err()
	case <-time.After(endWait):
		// On SIGTERM the receiver reports what it has and exits.
		if err := s.Recv.Stop(); err != nil {
			return rep, fmt.Errorf("stream receiver: %w", err)
		}
	}
	out := s.Recv.Output()
	if err := s.Recv.Wait(); err != nil {
		return rep, fmt.Errorf("stream receiver: %w: %s", err, out)
	}
	// The report follows the "listening on" line on the shared output.
	i := strings.Index(out, "{")
	if i < 0 {
		return rep, fmt.Errorf("stream receiver: no report: %s", out)
	}
	if err := json.Unmarshal([]byte(out[i:]), &rep); err != nil {
		return rep, fmt.Errorf("stream receiver: parse report: %w", err)
	}
	if !rep.Ended {
		m := sentCount.FindStringSubmatch(s.Send.Output())
		if m == nil {
			return rep, fmt.Errorf("stream: no end marker arrived and the sender did not say how many it sent: %s", s.Send.Output())
		}
		rep.Sent, _ = strconv.ParseUint(m[1], 10, 64)
		rep.Lost = rep.Sent - min(rep.Sent, rep.Received)
	}
	return rep, nil
}

// sentCount finds the number of packets in the sender's summary.
var sentCount = regexp.MustCompile(`sent (\d+) packets`)

// endWait is how long Finish waits for the receiver after the sender has
// stopped; the sender's end marker takes some 40ms.
const endWait = time.Second

// Kill ends whatever of the stream still runs.
func (s *Stream) Kill() {
	for _, p := range []*Proc{s.Send, s.Recv} {
		if p != nil {
			p.Kill()
		}
	}
}

// WaitOutput waits up to within until p has written want.
func WaitOutput(ctx context.Context, p *Proc, want string, within time.Duration) error {
	return Poll(ctx, within, 5*time.Millisecond, func(context.Context) (bool, error) {
		if strings.Contains(p.Output(), want) {
			return true, nil
		}
		if err := p.Exited(); err != nil {
			return true, err
		}
		return false, fmt.Errorf("wait for %s to say %q: %s", p.Name, want, p.Output())
	})
}
