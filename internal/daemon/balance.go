package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/balance"
	"github.com/nicteam/nicteam/internal/datapath"
	"github.com/nicteam/nicteam/internal/team"
)

// Dynamic: the datapath keeps each flow on its member until the flow pauses
// for longer than the flowlet gap, so buckets can be moved by measured load
// every interval without reordering a flow.

// flowletOf is the datapath's flowlet gap for a spec: on for Dynamic only.
func flowletOf(s *team.Spec) time.Duration {
	if s.Algorithm == team.Dynamic {
		return datapath.DefaultFlowlet
	}
	return 0
}

// carrierWeightsLocked weighs each carrier by its link speed.
func carrierWeightsLocked(t *teamRT, carriers []string) []team.Weighted {
	w := make([]team.Weighted, 0, len(carriers))
	for _, c := range carriers {
		w = append(w, team.Weighted{ID: uint32(t.ifindex[c]), Weight: t.links[c].Speed})
	}
	return w
}

// placeLocked returns the table for the carriers. Under Dynamic, load
// decides placement, so a table that still names exactly the carriers is
// kept as the rebalancer left it; otherwise buckets are shared by weight.
func placeLocked(t *teamRT, weights []team.Weighted) team.Table {
	if t.rec.Spec.Algorithm == team.Dynamic {
		return balance.Place(t.table, weights)
	}
	return team.Assign(t.table, weights)
}

// rebalancer moves Dynamic teams' buckets by load every interval.
func (d *Daemon) rebalancer(ctx context.Context) {
	tick := time.NewTicker(balance.DefaultInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			d.rebalanceAll(now)
		}
	}
}

// rebalanceAll reads each Dynamic team's bucket counters without the
// lock (a few hundred map reads must not delay a failover) and applies
// the rebalancer's table under it, if the team is still the same.
func (d *Daemon) rebalanceAll(now time.Time) {
	type job struct {
		name string
		dp   *datapath.Team
	}
	var jobs []job
	d.mu.Lock()
	for _, name := range d.order {
		t := d.teams[name]
		if t.dp != nil && t.rec.Spec.Algorithm == team.Dynamic && len(t.eval.Carriers) > 1 {
			jobs = append(jobs, job{name, t.dp})
		} else {
			t.balancer = nil // starts afresh when it applies again
		}
	}
	d.mu.Unlock()
	for _, j := range jobs {
		stats, err := j.dp.BucketStats()
		if err != nil {
			continue // the team went away meanwhile
		}
		var bytes [team.NumBuckets]uint64
		for i, s := range stats {
			bytes[i] = s.Bytes
		}
		d.mu.Lock()
		if t := d.teams[j.name]; t != nil && t.dp == j.dp {
			d.rebalanceLocked(t, now, bytes)
		}
		d.mu.Unlock()
	}
}

func (d *Daemon) rebalanceLocked(t *teamRT, now time.Time, bytes [team.NumBuckets]uint64) {
	if t.balancer == nil {
		t.balancer = &balance.Rebalancer{}
	}
	next := t.balancer.Rebalance(now, bytes, t.table, carrierWeightsLocked(t, t.eval.Carriers))
	moved := team.Moved(t.table, next)
	if moved == 0 {
		return
	}
	if err := t.dp.SetBuckets(next); err != nil {
		d.log.Error("write buckets", "team", t.rec.Spec.Name, "err", err)
		return
	}
	t.table = next
	d.events.add(t.rec.Spec.Name, api.EventBucketsMoved, "", fmt.Sprintf("rebalanced by load: %d of %d buckets moved; %s", moved, team.NumBuckets, d.shareLocked(t, next)))
}
