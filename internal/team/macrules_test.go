package team

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

func keys(m map[string]bool) string {
	var k []string
	for n, v := range m {
		if v {
			k = append(k, n)
		}
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

// TestPlanMAC is the MAC rules table: teaming mode × policy × which
// members carry, from the owner of the team MAC (eth1) and the primary.
func TestPlanMAC(t *testing.T) {
	cases := []struct {
		name       string
		mode       Mode
		policy     MACPolicy
		primary    string
		carriers   string
		noLearning bool
		// want: primary, follow, verify, ownMAC, promisc, announce
		want string
	}{
		{"all up", SwitchIndependent, MACAuto, "", "eth1,eth2,eth3", false, "eth1 follow=false verify=false own=eth2,eth3 promisc= announce=true"},
		{"steady", SwitchIndependent, MACAuto, "eth1", "eth1,eth2,eth3", false, "eth1 follow=false verify=false own=eth2,eth3 promisc= announce=false"},
		{"non-primary pulled", SwitchIndependent, MACAuto, "eth1", "eth1,eth3", false, "eth1 follow=false verify=false own=eth3 promisc= announce=false"},
		{"keep: primary pulled", SwitchIndependent, MACKeep, "eth1", "eth2,eth3", false, "eth2 follow=false verify=false own=eth3 promisc=eth2 announce=true"},
		{"keep: owner back", SwitchIndependent, MACKeep, "eth2", "eth1,eth2,eth3", false, "eth1 follow=false verify=false own=eth2,eth3 promisc= announce=true"},
		{"follow: primary pulled", SwitchIndependent, MACFollow, "eth1", "eth2,eth3", false, "eth2 follow=true verify=false own=eth3 promisc= announce=true"},
		{"auto: primary pulled", SwitchIndependent, MACAuto, "eth1", "eth2,eth3", false, "eth2 follow=false verify=true own=eth3 promisc=eth2 announce=true"},
		{"auto: verify still pending", SwitchIndependent, MACAuto, "eth2", "eth2,eth3", false, "eth2 follow=false verify=false own=eth3 promisc=eth2 announce=false"},
		{"auto: fabric does not learn", SwitchIndependent, MACAuto, "eth1", "eth2,eth3", true, "eth2 follow=true verify=false own=eth3 promisc= announce=true"},
		{"static: owner carries", Static, MACAuto, "", "eth1,eth2", false, "eth1 follow=false verify=false own= promisc=eth2 announce=true"},
		{"lacp: owner failed", Lacp, MACFollow, "eth1", "eth2,eth3", false, "eth2 follow=false verify=false own= promisc=eth2,eth3 announce=true"},
		{"down", SwitchIndependent, MACAuto, "eth1", "", false, " follow=false verify=false own= promisc= announce=false"},
	}
	for _, c := range cases {
		var carriers []string
		if c.carriers != "" {
			carriers = strings.Split(c.carriers, ",")
		}
		p := PlanMAC(MACInput{Mode: c.mode, Policy: c.policy, Owner: "eth1", Primary: c.primary, Carriers: carriers, NoLearning: c.noLearning})
		got := fmt.Sprintf("%s follow=%t verify=%t own=%s promisc=%s announce=%t", p.Primary, p.Follow, p.Verify, keys(p.OwnMAC), keys(p.Promisc), p.Announce)
		if got != c.want {
			t.Errorf("%s:\n got  %s\n want %s", c.name, got, c.want)
		}
	}
}

// After following, the new primary owns the team MAC: planning again is
// stable, and the old owner's return moves nothing (no second outage).
func TestFollowIsStable(t *testing.T) {
	p := PlanMAC(MACInput{Policy: MACFollow, Owner: "eth2", Primary: "eth2", Carriers: []string{"eth1", "eth2"}})
	if p.Primary != "eth2" || p.Announce || p.Follow || keys(p.OwnMAC) != "eth1" {
		t.Errorf("old owner back after follow: %+v", p)
	}
}
