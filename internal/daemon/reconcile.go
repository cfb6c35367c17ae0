package daemon

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/nicteam/nicteam/internal/datapath"
	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/reconcile"
	"github.com/nicteam/nicteam/internal/team"
)

// intentOf is what the planner needs of a team's record.
func intentOf(t *teamRT) reconcile.Team {
	return reconcile.Team{
		Name:     t.rec.Spec.Name,
		Members:  t.rec.Spec.MemberNames(),
		Captured: slices.Sorted(maps.Keys(t.rec.Saved)),
		Removing: t.rec.Removing,
	}
}

// reconcileLocked brings the host to t's intent. It reports whether it
// had to build the datapath (false: the pinned one was adopted).
func (d *Daemon) reconcileLocked(t *teamRT) (built bool, err error) {
	drv := &hostDriver{d: d, t: t}
	err = reconcile.Run(intentOf(t), drv)
	return drv.built, err
}

// hostDriver carries out reconcile's steps for one team on the real host:
// netlink for links, the datapath for pins, the state file for the intent.
// It is used under d.mu.
type hostDriver struct {
	d     *Daemon
	t     *teamRT
	built bool // a CreateDatapath step ran
}

// Observe reads the links the team names and its pinned datapath. A
// datapath pinned for the team NIC that is there is adopted as it runs.
func (h *hostDriver) Observe(rt reconcile.Team) (reconcile.Host, error) {
	obs := reconcile.Host{Links: map[string]reconcile.Link{}, Datapaths: map[string]reconcile.Datapath{}}
	for _, name := range slices.Concat([]string{rt.Name}, rt.Members, rt.Captured) {
		l, err := host.Get(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return obs, err
		}
		obs.Links[name] = reconcile.Link{Index: l.Index, Ours: l.Alias == teamAlias}
	}
	t := h.t
	dir := h.d.teamPinDir(rt.Name)
	if t.dp == nil {
		dp, err := datapath.Open(dir)
		if err != nil {
			if _, serr := os.Stat(dir); serr == nil {
				obs.Datapaths[rt.Name] = reconcile.Datapath{} // half-built or of another layout
			}
			return obs, nil
		}
		t.dp = dp
		h.d.adoptLocked(t, obs.Links[rt.Name].Index)
	}
	cfg, err := t.dp.Config()
	if err != nil {
		obs.Datapaths[rt.Name] = reconcile.Datapath{}
		return obs, nil
	}
	attached, err := t.dp.Attached()
	if err != nil {
		return obs, err
	}
	obs.Datapaths[rt.Name] = reconcile.Datapath{Complete: true, TeamIndex: cfg.TeamIfindex, Attached: attached}
	return obs, nil
}

// adoptLocked takes over the state of a pinned datapath: its bucket table
// and the members attached to it, which resume rather than start over.
func (d *Daemon) adoptLocked(t *teamRT, nicIndex int) {
	table, err := t.dp.Buckets()
	if err != nil {
		return
	}
	t.index, t.table = nicIndex, team.Table(table)
	attached, _ := t.dp.Attached()
	for _, m := range t.rec.Spec.Members {
		if l, err := host.Get(m.Name); err == nil && slices.Contains(attached, l.Index) {
			d.refreshMemberLocked(t, m.Name, true)
		}
	}
	t.resumeLACP = holders(t)
}

func (h *hostDriver) Do(s reconcile.Step) error {
	d, t := h.d, h.t
	name := s.Team
	switch s.Kind {
	case reconcile.RemovePins:
		if t.dp != nil {
			t.dp.Close()
			t.dp = nil
		}
		return datapath.Remove(d.teamPinDir(name))
	case reconcile.CreateNIC:
		mac, err := net.ParseMAC(t.rec.MAC)
		if err != nil {
			return fmt.Errorf("bad MAC %q: %w", t.rec.MAC, err)
		}
		if err := host.CreateVethPair(name, t.rec.Peer, mac, t.rec.MTU, teamAlias); err != nil {
			return fmt.Errorf("create team NIC: %w", err)
		}
		if err := host.SetAlias(t.rec.Peer, peerAlias+" of "+name); err != nil {
			return err
		}
		d.restoreIPLocked(t)
		return nil
	case reconcile.CreateDatapath:
		nic, err := host.Get(name)
		if err != nil {
			return err
		}
		dp, err := datapath.Create(d.teamPinDir(name), datapath.Config{
			TeamIfindex: nic.Index,
			TeamMAC:     mustMAC(t.rec.MAC),
			Hash:        hashOf(t.rec.Spec.Algorithm),
		})
		if err != nil {
			return err
		}
		t.dp, t.index, t.table, h.built = dp, nic.Index, team.Table{}, true
		// A new datapath has no member attached.
		clear(t.ifindex)
		clear(t.flags)
		return nil
	case reconcile.Capture:
		return d.captureLocked(t, s.Member)
	case reconcile.Join:
		return d.attachLocked(t, s.Member)
	case reconcile.Detach:
		for m, idx := range t.ifindex {
			if idx == s.Index {
				d.forgetMemberLocked(t, m)
			}
		}
		return t.dp.DetachMember(s.Index)
	case reconcile.Restore:
		d.restoreMember(t, s.Member)
		return d.persistLocked()
	case reconcile.DeleteNIC:
		if err := host.Delete(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	case reconcile.Forget:
		if t.dp != nil {
			t.dp.Close()
			t.dp = nil
		}
		// Leave no empty directories on the bpffs: they fail only while
		// another team (or another namespace's daemon) still has pins there.
		os.Remove(d.pinDir)
		os.Remove(filepath.Dir(d.pinDir))
		if d.teams[name] != t {
			return nil // an orphan: it was never in the intent
		}
		delete(d.teams, name)
		d.order = slices.DeleteFunc(d.order, func(n string) bool { return n == name })
		return d.persistLocked()
	}
	return fmt.Errorf("unknown step %v", s)
}

// captureLocked saves a member's settings into the intent, and the intent
// to disk, before anything of the member changes.
func (d *Daemon) captureLocked(t *teamRT, name string) error {
	l, err := host.Get(name)
	if err != nil {
		return err
	}
	if t.rec.Saved == nil {
		t.rec.Saved = map[string]saved{}
	}
	t.rec.Saved[name] = saved{Up: l.AdminUp, Promisc: l.Promisc, MTU: l.MTU}
	if err := d.persistLocked(); err != nil {
		delete(t.rec.Saved, name)
		return err
	}
	return nil
}

// captureAll records the settings of the named interfaces that are
// present, so that a change writes them with its intent in one save.
func captureAll(rec *record, names []string) {
	for _, n := range names {
		if _, ok := rec.Saved[n]; ok {
			continue
		}
		if l, err := host.Get(n); err == nil {
			if rec.Saved == nil {
				rec.Saved = map[string]saved{}
			}
			rec.Saved[n] = saved{Up: l.AdminUp, Promisc: l.Promisc, MTU: l.MTU}
		}
	}
}
