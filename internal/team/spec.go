package team

import (
	"time"

	"github.com/nicteam/nicteam/internal/lacp"
)

// Spec is a team as the user declared it. It is what the daemon persists.
type Spec struct {
	Name      string       `json:"name"`
	Members   []MemberSpec `json:"members"` // the first is the primary: its MAC is the team's
	Mode      Mode         `json:"teamingMode"`
	Algorithm Algorithm    `json:"loadBalancingAlgorithm"`
	// UpDelay is how long a member that regained carrier waits before it
	// carries traffic again, so a flapping cable does not move flows back
	// and forth. Zero rejoins at once; at most MaxUpDelay.
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

// Bounds of the timing settings (zero takes the default). Each bounds how
// long the daemon acts on a stale decision: an up-delay holds a healthy
// member out of the team, announcements keep repeating an old primary's
// MAC, and an auto team waits out its verify timeout before it follows
// (traffic the fabric still sends to the failed member is lost meanwhile).
// Beyond these a value is a typo, not a setting.
const (
	MaxUpDelay        = time.Hour
	MaxNotifyCount    = 100
	MinNotifyInterval = time.Millisecond
	MaxNotifyInterval = 10 * time.Second
	MinVerify         = 100 * time.Microsecond
	MaxVerify         = time.Second
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
