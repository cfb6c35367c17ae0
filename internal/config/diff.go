package config

import (
	"reflect"
	"slices"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/team"
)

// Actions of a Change.
const (
	Create       = "create"
	Change       = "change"
	AddMember    = "add member"
	SetActive    = "set member active"
	SetStandby   = "set member standby"
	RemoveMember = "remove member"
	Remove       = "remove"
)

// Diff lists the changes that make the current teams the desired ones, in
// an order that each can be made in: pruned teams go first and members
// leave their teams before they join others; a team loses a member only
// after it gained the others, and new teams come last, when their members
// are free. A team's member order matters only when it is created (its
// first active member lends the team its MAC). Teams not desired are left
// alone unless prune.
func Diff(current, desired []team.Spec, prune bool) []api.Change {
	var out []api.Change
	add := func(t, action, member string) {
		out = append(out, api.Change{Team: t, Action: action, Member: member})
	}
	cur := map[string]*team.Spec{}
	owner := map[string]string{} // interface -> the team it is a member of now
	for i := range current {
		cur[current[i].Name] = &current[i]
		for _, m := range current[i].Members {
			owner[m.Name] = current[i].Name
		}
	}
	want := map[string]bool{}
	for _, d := range desired {
		want[d.Name] = true
	}
	if prune {
		for _, c := range current {
			if !want[c.Name] {
				add(c.Name, Remove, "")
				for _, m := range c.Members {
					delete(owner, m.Name)
				}
			}
		}
	}
	// Existing teams: what can be done before any member moves.
	var moved [][2]string // team, member: waits for its member to leave another team
	for _, d := range desired {
		c := cur[d.Name]
		if c == nil {
			continue
		}
		raise := d.MinLinks > c.MinLinks
		if !raise && !sameSettings(*c, d) {
			add(d.Name, Change, "")
		}
		for _, m := range d.Members {
			was, ok := c.Member(m.Name)
			switch {
			case ok && was.Mode != m.Mode && m.Mode == team.AdminActive:
				add(d.Name, SetActive, m.Name)
			case !ok && owner[m.Name] != "" && owner[m.Name] != d.Name:
				moved = append(moved, [2]string{d.Name, m.Name})
			case !ok:
				add(d.Name, AddMember, m.Name)
			}
		}
	}
	for _, d := range desired {
		if c := cur[d.Name]; c != nil {
			for _, m := range c.Members {
				if _, ok := d.Member(m.Name); !ok {
					add(d.Name, RemoveMember, m.Name)
				}
			}
		}
	}
	for _, tm := range moved {
		add(tm[0], AddMember, tm[1])
	}
	for _, d := range desired {
		c := cur[d.Name]
		if c == nil {
			continue
		}
		for _, m := range d.Members {
			if was, ok := c.Member(m.Name); ok && was.Mode != m.Mode && m.Mode == team.AdminStandby {
				add(d.Name, SetStandby, m.Name)
			}
		}
		if d.MinLinks > c.MinLinks && !sameSettings(*c, d) {
			add(d.Name, Change, "")
		}
	}
	for _, d := range desired {
		if cur[d.Name] == nil {
			add(d.Name, Create, "")
		}
	}
	return out
}

// sameSettings compares everything but the name and members, a default
// and its value spelled out being the same.
func sameSettings(a, b team.Spec) bool {
	for _, s := range []*team.Spec{&a, &b} {
		s.Name, s.Members = "", nil
		s.Notify = s.Notify.WithDefaults()
		s.Lacp = s.Lacp.WithDefaults()
	}
	return reflect.DeepEqual(a, b)
}

// Settings returns desired's settings on current's name and members: what
// a Change makes of the current team.
func Settings(current, desired team.Spec) team.Spec {
	desired.Name, desired.Members = current.Name, slices.Clone(current.Members)
	return desired
}
