package lacp

import (
	"fmt"
	"net"
	"slices"
	"time"
)

// Timers of 802.1AX-2008, 5.4.4.
const (
	FastPeriodic  = time.Second
	SlowPeriodic  = 30 * time.Second
	ShortTimeout  = 3 * FastPeriodic
	LongTimeout   = 3 * SlowPeriodic
	AggregateWait = 2 * time.Second
	// txLimit is the most LACPDUs a port sends in one FastPeriodic.
	txLimit = 3
)

// Defaults of the configurable values; Linux bonding uses the same.
const (
	DefaultSystemPriority = 65535
	DefaultPortPriority   = 255
	DefaultKey            = 1
)

// Config is one system (a team): everything its ports share.
type Config struct {
	SystemPriority uint16
	System         net.HardwareAddr // the team's MAC
	Key            uint16
	PortPriority   uint16
	// Fast asks the partner for a LACPDU every second and expires its
	// information after 3 s; otherwise every 30 s and after 90 s.
	Fast bool
}

// RxState is the receive machine's state.
type RxState int

// Receive machine states (802.1AX-2008, 5.4.12).
const (
	RxPortDisabled RxState = iota
	RxExpired
	RxDefaulted
	RxCurrent
)

var rxNames = []string{"PortDisabled", "Expired", "Defaulted", "Current"}

func (s RxState) String() string { return rxNames[s] }

// MuxState is the mux machine's state (coupled control, 5.4.15).
type MuxState int

// Mux machine states.
const (
	MuxDetached MuxState = iota
	MuxWaiting
	MuxAttached
	MuxCollectingDistributing
)

var muxNames = []string{"Detached", "Waiting", "Attached", "CollectingDistributing"}

func (s MuxState) String() string { return muxNames[s] }

// PortStatus is a port as `nicteam lacp` shows it.
type PortStatus struct {
	Name     string
	Actor    Info
	Partner  Info
	Rx       RxState
	Mux      MuxState
	Selected bool
}

// port is one port's machines. Every field is guarded by the System's
// caller (System is not safe for concurrent use).
type port struct {
	name    string
	mac     net.HardwareAddr
	number  uint16
	enabled bool

	rx           RxState
	partner      Info // Partner_Oper: defaults (zero) while not Current
	partnerSync  bool
	currentWhile time.Time // rx timer deadline, zero when stopped
	expired      bool
	defaulted    bool

	mux       MuxState
	waitWhile time.Time
	selected  bool
	// reselect is update_Selected's UNSELECTED: the partner changed, so
	// the port goes through Detached before it may join again.
	reselect bool
	// resuming marks a port ResumePort added: it stays collecting and
	// silent until the partner's next LACPDU, or the timeout, decides.
	resuming bool

	ntt          bool
	nextPeriodic time.Time
	txWindow     time.Time // start of the current FastPeriodic tx window
	txCount      int
}

// System runs the LACP machines of one aggregation system's ports and
// picks the partner its single aggregator follows. It is not safe for
// concurrent use; the caller serialises the calls.
type System struct {
	cfg       Config
	send      func(port string, frame []byte)
	ports     []*port // in AddPort order
	chosen    Info    // partner system and key of the aggregator (Port and State unused)
	hasChosen bool
	malformed uint64
}

// New returns a system with no ports. send is called, from inside the
// System's methods, with each frame to transmit on a port.
func New(cfg Config, send func(port string, frame []byte)) *System {
	return &System{cfg: cfg, send: send}
}

// SetConfig changes the system's settings: every port renegotiates.
func (s *System) SetConfig(now time.Time, cfg Config) {
	s.cfg = cfg
	for _, p := range s.ports {
		p.reselect, p.ntt, p.resuming = true, true, false
	}
	s.run(now)
}

// AddPort adds a port with carrier off. Port numbers are never 0: number
// is used when it is non-zero and free, else the lowest free number.
func (s *System) AddPort(now time.Time, name string, mac net.HardwareAddr, number uint16) error {
	if _, err := s.addPort(name, mac, number); err != nil {
		return err
	}
	s.run(now)
	return nil
}

// ResumePort adds a port, with carrier, that was Collecting_Distributing
// before the caller restarted (its datapath says so), so that a restart
// does not take it out of the aggregation. It keeps collecting and sends
// nothing (it no longer knows the partner, and saying so would make the
// partner stop collecting) until the partner's next LACPDU, which comes
// within the rate this system asks for: that PDU confirms the port or
// sends it through the machines as any change would. With no PDU it
// expires like any silent partner.
func (s *System) ResumePort(now time.Time, name string, mac net.HardwareAddr, number uint16) error {
	p, err := s.addPort(name, mac, number)
	if err != nil {
		return err
	}
	p.enabled, p.resuming, p.partnerSync = true, true, true
	p.rx, p.mux, p.currentWhile = RxCurrent, MuxCollectingDistributing, now.Add(s.timeout())
	s.run(now)
	return nil
}

func (s *System) addPort(name string, mac net.HardwareAddr, number uint16) (*port, error) {
	if s.port(name) != nil {
		return nil, fmt.Errorf("lacp: add port %s: already added", name)
	}
	taken := map[uint16]bool{0: true}
	for _, p := range s.ports {
		taken[p.number] = true
	}
	for n := uint16(1); taken[number]; n++ {
		if n == 0 {
			return nil, fmt.Errorf("lacp: add port %s: no free port number", name)
		}
		number = n
	}
	p := &port{name: name, mac: slices.Clone(mac), number: number}
	s.ports = append(s.ports, p)
	return p, nil
}

// RemovePort forgets a port.
func (s *System) RemovePort(now time.Time, name string) {
	s.ports = slices.DeleteFunc(s.ports, func(p *port) bool { return p.name == name })
	s.run(now)
}

// SetPort updates a port's MAC and carrier. Carrier loss stops its
// machines (PORT_DISABLED); carrier back starts them in EXPIRED.
func (s *System) SetPort(now time.Time, name string, mac net.HardwareAddr, carrier bool) bool {
	p := s.port(name)
	if p == nil {
		return false
	}
	p.mac = slices.Clone(mac)
	if carrier == p.enabled {
		return false
	}
	p.enabled, p.resuming = carrier, false
	if carrier {
		s.expire(now, p)
	} else {
		p.rx, p.partnerSync, p.currentWhile = RxPortDisabled, false, time.Time{}
		p.expired = false
	}
	return s.run(now)
}

// Receive hands a frame received on a port to its machines. A frame that
// does not decode is counted and dropped, and its error returned. The
// result says whether some port started or stopped collecting.
func (s *System) Receive(now time.Time, name string, frame []byte) (bool, error) {
	pdu, err := Decode(frame)
	if err != nil {
		s.malformed++
		return false, err
	}
	p := s.port(name)
	if p == nil || !p.enabled {
		return false, nil
	}
	if !pdu.Actor.sameLink(p.partner) && !p.resuming {
		p.reselect = true // update_Selected
	}
	p.resuming = false
	actor := s.actor(p)
	mine := pdu.Partner
	// recordPDU: the partner is in sync when it says so and has us right
	// (or is an individual link, which has nothing to match).
	matched := mine.sameLink(actor)
	if !matched || (mine.State^actor.State)&(StateActivity|StateTimeout|StateSynchronization) != 0 {
		p.ntt = true // update_NTT: the partner's view of us is stale
	}
	p.partner = pdu.Actor
	p.partnerSync = pdu.Actor.State&StateSynchronization != 0 &&
		(matched || pdu.Actor.State&StateAggregation == 0)
	p.rx, p.expired, p.defaulted = RxCurrent, false, false
	p.currentWhile = now.Add(s.timeout())
	return s.run(now), nil
}

// Tick runs the timers. Call it often (every 100 ms is plenty); the
// result says whether some port started or stopped collecting.
func (s *System) Tick(now time.Time) bool {
	for _, p := range s.ports {
		if p.currentWhile.IsZero() || now.Before(p.currentWhile) {
			continue
		}
		switch p.rx {
		case RxCurrent:
			s.expire(now, p)
		case RxExpired:
			// update_Default_Selected, recordDefault: no partner.
			if p.partner != (Info{}) {
				p.reselect = true
			}
			p.rx, p.partner, p.partnerSync = RxDefaulted, Info{}, false
			p.expired, p.defaulted, p.currentWhile = false, true, time.Time{}
		}
	}
	return s.run(now)
}

// expire enters EXPIRED: the partner is no longer trusted to be in sync,
// and asks for a fast answer.
func (s *System) expire(now time.Time, p *port) {
	p.rx, p.partnerSync, p.expired, p.resuming = RxExpired, false, true, false
	p.partner.State |= StateTimeout
	p.currentWhile = now.Add(ShortTimeout)
	p.ntt = true
}

func (s *System) timeout() time.Duration {
	if s.cfg.Fast {
		return ShortTimeout
	}
	return LongTimeout
}

func (s *System) port(name string) *port {
	for _, p := range s.ports {
		if p.name == name {
			return p
		}
	}
	return nil
}

// actor is what p says about itself.
func (s *System) actor(p *port) Info {
	st := StateActivity | StateAggregation
	if s.cfg.Fast {
		st |= StateTimeout
	}
	if p.mux >= MuxAttached {
		st |= StateSynchronization
	}
	if p.mux == MuxCollectingDistributing {
		st |= StateCollecting | StateDistributing
	}
	if p.defaulted {
		st |= StateDefaulted
	}
	if p.expired {
		st |= StateExpired
	}
	i := Info{SystemPriority: s.cfg.SystemPriority, Key: s.cfg.Key, PortPriority: s.cfg.PortPriority, Port: p.number, State: st}
	copy(i.System[:], s.cfg.System)
	return i
}

// run settles selection and the mux machines, then transmits what is due,
// and reports whether some port's collecting state changed.
func (s *System) run(now time.Time) bool {
	before := s.collectingSet()
	s.selectPorts()
	for _, p := range s.ports {
		s.mux(now, p)
		s.periodic(now, p)
		s.transmit(now, p)
	}
	return !slices.Equal(before, s.collectingSet())
}

func (s *System) collectingSet() []bool {
	out := make([]bool, len(s.ports))
	for i, p := range s.ports {
		out[i] = p.mux == MuxCollectingDistributing
	}
	return out
}

// candidate reports whether p has a partner it could aggregate with.
func (s *System) candidate(p *port) bool {
	var self [6]byte
	copy(self[:], s.cfg.System)
	return p.enabled && p.rx == RxCurrent && p.partner.State&StateAggregation != 0 &&
		p.partner.System != self // our own ports cabled together never aggregate
}

func samePartner(a, b Info) bool {
	return a.SystemPriority == b.SystemPriority && a.System == b.System && a.Key == b.Key
}

// selectPorts is the selection logic: the one aggregator keeps its partner
// (system and key) while some port still sees it, else takes the partner
// of the lowest numbered candidate. Ports facing another partner (another
// switch, another aggregation on the same switch) are not selected.
func (s *System) selectPorts() {
	keep := false
	var first *port
	for _, p := range s.ports {
		if !s.candidate(p) {
			continue
		}
		if s.hasChosen && samePartner(p.partner, s.chosen) {
			keep = true
		}
		if first == nil || p.number < first.number {
			first = p
		}
	}
	switch {
	case keep:
	case first != nil:
		s.chosen, s.hasChosen = first.partner, true
	default:
		s.hasChosen = false
	}
	for _, p := range s.ports {
		p.selected = p.resuming || s.hasChosen && s.candidate(p) && samePartner(p.partner, s.chosen) && !p.reselect
		p.reselect = false
	}
}

// mux runs the coupled-control mux machine to a stable state.
func (s *System) mux(now time.Time, p *port) {
	for {
		next := p.mux
		switch p.mux {
		case MuxDetached:
			if p.selected {
				next = MuxWaiting
				p.waitWhile = now.Add(AggregateWait)
			}
		case MuxWaiting:
			switch {
			case !p.selected:
				next = MuxDetached
			case !now.Before(p.waitWhile):
				next = MuxAttached
			}
		case MuxAttached:
			switch {
			case !p.selected:
				next = MuxDetached
			case p.partnerSync:
				next = MuxCollectingDistributing
			}
		case MuxCollectingDistributing:
			if !p.selected || !p.partnerSync {
				next = MuxAttached
			}
		}
		if next == p.mux {
			return
		}
		p.mux, p.ntt = next, true
	}
}

// periodic asks for a LACPDU at the rate the partner asked for: fast
// unless it said slow (its information, or the defaults, which are fast).
func (s *System) periodic(now time.Time, p *port) {
	if !p.enabled {
		p.nextPeriodic = time.Time{}
		return
	}
	period := SlowPeriodic
	if p.partner.State&StateTimeout != 0 || p.rx != RxCurrent {
		period = FastPeriodic
	}
	// Due, never scheduled, or scheduled further out than the period
	// now asks (the partner switched to fast).
	if p.nextPeriodic.IsZero() || p.nextPeriodic.Sub(now) > period || !now.Before(p.nextPeriodic) {
		p.nextPeriodic = now.Add(period)
		p.ntt = true
	}
}

// transmit sends a LACPDU when one is due, at most txLimit per FastPeriodic.
func (s *System) transmit(now time.Time, p *port) {
	if !p.ntt || !p.enabled || p.resuming {
		return
	}
	if now.Sub(p.txWindow) >= FastPeriodic {
		p.txWindow, p.txCount = now, 0
	}
	if p.txCount >= txLimit {
		return // ntt stays set: the next tick in a new window sends
	}
	p.txCount++
	p.ntt = false
	pdu := PDU{Source: p.mac, Actor: s.actor(p), Partner: p.partner}
	if p.rx != RxCurrent {
		pdu.Partner = Info{} // nothing known about the partner
	}
	s.send(p.name, pdu.Encode())
}

// CollectingDistributing reports whether the port carries traffic.
func (s *System) CollectingDistributing(name string) bool {
	p := s.port(name)
	return p != nil && p.mux == MuxCollectingDistributing
}

// Malformed counts the frames Receive dropped because they did not decode.
func (s *System) Malformed() uint64 { return s.malformed }

// Status describes every port, in AddPort order.
func (s *System) Status() []PortStatus {
	out := make([]PortStatus, 0, len(s.ports))
	for _, p := range s.ports {
		ps := PortStatus{Name: p.name, Actor: s.actor(p), Rx: p.rx, Mux: p.mux, Selected: p.selected}
		if p.rx == RxCurrent {
			ps.Partner = p.partner
		}
		out = append(out, ps)
	}
	return out
}
