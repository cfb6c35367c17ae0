package daemon

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/balance"
	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/team"
)

// Ports: under HyperVPort and Dynamic every endpoint behind the team (a
// container's or VM's MAC, learned by a bridge the team NIC is a port of)
// is pinned to one member. The bridge's forwarding database says which
// endpoints exist; balance.Affinity says where each goes; the datapath's
// affinity map makes it so. Peers hear of a port where it now is, from that
// member, whenever it is pinned or moves.

func hasPorts(s *team.Spec) bool {
	return s.Algorithm == team.HyperVPort || s.Algorithm == team.Dynamic
}

// portsLocked brings t.ports in line with the algorithm: it starts tracking
// when the algorithm pins ports, adopting the pins a running datapath has
// (a restarted daemon moves nothing), and drops every pin when it no longer
// does.
func (d *Daemon) portsLocked(t *teamRT) {
	switch want := hasPorts(&t.rec.Spec); {
	case want && t.ports == nil:
		t.ports = balance.NewAffinity()
		if pins, err := t.dp.Affinities(); err == nil {
			for mac, idx := range pins {
				t.ports.Adopt(balance.MAC(mac), uint32(idx))
			}
		}
		d.syncPortsLocked(t)
	case !want && t.ports != nil:
		for mac := range t.ports.Pins() {
			d.unpinLocked(t, mac)
		}
		t.ports, t.bridge = nil, 0
	}
}

// syncPortsLocked makes the pinned MACs exactly the endpoints that the
// bridge above the team knows now.
func (d *Daemon) syncPortsLocked(t *teamRT) {
	t.bridge = 0
	var endpoints []net.HardwareAddr
	if nic, err := host.Get(t.rec.Spec.Name); err == nil && nic.Master > 0 {
		t.bridge = nic.Master
		if endpoints, err = host.Endpoints(nic.Master, t.index); err != nil {
			d.log.Warn("list endpoints", "team", t.rec.Spec.Name, "err", err)
			return
		}
	}
	want := map[balance.MAC]bool{}
	for _, mac := range endpoints {
		want[balance.MAC(mac)] = true
	}
	for mac := range t.ports.Pins() {
		if !want[mac] {
			d.unpinLocked(t, mac)
		}
	}
	var added []net.HardwareAddr
	for mac := range want {
		if _, ok := t.ports.Member(mac); !ok {
			added = append(added, net.HardwareAddr(mac[:]))
		}
	}
	d.pinLocked(t, added...)
}

// fdbChanged follows one change of a bridge's forwarding database.
func (d *Daemon) fdbChanged(e host.FDBEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range d.order {
		t := d.teams[name]
		if t.ports == nil || t.dp == nil {
			continue
		}
		switch {
		case e.Port == t.index && e.Permanent:
			// The team NIC's own entry: it joined or left a bridge (or
			// changed MAC, which changes nothing here).
			d.syncPortsLocked(t)
		case e.Bridge != t.bridge || e.Permanent:
		case e.Deleted || e.Port == t.index:
			// Aged out, or now behind the team: not a port of ours.
			if _, ok := t.ports.Member(balance.MAC(e.MAC)); ok {
				d.unpinLocked(t, balance.MAC(e.MAC))
			}
		default:
			if _, ok := t.ports.Member(balance.MAC(e.MAC)); !ok {
				d.pinLocked(t, e.MAC)
			}
		}
	}
}

// pinLocked pins new ports to members and announces them there.
func (d *Daemon) pinLocked(t *teamRT, macs ...net.HardwareAddr) {
	var moves []balance.Move
	for _, mac := range macs {
		if id := t.ports.Add(balance.MAC(mac)); id != 0 {
			moves = append(moves, balance.Move{MAC: balance.MAC(mac), To: id})
		}
	}
	d.applyPortMovesLocked(t, moves)
}

func (d *Daemon) unpinLocked(t *teamRT, mac balance.MAC) {
	t.ports.Remove(mac)
	if err := t.dp.DeleteAffinity(mac[:]); err != nil {
		d.log.Warn("unpin port", "team", t.rec.Spec.Name, "mac", formatMAC(mac[:]), "err", err)
	}
}

// movePortsLocked re-pins the ports after the carriers changed: only the
// ports of members that stopped carrying move, and a member that returns
// takes back its share. The datapath has already sent the ports of a
// failed member by their buckets since the bucket table changed.
func (d *Daemon) movePortsLocked(t *teamRT, carriers []team.Weighted) {
	d.applyPortMovesLocked(t, t.ports.SetMembers(carriers))
}

// applyPortMovesLocked writes moves to the datapath, logs them and tells
// the peers, from each port's new member.
func (d *Daemon) applyPortMovesLocked(t *teamRT, moves []balance.Move) {
	if len(moves) == 0 {
		return
	}
	byMember := map[uint32][]net.HardwareAddr{}
	var desc []string
	for _, m := range moves {
		mac := net.HardwareAddr(m.MAC[:])
		if err := t.dp.SetAffinity(mac, int(m.To)); err != nil {
			d.log.Warn("pin port", "team", t.rec.Spec.Name, "mac", formatMAC(mac), "err", err)
			continue
		}
		byMember[m.To] = append(byMember[m.To], mac)
		from := "new"
		if m.From != 0 {
			from = t.memberName(int(m.From))
		}
		desc = append(desc, fmt.Sprintf("%s %s -> %s", formatMAC(mac), from, t.memberName(int(m.To))))
	}
	if len(desc) == 0 {
		return
	}
	d.events.add(t.rec.Spec.Name, api.EventPortsMoved, "", strings.Join(desc, ", "))
	for id, macs := range byMember {
		member := t.memberName(int(id))
		j := t.job(member, notifyPorts)
		j.ports = macs
		// A newer announcement from this member replaces an older one;
		// those from other members run on (their ports stayed there).
		stop := t.stopPorts[member]
		d.startNotifyLocked(&stop, j)
		t.stopPorts[member] = stop
	}
}

// memberName returns the name of the member with ifindex idx.
func (t *teamRT) memberName(idx int) string {
	if name, ok := t.memberAt(idx); ok {
		return name
	}
	return fmt.Sprintf("ifindex %d", idx)
}

// memberAt returns the member with ifindex idx, if there is one.
func (t *teamRT) memberAt(idx int) (string, bool) {
	for name, i := range t.ifindex {
		if i == idx {
			return name, true
		}
	}
	return "", false
}

// portViews lists the ports of the team name by MAC.
func (d *Daemon) portViews(name string) ([]api.Port, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.teamLocked(name)
	if err != nil {
		return nil, err
	}
	if t.ports == nil {
		return nil, team.Invalid(fmt.Errorf("team %s balances by %s: only hyperv-port and dynamic teams pin ports to members", name, t.rec.Spec.Algorithm))
	}
	out := []api.Port{}
	for mac, id := range t.ports.Pins() {
		p := api.Port{MAC: formatMAC(mac[:])}
		if id != 0 {
			p.Member = t.memberName(int(id))
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b api.Port) int { return strings.Compare(a.MAC, b.MAC) })
	return out, nil
}
