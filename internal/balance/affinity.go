package balance

import (
	"bytes"
	"maps"
	"slices"

	"github.com/nicteam/nicteam/internal/team"
)

// MAC is a source MAC behind the team: a container's or VM's port.
type MAC [6]byte

// Move is one MAC changing member.
type Move struct {
	MAC      MAC
	From, To uint32 // member IDs; From is 0 for a new MAC
}

// Affinity pins each source MAC behind the team to one member (HyperVPort):
// its frames always leave there and peers learn it there, so it is never
// seen on two ports. A new MAC goes to the member with the fewest MACs for
// its weight. A MAC keeps its member while both live. When a member fails,
// only its MACs move, each to the then least loaded member. When a member
// returns, it takes MACs back from the members furthest above their shares
// until it has its share, its own former MACs first, and no other MAC
// moves: spreading evenly costs a few moves once, where leaving the
// returned member empty would leave the team unbalanced until MACs churn,
// and after a failure and return every MAC is where it was. It is not safe
// for concurrent use.
type Affinity struct {
	members []team.Weighted
	of      map[MAC]uint32
	home    map[MAC]uint32 // the member a MAC left when that member failed
}

// NewAffinity returns an Affinity over no members.
func NewAffinity() *Affinity { return &Affinity{of: map[MAC]uint32{}, home: map[MAC]uint32{}} }

// Member returns the member mac is pinned to (0 while none carries).
func (a *Affinity) Member(mac MAC) (uint32, bool) {
	id, ok := a.of[mac]
	return id, ok
}

// Add pins mac to a member if it is not pinned yet, and returns its member.
// With no member carrying, it returns 0 and SetMembers places mac later.
func (a *Affinity) Add(mac MAC) uint32 {
	if id, ok := a.of[mac]; ok {
		return id
	}
	if len(a.members) == 0 {
		a.of[mac] = 0
		return 0
	}
	id := a.members[a.leastLoaded(a.counts())].ID
	a.of[mac] = id
	return id
}

// Pins returns every MAC and its member (0 while none carries).
func (a *Affinity) Pins() map[MAC]uint32 { return maps.Clone(a.of) }

// Adopt records that mac is pinned to member, as found in a running
// datapath (datapath.Team.Affinities) by a restarted daemon, so that no
// MAC moves because the daemon restarted. Call SetMembers afterwards: it
// moves the MACs of members that no longer carry.
func (a *Affinity) Adopt(mac MAC, member uint32) { a.of[mac] = member }

// Remove forgets mac (the port behind the team went away).
func (a *Affinity) Remove(mac MAC) {
	delete(a.of, mac)
	delete(a.home, mac)
}

// SetMembers makes carriers the members that carry traffic and returns the
// MACs that moved, in the order they moved. MACs waiting for a member
// (added while there was none) are placed as new ones.
func (a *Affinity) SetMembers(carriers []team.Weighted) []Move {
	// Every recompute calls it; with the same carriers nothing can move:
	// Add pins at once while there are any, and Adopt comes first.
	if len(carriers) > 0 && slices.Equal(a.members, carriers) {
		return nil
	}
	old := map[uint32]bool{}
	for _, m := range a.members {
		old[m.ID] = true
	}
	a.members = slices.Clone(carriers)
	if len(carriers) == 0 {
		return nil
	}
	idx := map[uint32]int{}
	for i, m := range carriers {
		idx[m.ID] = i
	}
	counts := a.counts()
	var moves []Move
	// MACs of members that left, each to the least loaded member.
	for _, mac := range a.sortedMACs() {
		from := a.of[mac]
		if _, ok := idx[from]; ok {
			continue
		}
		to := a.leastLoaded(counts)
		counts[to]++
		a.of[mac] = carriers[to].ID
		if _, ok := a.home[mac]; !ok && from != 0 {
			a.home[mac] = from
		}
		moves = append(moves, Move{MAC: mac, From: from, To: carriers[to].ID})
	}
	// Members that returned (or joined) take MACs from those furthest
	// above their shares until they have theirs.
	target := shares(len(a.of), carriers)
	joined := make([]bool, len(carriers))
	for i, m := range carriers {
		joined[i] = !old[m.ID]
	}
	for {
		to := -1
		for i := range carriers {
			if joined[i] && counts[i] < target[i] && (to < 0 || target[i]-counts[i] > target[to]-counts[to]) {
				to = i
			}
		}
		from := -1
		for i := range carriers {
			if !joined[i] && counts[i] > target[i] && (from < 0 || counts[i]-target[i] > counts[from]-target[from]) {
				from = i
			}
		}
		if to < 0 || from < 0 {
			return moves
		}
		// A MAC of the giving member that came from the returning one,
		// else any; the highest of them, so the choice depends only on
		// the state, not on map order.
		var pick MAC
		found, pickHome := false, false
		for mac, id := range a.of {
			if id != carriers[from].ID {
				continue
			}
			home := a.home[mac] == carriers[to].ID
			if !found || (home && !pickHome) || (home == pickHome && bytes.Compare(mac[:], pick[:]) > 0) {
				pick, found, pickHome = mac, true, home
			}
		}
		a.of[pick] = carriers[to].ID
		if pickHome {
			delete(a.home, pick)
		}
		counts[from]--
		counts[to]++
		moves = append(moves, Move{MAC: pick, From: carriers[from].ID, To: carriers[to].ID})
	}
}

// counts returns how many MACs each member has, by index in a.members.
func (a *Affinity) counts() []int {
	idx := map[uint32]int{}
	for i, m := range a.members {
		idx[m.ID] = i
	}
	out := make([]int, len(a.members))
	for _, id := range a.of {
		if i, ok := idx[id]; ok {
			out[i]++
		}
	}
	return out
}

// leastLoaded returns the index of the member with the fewest MACs per
// weight once it took one more; ties go to the earlier member.
func (a *Affinity) leastLoaded(counts []int) int {
	w := weights(a.members)
	best := 0
	for i := range a.members {
		if float64(counts[i]+1)/w[i] < float64(counts[best]+1)/w[best] {
			best = i
		}
	}
	return best
}

// sortedMACs lists the pinned MACs in ascending order.
func (a *Affinity) sortedMACs() []MAC {
	macs := make([]MAC, 0, len(a.of))
	for mac := range a.of {
		macs = append(macs, mac)
	}
	slices.SortFunc(macs, func(x, y MAC) int { return bytes.Compare(x[:], y[:]) })
	return macs
}

// shares splits n MACs over members by weight, largest remainder first.
func shares(n int, members []team.Weighted) []int {
	w := weights(members)
	out := make([]int, len(members))
	given := 0
	for i := range members {
		out[i] = int(float64(n) * w[i])
		given += out[i]
	}
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	rem := func(i int) float64 { return float64(n)*w[i] - float64(out[i]) }
	slices.SortStableFunc(order, func(x, y int) int {
		switch {
		case rem(x) > rem(y):
			return -1
		case rem(x) < rem(y):
			return 1
		}
		return 0
	})
	for k := 0; given < n; k++ {
		out[order[k%len(order)]]++
		given++
	}
	return out
}
