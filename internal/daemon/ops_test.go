package daemon

import (
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
