package seqstream

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// window is how far behind the highest sequence number the Recorder
// remembers which packets arrived, to tell a late packet from a duplicate:
// 2^16 packets, 1.3 s at 50 kpps.
const window = 1 << 16

// Outage is a gap in the stream: packets sent after FromSeq and before
// ToSeq that had not arrived when ToSeq did.
type Outage struct {
	FromSeq uint64 `json:"fromSeq"` // the last packet received before the gap
	// ToSeq is the first packet received after the gap; for an open outage
	// it is the number of packets sent, one past the last.
	ToSeq uint64 `json:"toSeq"`
	// Missing counts the packets of the gap that never arrived; packets
	// that came late, after ToSeq, are not counted.
	Missing uint64 `json:"missing"`
	// DurationUs is the arrival time of ToSeq minus that of the packet that
	// arrived just before it (FromSeq, unless that came late); for an open
	// outage, the arrival of the end marker minus the last arrival.
	DurationUs int64 `json:"durationUs"`
	// Open says the stream never resumed: packets were sent up to the end
	// and none after FromSeq arrived.
	Open bool `json:"open,omitempty"`
}

// Report is what a Recorder saw.
type Report struct {
	Received   uint64 `json:"received"`   // distinct data packets
	Lost       uint64 `json:"lost"`       // data packets that never arrived
	Reordered  uint64 `json:"reordered"`  // arrived after a higher sequence number
	Duplicates uint64 `json:"duplicates"` // copies of packets already received
	Invalid    uint64 `json:"invalid"`    // datagrams that were not stream packets
	// Ended says the sender's end marker arrived; then Sent is the number
	// of data packets sent and Lost includes the tail of the stream.
	// Without it, packets lost after LastSeq are not counted.
	Ended       bool     `json:"ended"`
	Sent        uint64   `json:"sent"`
	FirstSeq    uint64   `json:"firstSeq"` // the first to arrive; earlier ones count as lost
	LastSeq     uint64   `json:"lastSeq"`  // the highest to arrive
	Outages     []Outage `json:"outages"`
	MaxOutageUs int64    `json:"maxOutageUs"`
	// MaxDelayUs is the largest arrival time minus send time. It means
	// something only when sender and receiver share a clock, as in a lab
	// on one machine.
	MaxDelayUs int64 `json:"maxDelayUs"`
	// Bins is the delivered rate over time, when the Recorder was asked
	// for it.
	Bins *Bins `json:"bins,omitempty"`
}

// Bins counts the data packets received (not duplicates) per block of
// consecutive sequence numbers, from the first to arrive, and notes when
// each block was sent: where in the stream packets were lost, and when.
// A block is short by exactly the packets lost of it, however the
// receiver was scheduled; binned by arrival time instead, a receiver that
// stalls and then reads its backlog would draw a gap and a burst that
// were never on the wire.
type Bins struct {
	FirstSeq uint64   `json:"firstSeq"` // the first packet to arrive starts the first block
	Seqs     uint64   `json:"seqs"`     // sequence numbers per block
	Counts   []uint32 `json:"counts"`
	// SentNs is, per block, the send time of its earliest packet that
	// arrived (ns since the Unix epoch), 0 if none did.
	SentNs []int64 `json:"sentNs"`
}

// Recorder accounts for the packets of one stream as they arrive. The zero
// value is ready to use. It is not safe for concurrent use.
type Recorder struct {
	// BinSeqs, if set before the first packet, makes the Recorder count
	// received packets in Bins of this many sequence numbers.
	BinSeqs uint64

	started     bool
	first       uint64
	highest     uint64
	lastArrival time.Time

	received, reordered, duplicates, invalid uint64
	// seen has a bit for each of the window sequence numbers up to highest,
	// at seq % window.
	seen [window / 64]uint64

	outages  []Outage
	maxDelay time.Duration
	bins     *Bins

	ended bool
	sent  uint64
	endAt time.Time
}

// Receive records datagram b, which arrived at at, and returns it decoded.
// Datagrams that are not stream packets are counted and return
// ErrNotSeqstream.
func (r *Recorder) Receive(b []byte, at time.Time) (Packet, error) {
	p, err := Parse(b)
	if err != nil {
		r.invalid++
		return p, err
	}
	if p.Kind == End {
		// The sender repeats the end marker; the first copy is the end.
		if !r.ended {
			r.ended, r.sent, r.endAt = true, p.Seq, at
		}
		return p, nil
	}
	r.data(p, at)
	return p, nil
}

func (r *Recorder) data(p Packet, at time.Time) {
	s := p.Seq
	switch {
	case !r.started:
		r.started, r.first, r.highest = true, s, s
		r.mark(s)
	case s > r.highest:
		if s > r.highest+1 {
			r.outages = append(r.outages, Outage{
				FromSeq:    r.highest,
				ToSeq:      s,
				Missing:    s - r.highest - 1,
				DurationUs: at.Sub(r.lastArrival).Microseconds(),
			})
		}
		r.advance(s)
		r.mark(s)
	case r.highest-s < window && r.isSeen(s):
		// Duplicates do not move lastArrival: a copy of an old packet says
		// nothing about whether the stream is flowing.
		r.duplicates++
		return
	default:
		// Late: beyond the window it may also be a duplicate, but that can
		// no longer be told; a window of 2^16 makes it rare.
		r.reordered++
		if r.highest-s < window {
			r.mark(s)
		}
		for i := len(r.outages) - 1; i >= 0; i-- {
			if o := &r.outages[i]; o.FromSeq < s && s < o.ToSeq {
				o.Missing--
				break
			}
		}
	}
	r.received++
	r.lastArrival = at
	r.count(p)
	if d := at.Sub(time.Unix(0, p.Sent)); d > r.maxDelay {
		r.maxDelay = d
	}
}

// count adds p to its bin.
func (r *Recorder) count(p Packet) {
	if r.BinSeqs == 0 {
		return
	}
	if r.bins == nil {
		r.bins = &Bins{FirstSeq: p.Seq, Seqs: r.BinSeqs}
	}
	if p.Seq < r.bins.FirstSeq {
		// Sent before the first to arrive, and late: the bins start with
		// the first, so it has none.
		return
	}
	i := (p.Seq - r.bins.FirstSeq) / r.BinSeqs
	for uint64(len(r.bins.Counts)) <= i {
		r.bins.Counts = append(r.bins.Counts, 0)
		r.bins.SentNs = append(r.bins.SentNs, 0)
	}
	r.bins.Counts[i]++
	// Packets leave in order, so the earliest sent is the lowest number.
	if sent := &r.bins.SentNs[i]; *sent == 0 || p.Sent < *sent {
		*sent = p.Sent
	}
}

func (r *Recorder) mark(s uint64)        { r.seen[s%window/64] |= 1 << (s % 64) }
func (r *Recorder) isSeen(s uint64) bool { return r.seen[s%window/64]&(1<<(s%64)) != 0 }
func (r *Recorder) unmark(s uint64)      { r.seen[s%window/64] &^= 1 << (s % 64) }
func (r *Recorder) advance(to uint64) {
	// The bits of the numbers between the old and the new highest still
	// describe numbers a window ago; they are forgotten before reuse.
	if to-r.highest >= window {
		r.seen = [window / 64]uint64{}
	} else {
		for s := r.highest + 1; s <= to; s++ {
			r.unmark(s)
		}
	}
	r.highest = to
}

// Report summarises what has been recorded so far.
func (r *Recorder) Report() Report {
	rep := Report{
		Received:   r.received,
		Reordered:  r.reordered,
		Duplicates: r.duplicates,
		Invalid:    r.invalid,
		Ended:      r.ended,
		Sent:       r.sent,
		FirstSeq:   r.first,
		LastSeq:    r.highest,
		Outages:    append([]Outage{}, r.outages...),
		MaxDelayUs: r.maxDelay.Microseconds(),
	}
	if r.bins != nil {
		b := *r.bins
		b.Counts, b.SentNs = slices.Clone(b.Counts), slices.Clone(b.SentNs)
		rep.Bins = &b
	}
	var expected uint64
	if r.started {
		expected = r.highest + 1
	}
	if r.ended && r.sent > expected {
		if r.started {
			rep.Outages = append(rep.Outages, Outage{
				FromSeq:    r.highest,
				ToSeq:      r.sent,
				Missing:    r.sent - r.highest - 1,
				DurationUs: r.endAt.Sub(r.lastArrival).Microseconds(),
				Open:       true,
			})
		}
		expected = r.sent
	}
	if expected > r.received {
		rep.Lost = expected - r.received
	}
	for _, o := range rep.Outages {
		rep.MaxOutageUs = max(rep.MaxOutageUs, o.DurationUs)
	}
	return rep
}

// String is the report for people.
func (rep Report) String() string {
	var b strings.Builder
	if rep.Received == 0 {
		if rep.Ended {
			fmt.Fprintf(&b, "received none of %d packets\n", rep.Sent)
		} else {
			b.WriteString("received nothing, not even the end marker\n")
		}
		return b.String()
	}
	fmt.Fprintf(&b, "received %d of %d packets: lost %d, reordered %d, duplicates %d\n",
		rep.Received, rep.Received+rep.Lost, rep.Lost, rep.Reordered, rep.Duplicates)
	if rep.Invalid > 0 {
		fmt.Fprintf(&b, "ignored %d datagrams that were not stream packets\n", rep.Invalid)
	}
	if rep.FirstSeq > 0 {
		fmt.Fprintf(&b, "the first %d packets never arrived (did the sender start before the receiver?)\n", rep.FirstSeq)
	}
	switch len(rep.Outages) {
	case 0:
		b.WriteString("no outages\n")
	case 1:
		fmt.Fprintf(&b, "1 outage, %s\n", us(rep.MaxOutageUs))
	default:
		fmt.Fprintf(&b, "%d outages, longest %s\n", len(rep.Outages), us(rep.MaxOutageUs))
	}
	for _, o := range rep.Outages {
		if o.Open {
			fmt.Fprintf(&b, "  after seq %d: %d missing, never resumed (%s until the end)\n", o.FromSeq, o.Missing, us(o.DurationUs))
			continue
		}
		fmt.Fprintf(&b, "  seq %d → %d: %d missing, %s\n", o.FromSeq, o.ToSeq, o.Missing, us(o.DurationUs))
	}
	if !rep.Ended {
		fmt.Fprintf(&b, "the end marker did not arrive: packets lost after seq %d are not counted\n", rep.LastSeq)
	}
	fmt.Fprintf(&b, "max one-way delay %s\n", us(rep.MaxDelayUs))
	return b.String()
}

func us(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
