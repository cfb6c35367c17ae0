package daemon

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/team"
)

func TestApplyDynamic(t *testing.T) {
	cur := team.Spec{Dynamic: team.DynamicSpec{FlowletGap: time.Millisecond, Interval: time.Second}}
	tests := []struct {
		req     api.DynamicSettings
		want    team.DynamicSpec
		wantErr string
	}{
		{req: api.DynamicSettings{}, want: cur.Dynamic},
		{req: api.DynamicSettings{FlowletGap: "300us"}, want: team.DynamicSpec{FlowletGap: 300 * time.Microsecond, Interval: time.Second}},
		{req: api.DynamicSettings{RebalanceInterval: "100ms"}, want: team.DynamicSpec{FlowletGap: time.Millisecond, Interval: 100 * time.Millisecond}},
		{req: api.DynamicSettings{FlowletGap: "10us", RebalanceInterval: "1m"}, want: team.DynamicSpec{FlowletGap: 10 * time.Microsecond, Interval: time.Minute}},
		{req: api.DynamicSettings{FlowletGap: "9us"}, wantErr: "flowlet gap 9µs: want 10µs to 1s"},
		{req: api.DynamicSettings{FlowletGap: "0"}, wantErr: "want 10µs to 1s"},
		{req: api.DynamicSettings{RebalanceInterval: "5ms"}, wantErr: "rebalance interval 5ms: want 10ms to 1m0s"},
		{req: api.DynamicSettings{RebalanceInterval: "-1s"}, wantErr: "want a duration"},
		{req: api.DynamicSettings{FlowletGap: "fast"}, wantErr: `flowlet gap "fast": want a duration`},
	}
	for _, tt := range tests {
		got, err := applyDynamic(cur, tt.req)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, team.ErrInvalid) {
				t.Errorf("%+v: error %v, want one containing %q and invalid", tt.req, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.Dynamic != tt.want {
			t.Errorf("%+v: %+v, %v; want %+v", tt.req, got.Dynamic, err, tt.want)
		}
	}
}

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
