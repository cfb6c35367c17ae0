package daemon

import (
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"time"

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
			f.InTeam = t.rec.Spec.Name
		}
	}
	l, err := host.Get(name)
	if err != nil {
		// A declared member may be absent and still belong to its team.
		return f, f.InTeam != ""
	}
	f.Loopback = l.Loopback
	if l.Alias == teamAlias && f.TeamNIC == "" {
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

func parseSpec(req api.NewTeam) (team.Spec, error) {
	s, err := applySet(team.Spec{Name: req.Name}, req.SetTeam)
	if err != nil {
		return s, err
	}
	for _, m := range req.Members {
		s.Members = append(s.Members, team.MemberSpec{Name: m})
	}
	if req.Standby != "" {
		i := slices.IndexFunc(s.Members, func(m team.MemberSpec) bool { return m.Name == req.Standby })
		if i < 0 {
			s.Members = append(s.Members, team.MemberSpec{Name: req.Standby})
			i = len(s.Members) - 1
		}
		s.Members[i].Mode = team.AdminStandby
	}
	return s, nil
}

func parseDuration(what, v string) (time.Duration, error) {
	dl, err := time.ParseDuration(v)
	if err != nil || dl < 0 {
		return 0, team.Invalid(fmt.Errorf("%s %q: want a duration like 500ms or 2s", what, v))
	}
	return dl, nil
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
	nics, dps, lerr := d.leftovers() // a link dump: not under the lock
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.teams[name]
	if !ok {
		if lerr != nil {
			return fmt.Errorf("remove team %s: %w", name, lerr)
		}
		return d.removeOrphanLocked(name, d.orphansLocked(nics, dps))
	}
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
	if err := next.Supported(); err != nil {
		return api.Team{}, team.Invalid(err)
	}
	if err := d.commitSpecLocked(t, next); err != nil {
		return api.Team{}, err
	}
	d.events.add(name, api.EventTeamChanged, "", fmt.Sprintf("%s, %s, MAC policy %s, up-delay %s, min-links %d", next.Mode, next.Algorithm, next.MACPolicy, next.UpDelay, next.MinLinks))
	return d.teamViewLocked(t), nil
}

func applySet(s team.Spec, req api.SetTeam) (team.Spec, error) {
	var err error
	if req.Mode != "" {
		if s.Mode, err = team.ParseMode(req.Mode); err != nil {
			return s, team.Invalid(err)
		}
	}
	if req.Algorithm != "" {
		if s.Algorithm, err = team.ParseAlgorithm(req.Algorithm); err != nil {
			return s, team.Invalid(err)
		}
	}
	if req.UpDelay != "" {
		if s.UpDelay, err = parseDuration("up-delay", req.UpDelay); err != nil {
			return s, err
		}
	}
	if req.MACPolicy != "" {
		if s.MACPolicy, err = team.ParseMACPolicy(req.MACPolicy); err != nil {
			return s, team.Invalid(err)
		}
	}
	if req.NotifyCount < 0 || req.NotifyCount > 100 {
		return s, team.Invalid(fmt.Errorf("notify count %d: want 1 to 100", req.NotifyCount))
	}
	if req.NotifyCount > 0 {
		s.Notify.Count = req.NotifyCount
	}
	if req.NotifyInterval != "" {
		if s.Notify.Interval, err = parseDuration("notify interval", req.NotifyInterval); err != nil {
			return s, err
		}
	}
	if req.VerifyTimeout != "" {
		if s.Notify.Verify, err = parseDuration("verify timeout", req.VerifyTimeout); err != nil {
			return s, err
		}
	}
	if s, err = applyDynamic(s, req.DynamicSettings); err != nil {
		return s, err
	}
	return applyLacp(s, req.LacpSettings)
}

func applyDynamic(s team.Spec, req api.DynamicSettings) (team.Spec, error) {
	for _, f := range []struct {
		what     string
		v        string
		min, max time.Duration
		to       *time.Duration
	}{
		{"flowlet gap", req.FlowletGap, team.MinFlowletGap, team.MaxFlowletGap, &s.Dynamic.FlowletGap},
		{"rebalance interval", req.RebalanceInterval, team.MinInterval, team.MaxInterval, &s.Dynamic.Interval},
	} {
		if f.v == "" {
			continue
		}
		d, err := parseDuration(f.what, f.v)
		if err != nil {
			return s, err
		}
		if d < f.min || d > f.max {
			return s, team.Invalid(fmt.Errorf("%s %s: want %s to %s", f.what, d, f.min, f.max))
		}
		*f.to = d
	}
	return s, nil
}

func applyLacp(s team.Spec, req api.LacpSettings) (team.Spec, error) {
	var err error
	if req.LacpTimer != "" {
		if s.Lacp.Timer, err = team.ParseLacpTimer(req.LacpTimer); err != nil {
			return s, team.Invalid(err)
		}
	}
	for _, f := range []struct {
		what string
		v    int
		to   *uint16
	}{
		{"LACP system priority", req.LacpSystemPriority, &s.Lacp.SystemPriority},
		{"LACP key", req.LacpKey, &s.Lacp.Key},
		{"LACP port priority", req.LacpPortPriority, &s.Lacp.PortPriority},
	} {
		if f.v < 0 || f.v > 65535 {
			return s, team.Invalid(fmt.Errorf("%s %d: want 1 to 65535", f.what, f.v))
		}
		if f.v > 0 {
			*f.to = uint16(f.v)
		}
	}
	if req.MinLinks != nil {
		if *req.MinLinks < 0 || *req.MinLinks > 256 {
			return s, team.Invalid(fmt.Errorf("min-links %d: want 0 to 256", *req.MinLinks))
		}
		s.MinLinks = *req.MinLinks
	}
	return s, nil
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
	if t.dp == nil {
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
	nics, dps, lerr := d.leftovers() // a link dump: not under the lock
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
	for _, n := range d.orphansLocked(nics, dps) {
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
// and the hidden carrier peers.
func (d *Daemon) adapters(names []string) ([]api.Adapter, error) {
	links, err := host.List()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	byName := map[string]host.Link{}
	var order []string
	for _, l := range links {
		if l.Loopback || (len(l.Alias) >= len(peerAlias) && l.Alias[:len(peerAlias)] == peerAlias) {
			continue
		}
		byName[l.Name] = l
		order = append(order, l.Name)
	}
	if len(names) > 0 {
		for _, n := range names {
			if _, ok := byName[n]; !ok {
				return nil, notFound("no adapter %q", n)
			}
		}
		order = names
	}
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
		if t, ok := d.teams[n]; ok {
			a.InterfaceDescription = teamAlias
			a.LinkSpeed = t.eval.Speed
		} else {
			a.InterfaceDescription = describe(n, l)
			a.LinkSpeed = host.Speed(n)
		}
		out = append(out, a)
	}
	return out, nil
}

func describe(name string, l host.Link) string {
	drv := host.Driver(name)
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
