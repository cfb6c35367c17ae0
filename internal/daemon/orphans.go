package daemon

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/reconcile"
	"github.com/nicteam/nicteam/internal/team"
)

// leftovers lists what nicteam made in this namespace, whether or not the
// intent declares it: team NICs (by their alias) and pinned datapaths. It
// dumps links, so it is called without d.mu.
func (d *Daemon) leftovers() (nics, datapaths []string, err error) {
	links, err := host.List()
	if err != nil {
		return nil, nil, err
	}
	for _, l := range links {
		if l.Alias == teamAlias {
			nics = append(nics, l.Name)
		}
	}
	entries, err := os.ReadDir(d.pinDir)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, err
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			datapaths = append(datapaths, e.Name())
		}
	}
	return nics, datapaths, nil
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

// removeOrphanLocked takes an orphan's NIC and pins away. Its members'
// settings from before were never saved (or were lost with the state
// file), so they stay as they are.
func (d *Daemon) removeOrphanLocked(name string, orphans []string) error {
	if !slices.Contains(orphans, name) {
		return notFound("no team %q", name)
	}
	t := newTeamRT(record{Spec: team.Spec{Name: name}, Removing: true})
	if _, err := d.reconcileLocked(t); err != nil {
		return fmt.Errorf("remove orphan %s: %w", name, err)
	}
	d.events.add(name, api.EventTeamRemoved, "", "orphan removed")
	return nil
}
