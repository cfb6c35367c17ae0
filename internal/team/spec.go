package team

import (
	"errors"
	"fmt"
	"time"

	"github.com/nicteam/nicteam/internal/lacp"
)

// MaxNameLen is the longest Linux interface name (IFNAMSIZ - 1); the team
// NIC carries the team's name, so team names obey it too.
const MaxNameLen = 15

// Spec is a team as the user declared it. It is what the daemon persists.
type Spec struct {
	Name      string       `json:"name"`
	Members   []MemberSpec `json:"members"` // the first is the primary: its MAC is the team's
	Mode      Mode         `json:"teamingMode"`
	Algorithm Algorithm    `json:"loadBalancingAlgorithm"`
	// UpDelay is how long a member that regained carrier waits before it
	// carries traffic again, so a flapping cable does not move flows back
	// and forth. Zero rejoins at once.
	UpDelay time.Duration `json:"upDelay,omitempty"`
	// MACPolicy says what happens to the team MAC when its owner fails.
	MACPolicy MACPolicy `json:"macPolicy"`
	// Notify is how peers are told after the MAC's member changes; zero
	// values take the defaults.
	Notify Notify `json:"notify,omitzero"`
	// Lacp configures a Lacp team's protocol; zero values take the defaults.
	Lacp LacpSpec `json:"lacp,omitzero"`
	// MinLinks is the fewest members that must carry traffic for the team
	// to be up; below it the team is Down (bonding's min_links). Zero and
	// one mean any member will do.
	MinLinks int `json:"minLinks,omitempty"`
	// Dynamic tunes the Dynamic algorithm; zero values take the defaults.
	Dynamic DynamicSpec `json:"dynamic,omitzero"`
}

// DynamicSpec tunes the Dynamic algorithm.
type DynamicSpec struct {
	// FlowletGap is how long a flow must pause before it may follow its
	// bucket to another member.
	FlowletGap time.Duration `json:"flowletGap,omitempty"`
	// Interval is how often buckets are moved by measured load.
	Interval time.Duration `json:"interval,omitempty"`
}

// Bounds of the Dynamic settings: a gap below a few µs is below the
// jitter of one path, above a second no flow would ever move; the
// rebalancer needs a few ms of counters to measure, and one that waits
// minutes is not dynamic.
const (
	MinFlowletGap = 10 * time.Microsecond
	MaxFlowletGap = time.Second
	MinInterval   = 10 * time.Millisecond
	MaxInterval   = time.Minute
)

// LacpSpec is a Lacp team's protocol settings.
type LacpSpec struct {
	Timer          LacpTimer `json:"timer"`
	SystemPriority uint16    `json:"systemPriority,omitempty"`
	Key            uint16    `json:"key,omitempty"`
	PortPriority   uint16    `json:"portPriority,omitempty"`
}

// LACP defaults (the protocol's, as Linux bonding has them); the system ID
// is the team MAC.
const (
	DefaultLacpSystemPriority = lacp.DefaultSystemPriority
	DefaultLacpKey            = lacp.DefaultKey
	DefaultLacpPortPriority   = lacp.DefaultPortPriority
)

// WithDefaults fills zero fields with the defaults.
func (l LacpSpec) WithDefaults() LacpSpec {
	if l.SystemPriority == 0 {
		l.SystemPriority = DefaultLacpSystemPriority
	}
	if l.Key == 0 {
		l.Key = DefaultLacpKey
	}
	if l.PortPriority == 0 {
		l.PortPriority = DefaultLacpPortPriority
	}
	return l
}

// Notify configures peer announcements and the auto policy's check.
type Notify struct {
	Count    int           `json:"count,omitempty"`    // announcements per change
	Interval time.Duration `json:"interval,omitempty"` // between announcements
	// Verify bounds how long an auto team waits for a neighbour to answer
	// through the new primary before it follows.
	Verify time.Duration `json:"verify,omitempty"`
}

// Notification defaults: the first announcement goes at once, two more
// cover a lost frame or a slow switch; a neighbour on the same fabric
// answers in well under the verify bound.
const (
	DefaultNotifyCount    = 3
	DefaultNotifyInterval = 50 * time.Millisecond
	DefaultVerify         = 3 * time.Millisecond
)

// WithDefaults fills zero fields with the defaults.
func (n Notify) WithDefaults() Notify {
	if n.Count == 0 {
		n.Count = DefaultNotifyCount
	}
	if n.Interval == 0 {
		n.Interval = DefaultNotifyInterval
	}
	if n.Verify == 0 {
		n.Verify = DefaultVerify
	}
	return n
}

// MemberSpec is one declared member.
type MemberSpec struct {
	Name string    `json:"name"`
	Mode AdminMode `json:"administrativeMode"`
}

// Member returns the declared member called name.
func (s *Spec) Member(name string) (MemberSpec, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return MemberSpec{}, false
}

// MemberNames lists the members in declaration order.
func (s *Spec) MemberNames() []string {
	names := make([]string, len(s.Members))
	for i, m := range s.Members {
		names[i] = m.Name
	}
	return names
}

// Supported refuses a teaming mode outside the known ones. Decoding refuses
// unknown names already, so this guards Go callers that build a Spec.
func (s *Spec) Supported() error {
	if s.Mode < SwitchIndependent || s.Mode > Lacp {
		return fmt.Errorf("teaming mode %s is not supported", s.Mode)
	}
	return nil
}

// LinkFacts is what validation needs to know about an existing interface.
type LinkFacts struct {
	Loopback bool
	TeamNIC  string // non-empty when the interface is the NIC (or hidden peer) of this team
	InTeam   string // non-empty when the interface is a member of this team
}

// Inventory answers questions about the host's interfaces during validation.
// The daemon backs it with netlink and its own records; tests with a map.
type Inventory interface {
	// Link returns facts about an interface; ok is false when it does not exist.
	Link(name string) (facts LinkFacts, ok bool)
}

// ErrInvalid matches every validation error (errors.Is), so the API can
// answer 400; the message itself names only the problem.
var ErrInvalid = errors.New("invalid")

type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Unwrap() error        { return e.err }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// Invalid marks err as bad input.
func Invalid(err error) error { return invalidError{err} }

func invalid(format string, args ...any) error { return Invalid(fmt.Errorf(format, args...)) }

// ValidateName checks a team name before anything else is looked at.
func ValidateName(name string) error {
	switch {
	case name == "":
		return invalid("team name is empty")
	case len(name) > MaxNameLen:
		return invalid("team name %q is %d characters; interface names are at most %d", name, len(name), MaxNameLen)
	}
	for _, r := range name {
		if r <= ' ' || r == '/' || r == ':' || r > '~' {
			return invalid("team name %q: character %q is not allowed in an interface name", name, r)
		}
	}
	return nil
}

// ValidateNew checks a spec for a team that does not exist yet.
func ValidateNew(s *Spec, inv Inventory) error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if f, ok := inv.Link(s.Name); ok {
		if f.TeamNIC != "" {
			return invalid("team %q already exists", s.Name)
		}
		return invalid("team name %q is already the name of an interface", s.Name)
	}
	if err := s.Supported(); err != nil {
		return Invalid(err)
	}
	return ValidateMembers(s, inv)
}

// ValidateMembers checks the member list of s against the host.
func ValidateMembers(s *Spec, inv Inventory) error {
	if len(s.Members) == 0 {
		return invalid("team %q: no members (give at least one with --members)", s.Name)
	}
	seen := map[string]bool{}
	standby := ""
	active := 0
	for _, m := range s.Members {
		if m.Name == "" {
			return invalid("team %q: empty member name", s.Name)
		}
		if seen[m.Name] {
			return invalid("team %q: member %q listed twice", s.Name, m.Name)
		}
		seen[m.Name] = true
		if m.Mode == AdminStandby {
			if standby != "" {
				return invalid("team %q: %q and %q are both standby; a team has at most one standby member", s.Name, standby, m.Name)
			}
			standby = m.Name
		} else {
			active++
		}
		f, ok := inv.Link(m.Name)
		switch {
		case !ok:
			return invalid("team %q: member %q: no such interface", s.Name, m.Name)
		case f.Loopback:
			return invalid("team %q: member %q is a loopback interface", s.Name, m.Name)
		case f.TeamNIC != "":
			return invalid("team %q: member %q is the interface of team %q; a team cannot be a member", s.Name, m.Name, f.TeamNIC)
		case f.InTeam != "" && f.InTeam != s.Name:
			return invalid("team %q: member %q is already in team %q", s.Name, m.Name, f.InTeam)
		}
	}
	if active == 0 {
		return invalid("team %q: every member is standby; at least one must be active", s.Name)
	}
	return nil
}
