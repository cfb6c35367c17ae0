package daemon

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/config"
	"github.com/nicteam/nicteam/internal/team"
)

// apply makes the teams req names what it declares, through the same
// operations as the CLI's commands, so each change is saved before it is
// made. Every team is parsed first: a request with a bad value changes
// nothing. It stops at the first change that fails; the error says which
// and how many were made before it.
func (d *Daemon) apply(req api.Apply) ([]api.Change, error) {
	desired := make([]team.Spec, 0, len(req.Teams))
	byName := map[string]api.NewTeam{}
	for _, nt := range req.Teams {
		if _, dup := byName[nt.Name]; dup {
			return nil, team.Invalid(fmt.Errorf("team %s is declared twice", nt.Name))
		}
		s, err := parseSpec(nt)
		if err != nil {
			return nil, fmt.Errorf("team %s: %w", nt.Name, err)
		}
		desired = append(desired, s)
		byName[nt.Name] = nt
	}
	d.mu.Lock()
	current := make([]team.Spec, 0, len(d.order))
	for _, n := range d.order {
		current = append(current, d.teams[n].rec.Spec)
	}
	d.mu.Unlock()
	changes := config.Diff(current, desired, req.Prune)
	if req.DryRun {
		return changes, nil
	}
	for i, c := range changes {
		if err := d.applyChange(c, byName[c.Team]); err != nil {
			return changes[:i], fmt.Errorf("%s %s%s: %w (%d of %d changes made before it)", c.Action, c.Team, memberSuffix(c), err, i, len(changes))
		}
	}
	return changes, nil
}

func memberSuffix(c api.Change) string {
	if c.Member == "" {
		return ""
	}
	return " " + c.Member
}

func (d *Daemon) applyChange(c api.Change, nt api.NewTeam) error {
	switch c.Action {
	case config.Create:
		_, err := d.create(nt)
		return err
	case config.Change:
		s, err := parseSpec(nt)
		if err != nil {
			return err
		}
		return d.replaceSettings(c.Team, s)
	case config.AddMember:
		return d.addMember(c.Team, api.AddMember{Name: c.Member, Standby: c.Member == nt.Standby})
	case config.SetActive, config.SetStandby:
		return d.setMember(c.Team, c.Member, api.SetMember{Standby: c.Action == config.SetStandby})
	case config.RemoveMember:
		return d.removeMember(c.Team, c.Member)
	case config.Remove:
		return d.remove(c.Team)
	}
	return fmt.Errorf("unknown change %q", c.Action)
}

// replaceSettings gives a team desired's settings, a setting desired
// leaves unset going back to its default (unlike set, which changes only
// what it is given).
func (d *Daemon) replaceSettings(name string, desired team.Spec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.teamLocked(name)
	if err != nil {
		return err
	}
	next := config.Settings(t.rec.Spec, desired)
	if err := next.Validate(); err != nil {
		return err
	}
	if err := d.commitSpecLocked(t, next); err != nil {
		return err
	}
	d.events.add(name, api.EventTeamChanged, "", fmt.Sprintf("applied: %s, %s, MAC policy %s, up-delay %s, min-links %d", next.Mode, next.Algorithm, next.MACPolicy, next.UpDelay, next.MinLinks))
	return nil
}

// declared returns every team as a teams file declares it, by name.
func (d *Daemon) declared() []api.NewTeam {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]api.NewTeam, 0, len(d.order))
	for _, n := range d.order {
		out = append(out, exportOf(d.teams[n].rec.Spec))
	}
	slices.SortFunc(out, func(a, b api.NewTeam) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// exportOf is the inverse of parseSpec: a setting at its zero value (the
// default) is left out, so parseSpec(exportOf(s)) is s.
func exportOf(s team.Spec) api.NewTeam {
	nt := api.NewTeam{Name: s.Name, Members: s.MemberNames()}
	for _, m := range s.Members {
		if m.Mode == team.AdminStandby {
			nt.Standby = m.Name
		}
	}
	set := &nt.SetTeam
	set.Mode, set.Algorithm, set.MACPolicy = s.Mode.String(), s.Algorithm.String(), s.MACPolicy.String()
	set.UpDelay = unlessZero(s.UpDelay)
	set.NotifyCount = s.Notify.Count
	set.NotifyInterval = unlessZero(s.Notify.Interval)
	set.VerifyTimeout = unlessZero(s.Notify.Verify)
	if s.Mode == team.Lacp || s.Lacp.Timer != 0 {
		set.LacpTimer = s.Lacp.Timer.String()
	}
	set.LacpSystemPriority, set.LacpKey, set.LacpPortPriority = int(s.Lacp.SystemPriority), int(s.Lacp.Key), int(s.Lacp.PortPriority)
	if s.MinLinks > 0 {
		set.MinLinks = &s.MinLinks
	}
	set.FlowletGap = unlessZero(s.Dynamic.FlowletGap)
	set.RebalanceInterval = unlessZero(s.Dynamic.Interval)
	return nt
}

// unlessZero spells a duration as parseSpec takes it; zero, the default,
// is left out.
func unlessZero(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// applyFile applies a teams file at start: the file wins for the teams it
// names. A file that does not parse, or a change that fails, is logged and
// the daemon serves on with the teams it has.
func (d *Daemon) applyFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		d.log.Error("config", "file", path, "err", err)
		return
	}
	f, err := config.Parse(b, nil)
	if err != nil {
		d.log.Error("config", "file", path, "err", err)
		return
	}
	changes, err := d.apply(api.Apply{Teams: f.Teams})
	for _, c := range changes {
		d.log.Info("config applied", "file", path, "team", c.Team, "action", c.Action, "member", c.Member)
	}
	if err != nil {
		d.log.Error("config", "file", path, "err", err)
	}
}
