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
	switch {
	case s.Algorithm != team.Dynamic:
		return 0
	case s.Dynamic.FlowletGap > 0:
		return s.Dynamic.FlowletGap
	}
	return datapath.DefaultFlowlet
}

// intervalOf is how often a Dynamic team is rebalanced.
func intervalOf(s *team.Spec) time.Duration {
	if s.Dynamic.Interval > 0 {
		return s.Dynamic.Interval
	}
	return balance.DefaultInterval
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

// rebalancer moves Dynamic teams' buckets by load, each team at its own
// interval. It wakes when the next team is due, and at least every
// default interval, so a new team or a shorter interval starts soon.
func (d *Daemon) rebalancer(ctx context.Context) {
	timer := time.NewTimer(balance.DefaultInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-timer.C:
			timer.Reset(d.rebalanceAll(now))
		}
	}
}

// rebalanceAll reads the bucket counters of each Dynamic team that is due
// without the lock (a few hundred map reads must not delay a failover) and
// applies the rebalancer's table under it, if the team is still the same.
// It returns how long until the next team is due.
func (d *Daemon) rebalanceAll(now time.Time) time.Duration {
	type job struct {
		name string
		dp   *datapath.Team
	}
	var jobs []job
	wait := balance.DefaultInterval
	d.mu.Lock()
	for _, name := range d.order {
		t := d.teams[name]
		if t.dp == nil || t.rec.Spec.Algorithm != team.Dynamic || len(t.eval.Carriers) < 2 {
			t.balancer = nil // starts afresh when it applies again
			continue
		}
		if t.balancer != nil && now.Before(t.nextRebalance) {
			wait = min(wait, t.nextRebalance.Sub(now))
			continue
		}
		t.nextRebalance = now.Add(intervalOf(&t.rec.Spec))
		wait = min(wait, intervalOf(&t.rec.Spec))
		jobs = append(jobs, job{name, t.dp})
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
	return wait
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
	d.writeFallbacksLocked(t)
	d.events.add(t.rec.Spec.Name, api.EventBucketsMoved, "", fmt.Sprintf("rebalanced by load: %d of %d buckets moved; %s", moved, team.NumBuckets, d.shareLocked(t, next)))
}
