package team

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// checkErr fails t unless err is nil for want "" or an ErrInvalid that
// mentions want.
func checkErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: unexpected error %v", what, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: error %v, want it to mention %q", what, err, want)
	case err != nil && !errors.Is(err, ErrInvalid):
		t.Errorf("%s: error %v does not wrap ErrInvalid", what, err)
	}
}

// TestInterfaceNames: team and member names follow one rule, the kernel's
// for interface names, so no name is truncated, cut at a NUL or resolved
// as another interface's alternative name.
func TestInterfaceNames(t *testing.T) {
	cases := []struct{ name, want string }{
		{"eth0", ""},
		{"Team0", ""},
		{"a.b-c_d@e", ""},
		{"fifteen-bytes15", ""},
		{"équipe", ""},
		{"", "is empty"},
		{"sixteen-bytes-16", "at most 15"},
		{".", "not an interface name"},
		{"..", "not an interface name"},
		{"a/b", "not allowed"},
		{"a:1", "not allowed"},
		{"a b", "not allowed"},
		{"a\tb", "not allowed"},
		{"a\nb", "not allowed"},
		{"eth1\x00x", "not allowed"},
		{"eth\x7f", "not allowed"},
		{"a\u00a0b", "not allowed"}, // no-break space
		{"a\u200bb", "not allowed"}, // zero-width space
		{"eth\xff", "not valid UTF-8"},
	}
	for _, c := range cases {
		checkErr(t, fmt.Sprintf("team name %q", c.name), ValidateName(c.name), c.want)
		s := &Spec{Name: "Team0", Members: []MemberSpec{{Name: "eth9"}, {Name: c.name}}}
		checkErr(t, fmt.Sprintf("member name %q", c.name), s.Validate(), c.want)
	}
}

// TestMemberCount: the datapath's member maps bound the team.
func TestMemberCount(t *testing.T) {
	members := func(n int) []MemberSpec {
		ms := make([]MemberSpec, n)
		for i := range ms {
			ms[i].Name = fmt.Sprintf("eth%d", i)
		}
		return ms
	}
	checkErr(t, "64 members", (&Spec{Name: "T", Members: members(MaxMembers)}).Validate(), "")
	checkErr(t, "65 members", (&Spec{Name: "T", Members: members(MaxMembers + 1)}).Validate(), "at most 64")
	checkErr(t, "0 members", (&Spec{Name: "T"}).Validate(), "no members")
}

// TestSettingBounds: every number and duration has bounds; a value beyond
// them is refused with the bounds in the message, zero takes the default.
func TestSettingBounds(t *testing.T) {
	const years = 228 * 365 * 24 * time.Hour
	cases := []struct {
		name string
		set  func(*Spec)
		want string
	}{
		{"defaults", func(*Spec) {}, ""},
		{"up-delay 1h", func(s *Spec) { s.UpDelay = time.Hour }, ""},
		{"up-delay 2h", func(s *Spec) { s.UpDelay = 2 * time.Hour }, "up-delay 2h0m0s: want 0s to 1h0m0s"},
		{"up-delay negative", func(s *Spec) { s.UpDelay = -time.Second }, "up-delay -1s"},
		{"verify 1s", func(s *Spec) { s.Notify.Verify = time.Second }, ""},
		{"verify years", func(s *Spec) { s.Notify.Verify = years }, "verify timeout 1997280h0m0s: want 100µs to 1s"},
		{"verify 1ns", func(s *Spec) { s.Notify.Verify = 1 }, "verify timeout 1ns"},
		{"notify interval 1h", func(s *Spec) { s.Notify.Interval = time.Hour }, "notify interval 1h0m0s: want 1ms to 10s"},
		{"notify interval negative", func(s *Spec) { s.Notify.Interval = -1 }, "notify interval -1ns"},
		{"notify count 100", func(s *Spec) { s.Notify.Count = 100 }, ""},
		{"notify count 101", func(s *Spec) { s.Notify.Count = 101 }, "notify count 101: want 1 to 100"},
		{"notify count negative", func(s *Spec) { s.Notify.Count = -1 }, "notify count -1"},
		{"flowlet gap 5µs", func(s *Spec) { s.Dynamic.FlowletGap = 5 * time.Microsecond }, "flowlet gap 5µs: want 10µs to 1s"},
		{"rebalance 2m", func(s *Spec) { s.Dynamic.Interval = 2 * time.Minute }, "rebalance interval 2m0s: want 10ms to 1m0s"},
		{"min-links = members", func(s *Spec) { s.MinLinks = 2 }, ""},
		{"min-links > members", func(s *Spec) { s.MinLinks = 3 }, "min-links 3: want 0 to 2"},
		{"min-links negative", func(s *Spec) { s.MinLinks = -1 }, "min-links -1"},
		{"bad algorithm", func(s *Spec) { s.Algorithm = 9 }, "load-balancing algorithm 9 is not supported"},
		{"bad MAC policy", func(s *Spec) { s.MACPolicy = -1 }, "MAC policy -1 is not supported"},
		{"bad LACP timer", func(s *Spec) { s.Lacp.Timer = 2 }, "LACP timer 2 is not supported"},
		{"bad member mode", func(s *Spec) { s.Members[1].Mode = 2 }, `member "eth2": administrative mode 2`},
	}
	for _, c := range cases {
		s := &Spec{Name: "Team0", Members: []MemberSpec{{Name: "eth1"}, {Name: "eth2"}}}
		c.set(s)
		checkErr(t, c.name, s.Validate(), c.want)
	}
}

// TestOneNICOneTeam: an interface joins under its own name only, so it
// can be in one team, once.
func TestOneNICOneTeam(t *testing.T) {
	inv := fakeInventory{
		"eth1":   {Name: "eth1"},
		"eth2":   {Name: "eth2"},
		"tun0":   {Name: "tun0", NoMAC: true},
		"alt1":   {Name: "eth1"},                                      // ip link property add dev eth1 altname alt1
		"moved":  {Name: "moved", InTeam: "Team1", MemberAs: "eth7"},  // eth7 of Team1, renamed
		"eth8":   {Name: "eth8", InTeam: "Team0", MemberAs: "eth8"},   // already a member
		"renmd8": {Name: "renmd8", InTeam: "Team0", MemberAs: "eth8"}, // eth8 renamed
	}
	cases := []struct {
		members []string
		want    string
	}{
		{[]string{"eth1", "eth2"}, ""},
		{[]string{"eth1", "tun0"}, `"tun0" is not an Ethernet interface`},
		{[]string{"eth2", "alt1"}, `member "alt1" is another name of interface "eth1"`},
		{[]string{"eth1", "alt1"}, `another name of interface "eth1"`},
		{[]string{"eth1", "moved"}, `already in team "Team1" as "eth7"`},
		{[]string{"eth8", "eth1"}, ""},
		{[]string{"eth8", "renmd8"}, `already in team "Team0" as "eth8"`},
	}
	for _, c := range cases {
		s := &Spec{Name: "Team0"}
		for _, m := range c.members {
			s.Members = append(s.Members, MemberSpec{Name: m})
		}
		checkErr(t, fmt.Sprint(c.members), ValidateMembers(s, inv), c.want)
	}
}
