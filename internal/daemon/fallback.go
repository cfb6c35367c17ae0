package daemon

import (
	"maps"

	"github.com/nicteam/nicteam/internal/team"
)

// In-datapath failover: while a member has no carrier the egress program
// sends its frames through the member's fallback, before the daemon has
// heard of the loss. The fallback is what the daemon itself would do: the
// member that would take most of the failed one's buckets (a standby, if
// it would come in), so for two members the table the daemon writes next
// moves nothing more, and for more only the buckets given to others.
// Coming back to a member stays the daemon's decision (up-delay).

// fallbacksLocked predicts, for every attached member, the member its
// traffic would go to if it lost carrier now: for a carrier, the heir of
// its buckets in the table the daemon would write without it (the first
// carrier left when it holds none); 0 for the others, which carry nothing.
func (d *Daemon) fallbacksLocked(t *teamRT) map[int]int {
	out := make(map[int]int, len(t.ifindex))
	for _, idx := range t.ifindex {
		out[idx] = 0
	}
	states := d.lacpStatesLocked(t)
	for _, name := range t.eval.Carriers {
		idx, ok := t.ifindex[name]
		if !ok {
			continue
		}
		without := maps.Clone(states)
		st := without[name]
		st.Carrier = false
		without[name] = st
		e := team.Evaluate(&t.rec.Spec, without)
		if len(e.Carriers) == 0 {
			continue // the team would be down: nowhere to send
		}
		next := placeLocked(t, carrierWeightsLocked(t, e.Carriers))
		heir := int(team.Heir(t.table, next, uint32(idx)))
		if heir == 0 {
			heir = t.ifindex[e.Carriers[0]]
		}
		out[idx] = heir
	}
	return out
}

// writeFallbacksLocked writes the fallbacks to the datapath, after the
// bucket table (the write that moves traffic) and in one batch. A datapath
// without failover has no use for them.
func (d *Daemon) writeFallbacksLocked(t *teamRT) {
	if !t.dp.Failover() {
		return
	}
	if err := t.dp.SetFallbacks(d.fallbacksLocked(t)); err != nil {
		d.log.Error("write fallbacks", "team", t.rec.Spec.Name, "err", err)
	}
}
