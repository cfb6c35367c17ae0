package seqstream

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

// step is one event of a script for a Recorder: a data packet arriving at
// an offset from t0, or the end marker.
type step struct {
	seq uint64
	at  time.Duration
	end bool // seq is then the number of packets sent
}

func record(t *testing.T, steps []step) Report {
	t.Helper()
	var r Recorder
	buf := make([]byte, 64)
	for _, s := range steps {
		p := Packet{Kind: Data, Seq: s.seq, Sent: t0.Add(s.at - 100*time.Microsecond).UnixNano()}
		if s.end {
			p.Kind = End
		}
		p.Put(buf)
		if _, err := r.Receive(buf, t0.Add(s.at)); err != nil {
			t.Fatal(err)
		}
	}
	return r.Report()
}

// steady returns packets from..to (inclusive) arriving every ms from at.
func steady(from, to uint64, at time.Duration) []step {
	var s []step
	for q := from; q <= to; q++ {
		s = append(s, step{seq: q, at: at + time.Duration(q-from)*time.Millisecond})
	}
	return s
}

func cat(parts ...[]step) []step {
	var s []step
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestRecorder(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  Report
	}{
		{
			name:  "clean stream",
			steps: cat(steady(0, 99, 0), []step{{seq: 100, at: ms(100), end: true}}),
			want:  Report{Received: 100, Ended: true, Sent: 100, LastSeq: 99, Outages: []Outage{}},
		},
		{
			name: "one outage",
			// 0..9 at 0..9 ms, then 10..39 lost, 40..49 from 40 ms.
			steps: cat(steady(0, 9, 0), steady(40, 49, ms(40)), []step{{seq: 50, at: ms(50), end: true}}),
			want: Report{
				Received: 20, Lost: 30, Ended: true, Sent: 50, LastSeq: 49,
				Outages:     []Outage{{FromSeq: 9, ToSeq: 40, Missing: 30, DurationUs: 31000}},
				MaxOutageUs: 31000,
			},
		},
		{
			name: "late packets fill the gap and are not lost",
			steps: cat(steady(0, 4, 0), []step{
				{seq: 7, at: ms(5)}, {seq: 5, at: ms(6)}, {seq: 6, at: ms(7)}, {seq: 8, at: ms(8)},
				{seq: 9, at: ms(9), end: true},
			}),
			want: Report{
				Received: 9, Reordered: 2, Ended: true, Sent: 9, LastSeq: 8,
				Outages:     []Outage{{FromSeq: 4, ToSeq: 7, Missing: 0, DurationUs: 1000}},
				MaxOutageUs: 1000,
			},
		},
		{
			name: "duplicates",
			steps: []step{
				{seq: 0, at: 0}, {seq: 1, at: ms(1)}, {seq: 1, at: ms(2)}, {seq: 0, at: ms(3)}, {seq: 2, at: ms(4)},
			},
			// Duplicates do not count as arrivals: 1 → 2 is 3 ms, not an outage anyway.
			want: Report{Received: 3, Duplicates: 2, LastSeq: 2, Outages: []Outage{}},
		},
		{
			name: "stream never resumes: open outage up to the end marker",
			steps: cat(steady(0, 9, 0), []step{
				{seq: 100, at: ms(100), end: true},
				{seq: 100, at: ms(101), end: true}, // repeated marker: the first counts
			}),
			want: Report{
				Received: 10, Lost: 90, Ended: true, Sent: 100, LastSeq: 9,
				Outages:     []Outage{{FromSeq: 9, ToSeq: 100, Missing: 90, DurationUs: 91000, Open: true}},
				MaxOutageUs: 91000,
			},
		},
		{
			name:  "stream never resumes and the end marker is lost: tail unknown",
			steps: steady(0, 9, 0),
			want:  Report{Received: 10, LastSeq: 9, Outages: []Outage{}},
		},
		{
			name:  "receiver started late",
			steps: steady(5, 9, 0),
			want:  Report{Received: 5, Lost: 5, FirstSeq: 5, LastSeq: 9, Outages: []Outage{}},
		},
		{
			name:  "nothing but the end marker",
			steps: []step{{seq: 10, at: 0, end: true}},
			want:  Report{Lost: 10, Ended: true, Sent: 10, Outages: []Outage{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := record(t, tt.steps)
			// Every packet in the script was sent 100 µs before it arrived.
			if got.Received > 0 {
				tt.want.MaxDelayUs = 100
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("report:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRecorderWindow(t *testing.T) {
	var r Recorder
	buf := make([]byte, HeaderLen)
	send := func(seq uint64) {
		Packet{Seq: seq}.Put(buf)
		r.Receive(buf, t0)
	}
	// A jump larger than the window forgets everything; a number reused
	// modulo the window must not look like a duplicate.
	send(0)
	send(3 * window)
	send(2*window + 5) // late, inside the window, never seen
	send(2*window + 5) // now a duplicate
	send(window)       // beyond the window: counted as late, cannot be checked
	rep := r.Report()
	if rep.Received != 4 || rep.Duplicates != 1 || rep.Reordered != 2 {
		t.Errorf("received %d, duplicates %d, reordered %d; want 4, 1, 2", rep.Received, rep.Duplicates, rep.Reordered)
	}
	if rep.Outages[0].Missing != 3*window-1-2 {
		t.Errorf("missing %d, want %d", rep.Outages[0].Missing, 3*window-1-2)
	}
}

func TestRecorderInvalid(t *testing.T) {
	var r Recorder
	for _, b := range [][]byte{
		[]byte("hello"),
		[]byte("xxxx0000000000000000000000000"),
		append([]byte("ntsq\x07"), make([]byte, 19)...), // unknown kind
	} {
		if _, err := r.Receive(b, t0); !errors.Is(err, ErrNotSeqstream) {
			t.Errorf("Receive(%q) = %v, want ErrNotSeqstream", b, err)
		}
	}
	if rep := r.Report(); rep.Invalid != 3 || rep.Received != 0 {
		t.Errorf("invalid %d, received %d; want 3, 0", rep.Invalid, rep.Received)
	}
}

func TestPacketRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{Kind: Data, Seq: 0, Sent: 0},
		{Kind: Data, Seq: math.MaxUint64, Sent: t0.UnixNano()},
		{Kind: End, Seq: 12345, Sent: -1},
	} {
		b := make([]byte, 100)
		p.Put(b)
		got, err := Parse(b)
		if err != nil || got != p {
			t.Errorf("Parse(Put(%+v)) = %+v, %v", p, got, err)
		}
	}
}

func TestDue(t *testing.T) {
	tests := []struct {
		elapsed time.Duration
		pps     uint64
		want    uint64
	}{
		{-1, 1000, 0},
		{0, 0, 0},
		{0, 1000, 1},
		{999 * time.Microsecond, 1000, 1},
		{time.Millisecond, 1000, 2},
		{time.Second, 50_000, 50_001},
		{24 * time.Hour, 10_000_000, 24*3600*10_000_000 + 1}, // overflows 64-bit ns·pps
		{math.MaxInt64, math.MaxUint64, math.MaxUint64},
	}
	for _, tt := range tests {
		if got := Due(tt.elapsed, tt.pps); got != tt.want {
			t.Errorf("Due(%v, %d) = %d, want %d", tt.elapsed, tt.pps, got, tt.want)
		}
	}
	if got := Total(time.Second, 1000); got != 1000 {
		t.Errorf("Total(1s, 1000) = %d, want 1000", got)
	}
	if got := Total(0, 1000); got != 0 {
		t.Errorf("Total(0, 1000) = %d, want 0", got)
	}
}

// TestRecorderBins counts distinct packets received per 10 sequence
// numbers from the first to arrive: a late packet counts where it belongs
// (and is the block's earliest sent), a duplicate not at all, one before
// the first not at all.
func TestRecorderBins(t *testing.T) {
	r := Recorder{BinSeqs: 10}
	buf := make([]byte, HeaderLen)
	for _, seq := range []uint64{
		5, 6, 7, 8, 9,
		9,  // duplicate
		17, // the second bin
		40, // the fourth
		16, // late, the second
		4,  // late, before the first to arrive
	} {
		Packet{Kind: Data, Seq: seq, Sent: t0.Add(ms(int(seq))).UnixNano()}.Put(buf)
		if _, err := r.Receive(buf, t0.Add(ms(int(seq)+3))); err != nil {
			t.Fatal(err)
		}
	}
	want := &Bins{FirstSeq: 5, Seqs: 10, Counts: []uint32{5, 2, 0, 1},
		SentNs: []int64{t0.Add(ms(5)).UnixNano(), t0.Add(ms(16)).UnixNano(), 0, t0.Add(ms(40)).UnixNano()}}
	if got := r.Report().Bins; !reflect.DeepEqual(got, want) {
		t.Errorf("bins %+v, want %+v", got, want)
	}
	var off Recorder
	off.Receive(buf, t0)
	if off.Report().Bins != nil {
		t.Error("bins counted without a bin width")
	}
}

func TestReportJSONAndText(t *testing.T) {
	rep := record(t, cat(steady(0, 9, 0), steady(40, 49, ms(40)), []step{{seq: 60, at: ms(60), end: true}}))
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"received":20`, `"lost":40`, `"reordered":0`,
		`"outages":[{"fromSeq":9,"toSeq":40,"missing":30,"durationUs":31000},{"fromSeq":49,"toSeq":60,"missing":10,"durationUs":11000,"open":true}]`,
		`"maxOutageUs":31000`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s\nlacks %s", b, want)
		}
	}
	text := rep.String()
	for _, want := range []string{"received 20 of 60 packets: lost 40", "2 outages, longest 31ms",
		"seq 9 → 40: 30 missing, 31ms", "after seq 49: 10 missing, never resumed"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report\n%s\nlacks %q", text, want)
		}
	}
	var empty Recorder
	if b, _ := json.Marshal(empty.Report()); !strings.Contains(string(b), `"outages":[]`) {
		t.Errorf("empty report JSON %s: outages should be [], not null", b)
	}
}
