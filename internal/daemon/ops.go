package daemon

import (
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/team"
)

// notFoundError is a missing team or member; it matches os.ErrNotExist so
// the API answers 404, and its message names only what is missing.
type notFoundError struct{ msg string }

func (e notFoundError) Error() string        { return e.msg }
func (e notFoundError) Is(target error) bool { return target == os.ErrNotExist }

func notFound(format string, args ...any) error { return notFoundError{fmt.Sprintf(format, args...)} }

// inventory answers validation questions from netlink and the daemon's
// own records. It is used under d.mu.
type inventory struct{ d *Daemon }

func (inv inventory) Link(name string) (team.LinkFacts, bool) {
	var f team.LinkFacts
	for _, t := range inv.d.teams {
		if name == t.rec.Spec.Name || name == t.rec.Peer {
			f.TeamNIC = t.rec.Spec.Name
		}
		if _, ok := t.rec.Spec.Member(name); ok {
			f.InTeam, f.MemberAs = t.rec.Spec.Name, name
		}
	}
	l, err := host.Get(name)
	if err != nil {
		// A declared member may be absent and still belong to its team.
		return f, f.InTeam != ""
	}
	f.Name, f.Loopback, f.NoMAC = l.Name, l.Loopback, len(l.MAC) != 6
	// A NIC is a team's by its ifindex too: renamed, it is still theirs.
	for _, t := range inv.d.teams {
		if t.index == l.Index {
			f.TeamNIC = t.rec.Spec.Name
		}
		for m, idx := range t.ifindex {
			if idx == l.Index {
				f.InTeam, f.MemberAs = t.rec.Spec.Name, m
			}
		}
	}
	if f.TeamNIC == "" && (l.Alias == teamAlias || strings.HasPrefix(l.Alias, peerAlias)) {
		f.TeamNIC = name // another daemon's team in this namespace
	}
	return f, true
}

func (d *Daemon) teamLocked(name string) (*teamRT, error) {
	t, ok := d.teams[name]
	if !ok {
		return nil, notFound("no team %q", name)
	}
	return t, nil
}

// primaryIndex is the first active member: its MAC becomes the team's.
func primaryIndex(s *team.Spec) int {
	return max(0, slices.IndexFunc(s.Members, func(m team.MemberSpec) bool { return m.Mode == team.AdminActive }))
}

// create declares a new team and builds it. The intent is saved first; on
// any error the host is as it was.
func (d *Daemon) create(req api.NewTeam) (api.Team, error) {
	spec, err := parseSpec(req)
	if err != nil {
		return api.Team{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := team.ValidateNew(&spec, inventory{d}); err != nil {
		return api.Team{}, err
	}
	primary, err := host.Get(spec.Members[primaryIndex(&spec)].Name)
	if err != nil {
		return api.Team{}, err
	}
	rec := record{Spec: spec, MAC: primary.MAC.String(), Peer: peerName(spec.Name), MTU: primary.MTU}
	captureAll(&rec, spec.MemberNames())
	t := newTeamRT(rec)
	d.teams[spec.Name] = t
	d.order = append(d.order, spec.Name)
	if err := d.persistLocked(); err != nil {
		d.dropLocked(spec.Name)
		return api.Team{}, fmt.Errorf("create team %s: nothing changed: %w", spec.Name, err)
	}
	if _, err := d.reconcileLocked(t); err != nil {
		if uerr := d.destroyLocked(t); uerr != nil {
			d.log.Error("undo create", "team", spec.Name, "err", uerr)
		}
		return api.Team{}, fmt.Errorf("create team %s: %w", spec.Name, err)
	}
	d.events.add(spec.Name, api.EventTeamCreated, "", fmt.Sprintf("members %v, %s, %s", spec.MemberNames(), spec.Mode, spec.Algorithm))
	d.settleLocked(t)
	return d.teamViewLocked(t), nil
}

// dropLocked forgets a team whose intent was never saved.
func (d *Daemon) dropLocked(name string) {
	delete(d.teams, name)
	d.order = slices.DeleteFunc(d.order, func(n string) bool { return n == name })
}

// destroyLocked marks t removed in the intent, then takes from the host
// everything it made and restores its members; a daemon killed midway
// finishes the removal when it starts again. If the mark cannot be saved
// nothing changes.
func (d *Daemon) destroyLocked(t *teamRT) error {
	t.rec.Removing = true
	if err := d.persistLocked(); err != nil {
		t.rec.Removing = false
		return fmt.Errorf("nothing changed: %w", err)
	}
	d.stopLACPLocked(t)
	t.stopAnnouncements()
	for m := range t.timers {
		d.forgetMemberLocked(t, m)
	}
	_, err := d.reconcileLocked(t)
	return err
}

func (d *Daemon) remove(name string) error {
	d.mu.Lock()
	t, ok := d.teams[name]
	if !ok {
		d.mu.Unlock()
		return d.removeOrphan(name)
	}
	defer d.mu.Unlock()
	if err := d.destroyLocked(t); err != nil {
		return fmt.Errorf("remove team %s: %w", name, err)
	}
	d.events.add(name, api.EventTeamRemoved, "", "")
	return nil
}

func (d *Daemon) set(name string, req api.SetTeam) (api.Team, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.teamLocked(name)
	if err != nil {
		return api.Team{}, err
	}
	next := t.rec.Spec
	if next, err = applySet(next, req); err != nil {
		return api.Team{}, err
	}
	if err := d.commitSpecLocked(t, next); err != nil {
		return api.Team{}, err
	}
	d.events.add(name, api.EventTeamChanged, "", fmt.Sprintf("%s, %s, MAC policy %s, up-delay %s, min-links %d", next.Mode, next.Algorithm, next.MACPolicy, next.UpDelay, next.MinLinks))
	return d.teamViewLocked(t), nil
}

// commitSpecLocked persists a changed spec and applies it; on a failed
// write the old spec stays.
func (d *Daemon) commitSpecLocked(t *teamRT, next team.Spec) error {
	old, noLearning := t.rec.Spec, t.rec.NoLearning
	t.rec.Spec = next
	if next.MACPolicy != old.MACPolicy {
		t.rec.NoLearning = false // what auto learnt about the fabric starts over
	}
	if err := d.persistLocked(); err != nil {
		t.rec.Spec, t.rec.NoLearning = old, noLearning
		return err
	}
	d.recomputeLocked(t)
	return nil
}

func (d *Daemon) addMember(teamName string, req api.AddMember) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.teamLocked(teamName)
	if err != nil {
		return err
	}
	next := t.rec.Spec
	next.Members = append(slices.Clone(next.Members), team.MemberSpec{Name: req.Name})
	if req.Standby {
		next.Members[len(next.Members)-1].Mode = team.AdminStandby
	}
	if _, dup := t.rec.Spec.Member(req.Name); dup {
		return team.Invalid(fmt.Errorf("%q is already a member of %q", req.Name, teamName))
	}
	if err := team.ValidateMembers(&next, inventory{d}); err != nil {
		return err
	}
	old := t.rec
	t.rec.Spec = next
	t.rec.Saved = maps.Clone(old.Saved)
	captureAll(&t.rec, []string{req.Name})
	if err := d.persistLocked(); err != nil {
		t.rec = old
		return fmt.Errorf("add %s to %s: nothing changed: %w", req.Name, teamName, err)
	}
	if _, err := d.reconcileLocked(t); err != nil {
		// Undo: the member is declared out again, and the plan detaches
		// and restores what it joined.
		t.rec.Spec = old.Spec
		if perr := d.persistLocked(); perr != nil {
			d.log.Error("undo add member", "team", teamName, "member", req.Name, "err", perr)
		} else if _, uerr := d.reconcileLocked(t); uerr != nil {
			d.log.Error("undo add member", "team", teamName, "member", req.Name, "err", uerr)
		}
		return err
	}
	d.events.add(teamName, api.EventMemberAdded, req.Name, next.Members[len(next.Members)-1].Mode.String())
	d.recomputeLocked(t)
	return nil
}

func (d *Daemon) removeMember(teamName, member string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.teamLocked(teamName)
	if err != nil {
		return err
	}
	if _, ok := t.rec.Spec.Member(member); !ok {
		return notFound("%q is not a member of team %q", member, teamName)
	}
	next := t.rec.Spec
	next.Members = slices.DeleteFunc(slices.Clone(next.Members), func(m team.MemberSpec) bool { return m.Name == member })
	if len(next.Members) == 0 {
		return team.Invalid(fmt.Errorf("%q is the last member of team %q; remove the team instead (nicteam rm %s)", member, teamName, teamName))
	}
	if !slices.ContainsFunc(next.Members, func(m team.MemberSpec) bool { return m.Mode == team.AdminActive }) {
		return team.Invalid(fmt.Errorf("removing %q would leave team %q with only a standby member", member, teamName))
	}
	if err := next.Validate(); err != nil {
		return err
	}
	// The intent first: the member's saved settings stay in it until they
	// are restored, so a restart finishes the removal.
	old := t.rec.Spec
	t.rec.Spec = next
	if err := d.persistLocked(); err != nil {
		t.rec.Spec = old
		return fmt.Errorf("remove %s from %s: nothing changed: %w", member, teamName, err)
	}
	// Take it out of the buckets before detaching, so no frame is sent to it.
	delete(t.links, member)
	if t.macs[member].String() == t.rec.MAC {
		// The team wore the leaving NIC's MAC: two ports on the wire must
		// not share one, so the team takes the first active member's.
		for _, m := range next.Members {
			if mac, ok := t.macs[m.Name]; ok && m.Mode == team.AdminActive {
				if err := d.setTeamMACLocked(t, mac, member+" left the team"); err != nil {
					d.log.Error("change team MAC", "team", teamName, "err", err)
				}
				break
			}
		}
	}
	d.recomputeLocked(t)
	if _, err := d.reconcileLocked(t); err != nil {
		return fmt.Errorf("remove %s from %s: %w", member, teamName, err)
	}
	d.events.add(teamName, api.EventMemberRemoved, member, "")
	return nil
}

func (d *Daemon) setMember(teamName, member string, req api.SetMember) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.teamLocked(teamName)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(t.rec.Spec.Members, func(m team.MemberSpec) bool { return m.Name == member })
	if i < 0 {
		return notFound("%q is not a member of team %q", member, teamName)
	}
	next := t.rec.Spec
	next.Members = slices.Clone(next.Members)
	next.Members[i].Mode = team.AdminActive
	if req.Standby {
		next.Members[i].Mode = team.AdminStandby
	}
	if err := team.ValidateMembers(&next, inventory{d}); err != nil {
		return err
	}
	if err := d.commitSpecLocked(t, next); err != nil {
		return err
	}
	d.events.add(teamName, api.EventTeamChanged, member, "administrative mode "+next.Members[i].Mode.String())
	return nil
}

// Views.

func (d *Daemon) teamViewLocked(t *teamRT) api.Team {
	v := api.Team{
		Name:                   t.rec.Spec.Name,
		Members:                t.rec.Spec.MemberNames(),
		TeamNics:               t.rec.Spec.Name,
		TeamingMode:            t.rec.Spec.Mode,
		LoadBalancingAlgorithm: t.rec.Spec.Algorithm,
		Status:                 t.eval.Status,
		MacAddress:             formatMAC(mustMAC(t.rec.MAC)),
		Primary:                t.rec.Primary,
		MACPolicy:              t.rec.Spec.MACPolicy,
		LinkSpeed:              t.eval.Speed,
	}
	// No traffic passes a team NIC that is down or missing.
	if v.TeamNicStatus = t.nicStatus(); v.TeamNicStatus != "Up" {
		v.Status = team.Down
	} else {
		v.DatapathFailover = t.dp.Failover()
	}
	if t.rec.Spec.UpDelay > 0 {
		v.UpDelay = t.rec.Spec.UpDelay.String()
	}
	if t.rec.Spec.Mode == team.Lacp {
		v.LacpTimer = &t.rec.Spec.Lacp.Timer
	}
	v.MinLinks = t.rec.Spec.MinLinks
	if t.rec.Spec.Algorithm == team.Dynamic {
		v.FlowletGap = flowletOf(&t.rec.Spec).String()
		v.RebalanceInterval = intervalOf(&t.rec.Spec).String()
	}
	return v
}

// teamViews lists the declared teams, then the orphans: what nicteam made
// that no team declares, so that it can be seen and removed.
func (d *Daemon) teamViews(name string) ([]api.Team, error) {
	dps, lerr := d.pinnedTeams()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []api.Team
	for _, n := range d.order {
		if name == "" || n == name {
			out = append(out, d.teamViewLocked(d.teams[n]))
		}
	}
	if lerr != nil {
		d.log.Warn("list orphans", "err", lerr)
	}
	for _, n := range d.orphansLocked(nil, dps) {
		if name == "" || n == name {
			out = append(out, orphanView(n))
		}
	}
	if name != "" && len(out) == 0 {
		return nil, notFound("no team %q", name)
	}
	return out, nil
}

func (d *Daemon) memberViews(name string) ([]api.Member, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if name != "" {
		if _, err := d.teamLocked(name); err != nil {
			return nil, err
		}
	}
	out := []api.Member{}
	for _, n := range d.order {
		if name != "" && n != name {
			continue
		}
		for _, m := range d.teams[n].eval.Members {
			out = append(out, api.Member{
				Name: m.Name, Team: n,
				AdministrativeMode: m.Admin, OperationalStatus: m.Oper, FailureReason: m.Reason,
				TransmitLinkSpeed: m.Speed, ReceiveLinkSpeed: m.Speed,
			})
		}
	}
	return out, nil
}

// adapters lists interfaces as Get-NetAdapter does, leaving out loopback
// and the hidden carrier peers. What it asks the kernel (a dump of every
// link; ethtool, once per interface until its link changes) it asks
// without d.mu, which a carrier event needs to fail a member over: the
// lock is held only to copy the team NICs' speeds. A name asked for twice
// is listed once, so the work is bounded by the host's interfaces, not by
// the request. One listing runs at a time (d.listing).
func (d *Daemon) adapters(names []string) ([]api.Adapter, error) {
	d.listing.Lock()
	defer d.listing.Unlock()
	links, err := host.List()
	if err != nil {
		return nil, err
	}
	byName := map[string]host.Link{}
	var order []string
	for _, l := range links {
		if l.Loopback || strings.HasPrefix(l.Alias, peerAlias) {
			continue
		}
		byName[l.Name] = l
		order = append(order, l.Name)
	}
	if len(names) > 0 {
		order = order[:0]
		listed := map[string]bool{}
		for _, n := range names {
			if _, ok := byName[n]; !ok {
				return nil, notFound("no adapter %q", n)
			}
			if !listed[n] {
				listed[n] = true
				order = append(order, n)
			}
		}
	}
	teamSpeeds := d.teamSpeeds()
	out := make([]api.Adapter, 0, len(order))
	for _, n := range order {
		l := byName[n]
		a := api.Adapter{Name: n, IfIndex: l.Index, MacAddress: formatMAC(l.MAC), Status: "Up"}
		switch {
		case !l.AdminUp:
			a.Status = "Disabled"
		case !l.Carrier:
			a.Status = "Disconnected"
		}
		if speed, ok := teamSpeeds[n]; ok {
			a.InterfaceDescription = teamAlias
			a.LinkSpeed = speed
		} else {
			f := d.facts.Get(l)
			a.InterfaceDescription = describe(f.Driver, l)
			a.LinkSpeed = f.Speed
		}
		out = append(out, a)
	}
	return out, nil
}

// teamSpeeds copies each team NIC's link speed: the sum of its carrying
// members'.
func (d *Daemon) teamSpeeds() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	speeds := make(map[string]uint64, len(d.teams))
	for name, t := range d.teams {
		speeds[name] = t.eval.Speed
	}
	return speeds
}

// describe is an interface's description: its driver's name, or its kind.
func describe(drv string, l host.Link) string {
	if drv == "" {
		drv = l.Kind
	}
	if drv == "" {
		return "Ethernet Adapter"
	}
	return drv + " Ethernet Adapter"
}

func mustMAC(s string) net.HardwareAddr {
	mac, _ := net.ParseMAC(s)
	return mac
}

// formatMAC spells a MAC as Get-NetAdapter does: 00-50-56-8C-14-20.
func formatMAC(mac net.HardwareAddr) string {
	s := ""
	for i, b := range mac {
		if i > 0 {
			s += "-"
		}
		s += fmt.Sprintf("%02X", b)
	}
	return s
}
