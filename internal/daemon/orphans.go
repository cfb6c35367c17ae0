package daemon

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/reconcile"
	"github.com/nicteam/nicteam/internal/team"
)

// teamNICs lists the interfaces in this namespace that nicteam made as
// team NICs (by their alias), declared or not. It dumps every link, so it
// is called without d.mu, and only where it is worth it (rm).
func teamNICs() ([]string, error) {
	links, err := host.List()
	if err != nil {
		return nil, err
	}
	var nics []string
	for _, l := range links {
		if l.Alias == teamAlias {
			nics = append(nics, l.Name)
		}
	}
	return nics, nil
}

// pinnedTeams lists the teams with a datapath pinned for this namespace,
// declared or not: one directory read, cheap enough for every listing. A
// team NIC left without pins is no orphan get shows (its state file and
// its pins would both have to be lost); rm still finds and removes it.
func (d *Daemon) pinnedTeams() ([]string, error) {
	entries, err := os.ReadDir(d.pinDir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// orphansLocked names the leftovers no team declares: a deleted state
// file, or a daemon killed before it saved the intent of a team it was
// building, leaves such.
func (d *Daemon) orphansLocked(nics, datapaths []string) []string {
	return reconcile.Orphans(d.order, nics, datapaths)
}

func orphanView(name string) api.Team {
	return api.Team{Name: name, TeamNics: name, Members: []string{}, Status: team.Down, Orphaned: true}
}

// removeOrphan takes an orphan's NIC and pins away. Looking for them
// dumps links, so it is done before d.mu is taken. The orphan's members'
// settings from before were never saved (or were lost with the state
// file), so they stay as they are.
func (d *Daemon) removeOrphan(name string) error {
	nics, err := teamNICs()
	dps, perr := d.pinnedTeams()
	if err := errors.Join(err, perr); err != nil {
		return fmt.Errorf("remove team %s: %w", name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.orphansLocked(nics, dps), name) {
		return notFound("no team %q", name)
	}
	t := newTeamRT(record{Spec: team.Spec{Name: name}, Removing: true})
	if _, err := d.reconcileLocked(t); err != nil {
		return fmt.Errorf("remove orphan %s: %w", name, err)
	}
	d.events.add(name, api.EventTeamRemoved, "", "orphan removed")
	return nil
}
