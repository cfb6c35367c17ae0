package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/nicteam/nicteam/internal/announce"
	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/datapath"
	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/team"
)

// planMACLocked applies the MAC rules to e. When they say follow, the team
// NIC takes the new primary's MAC here, before the datapath is told.
func (d *Daemon) planMACLocked(t *teamRT, e team.Evaluation) team.MACPlan {
	owner := ""
	for _, m := range t.rec.Spec.Members {
		if mac, ok := t.macs[m.Name]; ok && mac.String() == t.rec.MAC {
			owner = m.Name
			break
		}
	}
	plan := team.PlanMAC(team.MACInput{
		Mode:       t.rec.Spec.Mode,
		Policy:     t.rec.Spec.MACPolicy,
		Owner:      owner,
		Primary:    t.rec.Primary,
		Carriers:   e.Carriers,
		NoLearning: t.rec.NoLearning,
	})
	if plan.Follow {
		if err := d.setTeamMACLocked(t, t.macs[plan.Primary], "follows "+plan.Primary); err != nil {
			// The team keeps its MAC: as under keep, the new primary
			// must then take it in.
			d.log.Error("follow primary MAC", "team", t.rec.Spec.Name, "err", err)
			plan.Follow = false
			plan.Promisc[plan.Primary] = true
		}
	}
	return plan
}

// setTeamMACLocked gives the team NIC a new MAC.
func (d *Daemon) setTeamMACLocked(t *teamRT, mac net.HardwareAddr, why string) error {
	if mac == nil || mac.String() == t.rec.MAC {
		return nil
	}
	if err := host.SetMAC(t.rec.Spec.Name, mac); err != nil {
		return err
	}
	d.events.add(t.rec.Spec.Name, api.EventMACChanged, "", fmt.Sprintf("%s -> %s (%s)", formatMAC(mustMAC(t.rec.MAC)), formatMAC(mac), why))
	t.rec.MAC = mac.String()
	return nil
}

// applyMACPlanLocked sets each member's source-MAC rule and promiscuity,
// records the primary and, when it moved, tells the peers.
func (d *Daemon) applyMACPlanLocked(t *teamRT, plan team.MACPlan, carriersChanged bool) {
	name := t.rec.Spec.Name
	for _, m := range t.rec.Spec.Members {
		idx, ok := t.ifindex[m.Name]
		if !ok {
			continue
		}
		var flags datapath.MemberFlags
		if plan.OwnMAC[m.Name] {
			flags |= datapath.MemberTxOwnMAC
		}
		if t.rxDisabledLocked(m.Name) {
			flags |= datapath.MemberRxDisabled
		}
		// Every recompute passes here: write (two map syscalls) only
		// what changed.
		if cur, ok := t.flags[m.Name]; ok && cur == flags {
			continue
		}
		if err := t.dp.SetMemberFlags(idx, flags); err != nil {
			d.log.Warn("set member flags", "team", name, "member", m.Name, "err", err)
			continue
		}
		t.flags[m.Name] = flags
	}
	for _, m := range t.rec.Spec.Members {
		if _, ok := t.ifindex[m.Name]; !ok {
			continue
		}
		want := plan.Promisc[m.Name] || t.rec.Saved[m.Name].Promisc
		if want != t.promisc[m.Name] {
			if err := host.SetPromisc(m.Name, want); err != nil {
				d.log.Warn("set promisc", "team", name, "member", m.Name, "err", err)
				continue
			}
			t.promisc[m.Name] = want
		}
	}
	// After promiscuity: a temporary primary must accept the team MAC
	// before the probe's answers come back to it.
	switch {
	case plan.Primary == "":
	case plan.Announce:
		d.notifyLocked(t, plan.Primary, plan.Verify)
	case carriersChanged && t.ports == nil:
		// The primary stayed, but endpoints behind the team whose frames
		// left by a member that came or went now leave elsewhere.
		d.notifyEndpointsLocked(t, plan.Primary)
	}
	if plan.Primary != t.rec.Primary {
		d.events.add(name, api.EventPrimaryMoved, plan.Primary, fmt.Sprintf("%s -> %s", orNone(t.rec.Primary), orNone(plan.Primary)))
		t.rec.Primary = plan.Primary
		d.persistSoonLocked()
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// notifyLocked starts telling peers that the team MAC is now behind
// primary, cancelling any announcement still running for an older primary.
// With verify (auto policy), it first checks that a neighbour reaches the
// team MAC through the new primary, and makes the team follow if none does.
func (d *Daemon) notifyLocked(t *teamRT, primary string, verify bool) {
	what := notifyAll
	if t.ports != nil {
		what = notifyAddrs
	}
	job := t.job(primary, what)
	job.verify = verify
	d.startNotifyLocked(&t.stopNotify, job)
}

// notifyEndpointsLocked announces only the endpoints behind the team, from
// the primary, in a job of its own: it must not cancel a running
// announcement (or auto check) of the team's own MAC.
func (d *Daemon) notifyEndpointsLocked(t *teamRT, primary string) {
	d.startNotifyLocked(&t.stopEndpoints, t.job(primary, notifyEndpoints))
}

// job is an announcement of what from member, with the team's settings.
func (t *teamRT) job(member string, what notifyWhat) notifyJob {
	return notifyJob{
		team: t.rec.Spec.Name, member: member, ifindex: t.ifindex[member], mac: mustMAC(t.rec.MAC),
		cfg: t.rec.Spec.Notify.WithDefaults(), what: what,
	}
}

// startNotifyLocked starts j after cancelling the job *stop cancels, and
// leaves j's cancel there: a newer announcement of a kind replaces an
// older one, which must not contradict it.
func (d *Daemon) startNotifyLocked(stop *context.CancelFunc, j notifyJob) {
	if *stop != nil {
		(*stop)()
	}
	ctx, cancel := context.WithCancel(context.Background())
	*stop = cancel
	go d.notify(ctx, j)
}

// notifyWhat is what a notify job announces.
type notifyWhat int

const (
	notifyAll       notifyWhat = iota // the team's addresses and the endpoints behind it
	notifyAddrs                       // the team's addresses: its ports are announced apart
	notifyEndpoints                   // the endpoints only: the team MAC did not move
	notifyPorts                       // notifyJob.ports, which moved to the job's member
)

type notifyJob struct {
	team    string
	member  string
	ifindex int
	mac     net.HardwareAddr
	cfg     team.Notify
	verify  bool
	what    notifyWhat
	ports   []net.HardwareAddr
}

func (d *Daemon) notify(ctx context.Context, j notifyJob) {
	a := announce.Announcement{MAC: j.mac, Endpoints: j.ports}
	if j.what != notifyPorts {
		a = d.announcement(j.team, j.mac, j.what)
	}
	if j.what == notifyEndpoints && len(a.Endpoints) == 0 {
		return
	}
	for i := 0; i < j.cfg.Count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(j.cfg.Interval):
			}
		}
		if err := announce.Send(j.ifindex, a); err != nil {
			d.log.Warn("announce", "team", j.team, "member", j.member, "err", err)
			return
		}
		if i == 0 {
			d.events.add(j.team, api.EventAnnounced, j.member, fmt.Sprintf("%s for %d addresses, %d endpoints (×%d every %s)",
				formatMAC(j.mac), len(a.Addrs), len(a.Endpoints), j.cfg.Count, j.cfg.Interval))
			if j.verify && !d.verified(ctx, j, a.Addrs) {
				return // the team follows; a new announcement has started
			}
		}
	}
}

// announcement gathers what peers must relearn, as what asks: the
// addresses on the team NIC and on what is stacked on it, and the endpoints
// behind its bridge.
func (d *Daemon) announcement(teamName string, mac net.HardwareAddr, what notifyWhat) announce.Announcement {
	addrs, endpoints := what != notifyEndpoints, what != notifyAddrs
	a := announce.Announcement{MAC: mac}
	if addrs {
		a.Addrs, _ = host.Addrs(teamName)
	}
	nic, err := host.Get(teamName)
	if err != nil {
		return a
	}
	stacked, _ := host.Stacked(nic.Index)
	for _, s := range stacked {
		if addrs {
			more, _ := host.Addrs(s.Name)
			a.Addrs = append(a.Addrs, more...)
		}
		if s.Kind == "bridge" && endpoints {
			a.Endpoints, _ = host.Endpoints(s.Index, nic.Index)
		}
	}
	return a
}

// verified probes the team's neighbours through the new primary with the
// team MAC as sender. An answer proves the fabric delivers the team MAC to
// that port; silence within the bound means it does not (a switch that
// does not learn), and the team follows the primary's own MAC.
func (d *Daemon) verified(ctx context.Context, j notifyJob, srcs []netip.Addr) bool {
	targets := probeable(j.team, srcs)
	var answered []netip.Addr
	if len(targets) > 0 {
		var err error
		answered, err = announce.Probe(ctx, j.ifindex, j.mac, srcs, targets, j.cfg.Verify)
		if err != nil {
			// A failed probe says nothing about the fabric: keep the MAC
			// rather than move the team on no evidence.
			if ctx.Err() == nil {
				d.log.Warn("verify team MAC", "team", j.team, "err", err)
			}
			return true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Checked under the lock, which every cancel holds: a newer
	// announcement or the daemon's shutdown may have come meanwhile.
	if ctx.Err() != nil {
		return true
	}
	t, ok := d.teams[j.team]
	if !ok || t.rec.Primary != j.member || t.rec.MAC != j.mac.String() {
		return true // things moved on meanwhile
	}
	if len(answered) > 0 {
		d.events.add(j.team, api.EventVerified, j.member, fmt.Sprintf("%d of %d neighbours answered through %s: keeping %s", len(answered), len(targets), j.member, formatMAC(j.mac)))
		return true
	}
	why := fmt.Sprintf("no neighbour answered within %s", j.cfg.Verify)
	if len(targets) == 0 {
		why = "no neighbour to verify with"
	}
	d.events.add(j.team, api.EventVerified, j.member, why+": following "+j.member+"'s MAC")
	t.rec.NoLearning = len(targets) > 0
	d.followLocked(t)
	return false
}

// probeable returns the team's neighbours of the address families the
// team has a source address for (a probe needs one to ask from).
func probeable(teamName string, srcs []netip.Addr) []netip.Addr {
	var has4, has6 bool
	for _, a := range srcs {
		has4 = has4 || a.Is4()
		has6 = has6 || a.Is6()
	}
	ns, _ := host.Neighbors(teamName)
	var out []netip.Addr
	for _, n := range ns {
		if (n.Is4() && has4) || (n.Is6() && has6) {
			out = append(out, n)
		}
	}
	return out
}

// followLocked makes the team take its primary's MAC now.
func (d *Daemon) followLocked(t *teamRT) {
	if err := d.setTeamMACLocked(t, t.macs[t.rec.Primary], "follows "+t.rec.Primary); err != nil {
		d.log.Error("follow primary MAC", "team", t.rec.Spec.Name, "err", err)
		return
	}
	d.persistSoonLocked()
	// The primary now owns the team MAC: recomputing only updates the
	// datapath's team MAC; the peers hear of the new MAC at once.
	d.recomputeLocked(t)
	d.notifyLocked(t, t.rec.Primary, false)
}
