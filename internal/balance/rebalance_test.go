package balance

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/team"
)

const (
	memA, memB, memC, memD = 11, 12, 13, 14
	gbit                   = 1_000_000_000
)

// sim drives a Rebalancer with an injected clock and synthetic loads: every
// step adds a bucket's bytes per interval to its cumulative counter, as the
// datapath would.
type sim struct {
	t        *testing.T
	r        *Rebalancer
	now      time.Time
	counters [team.NumBuckets]uint64
	table    team.Table
	carriers []team.Weighted
}

func newSim(t *testing.T, r *Rebalancer, carriers []team.Weighted, table team.Table) *sim {
	s := &sim{t: t, r: r, now: time.Unix(1_700_000_000, 0), table: table, carriers: carriers}
	s.table = r.Rebalance(s.now, s.counters, s.table, carriers) // the baseline
	return s
}

// step advances the clock by one interval in which each bucket carried
// load[b] bytes, rebalances and returns how many buckets moved.
func (s *sim) step(load map[int]uint64) int {
	s.now = s.now.Add(DefaultInterval)
	for b, n := range load {
		s.counters[b] += n
	}
	next := s.r.Rebalance(s.now, s.counters, s.table, s.carriers)
	moved := team.Moved(s.table, next)
	s.table = next
	return moved
}

// memberLoad sums load per member of the current table.
func (s *sim) memberLoad(load map[int]uint64) map[uint32]uint64 {
	out := map[uint32]uint64{}
	for b, n := range load {
		out[s.table[b]] += n
	}
	return out
}

func equal(ids ...uint32) []team.Weighted {
	var out []team.Weighted
	for _, id := range ids {
		out = append(out, team.Weighted{ID: id, Weight: 10 * gbit})
	}
	return out
}

// TestElephantAndMice: one elephant bucket and twenty mice, hashed half onto
// each member. After one interval the elephant is alone on its member and
// the mice are on the other.
func TestElephantAndMice(t *testing.T) {
	carriers := equal(memA, memB)
	s := newSim(t, &Rebalancer{}, carriers, team.Assign(team.Table{}, carriers))
	elephant := 0
	load := map[int]uint64{elephant: 100 << 20}
	for b := 1; b <= 20; b++ {
		load[b] = 1 << 20
	}
	s.step(load)
	home := s.table[elephant]
	for b := range load {
		if b != elephant && s.table[b] == home {
			t.Errorf("mouse bucket %d shares member %d with the elephant", b, home)
		}
	}
	// Steady load: nothing moves any more.
	for i := range 20 {
		if moved := s.step(load); moved != 0 {
			t.Fatalf("interval %d: %d buckets moved under steady load", i+2, moved)
		}
	}
}

// TestNewElephant: an elephant that starts in steady state, beside mice,
// is alone on its member within two intervals, smoothing notwithstanding.
func TestNewElephant(t *testing.T) {
	carriers := equal(memA, memB)
	s := newSim(t, &Rebalancer{}, carriers, team.Assign(team.Table{}, carriers))
	load := map[int]uint64{}
	for b := 1; b <= 20; b++ {
		load[b] = 1 << 20
	}
	for i := range 5 {
		if moved := s.step(load); moved != 0 {
			t.Fatalf("interval %d: %d buckets moved with evenly spread mice", i+1, moved)
		}
	}
	load[0] = 100 << 20
	for i := range 2 {
		s.step(load)
		t.Logf("interval %d after the elephant came: %v", i+1, s.memberLoad(load))
	}
	for b := range load {
		if b != 0 && s.table[b] == s.table[0] {
			t.Errorf("mouse bucket %d still shares member %d with the elephant", b, s.table[0])
		}
	}
}

// TestSpreadElephants: four elephants hashed onto one of four members end
// up one per member.
func TestSpreadElephants(t *testing.T) {
	carriers := equal(memA, memB, memC, memD)
	table := team.Assign(team.Table{}, carriers)
	load := map[int]uint64{}
	for b := range team.NumBuckets {
		if table[b] == memA && len(load) < 4 {
			load[b] = 50 << 20
		}
	}
	s := newSim(t, &Rebalancer{}, carriers, table)
	s.step(load)
	got := s.memberLoad(load)
	for _, c := range carriers {
		if got[c.ID] != 50<<20 {
			t.Errorf("member %d carries %d bytes, want one elephant (%d): %v", c.ID, got[c.ID], 50<<20, got)
		}
	}
}

// TestWeightedShares: a 10G and a 1G member under many equal flows get load
// in proportion to their speeds, starting from an equal split.
func TestWeightedShares(t *testing.T) {
	carriers := []team.Weighted{{ID: memA, Weight: 10 * gbit}, {ID: memB, Weight: 1 * gbit}}
	s := newSim(t, &Rebalancer{}, carriers, team.Assign(team.Table{}, equal(memA, memB)))
	load := map[int]uint64{}
	for b := range 110 {
		load[b] = 1 << 20
	}
	intervals := 0
	for ; intervals < 10 && s.step(load) > 0; intervals++ {
	}
	got := s.memberLoad(load)
	ratio := float64(got[memA]) / float64(got[memB])
	t.Logf("after %d intervals: %d MiB on 10G, %d MiB on 1G (%.1f:1)", intervals, got[memA]>>20, got[memB]>>20, ratio)
	if ratio < 8 || ratio > 12.5 {
		t.Errorf("load ratio %.1f:1, want about 10:1", ratio)
	}
	if intervals > 3 {
		t.Errorf("took %d intervals to settle, want ≤ 3 (%d moves each)", intervals, DefaultMaxMoves)
	}
}

// TestNoOscillation: random heavy-tailed per-bucket loads with ±5% noise,
// on two, four and three unequal members, starting from a table split by
// bucket count, for many random load patterns. Buckets move in at most a
// few intervals (a member left near the edge of the tolerance by the first
// can cross it on noise later, once), and no bucket ever moves back.
func TestNoOscillation(t *testing.T) {
	for _, carriers := range [][]team.Weighted{equal(memA, memB), equal(memA, memB, memC, memD),
		{{ID: memA, Weight: 25 * gbit}, {ID: memB, Weight: 10 * gbit}, {ID: memC, Weight: 1 * gbit}}} {
		var ids []uint32
		for _, c := range carriers {
			ids = append(ids, c.ID)
		}
		moves, worst := 0, 0
		for seed := range uint64(50) {
			rng := rand.New(rand.NewPCG(seed, uint64(len(carriers))))
			var base [team.NumBuckets]uint64
			for b := range base {
				if rng.IntN(3) == 0 {
					// Heavy-tailed: a few big buckets among many small.
					base[b] = uint64(math.Exp(rng.Float64()*6)) << 14
				}
			}
			s := newSim(t, &Rebalancer{}, carriers, team.Assign(team.Table{}, equal(ids...)))
			var left [team.NumBuckets]map[uint32]bool // members each bucket moved away from
			busy := 0
			for range 100 {
				load := map[int]uint64{}
				for b, n := range base {
					load[b] = uint64(float64(n) * (0.95 + 0.1*rng.Float64()))
				}
				before := s.table
				moved := s.step(load)
				if moved == 0 {
					continue
				}
				moves += moved
				busy++
				for b := range before {
					if before[b] == s.table[b] {
						continue
					}
					if left[b][s.table[b]] {
						t.Errorf("%d members, seed %d: bucket %d moved back to %d", len(carriers), seed, b, s.table[b])
					}
					if left[b] == nil {
						left[b] = map[uint32]bool{}
					}
					left[b][before[b]] = true
				}
			}
			if busy > 3 {
				t.Errorf("%d members, seed %d: buckets moved in %d intervals of steady load", len(carriers), seed, busy)
			}
			worst = max(worst, busy)
		}
		t.Logf("%d members, 50 load patterns: %d buckets moved in all, in at most %d intervals of 100", len(carriers), moves, worst)
	}
}

// TestCounterReset: counters that go backwards (a new datapath) start a new
// baseline instead of reading as a huge load.
func TestCounterReset(t *testing.T) {
	carriers := equal(memA, memB)
	s := newSim(t, &Rebalancer{}, carriers, team.Assign(team.Table{}, carriers))
	s.step(map[int]uint64{0: 1 << 30, 2: 1 << 30}) // both on memA: one moves
	before := s.table
	s.counters = [team.NumBuckets]uint64{}
	s.counters[4] = 1 << 20 // a fresh datapath, with a little load on memA
	if moved := s.step(map[int]uint64{6: 1 << 30}); moved != 0 {
		t.Errorf("%d buckets moved on the interval the counters were reset", moved)
	}
	if s.table != before {
		t.Error("table changed on a counter reset")
	}
	if moved := s.step(map[int]uint64{4: 1 << 30, 6: 1 << 30}); moved != 1 {
		t.Errorf("%d buckets moved in the interval after the reset, want 1", moved)
	}
}

// TestNoLoad: an idle team keeps its table.
func TestNoLoad(t *testing.T) {
	carriers := equal(memA, memB)
	table := team.Assign(team.Table{}, carriers)
	table[0], table[1] = memB, memA // not what Assign would choose
	s := newSim(t, &Rebalancer{}, carriers, table)
	for range 5 {
		if moved := s.step(nil); moved != 0 {
			t.Fatalf("%d buckets moved without load", moved)
		}
	}
}

// TestMembersChange: a member that leaves loses its buckets through
// team.Assign before any load decides, and only its buckets move.
func TestMembersChange(t *testing.T) {
	carriers := equal(memA, memB, memC)
	s := newSim(t, &Rebalancer{}, carriers, team.Assign(team.Table{}, carriers))
	before := s.table
	s.carriers = equal(memA, memB)
	moved := s.step(nil)
	for b, id := range s.table {
		if id == memC {
			t.Fatalf("bucket %d still on member %d, which left", b, memC)
		}
		if before[b] != memC && id != before[b] {
			t.Errorf("bucket %d moved from %d, which stayed, to %d", b, before[b], id)
		}
	}
	if want := team.Moved(before, team.Assign(before, s.carriers)); moved != want {
		t.Errorf("%d buckets moved, want %d", moved, want)
	}
	// A single carrier gets everything and nothing is balanced.
	s.carriers = equal(memB)
	s.step(map[int]uint64{0: 1 << 30})
	for b, id := range s.table {
		if id != memB {
			t.Fatalf("bucket %d on %d, want the only carrier %d", b, id, memB)
		}
	}
}

// TestHold: a bucket just moved is not moved again within Hold, even when
// moving it would balance best; another bucket goes instead.
func TestHold(t *testing.T) {
	carriers := equal(memA, memB)
	var table team.Table
	for b := range table {
		table[b] = memB
	}
	table[0], table[2] = memA, memA
	s := newSim(t, &Rebalancer{}, carriers, table)
	s.step(map[int]uint64{0: 1 << 30, 2: 1 << 30}) // memA carries both
	moved := 0
	if s.table[2] == memB {
		moved = 2
	}
	if s.table[0] == memA && s.table[2] == memA || s.table[0] == memB && s.table[2] == memB {
		t.Fatalf("table after the first interval: buckets 0, 2 on %d, %d; want them split", s.table[0], s.table[2])
	}
	// Now the moved bucket and bucket 1 (memB) carry: memB is over, and
	// the moved bucket must stay where it was just put.
	s.step(map[int]uint64{moved: 1 << 30, 1: 1 << 30})
	if s.table[moved] != memB || s.table[1] != memA {
		t.Errorf("within Hold: bucket %d on %d, bucket 1 on %d; want %d, %d", moved, s.table[moved], s.table[1], memB, memA)
	}
}

// TestLastBucket: a member whose only bucket should move gets an idle
// bucket in exchange, so it stays in the table (and its flowlets stay).
func TestLastBucket(t *testing.T) {
	carriers := []team.Weighted{{ID: memA, Weight: 1 * gbit}, {ID: memB, Weight: 10 * gbit}}
	var table team.Table
	for b := range table {
		table[b] = memB
	}
	table[0] = memA
	s := newSim(t, &Rebalancer{}, carriers, table)
	s.step(map[int]uint64{0: 1 << 30})
	n := 0
	for _, id := range s.table {
		if id == memA {
			n++
		}
	}
	if s.table[0] != memB || n != 1 {
		t.Errorf("bucket 0 on %d, %d buckets on the 1G member; want bucket 0 on the 10G member and one idle bucket left", s.table[0], n)
	}
}

// TestSaturatedMembers: members held to a rate, as by a token bucket. Two
// flows share member A at half its rate each, C and D carry one flow each
// at the full rate (C a little more, by noise), B idles. A saturated
// member's load does not show its demand: A looks no busier than C, yet
// moving C's single flow would only move the idle member's hole, while
// moving one of A's flows fills B. The move must come from A even though C
// is the furthest above its share.
func TestSaturatedMembers(t *testing.T) {
	carriers := equal(memA, memB, memC, memD)
	table := team.Assign(team.Table{}, carriers)
	on := map[uint32][]int{}
	for b, id := range table {
		on[id] = append(on[id], b)
	}
	const rate = 25 << 20 // bytes per interval at a member's full rate
	load := map[int]uint64{
		on[memA][0]: rate / 2, on[memA][1]: rate / 2,
		on[memC][0]: rate + rate/50,
		on[memD][0]: rate,
	}
	s := newSim(t, &Rebalancer{}, carriers, table)
	s.step(load)
	got := s.memberLoad(load)
	if got[memA] != rate/2 || got[memB] != rate/2 {
		t.Errorf("member loads %v: want one of A's flows moved to B", got)
	}
}
