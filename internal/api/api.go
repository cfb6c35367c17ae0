// Package api is the contract between nicteamd and its clients: the JSON
// types (keys as the NetLbfo cmdlets name their properties, values as
// Windows spells them) and a client for the daemon's unix socket.
package api

import (
	"time"

	"github.com/nicteam/nicteam/internal/team"
)

// DefaultSocket is where nicteamd listens unless told otherwise.
const DefaultSocket = "/run/nicteam/nicteamd.sock"

// MaxRequestBody is the largest request body nicteamd reads; a larger one
// is answered 413. The largest valid body, a team of 64 members with
// every setting, is a few KiB.
const MaxRequestBody = 1 << 20

// Team is one team as Get-NetLbfoTeam shows it, plus what Linux adds.
type Team struct {
	Name                   string          `json:"name"`
	Members                []string        `json:"members"`
	TeamNics               string          `json:"teamNics"`
	TeamingMode            team.Mode       `json:"teamingMode"`
	LoadBalancingAlgorithm team.Algorithm  `json:"loadBalancingAlgorithm"`
	Status                 team.Status     `json:"status"`
	MacAddress             string          `json:"macAddress"`
	Primary                string          `json:"primary"`   // member carrying the team MAC now
	LinkSpeed              uint64          `json:"linkSpeed"` // bit/s, sum of the carrying members
	UpDelay                string          `json:"upDelay,omitempty"`
	MACPolicy              team.MACPolicy  `json:"macPolicy"`
	LacpTimer              *team.LacpTimer `json:"lacpTimer,omitempty"` // Lacp teams only
	MinLinks               int             `json:"minLinks,omitempty"`
	FlowletGap             string          `json:"flowletGap,omitempty"`        // Dynamic teams only
	RebalanceInterval      string          `json:"rebalanceInterval,omitempty"` // Dynamic teams only
	// DatapathFailover: the datapath sends a member's frames through its
	// fallback by itself while the member has no carrier. False where the
	// kernel or the daemon's privileges do not allow it (the daemon's log
	// says why): failover then waits for the daemon.
	DatapathFailover bool `json:"datapathFailover"`
	// Orphaned marks a team NIC or datapath nicteam made that no team
	// declares (a deleted state file, a daemon killed while creating):
	// `nicteam rm` removes it.
	Orphaned bool `json:"orphaned,omitempty"`
	// TeamNicStatus is the team NIC's as Get-NetAdapter spells it: Up,
	// Disabled (set down by an operator) or NotPresent (deleted, and not
	// rebuilt). While it is not Up no traffic passes and Status is Down.
	TeamNicStatus string `json:"teamNicStatus"`
}

// Member is one member as Get-NetLbfoTeamMember shows it.
type Member struct {
	Name               string             `json:"name"`
	Team               string             `json:"team"`
	AdministrativeMode team.AdminMode     `json:"administrativeMode"`
	OperationalStatus  team.OperStatus    `json:"operationalStatus"`
	FailureReason      team.FailureReason `json:"failureReason"`
	TransmitLinkSpeed  uint64             `json:"transmitLinkSpeed"` // bit/s
	ReceiveLinkSpeed   uint64             `json:"receiveLinkSpeed"`  // bit/s
}

// Adapter is one interface as Get-NetAdapter shows it.
type Adapter struct {
	Name                 string `json:"name"`
	InterfaceDescription string `json:"interfaceDescription"`
	IfIndex              int    `json:"ifIndex"`
	Status               string `json:"status"` // Up, Disconnected, Disabled
	MacAddress           string `json:"macAddress"`
	LinkSpeed            uint64 `json:"linkSpeed"` // bit/s
}

// NewTeam is the body of a create request.
type NewTeam struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
	Standby string   `json:"standby,omitempty"`
	// The settings; unset, mode SwitchIndependent, algorithm Dynamic,
	// up-delay 0 and MAC policy auto.
	SetTeam `yaml:",inline"`
}

// DynamicSettings tune the Dynamic algorithm; empty fields keep the
// defaults, or the current values on a change.
type DynamicSettings struct {
	FlowletGap        string `json:"flowletGap,omitempty"`        // Go duration, 10µs-1s, default 500µs
	RebalanceInterval string `json:"rebalanceInterval,omitempty"` // Go duration, 10ms-1m, default 250ms
}

// LacpSettings tunes a Lacp team (and min-links any team); empty fields
// keep the defaults, or the current values on a change.
type LacpSettings struct {
	LacpTimer          string `json:"lacpTimer,omitempty"`          // fast (default) or slow
	LacpSystemPriority int    `json:"lacpSystemPriority,omitempty"` // 1-65535, default 65535
	LacpKey            int    `json:"lacpKey,omitempty"`            // 1-65535, default 1
	LacpPortPriority   int    `json:"lacpPortPriority,omitempty"`   // 1-65535, default 255
	MinLinks           *int   `json:"minLinks,omitempty"`           // 0 (default): any member will do
}

// Notify tunes peer announcements; empty fields keep the defaults.
type Notify struct {
	NotifyCount    int    `json:"notifyCount,omitempty"`    // announcements per change (default 3)
	NotifyInterval string `json:"notifyInterval,omitempty"` // between them (default 50ms)
	VerifyTimeout  string `json:"verifyTimeout,omitempty"`  // auto policy's reachability bound (default 3ms)
}

// SetTeam is the body of a change request; empty fields stay as they are.
type SetTeam struct {
	Mode      string `json:"teamingMode,omitempty"`
	Algorithm string `json:"loadBalancingAlgorithm,omitempty"`
	UpDelay   string `json:"upDelay,omitempty"`
	MACPolicy string `json:"macPolicy,omitempty"`
	// Inlined in a teams file (YAML) as in JSON.
	Notify          `yaml:",inline"`
	LacpSettings    `yaml:",inline"`
	DynamicSettings `yaml:",inline"`
}

// Apply is the body of an apply request: the teams a file declares, each
// as `new` takes it. Teams it does not name are left alone, unless Prune.
type Apply struct {
	Teams  []NewTeam `json:"teams"`
	Prune  bool      `json:"prune,omitempty"`  // also remove the teams not named
	DryRun bool      `json:"dryRun,omitempty"` // only say what would change
}

// Change is one change an apply makes (or, dry, would make).
type Change struct {
	Team   string `json:"team"`
	Action string `json:"action"`           // create, change, add member, set member active|standby, remove member, remove
	Member string `json:"member,omitempty"` // the member a member action is about
}

// Lacp is a team's LACP as `nicteam lacp` shows it.
type Lacp struct {
	Team           string         `json:"team"`
	TeamingMode    team.Mode      `json:"teamingMode"`
	LacpTimer      team.LacpTimer `json:"lacpTimer"`
	SystemPriority uint16         `json:"systemPriority"`
	Key            uint16         `json:"key"`
	PortPriority   uint16         `json:"portPriority"`
	MinLinks       int            `json:"minLinks"`
	Malformed      uint64         `json:"malformedPdus"` // LACPDUs dropped because they did not decode
	Ports          []LacpPort     `json:"ports"`
}

// LacpPort is one member's LACP port.
type LacpPort struct {
	Member   string   `json:"member"`
	Actor    LacpInfo `json:"actor"`
	Partner  LacpInfo `json:"partner"` // zero while no partner is known
	Receive  string   `json:"receive"` // receive machine: Current, Expired, Defaulted, PortDisabled
	Mux      string   `json:"mux"`     // Detached, Waiting, Attached, CollectingDistributing
	Selected bool     `json:"selected"`
}

// LacpInfo is the actor or partner information of a port.
type LacpInfo struct {
	SystemPriority uint16   `json:"systemPriority"`
	System         string   `json:"system"` // MAC
	Key            uint16   `json:"key"`
	PortPriority   uint16   `json:"portPriority"`
	Port           uint16   `json:"port"`
	State          uint8    `json:"state"`
	StateBits      []string `json:"stateBits"` // the set bits, spelled out
}

// AddMember is the body of a member-add request.
type AddMember struct {
	Name    string `json:"name"`
	Standby bool   `json:"standby,omitempty"`
}

// SetMember is the body of a member-change request.
type SetMember struct {
	Standby bool `json:"standby"`
}

// Event kinds.
const (
	EventTeamCreated   = "TeamCreated"
	EventTeamRemoved   = "TeamRemoved"
	EventTeamChanged   = "TeamChanged"
	EventMemberAdded   = "MemberAdded"
	EventMemberRemoved = "MemberRemoved"
	EventMemberFailed  = "MemberFailed"
	EventMemberWaiting = "MemberWaiting"
	EventMemberUp      = "MemberRestored"
	EventStatusChanged = "StatusChanged"
	EventBucketsMoved  = "BucketsMoved"
	EventTeamAdopted   = "TeamAdopted"
	EventPrimaryMoved  = "PrimaryMoved"
	EventMACChanged    = "TeamMacChanged"
	EventAnnounced     = "Announced"
	EventVerified      = "MacVerified"
	EventPortsMoved    = "PortsMoved"

	// What the host did to a team, followed by the daemon.
	EventMemberRenamed  = "MemberRenamed"    // Member is the new name
	EventMemberGone     = "MemberNotPresent" // deleted, or moved to another network namespace
	EventMemberBack     = "MemberPresent"    // a NIC of the member's name appeared: it rejoined
	EventMemberMTU      = "MemberMtuChanged" // set outside nicteam: the team's MTU is set back
	EventMemberMAC      = "MemberMacChanged"
	EventTeamNicDeleted = "TeamNicDeleted"
	EventTeamNicRebuilt = "TeamNicRebuilt"
	EventTeamNicDown    = "TeamNicDown" // set down by an operator: left so
	EventTeamNicUp      = "TeamNicUp"
	EventTeamNicMTU     = "TeamNicMtuChanged" // members follow the team NIC's MTU
)

// Port is an endpoint behind a HyperVPort or Dynamic team (a container's
// or VM's MAC on a bridge above it) and the member it is pinned to.
type Port struct {
	MAC    string `json:"mac"`
	Member string `json:"member,omitempty"` // "" while no member carries
}

// Event is one entry of the daemon's event log.
type Event struct {
	Time   time.Time `json:"time"`
	Team   string    `json:"team"`
	Kind   string    `json:"kind"`
	Member string    `json:"member,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
