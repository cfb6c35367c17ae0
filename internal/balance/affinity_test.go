package balance

import (
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/nicteam/nicteam/internal/team"
)

func mac(i int) MAC { return MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)} }

// pinned returns each MAC's member and the number of MACs per member.
func pinned(a *Affinity) (map[MAC]uint32, map[uint32]int) {
	of := maps.Clone(a.of)
	counts := map[uint32]int{}
	for _, id := range of {
		counts[id]++
	}
	return of, counts
}

// spread is the largest difference in MAC count between members.
func spread(counts map[uint32]int, members []team.Weighted) int {
	lo, hi := -1, 0
	for _, m := range members {
		n := counts[m.ID]
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return hi - lo
}

func TestAffinitySpread(t *testing.T) {
	for _, members := range [][]team.Weighted{equal(memA, memB), equal(memA, memB, memC, memD)} {
		a := NewAffinity()
		a.SetMembers(members)
		for i := range 101 {
			if id := a.Add(mac(i)); id == 0 {
				t.Fatalf("mac %d: no member", i)
			}
		}
		if _, counts := pinned(a); spread(counts, members) > 1 {
			t.Errorf("%d members: MACs per member %v, want within 1", len(members), counts)
		}
	}
}

func TestAffinityWeighted(t *testing.T) {
	members := []team.Weighted{{ID: memA, Weight: 10 * gbit}, {ID: memB, Weight: 1 * gbit}}
	a := NewAffinity()
	a.SetMembers(members)
	for i := range 110 {
		a.Add(mac(i))
	}
	if _, counts := pinned(a); counts[memA] != 100 || counts[memB] != 10 {
		t.Errorf("MACs per member %v, want 100 on the 10G member and 10 on the 1G one", counts)
	}
}

// TestAffinityChurn: MACs come and go; those that stay never move, and new
// ones fill the members that lost the most.
func TestAffinityChurn(t *testing.T) {
	members := equal(memA, memB, memC)
	a := NewAffinity()
	a.SetMembers(members)
	rng := rand.New(rand.NewPCG(7, 7))
	live := map[int]bool{}
	next := 0
	for range 60 {
		live[next] = true
		a.Add(mac(next))
		next++
	}
	for round := range 50 {
		before, _ := pinned(a)
		for i := range live {
			if rng.IntN(4) == 0 {
				a.Remove(mac(i))
				delete(live, i)
			}
		}
		for len(live) < 60 {
			live[next] = true
			a.Add(mac(next))
			next++
		}
		after, counts := pinned(a)
		for m, id := range after {
			if was, ok := before[m]; ok && was != id {
				t.Fatalf("round %d: %x moved from %d to %d without a member change", round, m, was, id)
			}
		}
		if len(after) != 60 {
			t.Fatalf("round %d: %d MACs pinned, want 60", round, len(after))
		}
		if s := spread(counts, members); s > 3 {
			t.Errorf("round %d: MACs per member %v", round, counts)
		}
	}
}

// TestAffinityFailAndReturn: a failed member's MACs, and only those, spread
// over the others; on its return it takes back just its share, from the
// members with the most.
func TestAffinityFailAndReturn(t *testing.T) {
	all := equal(memA, memB, memC, memD)
	a := NewAffinity()
	a.SetMembers(all)
	for i := range 100 {
		a.Add(mac(i))
	}
	before, counts := pinned(a)

	moves := a.SetMembers(equal(memA, memB, memD))
	if len(moves) != counts[memC] {
		t.Errorf("%d MACs moved on failure, want the %d of the failed member", len(moves), counts[memC])
	}
	for _, mv := range moves {
		if mv.From != memC || before[mv.MAC] != memC || mv.To == memC {
			t.Errorf("move %+v: want only the failed member's MACs to move, away from it", mv)
		}
	}
	failed, counts := pinned(a)
	if s := spread(counts, equal(memA, memB, memD)); s > 1 || counts[memC] != 0 {
		t.Errorf("after failure: MACs per member %v, want none on %d and the rest within 1", counts, memC)
	}
	for m, id := range failed {
		if before[m] != memC && id != before[m] {
			t.Errorf("%x moved from %d, which did not fail, to %d", m, before[m], id)
		}
	}

	moves = a.SetMembers(all)
	returned, counts := pinned(a)
	if len(moves) != 25 || counts[memC] != 25 || spread(counts, all) != 0 {
		t.Errorf("after return: %d moves, MACs per member %v; want 25 moves to %d and 25 each", len(moves), counts, memC)
	}
	for _, mv := range moves {
		if mv.To != memC {
			t.Errorf("move %+v on return, want moves only to the returning member", mv)
		}
	}
	// Its own MACs came back, so nothing else ever moved.
	if !maps.Equal(returned, before) {
		t.Errorf("after failure and return %d MACs are not where they were", countDiff(returned, before))
	}
}

func countDiff(a, b map[MAC]uint32) int {
	n := 0
	for k, v := range a {
		if b[k] != v {
			n++
		}
	}
	return n
}

// TestAffinityNoMembers: MACs seen while no member carries are placed when
// members come.
func TestAffinityNoMembers(t *testing.T) {
	a := NewAffinity()
	if id := a.Add(mac(1)); id != 0 {
		t.Errorf("Add with no members = %d, want 0", id)
	}
	if id, ok := a.Member(mac(1)); !ok || id != 0 {
		t.Errorf("Member = %d, %t; want 0, true", id, ok)
	}
	moves := a.SetMembers(equal(memA))
	if len(moves) != 1 || moves[0] != (Move{MAC: mac(1), From: 0, To: memA}) {
		t.Errorf("moves %+v, want mac 1 placed on %d", moves, memA)
	}
	// All members gone: MACs keep their member until one returns.
	if moves := a.SetMembers(nil); len(moves) != 0 {
		t.Errorf("moves %+v with no members, want none", moves)
	}
	if moves := a.SetMembers(equal(memA)); len(moves) != 0 {
		t.Errorf("moves %+v when the only member returned, want none", moves)
	}
}

// TestAffinityDeterministic: the same events give the same pins, whatever
// the map iteration order.
func TestAffinityDeterministic(t *testing.T) {
	scenario := func() map[MAC]uint32 {
		a := NewAffinity()
		a.SetMembers(equal(memA, memB, memC))
		for i := range 50 {
			a.Add(mac(i))
		}
		a.SetMembers(equal(memA, memC))
		for i := 50; i < 70; i++ {
			a.Add(mac(i))
		}
		a.SetMembers(equal(memA, memB, memC))
		of, _ := pinned(a)
		return of
	}
	first := scenario()
	for range 10 {
		if !maps.Equal(first, scenario()) {
			t.Fatal("the same events gave different pins")
		}
	}
}

// TestAffinityAdopt: pins taken over from a running datapath stay, except
// those of members that no longer carry; new MACs even out the counts.
func TestAffinityAdopt(t *testing.T) {
	a := NewAffinity()
	for i := range 6 {
		a.Adopt(mac(i), memA)
	}
	a.Adopt(mac(6), memB)
	a.Adopt(mac(7), memC) // memC is gone
	moves := a.SetMembers(equal(memA, memB))
	if len(moves) != 1 || moves[0] != (Move{MAC: mac(7), From: memC, To: memB}) {
		t.Errorf("moves %+v, want only mac 7 from %d to %d", moves, memC, memB)
	}
	for i := 8; i < 12; i++ {
		if id := a.Add(mac(i)); id != memB {
			t.Errorf("new mac %d on %d, want the emptier %d", i, id, memB)
		}
	}
	if _, counts := pinned(a); counts[memA] != 6 || counts[memB] != 6 {
		t.Errorf("MACs per member %v, want 6 each", counts)
	}
}
