package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxPings is the most pings one PingFlood sends: icmp_seq is 16 bits and
// iputils starts at 1, so beyond it sequence numbers would repeat.
const maxPings = 65535

// PingResult is what one run of ping saw.
type PingResult struct {
	Transmitted int
	Received    int   // echo requests answered, duplicates not counted
	Duplicates  int   // extra replies
	Errors      int   // ICMP errors received instead of replies (unreachable, …)
	Missing     []int // icmp_seq of the requests never answered, ascending
	Output      string
}

// Lost is the number of requests never answered.
func (r PingResult) Lost() int { return len(r.Missing) }

// SeqRange is a run of consecutive sequence numbers, From ≤ To.
type SeqRange struct{ From, To int }

func (s SeqRange) String() string {
	if s.From == s.To {
		return strconv.Itoa(s.From)
	}
	return fmt.Sprintf("%d–%d", s.From, s.To)
}

// MissingRanges collapses Missing into runs: one run per outage.
func (r PingResult) MissingRanges() []SeqRange {
	var rs []SeqRange
	for _, s := range r.Missing {
		if n := len(rs); n > 0 && rs[n-1].To == s-1 {
			rs[n-1].To = s
			continue
		}
		rs = append(rs, SeqRange{s, s})
	}
	return rs
}

// String reports the result the way the demo prints it, e.g.
// "pings lost: 3 of 1000 (seq 41–43)".
func (r PingResult) String() string {
	s := fmt.Sprintf("pings lost: %d of %d", r.Lost(), r.Transmitted)
	if rs := r.MissingRanges(); len(rs) > 0 {
		parts := make([]string, len(rs))
		for i, x := range rs {
			parts[i] = x.String()
		}
		s += " (seq " + strings.Join(parts, ", ") + ")"
	}
	return s
}

// PingFlood pings dst (an IPv4 or IPv6 address) count times, one request
// every interval, from h's namespace, with iputils ping; intervals below
// 2ms need root. Each request waits at most a second for its reply.
// Unanswered requests are a result, not an error: the error is for a ping
// that could not run or be understood. If ctx ends early, ping is
// interrupted and the requests sent so far are reported. opts go to ping
// before the destination (e.g. "-I", "10.77.0.11" to pick the source).
func (h *Host) PingFlood(ctx context.Context, dst string, interval time.Duration, count int, opts ...string) (PingResult, error) {
	addr, err := netip.ParseAddr(dst)
	if err != nil {
		return PingResult{}, fmt.Errorf("ping %s: %w", dst, err)
	}
	if count < 1 || count > maxPings {
		return PingResult{}, fmt.Errorf("ping %s: count %d out of range 1..%d", dst, count, maxPings)
	}
	family := "-4"
	if addr.Is6() && !addr.Is4In6() {
		family = "-6"
	}
	// -n: no reverse lookups; -O: report each request still unanswered
	// when the next one goes out, which shows in Output where it stalled.
	args := append([]string{family, "-n", "-O",
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', -1, 64),
		"-c", strconv.Itoa(count), "-W", "1"}, opts...)
	cmd := h.Exec(ctx, "ping", append(args, dst)...)
	// SIGINT makes ping stop and still print its statistics.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	res, perr := parsePing(string(out))
	// Exit status 1 means some requests went unanswered; that is the result.
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) && ctx.Err() == nil {
		return res, fmt.Errorf("ping %s on %s: %w: %s", dst, h.Name, err, strings.TrimSpace(string(out)))
	}
	if perr != nil {
		return res, fmt.Errorf("ping %s on %s: %w", dst, h.Name, perr)
	}
	return res, nil
}

var (
	pingReply = regexp.MustCompile(`bytes from .*icmp_seq=(\d+)`)
	pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	pingDups  = regexp.MustCompile(`\+(\d+) duplicates`)
	pingErrs  = regexp.MustCompile(`\+(\d+) errors`)
)

// parsePing reads iputils ping output: the statistics line for the counts,
// the reply lines for which sequence numbers were answered.
func parsePing(out string) (PingResult, error) {
	res := PingResult{Output: out}
	answered := make(map[int]bool)
	statsSeen := false
	for line := range strings.Lines(out) {
		if m := pingReply.FindStringSubmatch(line); m != nil {
			seq, _ := strconv.Atoi(m[1])
			answered[seq] = true
			continue
		}
		if m := pingStats.FindStringSubmatch(line); m != nil {
			statsSeen = true
			res.Transmitted, _ = strconv.Atoi(m[1])
			res.Received, _ = strconv.Atoi(m[2])
			if m := pingDups.FindStringSubmatch(line); m != nil {
				res.Duplicates, _ = strconv.Atoi(m[1])
			}
			if m := pingErrs.FindStringSubmatch(line); m != nil {
				res.Errors, _ = strconv.Atoi(m[1])
			}
		}
	}
	if !statsSeen {
		return res, errors.New("parse ping output: no statistics line")
	}
	for seq := 1; seq <= res.Transmitted; seq++ {
		if !answered[seq] {
			res.Missing = append(res.Missing, seq)
		}
	}
	return res, nil
}

var (
	pingStampedReply  = regexp.MustCompile(`^\[(\d+)\.(\d{6})\] \d+ bytes from .*icmp_seq=(\d+) .*time=([\d.]+) ms`)
	pingStampedNoAns  = regexp.MustCompile(`^\[(\d+)\.(\d{6})\] no answer yet for icmp_seq=(\d+)`)
	pingDuplicateMark = "(DUP!)"
)

// SendTimes estimates when each request went out, for a ping run with -D
// (a timestamp on every line), which ContainerPing passes: the result has
// Transmitted+1 entries, indexed by icmp_seq (entry 0 is unused). A request
// that was answered went out at its reply's timestamp minus its round trip.
// While a request is unanswered, iputils ping waits up to 10 ms before it
// sends the next one, and with -O it reports the unanswered one as it does:
// the report for N is the send time of N+1. A request right after an
// answered one went out an interval after it. The others are placed evenly
// between their known neighbours, or an interval apart past the last.
// Without any timestamp in Output, every entry is the zero time.
func (r PingResult) SendTimes(interval time.Duration) []time.Time {
	times := make([]time.Time, r.Transmitted+1)
	known := make([]bool, r.Transmitted+1)
	stamp := func(sec, usec string) time.Time {
		s, _ := strconv.ParseInt(sec, 10, 64)
		us, _ := strconv.ParseInt(usec, 10, 64)
		return time.Unix(s, us*1000)
	}
	for line := range strings.Lines(r.Output) {
		if m := pingStampedReply.FindStringSubmatch(line); m != nil && !strings.Contains(line, pingDuplicateMark) {
			seq, _ := strconv.Atoi(m[3])
			rtt, _ := strconv.ParseFloat(m[4], 64)
			if seq >= 1 && seq <= r.Transmitted && !known[seq] {
				times[seq] = stamp(m[1], m[2]).Add(-time.Duration(rtt * float64(time.Millisecond)))
				known[seq] = true
			}
			continue
		}
		if m := pingStampedNoAns.FindStringSubmatch(line); m != nil {
			seq, _ := strconv.Atoi(m[3])
			if next := seq + 1; next >= 1 && next <= r.Transmitted && !known[next] {
				times[next] = stamp(m[1], m[2])
				known[next] = true
			}
		}
	}
	unanswered := make(map[int]bool, len(r.Missing))
	for _, seq := range r.Missing {
		unanswered[seq] = true
	}
	prev := 0 // the last known seq before the one being filled
	for seq := 1; seq <= r.Transmitted; seq++ {
		if known[seq] {
			prev = seq
			continue
		}
		next := seq + 1
		for next <= r.Transmitted && !known[next] {
			next++
		}
		switch {
		case prev == seq-1 && prev > 0 && !unanswered[prev]:
			times[seq] = times[prev].Add(interval)
			if next <= r.Transmitted && times[seq].After(times[next]) {
				times[seq] = times[next]
			}
		case prev > 0 && next <= r.Transmitted:
			span := times[next].Sub(times[prev])
			times[seq] = times[prev].Add(span * time.Duration(seq-prev) / time.Duration(next-prev))
		case prev > 0:
			times[seq] = times[prev].Add(interval * time.Duration(seq-prev))
		case next <= r.Transmitted:
			times[seq] = times[next].Add(-interval * time.Duration(next-seq))
		}
	}
	return times
}
