package daemon

import (
	"reflect"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/team"
)

func TestDynamicDefaults(t *testing.T) {
	s := team.Spec{Algorithm: team.Dynamic}
	if got := flowletOf(&s); got != 500*time.Microsecond {
		t.Errorf("default flowlet gap %v", got)
	}
	if got := intervalOf(&s); got != 250*time.Millisecond {
		t.Errorf("default rebalance interval %v", got)
	}
	s.Algorithm = team.TransportPorts
	s.Dynamic.FlowletGap = time.Millisecond
	if got := flowletOf(&s); got != 0 {
		t.Errorf("flowlets on for %s: %v", s.Algorithm, got)
	}
}

// TestExportRoundTrip checks that what export prints parses back to the
// same spec, so export, apply, export prints the same file.
func TestExportRoundTrip(t *testing.T) {
	lacp := team.Spec{Name: "Team1", Mode: team.Lacp, Members: []team.MemberSpec{{Name: "eth3"}, {Name: "eth4"}},
		Lacp: team.LacpSpec{Timer: team.LacpSlow, Key: 7}, MinLinks: 2}
	dyn := team.Spec{Name: "Team0", Members: []team.MemberSpec{{Name: "eth1"}, {Name: "eth2", Mode: team.AdminStandby}},
		UpDelay: 2 * time.Second, MACPolicy: team.MACFollow, Notify: team.Notify{Count: 5, Interval: 20 * time.Millisecond},
		Dynamic: team.DynamicSpec{FlowletGap: time.Millisecond}}
	for _, s := range []team.Spec{lacp, dyn, {Name: "T", Members: []team.MemberSpec{{Name: "e"}}}} {
		got, err := parseSpec(exportOf(s))
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", s.Name, got, s)
		}
	}
}
