package lacp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// ovsPDU is a LACPDU shaped as Open vSwitch 3.1 sends it from a bond with
// lacp=active, lacp-time=fast, in sync and collecting/distributing with
// its partner (system 65535,02:00:00:00:00:01 key 1 port 3).
var ovsPDU = "0180c2000002" + "aa0000000102" + "8809" + "0101" +
	"0114" + "fffe" + "aa0000000001" + "0005" + "ffff" + "0006" + "3f" + "000000" +
	"0214" + "ffff" + "020000000001" + "0001" + "00ff" + "0003" + "3f" + "000000" +
	"0310" + "0000" + "000000000000000000000000" +
	"0000" + strings.Repeat("00", 50)

// ovsCaptured is the first LACPDU Open vSwitch 3.1 (userspace datapath,
// lacp=active, lacp-time=fast) sent on a bond member, captured off the
// wire: no partner known yet, so the partner TLV is all defaults.
var ovsCaptured = "0180c2000002d2cd2aefafaf880901010114ffffaa00000000010001ffff0001bb0000000214" +
	strings.Repeat("00", 14) + "02000000" + "0310" + strings.Repeat("00", 14) + "0000" + strings.Repeat("00", 50)

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeOVS(t *testing.T) {
	frame := mustHex(t, ovsPDU)
	if len(frame) != FrameLen {
		t.Fatalf("test frame is %d bytes, want %d", len(frame), FrameLen)
	}
	p, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	want := PDU{
		Source: net.HardwareAddr{0xaa, 0, 0, 0, 1, 2},
		Actor: Info{SystemPriority: 65534, System: [6]byte{0xaa, 0, 0, 0, 0, 1}, Key: 5, PortPriority: 65535, Port: 6,
			State: StateActivity | StateTimeout | StateAggregation | StateSynchronization | StateCollecting | StateDistributing},
		Partner: Info{SystemPriority: 65535, System: [6]byte{2, 0, 0, 0, 0, 1}, Key: 1, PortPriority: 255, Port: 3,
			State: 0x3f},
	}
	if p.Source.String() != want.Source.String() || p.Actor != want.Actor || p.Partner != want.Partner || p.CollectorMaxDelay != 0 {
		t.Errorf("decoded %+v\nwant    %+v", p, want)
	}
	// Byte-exact: encoding what was decoded gives the frame back.
	if got := p.Encode(); !bytes.Equal(got, frame) {
		t.Errorf("re-encoded:\n%x\nwant\n%x", got, frame)
	}
	if got := p.Actor.State.String(); got != "Activity,Timeout,Aggregation,Synchronization,Collecting,Distributing" {
		t.Errorf("state names %q", got)
	}
}

func TestDecodeCapturedOVS(t *testing.T) {
	frame := mustHex(t, ovsCaptured)
	p, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if p.Actor.SystemPriority != 65535 || p.Actor.System != [6]byte{0xaa, 0, 0, 0, 0, 1} || p.Actor.Key != 1 ||
		p.Actor.PortPriority != 65535 || p.Actor.Port != 1 || p.Actor.State != 0xbb || p.Partner != (Info{State: StateTimeout}) {
		t.Errorf("decoded %+v", p)
	}
	if got := p.Encode(); !bytes.Equal(got, frame) {
		t.Errorf("re-encoded:\n%x\nwant\n%x", got, frame)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := mustHex(t, ovsPDU)
	for name, mutate := range map[string]func([]byte) []byte{
		"short":          func(b []byte) []byte { return b[:minDecodeLen-1] },
		"ethertype":      func(b []byte) []byte { b[13] = 0x00; return b },
		"marker subtype": func(b []byte) []byte { b[14] = 2; return b },
		"version 0":      func(b []byte) []byte { b[15] = 0; return b },
		"actor length":   func(b []byte) []byte { b[17] = 19; return b },
		"partner type":   func(b []byte) []byte { b[36] = 9; return b },
		"collector len":  func(b []byte) []byte { b[57] = 0; return b },
		"no terminator":  func(b []byte) []byte { b[72] = 4; return b },
	} {
		f := mutate(append([]byte(nil), good...))
		if _, err := Decode(f); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	// Trimmed padding and a newer version are read.
	if _, err := Decode(good[:minDecodeLen]); err != nil {
		t.Errorf("trimmed padding: %v", err)
	}
	v2 := append([]byte(nil), good...)
	v2[15] = 2
	if _, err := Decode(v2); err != nil {
		t.Errorf("version 2: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(mustHex(f, ovsPDU))
	f.Add(mustHex(f, ovsCaptured))
	f.Add(PDU{Source: net.HardwareAddr{2, 0, 0, 0, 0, 9}}.Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := Decode(frame)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		// What decodes re-encodes to the same meaningful bytes.
		q, err := Decode(p.Encode())
		if err != nil || q.Actor != p.Actor || q.Partner != p.Partner || q.CollectorMaxDelay != p.CollectorMaxDelay {
			t.Fatalf("round trip: %+v %v, want %+v", q, err, p)
		}
		// A System survives any frame.
		s := New(Config{System: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Fast: true}, func(string, []byte) {})
		now := time.Unix(0, 0)
		s.AddPort(now, "p", net.HardwareAddr{2, 0, 0, 0, 1, 1}, 1)
		s.SetPort(now, "p", net.HardwareAddr{2, 0, 0, 0, 1, 1}, true)
		s.Receive(now, "p", frame)
		s.Tick(now.Add(time.Second))
	})
}

// lab wires systems port to port through cables with a one-tick delay and
// runs them on a shared fake clock.
type lab struct {
	t       *testing.T
	now     time.Time
	systems map[string]*System
	cables  map[string]string // "sys/port" -> "sys/port", both ways
	cut     map[string]bool   // "sys/port" whose cable is pulled
	mute    map[string]bool   // systems that stopped sending (LACP off)
	queue   []frameTo
	sent    map[string]int // frames sent per "sys/port"
}

type frameTo struct {
	to    string
	frame []byte
}

func newLab(t *testing.T) *lab {
	return &lab{t: t, now: time.Unix(1000, 0), systems: map[string]*System{}, cables: map[string]string{},
		cut: map[string]bool{}, mute: map[string]bool{}, sent: map[string]int{}}
}

func (l *lab) add(name string, cfg Config, ports ...string) *System {
	s := l.newSystem(name, cfg)
	for i, p := range ports {
		if err := s.AddPort(l.now, p, net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)}, uint16(i+1)); err != nil {
			l.t.Fatal(err)
		}
	}
	return s
}

// newSystem replaces the system called name (as a restart would) by one
// with no ports, wired to the same cables.
func (l *lab) newSystem(name string, cfg Config) *System {
	s := New(cfg, func(port string, frame []byte) {
		from := name + "/" + port
		l.sent[from]++
		if to, ok := l.cables[from]; ok && !l.cut[from] && !l.mute[name] {
			l.queue = append(l.queue, frameTo{to, frame})
		}
	})
	l.systems[name] = s
	return s
}

func split(sp string) (string, string) {
	i := strings.IndexByte(sp, '/')
	return sp[:i], sp[i+1:]
}

func (l *lab) cable(a, b string) {
	l.cables[a], l.cables[b] = b, a
	l.setCarrier(a, true)
}

// setCarrier plugs or pulls the cable at a (and its other end).
func (l *lab) setCarrier(a string, on bool) {
	for _, end := range []string{a, l.cables[a]} {
		l.cut[end] = !on
		sys, port := split(end)
		s := l.systems[sys]
		s.SetPort(l.now, port, nil, on)
	}
}

// advance runs the clock forward in 100 ms ticks, delivering frames.
func (l *lab) advance(d time.Duration) {
	for end := l.now.Add(d); l.now.Before(end); {
		l.now = l.now.Add(100 * time.Millisecond)
		q := l.queue
		l.queue = nil
		for _, f := range q {
			sys, port := split(f.to)
			if l.cut[f.to] {
				continue
			}
			if _, err := l.systems[sys].Receive(l.now, port, f.frame); err != nil {
				l.t.Fatalf("%s: %v", f.to, err)
			}
		}
		for _, s := range l.systems {
			s.Tick(l.now)
		}
	}
}

func (l *lab) cd(sp string) bool {
	sys, port := split(sp)
	return l.systems[sys].CollectingDistributing(port)
}

func (l *lab) want(t *testing.T, when string, cd map[string]bool) {
	t.Helper()
	for sp, want := range cd {
		if got := l.cd(sp); got != want {
			sys, _ := split(sp)
			t.Errorf("%s: %s collecting/distributing %v, want %v; %+v", when, sp, got, want, l.systems[sys].Status())
		}
	}
}

func cfgOf(last byte, fast bool) Config {
	return Config{SystemPriority: DefaultSystemPriority, System: net.HardwareAddr{2, 0, 0, 0, 0, last},
		Key: DefaultKey, PortPriority: DefaultPortPriority, Fast: fast}
}

func TestTwoSystemsConverge(t *testing.T) {
	l := newLab(t)
	l.add("a", cfgOf(1, true), "p1", "p2")
	l.add("b", cfgOf(2, true), "p1", "p2")
	l.cable("a/p1", "b/p1")
	l.cable("a/p2", "b/p2")
	all := func(v bool) map[string]bool {
		return map[string]bool{"a/p1": v, "a/p2": v, "b/p1": v, "b/p2": v}
	}
	l.advance(AggregateWait + time.Second)
	l.want(t, "after wait", all(true))
	for _, st := range l.systems["a"].Status() {
		if st.Partner.System != [6]byte{2, 0, 0, 0, 0, 2} || st.Partner.Port == 0 || st.Actor.State&StateSynchronization == 0 {
			t.Errorf("a status %+v", st)
		}
	}

	// A pulled cable leaves the other port aggregated; plugged back, it rejoins.
	l.setCarrier("a/p1", false)
	l.advance(200 * time.Millisecond)
	l.want(t, "p1 pulled", map[string]bool{"a/p1": false, "b/p1": false, "a/p2": true, "b/p2": true})
	l.setCarrier("a/p1", true)
	l.advance(AggregateWait + time.Second)
	l.want(t, "p1 back", all(true))

	// The partner stops talking (LACP off): its information expires after
	// the short timeout, not before.
	l.mute["b"] = true
	l.advance(ShortTimeout - 300*time.Millisecond)
	l.want(t, "just before the fast timeout", map[string]bool{"a/p1": true, "a/p2": true})
	l.advance(500 * time.Millisecond)
	l.want(t, "after the fast timeout", map[string]bool{"a/p1": false, "a/p2": false})
	for _, st := range l.systems["a"].Status() {
		if st.Rx != RxExpired || st.Selected {
			t.Errorf("after timeout: %+v", st)
		}
	}
	l.advance(ShortTimeout)
	for _, st := range l.systems["a"].Status() {
		if st.Rx != RxDefaulted || st.Actor.State&StateDefaulted == 0 || st.Partner != (Info{}) {
			t.Errorf("defaulted: %+v", st)
		}
	}
	l.mute["b"] = false
	l.advance(AggregateWait + 2*time.Second)
	l.want(t, "partner back", all(true))
}

// TestResume restarts a system whose ports collect: resumed, they keep
// collecting and the partner never notices; a resumed port whose partner
// went silent expires like any other.
func TestResume(t *testing.T) {
	l := newLab(t)
	l.add("a", cfgOf(1, true), "p1", "p2")
	l.add("b", cfgOf(2, true), "p1", "p2")
	l.cable("a/p1", "b/p1")
	l.cable("a/p2", "b/p2")
	l.advance(AggregateWait + time.Second)
	all := map[string]bool{"a/p1": true, "a/p2": true, "b/p1": true, "b/p2": true}
	l.want(t, "converged", all)

	a := l.newSystem("a", cfgOf(1, true))
	for i, p := range []string{"p1", "p2"} {
		if err := a.ResumePort(l.now, p, net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)}, uint16(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	l.want(t, "resumed", all)
	for range 40 { // every tick for 4 s: no port ever stops collecting
		l.advance(100 * time.Millisecond)
		l.want(t, "after the restart", all)
		if t.Failed() {
			return
		}
	}
	for _, st := range a.Status() {
		if st.Partner.System != [6]byte{2, 0, 0, 0, 0, 2} {
			t.Errorf("resumed port never learnt its partner: %+v", st)
		}
	}

	l.mute["b"] = true
	a = l.newSystem("a", cfgOf(1, true))
	a.ResumePort(l.now, "p1", net.HardwareAddr{2, 0, 0, 0, 0, 1}, 1)
	l.advance(ShortTimeout + 200*time.Millisecond)
	l.want(t, "resumed facing silence", map[string]bool{"a/p1": false})
}

func TestSlowTimer(t *testing.T) {
	l := newLab(t)
	l.add("a", cfgOf(1, false), "p1")
	l.add("b", cfgOf(2, false), "p1")
	l.cable("a/p1", "b/p1")
	l.advance(AggregateWait + time.Second)
	l.want(t, "converged", map[string]bool{"a/p1": true, "b/p1": true})
	// Settled, a slow port sends once per SlowPeriodic.
	before := l.sent["a/p1"]
	l.advance(2 * SlowPeriodic)
	if n := l.sent["a/p1"] - before; n < 2 || n > 3 {
		t.Errorf("slow port sent %d PDUs in %s", n, 2*SlowPeriodic)
	}
	// Silence expires after the long timeout only: counted from the last
	// PDU, which came up to one SlowPeriodic before the silence.
	l.mute["b"] = true
	l.advance(LongTimeout - SlowPeriodic - time.Second)
	l.want(t, "before the slow timeout", map[string]bool{"a/p1": true})
	l.advance(SlowPeriodic + 2*time.Second)
	l.want(t, "after the slow timeout", map[string]bool{"a/p1": false})
}

func TestFastRateFollowsPartner(t *testing.T) {
	l := newLab(t)
	l.add("a", cfgOf(1, false), "p1") // asks for slow
	l.add("b", cfgOf(2, true), "p1")  // asks for fast
	l.cable("a/p1", "b/p1")
	l.advance(AggregateWait + time.Second)
	before := l.sent["a/p1"]
	l.advance(10 * time.Second)
	if n := l.sent["a/p1"] - before; n < 9 {
		t.Errorf("a sent %d PDUs in 10 s to a partner asking for the fast rate", n)
	}
}

func TestPartnerInAnotherAggregation(t *testing.T) {
	l := newLab(t)
	l.add("a", cfgOf(1, true), "p1", "p2", "p3")
	l.add("b", cfgOf(2, true), "p1", "p2")
	l.add("c", cfgOf(3, true), "p1")
	l.cable("a/p1", "b/p1")
	l.cable("a/p2", "b/p2")
	l.cable("a/p3", "c/p1") // another switch
	l.advance(AggregateWait + time.Second)
	l.want(t, "mixed partners", map[string]bool{"a/p1": true, "a/p2": true, "a/p3": false, "c/p1": false})
	for _, st := range l.systems["a"].Status() {
		if st.Name == "p3" && (st.Selected || st.Rx != RxCurrent) {
			t.Errorf("p3 facing another system: %+v", st)
		}
	}
	// With b gone, the aggregator takes c's partner.
	l.setCarrier("a/p1", false)
	l.setCarrier("a/p2", false)
	l.advance(AggregateWait + time.Second)
	l.want(t, "only c left", map[string]bool{"a/p3": true, "c/p1": true})
}

func TestOwnPortsCabledTogether(t *testing.T) {
	l := newLab(t)
	l.add("a", cfgOf(1, true), "p1", "p2")
	l.cable("a/p1", "a/p2")
	l.advance(AggregateWait + time.Second)
	l.want(t, "looped", map[string]bool{"a/p1": false, "a/p2": false})
}

func TestPortNumbersNeverZero(t *testing.T) {
	s := New(cfgOf(1, true), func(string, []byte) {})
	now := time.Unix(0, 0)
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	s.AddPort(now, "a", mac, 0)
	s.AddPort(now, "b", mac, 7)
	s.AddPort(now, "c", mac, 7)
	s.AddPort(now, "d", mac, 1)
	got := map[string]uint16{}
	for _, st := range s.Status() {
		got[st.Name] = st.Actor.Port
	}
	want := map[string]uint16{"a": 1, "b": 7, "c": 2, "d": 3}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("port %s number %d, want %d (all %v)", n, got[n], w, got)
		}
	}
	if err := s.AddPort(now, "a", mac, 5); err == nil {
		t.Error("a port added twice")
	}
}

func TestMalformedCounted(t *testing.T) {
	var sent int
	s := New(cfgOf(1, true), func(string, []byte) { sent++ })
	now := time.Unix(0, 0)
	s.AddPort(now, "p", net.HardwareAddr{2, 0, 0, 0, 0, 9}, 1)
	s.SetPort(now, "p", net.HardwareAddr{2, 0, 0, 0, 0, 9}, true)
	bad := mustHex(t, ovsPDU)
	bad[17] = 7
	if _, err := s.Receive(now, "p", bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("err %v", err)
	}
	if _, err := s.Receive(now, "p", bad[:20]); err == nil {
		t.Error("short frame accepted")
	}
	if s.Malformed() != 2 {
		t.Errorf("malformed %d, want 2", s.Malformed())
	}
	if st := s.Status()[0]; st.Rx != RxExpired {
		t.Errorf("a malformed PDU changed the port: %+v", st)
	}
}
