package team

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest Linux interface name (IFNAMSIZ - 1); the team
// NIC carries the team's name, so team names obey it too.
const MaxNameLen = 15

// MaxMembers is the most members a team can have: the datapath keeps an
// entry per attached member in maps of 64 (members and member_stats in
// team.c), and a 65th would fail to attach.
const MaxMembers = 64

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

// LinkFacts is what validation needs to know about an existing interface.
type LinkFacts struct {
	// Name is the interface's own name. It differs from the name looked
	// up when that is one of its alternative names (ip link property add
	// altname), which the kernel resolves too.
	Name     string
	Loopback bool
	// NoMAC marks an interface without an Ethernet MAC (tun, wireguard,
	// …): the datapath steers frames by MAC and cannot take it.
	NoMAC   bool
	TeamNIC string // non-empty when the interface is the NIC (or hidden peer) of this team
	InTeam  string // non-empty when the interface is a member of this team
	// MemberAs is the name InTeam declares the member under: another
	// than Name once the interface was renamed.
	MemberAs string
}

// Inventory answers questions about the host's interfaces during validation.
// The daemon backs it with netlink and its own records; tests with a map.
type Inventory interface {
	// Link returns facts about an interface; ok is false when it does not exist.
	Link(name string) (facts LinkFacts, ok bool)
}

// checkIfName refuses what the kernel would refuse as an interface name
// (dev_valid_name: empty, longer than 15 bytes, "." or "..", a '/', ':' or
// white space), and control characters and invalid UTF-8, which it takes
// but no listing can show. A name that passes reaches netlink as it is:
// not truncated, not cut at a NUL, not looked up among the alternative
// names as netlink does with longer ones.
func checkIfName(what, name string) error {
	switch {
	case name == "":
		return invalid("%s is empty", what)
	case len(name) > MaxNameLen:
		return invalid("%s %q is %d bytes; interface names are at most %d", what, name, len(name), MaxNameLen)
	case name == "." || name == "..":
		return invalid("%s %q is not an interface name", what, name)
	case !utf8.ValidString(name):
		return invalid("%s %q is not valid UTF-8", what, name)
	}
	for _, r := range name {
		if r == ' ' || r == '/' || r == ':' || !unicode.IsPrint(r) {
			return invalid("%s %q: character %q is not allowed in an interface name (no /, :, white space or control characters)", what, name, r)
		}
	}
	return nil
}

// ValidateName checks a team name before anything else is looked at.
func ValidateName(name string) error { return checkIfName("team name", name) }

// ValidateMemberName checks a member's (or former member's) name alone.
func ValidateMemberName(name string) error { return checkIfName("member name", name) }

// Supported refuses enum values outside the known ones: decoding refuses
// unknown names already, so this guards Go callers that build a Spec.
func (s *Spec) Supported() error {
	for _, err := range []error{
		modes.check(int(s.Mode)), algorithms.check(int(s.Algorithm)),
		macPolicies.check(int(s.MACPolicy)), lacpTimers.check(int(s.Lacp.Timer)),
	} {
		if err != nil {
			return err
		}
	}
	for _, m := range s.Members {
		if err := adminModes.check(int(m.Mode)); err != nil {
			return fmt.Errorf("member %q: %w", m.Name, err)
		}
	}
	return nil
}

// Validate checks what s says on its own, without the host: the names,
// the member list and every setting within its bounds.
func (s *Spec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if err := s.Supported(); err != nil {
		return Invalid(fmt.Errorf("team %q: %w", s.Name, err))
	}
	if err := s.validateMembers(); err != nil {
		return err
	}
	return s.validateSettings()
}

func (s *Spec) validateMembers() error {
	switch n := len(s.Members); {
	case n == 0:
		return invalid("team %q: no members (give at least one with --members)", s.Name)
	case n > MaxMembers:
		return invalid("team %q: %d members; a team has at most %d (the datapath's member table)", s.Name, n, MaxMembers)
	}
	seen := map[string]bool{}
	standby := ""
	active := 0
	for _, m := range s.Members {
		if err := checkIfName("member name", m.Name); err != nil {
			return invalid("team %q: %w", s.Name, err)
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
	}
	if active == 0 {
		return invalid("team %q: every member is standby; at least one must be active", s.Name)
	}
	return nil
}

func (s *Spec) validateSettings() error {
	if s.MinLinks < 0 || s.MinLinks > len(s.Members) {
		return invalid("team %q: min-links %d: want 0 to %d, its member count (with fewer members than min-links a team is never up)", s.Name, s.MinLinks, len(s.Members))
	}
	if s.Notify.Count < 0 || s.Notify.Count > MaxNotifyCount {
		return invalid("notify count %d: want 1 to %d", s.Notify.Count, MaxNotifyCount)
	}
	for _, f := range []struct {
		what    string
		v       time.Duration
		min     time.Duration
		max     time.Duration
		zeroSet bool // zero is a setting of its own, not the default
	}{
		{"up-delay", s.UpDelay, 0, MaxUpDelay, true},
		{"notify interval", s.Notify.Interval, MinNotifyInterval, MaxNotifyInterval, false},
		{"verify timeout", s.Notify.Verify, MinVerify, MaxVerify, false},
		{"flowlet gap", s.Dynamic.FlowletGap, MinFlowletGap, MaxFlowletGap, false},
		{"rebalance interval", s.Dynamic.Interval, MinInterval, MaxInterval, false},
	} {
		if (f.v != 0 || f.zeroSet) && (f.v < f.min || f.v > f.max) {
			return invalid("%s %s: want %s to %s", f.what, f.v, f.min, f.max)
		}
	}
	return nil
}

// ValidateNew checks a spec for a team that does not exist yet.
func ValidateNew(s *Spec, inv Inventory) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if f, ok := inv.Link(s.Name); ok {
		if f.TeamNIC != "" {
			return invalid("team %q already exists", s.Name)
		}
		return invalid("team name %q is already the name of an interface", s.Name)
	}
	return s.checkHost(inv)
}

// ValidateMembers checks s, a changed spec of an existing team, and its
// members against the host.
func ValidateMembers(s *Spec, inv Inventory) error {
	if err := s.Validate(); err != nil {
		return err
	}
	return s.checkHost(inv)
}

// checkHost refuses members that are not interfaces this team may take.
func (s *Spec) checkHost(inv Inventory) error {
	for _, m := range s.Members {
		f, ok := inv.Link(m.Name)
		switch {
		case !ok:
			return invalid("team %q: member %q: no such interface", s.Name, m.Name)
		case f.Name != "" && f.Name != m.Name:
			// Two names of one NIC would put it in two teams, or twice
			// in one.
			return invalid("team %q: member %q is another name of interface %q; give the name %q", s.Name, m.Name, f.Name, f.Name)
		case f.Loopback:
			return invalid("team %q: member %q is a loopback interface", s.Name, m.Name)
		case f.NoMAC:
			return invalid("team %q: member %q is not an Ethernet interface (it has no MAC address)", s.Name, m.Name)
		case f.TeamNIC != "":
			return invalid("team %q: member %q is the interface of team %q; a team cannot be a member", s.Name, m.Name, f.TeamNIC)
		case f.InTeam != "" && f.MemberAs != "" && f.MemberAs != m.Name:
			return invalid("team %q: member %q is already in team %q as %q (renamed)", s.Name, m.Name, f.InTeam, f.MemberAs)
		case f.InTeam != "" && f.InTeam != s.Name:
			return invalid("team %q: member %q is already in team %q", s.Name, m.Name, f.InTeam)
		}
	}
	return nil
}
