// Package team holds the teaming model: the enums as Windows spells them, a
// team's declared spec and its validation, status derivation and bucket
// assignment. It imports no OS code so every rule is testable without root.
package team

import (
	"fmt"
	"strings"
)

// enum is the shared machinery of the string-valued enums below: one table
// gives both the Windows spelling (used on the wire and in listings) and the
// CLI spelling (kebab-case, as users type it).
type enum struct {
	kind    string
	windows []string
	cli     []string
}

func (e enum) String(v int) string {
	if v < 0 || v >= len(e.windows) {
		return fmt.Sprintf("%s(%d)", e.kind, v)
	}
	return e.windows[v]
}

// parse accepts either spelling, case-insensitively.
func (e enum) parse(s string) (int, error) {
	for i := range e.windows {
		if strings.EqualFold(s, e.windows[i]) || strings.EqualFold(s, e.cli[i]) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (want one of %s)", e.kind, s, strings.Join(e.cli, ", "))
}

// check refuses a value outside the table: decoding refuses unknown names
// already, so this guards Go callers that build a value.
func (e enum) check(v int) error {
	if v < 0 || v >= len(e.windows) {
		return fmt.Errorf("%s %d is not supported (want one of %s)", e.kind, v, strings.Join(e.cli, ", "))
	}
	return nil
}

func (e enum) unmarshal(b []byte, v *int) error {
	p, err := e.parse(string(b))
	if err == nil {
		*v = p
	}
	return err
}

// Mode is the teaming mode.
type Mode int

// Teaming modes.
const (
	SwitchIndependent Mode = iota
	Static
	Lacp
)

var modes = enum{"teaming mode",
	[]string{"SwitchIndependent", "Static", "Lacp"},
	[]string{"switch-independent", "static", "lacp"}}

func (m Mode) String() string                { return modes.String(int(m)) }
func (m Mode) MarshalText() ([]byte, error)  { return []byte(m.String()), nil }
func (m *Mode) UnmarshalText(b []byte) error { return modes.unmarshal(b, (*int)(m)) }

// ParseMode accepts "switch-independent" or "SwitchIndependent" and so on.
func ParseMode(s string) (Mode, error) { v, err := modes.parse(s); return Mode(v), err }

// Algorithm is the load-balancing algorithm.
type Algorithm int

// Load-balancing algorithms. Dynamic is the default, as in New-NetLbfoTeam.
const (
	Dynamic Algorithm = iota
	TransportPorts
	IPAddresses
	MacAddresses
	HyperVPort
)

var algorithms = enum{"load-balancing algorithm",
	[]string{"Dynamic", "TransportPorts", "IPAddresses", "MacAddresses", "HyperVPort"},
	[]string{"dynamic", "transport-ports", "ip-addresses", "mac-addresses", "hyperv-port"}}

func (a Algorithm) String() string                { return algorithms.String(int(a)) }
func (a Algorithm) MarshalText() ([]byte, error)  { return []byte(a.String()), nil }
func (a *Algorithm) UnmarshalText(b []byte) error { return algorithms.unmarshal(b, (*int)(a)) }

// ParseAlgorithm accepts "transport-ports" or "TransportPorts" and so on.
func ParseAlgorithm(s string) (Algorithm, error) {
	v, err := algorithms.parse(s)
	return Algorithm(v), err
}

// Status is the team's status.
type Status int

// Team status: Up when every member that should carry traffic does,
// Degraded when some member has failed, Down when none carries traffic.
const (
	Up Status = iota
	Degraded
	Down
)

var statuses = enum{"status", []string{"Up", "Degraded", "Down"}, []string{"up", "degraded", "down"}}

func (s Status) String() string                { return statuses.String(int(s)) }
func (s Status) MarshalText() ([]byte, error)  { return []byte(s.String()), nil }
func (s *Status) UnmarshalText(b []byte) error { return statuses.unmarshal(b, (*int)(s)) }

// OperStatus is a member's operational status.
type OperStatus int

// Member operational status.
const (
	OperActive OperStatus = iota
	OperStandby
	OperFailed
)

var operStatuses = enum{"operational status",
	[]string{"Active", "Standby", "Failed"}, []string{"active", "standby", "failed"}}

func (s OperStatus) String() string                { return operStatuses.String(int(s)) }
func (s OperStatus) MarshalText() ([]byte, error)  { return []byte(s.String()), nil }
func (s *OperStatus) UnmarshalText(b []byte) error { return operStatuses.unmarshal(b, (*int)(s)) }

// AdminMode is a member's administrative mode.
type AdminMode int

// Member administrative mode: at most one Standby member per team.
const (
	AdminActive AdminMode = iota
	AdminStandby
)

var adminModes = enum{"administrative mode",
	[]string{"Active", "Standby"}, []string{"active", "standby"}}

func (m AdminMode) String() string                { return adminModes.String(int(m)) }
func (m AdminMode) MarshalText() ([]byte, error)  { return []byte(m.String()), nil }
func (m *AdminMode) UnmarshalText(b []byte) error { return adminModes.unmarshal(b, (*int)(m)) }

// FailureReason says why a member is not carrying traffic.
type FailureReason int

// Failure reasons, as Get-NetLbfoTeamMember spells them.
const (
	NoFailure FailureReason = iota
	AdministrativeDecision
	PhysicalMediaDisconnected
	WaitingForStableConnectivity
	LacpNegotiationIssue
	NicNotPresent
)

var failureReasons = enum{"failure reason",
	[]string{"NoFailure", "AdministrativeDecision", "PhysicalMediaDisconnected",
		"WaitingForStableConnectivity", "LacpNegotiationIssue", "NicNotPresent"},
	[]string{"no-failure", "administrative-decision", "physical-media-disconnected",
		"waiting-for-stable-connectivity", "lacp-negotiation-issue", "nic-not-present"}}

func (r FailureReason) String() string                { return failureReasons.String(int(r)) }
func (r FailureReason) MarshalText() ([]byte, error)  { return []byte(r.String()), nil }
func (r *FailureReason) UnmarshalText(b []byte) error { return failureReasons.unmarshal(b, (*int)(r)) }

// LacpTimer is the LACP rate a Lacp team asks its partner for.
type LacpTimer int

// LACP timers: Fast (the default, as in LBFO) asks for a LACPDU every
// second and gives up on a silent partner after 3 s; Slow every 30 s and
// after 90 s.
const (
	LacpFast LacpTimer = iota
	LacpSlow
)

var lacpTimers = enum{"LACP timer", []string{"Fast", "Slow"}, []string{"fast", "slow"}}

func (l LacpTimer) String() string                { return lacpTimers.String(int(l)) }
func (l LacpTimer) MarshalText() ([]byte, error)  { return []byte(l.String()), nil }
func (l *LacpTimer) UnmarshalText(b []byte) error { return lacpTimers.unmarshal(b, (*int)(l)) }

// ParseLacpTimer accepts "fast" or "slow" in either spelling.
func ParseLacpTimer(s string) (LacpTimer, error) {
	v, err := lacpTimers.parse(s)
	return LacpTimer(v), err
}
