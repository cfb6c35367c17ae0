package daemon

import (
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/datapath"
	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/team"
)

// TestRenameMember checks that a rename moves every piece of a member's
// state to the new name and nothing else: what a later carrier event, a
// removal or a restart finds under that name.
func TestRenameMember(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler), events: newEventLog(16), teams: map[string]*teamRT{}, dirty: make(chan struct{}, 1)}
	tr := newTeamRT(record{
		Spec:    team.Spec{Name: "Team0", Members: []team.MemberSpec{{Name: "eth1"}, {Name: "eth2", Mode: team.AdminStandby}}},
		Primary: "eth2",
		Saved:   map[string]saved{"eth1": {MTU: 1500}, "eth2": {Up: true, MTU: 9000}},
	})
	spec := tr.rec.Spec // a copy that must not change: the slice is shared
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	for name, idx := range map[string]int{"eth1": 7, "eth2": 8} {
		tr.ifindex[name] = idx
		tr.links[name] = team.LinkState{Present: true, AdminUp: true, Carrier: true, Speed: uint64(idx)}
		tr.macs[name] = mac
		tr.promisc[name] = idx == 8
		tr.flags[name] = datapath.MemberTxOwnMAC
	}
	tr.eval = team.Evaluate(&tr.rec.Spec, tr.links)
	d.teams["Team0"] = tr

	d.renameMemberLocked(tr, "eth2", "uplink2")

	if got := tr.rec.Spec.MemberNames(); !slices.Equal(got, []string{"eth1", "uplink2"}) || tr.rec.Spec.Members[1].Mode != team.AdminStandby {
		t.Errorf("members %v (%+v)", got, tr.rec.Spec.Members)
	}
	if spec.Members[1].Name != "eth2" {
		t.Errorf("the old spec's slice was changed: %+v", spec.Members)
	}
	if tr.rec.Primary != "uplink2" || tr.rec.Saved["uplink2"].MTU != 9000 || len(tr.rec.Saved) != 2 {
		t.Errorf("record: primary %q, saved %+v", tr.rec.Primary, tr.rec.Saved)
	}
	if tr.ifindex["uplink2"] != 8 || tr.links["uplink2"].Speed != 8 || !tr.promisc["uplink2"] || tr.flags["uplink2"] != datapath.MemberTxOwnMAC || tr.macs["uplink2"] == nil {
		t.Errorf("run-time state not under the new name: %+v %+v %+v %+v", tr.ifindex, tr.links, tr.promisc, tr.flags)
	}
	if len(tr.ifindex) != 2 || len(tr.links) != 2 || len(tr.macs) != 2 || len(tr.promisc) != 2 || len(tr.flags) != 2 {
		t.Errorf("eth2's state left behind: %v %v", tr.ifindex, tr.links)
	}
	// The next evaluation sees no change: no member event for a rename.
	if next := team.Evaluate(&tr.rec.Spec, tr.links); !reflect.DeepEqual(next, tr.eval) {
		t.Errorf("evaluation after rename %+v, recorded %+v", next, tr.eval)
	}
	past, _, _ := d.events.snapshot(false)
	if len(past) != 1 || past[0].Kind != api.EventMemberRenamed || past[0].Member != "uplink2" {
		t.Errorf("events %+v", past)
	}
	select {
	case <-d.dirty:
	default:
		t.Error("rename not saved")
	}
}

// TestIPConfigPersisted checks that a team NIC's addresses and routes
// survive the state file.
func TestIPConfigPersisted(t *testing.T) {
	dir := t.TempDir()
	ip := host.IPConfig{
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Routes: []host.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.77.0.2"), Table: 254, Protocol: 3},
			{Dst: netip.MustParsePrefix("10.99.0.0/24"), Src: netip.MustParseAddr("10.77.0.1"), Table: 254, Scope: 253, Metric: 10},
		},
	}
	want := []record{{
		Spec: team.Spec{Name: "Team0", Members: []team.MemberSpec{{Name: "eth1"}}},
		MAC:  "02:00:00:00:00:01", Peer: peerName("Team0"), MTU: 1500, IP: ip,
	}}
	if err := saveState(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir)
	if err != nil || len(got) != 1 || !got[0].IP.Equal(ip) {
		t.Fatalf("loaded %+v, %v; want %+v", got, err, ip)
	}
}
