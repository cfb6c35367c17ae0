// Package balance is the load-based half of the Dynamic and HyperVPort
// algorithms: a Rebalancer that moves buckets between members by their
// measured load, and an Affinity that pins each source MAC behind the team
// to one member. It is pure: time and counters come in as arguments, so it
// is tested with an injected clock and synthetic loads.
package balance

import (
	"math"
	"slices"
	"time"

	"github.com/nicteam/nicteam/internal/team"
)

// Defaults of the Rebalancer's knobs.
const (
	// DefaultInterval is how often the daemon should call Rebalance. Far
	// shorter than teamd's 5 s or OVS's 10 s: with flowlets a moved bucket
	// moves its flows only when they pause, so a move reorders nothing.
	DefaultInterval = 250 * time.Millisecond
	// DefaultTolerance: a member within 10% of its share is balanced.
	DefaultTolerance = 0.10
	// DefaultMinGain: a move must cut the total deviation from the shares
	// by 0.5% of the team's load, so that noise does not move buckets; a
	// bucket of an evenly loaded table (1/256 of the load) still moves.
	DefaultMinGain = 0.005
	// DefaultSmoothing is the weight of the newest interval in the
	// exponentially weighted average of each bucket's rate, so a single
	// noisy interval does not move buckets that the next would move back.
	DefaultSmoothing = 0.5
	// DefaultMaxMoves caps the buckets moved per interval.
	DefaultMaxMoves = 32
	// DefaultHold keeps a moved bucket where it was put for a while: its
	// flows follow it only at their next pause, so for a moment its load
	// is still on the old member.
	DefaultHold = time.Second
)

// Rebalancer moves buckets between members so that each member's measured
// load is close to its weighted share. The zero value uses the defaults. It
// is not safe for concurrent use.
type Rebalancer struct {
	Tolerance float64       // 0: DefaultTolerance
	MinGain   float64       // 0: DefaultMinGain
	Smoothing float64       // in (0, 1]; 0: DefaultSmoothing
	MaxMoves  int           // 0: DefaultMaxMoves
	Hold      time.Duration // 0: DefaultHold; negative: no hold

	have   bool // prev and prevAt hold a reading
	prevAt time.Time
	prev   [team.NumBuckets]uint64
	// rate is each bucket's smoothed rate in bytes/s, valid once haveRate.
	rate     [team.NumBuckets]float64
	haveRate bool
	moved    [team.NumBuckets]time.Time // when each bucket last moved
}

// Rebalance takes the cumulative byte counters of every bucket as read from
// the datapath at now (the Bytes of datapath.Team.BucketStats), the current
// table and the members carrying traffic with their weights (link speeds),
// and returns the table to install. Each bucket's rate over the interval
// since the previous call, averaged with those before (Smoothing), decides.
// If the carriers differ from the members the table names, team.Assign
// redistributes the buckets first. The first call and a call after the
// counters went backwards (a new datapath) only record the counters; the
// interval after them is taken as it is.
func (r *Rebalancer) Rebalance(now time.Time, counters [team.NumBuckets]uint64, cur team.Table, carriers []team.Weighted) team.Table {
	table := Place(cur, carriers)
	valid := r.have && now.After(r.prevAt)
	for i, b := range counters {
		if b < r.prev[i] {
			valid = false
		}
	}
	if !valid {
		r.have, r.prevAt, r.prev, r.haveRate = true, now, counters, false
		return table
	}
	alpha := orDefault(r.Smoothing, DefaultSmoothing)
	secs := now.Sub(r.prevAt).Seconds()
	var total float64
	for i, b := range counters {
		rate := float64(b-r.prev[i]) / secs
		if r.haveRate {
			rate = alpha*rate + (1-alpha)*r.rate[i]
		}
		r.rate[i] = rate
		total += rate
	}
	r.have, r.prevAt, r.prev, r.haveRate = true, now, counters, true
	if total == 0 || len(carriers) < 2 {
		return table
	}
	r.balance(now, &table, &r.rate, total, carriers)
	return table
}

// balance moves loaded buckets, one at a time, to the member furthest
// below its share from a member above its share, each time the bucket that
// brings the two closest to their shares. It stops when every member is
// balanced, when no move gains enough, or at the move cap.
func (r *Rebalancer) balance(now time.Time, table *team.Table, load *[team.NumBuckets]float64, total float64, carriers []team.Weighted) {
	tol := orDefault(r.Tolerance, DefaultTolerance)
	minGain := orDefault(r.MinGain, DefaultMinGain) * total
	maxMoves := r.MaxMoves
	if maxMoves == 0 {
		maxMoves = DefaultMaxMoves
	}
	hold := r.Hold
	if hold == 0 {
		hold = DefaultHold
	}

	idx := make(map[uint32]int, len(carriers))
	for i, c := range carriers {
		idx[c.ID] = i
	}
	share := make([]float64, len(carriers))
	for i, w := range weights(carriers) {
		share[i] = total * w
	}
	have := make([]float64, len(carriers))
	buckets := make([]int, len(carriers))
	for b, id := range table {
		have[idx[id]] += load[b]
		buckets[idx[id]]++
	}

	// A member is off balance when it is off its share by more than
	// tolerance, relative to the share, and by more than a worthwhile move,
	// relative to the team: a slow member's few buckets must not keep the
	// others busy. Hysteresis: once one is, buckets move until every member
	// is within half the tolerance, so the next interval's noise does not
	// start it again at once.
	dev := func(i int) float64 { return (have[i] - share[i]) / share[i] }
	offBalance := func(tol float64) bool {
		for i := range carriers {
			if math.Abs(have[i]-share[i]) > minGain && math.Abs(dev(i)) > tol {
				return true
			}
		}
		return false
	}
	for moves := 0; moves < maxMoves; moves++ {
		if !offBalance(tol) {
			return
		}
		if moves == 0 {
			tol /= 2
		}
		// The bucket goes to the member furthest below its share, from
		// whichever member above its share has the bucket that gains
		// most, not only from the one furthest above: a member held to a
		// rate (a saturated link) shows its rate, not its demand, so one
		// full with two flows looks no busier than one full with a single
		// flow, and moving that single flow only moves the hole.
		under := 0
		for i := range carriers {
			if dev(i) < dev(under) {
				under = i
			}
		}
		b := have[under] - share[under]
		best, over, bestGain := -1, -1, minGain
		for k, id := range table {
			i := idx[id]
			if have[i] <= share[i] || load[k] == 0 || (hold > 0 && now.Sub(r.moved[k]) < hold) {
				continue
			}
			a := have[i] - share[i]
			gain := math.Abs(a) + math.Abs(b) - math.Abs(a-load[k]) - math.Abs(b+load[k])
			if gain > bestGain {
				best, over, bestGain = k, i, gain
			}
		}
		if best < 0 {
			return
		}
		// A member keeps at least one bucket: the datapath lets flowlets
		// stay only on members the table names, so taking a member's last
		// bucket would move its flows at once. It gets the receiving
		// member's least loaded bucket in exchange, if that is next to
		// idle (smoothed rates of past load decay but never reach 0).
		if buckets[over] == 1 {
			idle := -1
			for k, id := range table {
				if id == carriers[under].ID && (idle < 0 || load[k] < load[idle]) {
					idle = k
				}
			}
			if idle < 0 || load[idle] >= minGain {
				return
			}
			table[idle] = carriers[over].ID
			r.moved[idle] = now
			buckets[over]++
			buckets[under]--
		}
		table[best] = carriers[under].ID
		r.moved[best] = now
		have[over] -= load[best]
		have[under] += load[best]
		buckets[over]--
		buckets[under]++
	}
}

// Place returns the table to use for carriers when load decides
// placement: cur while it names exactly the carriers (whatever share of
// buckets each holds), otherwise team.Assign's redistribution of it.
func Place(cur team.Table, carriers []team.Weighted) team.Table {
	if sameMembers(cur, carriers) {
		return cur
	}
	return team.Assign(cur, carriers)
}

// sameMembers reports whether table names exactly the carriers.
func sameMembers(table team.Table, carriers []team.Weighted) bool {
	named := map[uint32]bool{}
	for _, id := range table {
		named[id] = true
	}
	if len(named) != len(carriers) {
		return false
	}
	for _, c := range carriers {
		if !named[c.ID] {
			return false
		}
	}
	return true
}

// weights returns each member's fraction of the team, by weight; equal
// fractions if any weight is unknown (0), as team.Assign does.
func weights(members []team.Weighted) []float64 {
	out := make([]float64, len(members))
	var total float64
	for _, m := range members {
		total += float64(m.Weight)
	}
	equal := slices.ContainsFunc(members, func(m team.Weighted) bool { return m.Weight == 0 })
	for i, m := range members {
		if equal {
			out[i] = 1 / float64(len(members))
		} else {
			out[i] = float64(m.Weight) / total
		}
	}
	return out
}

func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}
