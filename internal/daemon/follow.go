package daemon

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/team"
)

// Following the host: what operators and other software do to a team's
// interfaces behind nicteamd's back, each noticed from a netlink
// notification (never by polling) and each logged as an event.
//
//   - A member renamed keeps its ifindex: the team follows the new name.
//   - A member deleted or moved to another namespace is NicNotPresent until
//     an interface of its name appears in this namespace, which rejoins.
//   - A member's MTU set outside nicteam is set back to the team's, as the
//     team driver refuses it: a member with a smaller MTU than the team NIC
//     drops the large frames sent through it while it counts as Active.
//   - A member's MAC: the datapath's copy (source MAC replacement) follows;
//     if the team wore it, the team takes the new one and tells its peers,
//     as under the follow policy: no port owns the old one any more.
//   - The team NIC's MTU set by an operator: the members follow (bonding
//     does the same), or, if one refuses, the team NIC is set back.
//   - The team NIC deleted: rebuilt, with the addresses and routes it had.
//   - The team NIC set down: reported, and left down; that is the
//     operator's call. The team shows Down while no traffic can pass.

// concerns reports whether l is, or was, a member or a team NIC: members
// by name (an absent one may appear) and by ifindex (a renamed one keeps
// it), team NICs by ifindex.
func (d *Daemon) concerns(l host.Link) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.teams {
		if _, ok := t.rec.Spec.Member(l.Name); ok || (t.dp != nil && t.index == l.Index) {
			return true
		}
		if _, ok := t.memberAt(l.Index); ok {
			return true
		}
	}
	return false
}

// followLinkLocked hands a link's current state to the team it belongs
// to. The ifindex decides first: a member renamed is still that member,
// and a new interface named as one renamed away is not.
func (d *Daemon) followLinkLocked(l host.Link) {
	for _, name := range d.order {
		t := d.teams[name]
		if t.dp == nil {
			continue
		}
		if l.Index == t.index {
			d.teamNICChangedLocked(t, l)
			return
		}
		if member, ok := t.memberAt(l.Index); ok {
			d.memberLinkLocked(t, member, l)
			return
		}
	}
	for _, name := range d.order {
		t := d.teams[name]
		if _, ok := t.rec.Spec.Member(l.Name); ok && t.dp != nil {
			d.memberLinkLocked(t, l.Name, l)
			return
		}
	}
}

// memberLinkLocked follows one change of the member called member.
func (d *Daemon) memberLinkLocked(t *teamRT, member string, l host.Link) {
	teamName := t.rec.Spec.Name
	idx, present := t.ifindex[member]
	present = present && idx == l.Index
	switch {
	case l.Deleted:
		l.Name = member
		if present {
			d.events.add(teamName, api.EventMemberGone, member, fmt.Sprintf("%s (ifindex %d) left this network namespace: deleted, or moved to another", member, idx))
		}
		d.memberChangedLocked(t, l)
		return
	case !present:
		// An interface of the member's name appeared: it joins as on
		// creation.
		d.memberChangedLocked(t, l)
		if t.ifindex[member] == l.Index {
			d.events.add(teamName, api.EventMemberBack, member, fmt.Sprintf("%s appeared (ifindex %d): rejoined", member, l.Index))
		}
		return
	}
	if l.Name != member {
		d.renameMemberLocked(t, member, l.Name)
		member = l.Name
	}
	macChanged, teamFollowed := d.memberMACLocked(t, member, l)
	d.memberMTULocked(t, member, l)
	d.memberChangedLocked(t, l)
	if macChanged {
		d.recomputeLocked(t)
	}
	if teamFollowed && t.rec.Primary != "" {
		d.notifyLocked(t, t.rec.Primary, false)
	}
}

// renameMemberLocked makes the team know its member old by its new name:
// the spec (persisted), the run-time state and the LACP port.
func (d *Daemon) renameMemberLocked(t *teamRT, old, new string) {
	i := slices.IndexFunc(t.rec.Spec.Members, func(m team.MemberSpec) bool { return m.Name == old })
	if i < 0 {
		return
	}
	t.rec.Spec.Members = slices.Clone(t.rec.Spec.Members)
	t.rec.Spec.Members[i].Name = new
	rekey(t.links, old, new)
	rekey(t.ifindex, old, new)
	rekey(t.macs, old, new)
	rekey(t.promisc, old, new)
	rekey(t.flags, old, new)
	rekey(t.stopPorts, old, new)
	rekey(t.rec.Saved, old, new)
	if tm := t.timers[old]; tm != nil {
		// The timer's callback names the member: start it again.
		tm.Stop()
		delete(t.timers, old)
		d.startUpDelayLocked(t, new, t.rec.Spec.UpDelay)
	}
	if t.rec.Primary == old {
		t.rec.Primary = new
	}
	// The last evaluation too, so the next one reports no change of a
	// member that only has a new name.
	for j := range t.eval.Members {
		if t.eval.Members[j].Name == old {
			t.eval.Members[j].Name = new
		}
	}
	if j := slices.Index(t.eval.Carriers, old); j >= 0 {
		t.eval.Carriers = slices.Clone(t.eval.Carriers)
		t.eval.Carriers[j] = new
	}
	if t.lacp != nil {
		if _, open := t.lacp.socks[old]; open {
			// LACP knows ports by name: the port is added again under the
			// new one, still collecting if it was, as after a restart.
			if t.lacp.sys.CollectingDistributing(old) {
				t.resumeLACP = map[string]bool{new: true}
			}
			d.closePortLocked(t, old)
		}
	}
	d.persistSoonLocked()
	d.events.add(t.rec.Spec.Name, api.EventMemberRenamed, new, fmt.Sprintf("%s -> %s (ifindex %d): the team follows it", old, new, t.ifindex[new]))
}

func rekey[V any](m map[string]V, old, new string) {
	if v, ok := m[old]; ok {
		delete(m, old)
		m[new] = v
	}
}

// memberMACLocked follows a change of a member's own MAC. It reports
// whether it changed, and whether the team, which wore it, took the new
// one (its peers must hear of it).
func (d *Daemon) memberMACLocked(t *teamRT, member string, l host.Link) (changed, teamFollowed bool) {
	old := t.macs[member]
	if old == nil || bytes.Equal(old, l.MAC) {
		return false, false
	}
	t.macs[member] = l.MAC
	// The datapath writes it into frames that leave this member with
	// their own MAC (source MAC replacement).
	if err := t.dp.AttachMember(l.Index, l.MAC); err != nil {
		d.log.Error("update member MAC", "team", t.rec.Spec.Name, "member", member, "err", err)
	}
	detail := fmt.Sprintf("%s -> %s", formatMAC(old), formatMAC(l.MAC))
	if old.String() == t.rec.MAC {
		if err := d.setTeamMACLocked(t, l.MAC, member+"'s own MAC changed"); err != nil {
			detail += "; the team wore it and could not follow: " + err.Error()
		} else {
			detail += "; the team wore it and follows"
			teamFollowed = true
			d.persistSoonLocked()
		}
	}
	d.events.add(t.rec.Spec.Name, api.EventMemberMAC, member, detail)
	return true, teamFollowed
}

// memberMTULocked sets the team's MTU back on a member whose MTU was set
// outside nicteam.
func (d *Daemon) memberMTULocked(t *teamRT, member string, l host.Link) {
	if l.MTU == t.rec.MTU {
		return
	}
	detail := fmt.Sprintf("MTU %d set outside nicteam: set back to the team's %d (members carry the team NIC's MTU; change that one)", l.MTU, t.rec.MTU)
	if err := host.SetMTU(member, t.rec.MTU); err != nil {
		detail = fmt.Sprintf("MTU %d set outside nicteam; setting back the team's %d failed: %v", l.MTU, t.rec.MTU, err)
	}
	d.events.add(t.rec.Spec.Name, api.EventMemberMTU, member, detail)
}

// teamNICChangedLocked follows a change of t's team NIC.
func (d *Daemon) teamNICChangedLocked(t *teamRT, l host.Link) {
	name := t.rec.Spec.Name
	if l.Deleted {
		d.rebuildNICLocked(t)
		return
	}
	if down := !l.AdminUp; down != t.nicDown {
		t.nicDown = down
		if down {
			d.events.add(name, api.EventTeamNicDown, "", fmt.Sprintf("set down outside nicteam: no traffic passes until it is set up again (ip link set %s up)", name))
		} else {
			d.events.add(name, api.EventTeamNicUp, "", "set up again")
			// Addresses added while it was down are recorded now.
			go d.snapshotIP(t.index)
		}
	}
	if l.MTU != t.rec.MTU {
		d.teamMTULocked(t, l.MTU)
	}
}

// nicStatus is the team NIC's status as Get-NetAdapter spells it.
func (t *teamRT) nicStatus() string {
	switch {
	case t.dp == nil:
		return "NotPresent"
	case t.nicDown:
		return "Disabled"
	}
	return "Up"
}

// teamMTULocked makes the members follow the MTU an operator gave the team
// NIC; if a member refuses it, the team NIC and the members go back.
func (d *Daemon) teamMTULocked(t *teamRT, mtu int) {
	name, old := t.rec.Spec.Name, t.rec.MTU
	var done []string
	var err error
	for _, m := range t.rec.Spec.Members {
		if _, ok := t.ifindex[m.Name]; !ok {
			continue // it gets the team's MTU when it joins
		}
		if err = host.SetMTU(m.Name, mtu); err != nil {
			break
		}
		done = append(done, m.Name)
	}
	if err != nil {
		for _, m := range append(done, name) {
			if err := host.SetMTU(m, old); err != nil {
				d.log.Warn("set MTU back", "team", name, "interface", m, "err", err)
			}
		}
		d.events.add(name, api.EventTeamNicMTU, "", fmt.Sprintf("MTU %d -> %d refused: %v; set back to %d", old, mtu, err, old))
		return
	}
	if err := host.SetMTU(t.rec.Peer, mtu); err != nil {
		d.log.Warn("set peer MTU", "team", name, "err", err)
	}
	t.rec.MTU = mtu
	d.persistSoonLocked()
	d.events.add(name, api.EventTeamNicMTU, "", fmt.Sprintf("MTU %d -> %d: the members follow", old, mtu))
}

// rebuildNICLocked builds t's team NIC and datapath again after the NIC
// was deleted, with the addresses and routes it had: the reconciler sees
// the NIC missing and the pins naming the old one, and starts over.
func (d *Daemon) rebuildNICLocked(t *teamRT) {
	name := t.rec.Spec.Name
	d.events.add(name, api.EventTeamNicDeleted, "", fmt.Sprintf("%s (ifindex %d) deleted outside nicteam: rebuilding it", name, t.index))
	t.stopAnnouncements()
	t.index, t.nicDown = 0, false
	t.eval = team.Evaluation{}
	t.ports, t.bridge, t.balancer = nil, 0, nil
	_, err := d.reconcileLocked(t)
	if t.dp == nil {
		d.log.Error("rebuild team NIC", "team", name, "err", err)
		d.events.add(name, api.EventTeamNicDeleted, "", fmt.Sprintf("rebuilding %s failed: %v; the team is Down until nicteamd restarts", name, err))
		return
	}
	// Built in part (a member that would not join) or whole: the status
	// is derived from what carries, never left at the zero Up.
	d.settleLocked(t)
	if err != nil {
		d.log.Error("rebuild team NIC", "team", name, "err", err)
	}
	d.events.add(name, api.EventTeamNicRebuilt, "", fmt.Sprintf("ifindex %d, status %s; %d addresses and %d routes put back", t.index, t.eval.Status, len(t.rec.IP.Addrs), len(t.rec.IP.Routes)))
}

// restoreIPLocked puts the team NIC's recorded addresses and routes on it.
func (d *Daemon) restoreIPLocked(t *teamRT) {
	if err := host.ApplyIPConfig(t.rec.Spec.Name, t.rec.IP); err != nil {
		d.log.Warn("put back team NIC addresses and routes", "team", t.rec.Spec.Name, "err", err)
	}
}

// followHost follows what link events do not tell: the team NICs'
// addresses and routes, kept in their records because they are gone by
// the time a deletion is heard of. It reads the team NICs' state first.
func (d *Daemon) followHost(ctx context.Context) error {
	ch := make(chan int, 1024)
	if err := host.WatchIP(ctx, ch, func(err error) { d.log.Warn("address and route events", "err", err) }); err != nil {
		return err
	}
	var nics []int
	d.mu.Lock()
	for _, t := range d.teams {
		if t.dp == nil {
			continue
		}
		if nic, err := host.GetByIndex(t.index); err == nil {
			t.nicDown = !nic.AdminUp
		}
		nics = append(nics, t.index)
	}
	d.mu.Unlock()
	for _, idx := range nics {
		d.snapshotIP(idx)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case idx := <-ch:
				// One address brings a burst of notifications (its
				// routes): read each interface once.
				pending := map[int]bool{idx: true}
				for more := true; more; {
					select {
					case i := <-ch:
						pending[i] = true
					default:
						more = false
					}
				}
				for i := range pending {
					d.snapshotIP(i)
				}
			}
		}
	}()
	return nil
}

// snapshotIP records the addresses and routes of the team NIC with
// ifindex index, if it is one. Only a NIC that is up is read: going down,
// and so on its way to deletion, the kernel takes its IPv6 addresses and
// IPv4 routes away, and the record must keep them. The reads run without
// the lock.
func (d *Daemon) snapshotIP(index int) {
	name := ""
	d.mu.Lock()
	for n, t := range d.teams {
		if t.dp != nil && t.index == index {
			name = n
		}
	}
	d.mu.Unlock()
	if name == "" {
		return
	}
	up := func() bool {
		l, err := host.GetByIndex(index)
		return err == nil && l.AdminUp
	}
	if !up() {
		return
	}
	cfg, err := host.IPConfigOf(index)
	if err != nil || !up() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.teams[name]; t != nil && t.index == index && !t.rec.IP.Equal(cfg) {
		t.rec.IP = cfg
		d.persistSoonLocked()
	}
}
