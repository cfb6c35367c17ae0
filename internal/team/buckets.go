package team

import "sort"

// NumBuckets is the size of the datapath's hash → member table. 256 gives
// each of up to MaxMembers members several buckets, so load splits finely.
const NumBuckets = 256

// Table maps each bucket to a member ID (the member's ifindex); 0 means no
// member, and the datapath drops what hashes there.
type Table [NumBuckets]uint32

// Weighted is a carrier and its share weight (its link speed).
type Weighted struct {
	ID     uint32
	Weight uint64
}

// Assign returns a table over members that moves as few buckets as
// possible from prev: buckets of members that left are handed to those
// furthest below their share, and members above their share give up their
// highest buckets. Shares are proportional to weight; if any weight is
// unknown (0) all members get equal shares. The result depends only on the
// arguments, so a restarted daemon computes the same table.
func Assign(prev Table, members []Weighted) Table {
	var next Table
	if len(members) == 0 {
		return next
	}
	target := shares(members)
	idx := make(map[uint32]int, len(members))
	for i, m := range members {
		idx[m.ID] = i
	}
	count := make([]int, len(members))
	var free []int
	for b, id := range prev {
		i, ok := idx[id]
		if !ok || count[i] >= target[i] {
			free = append(free, b)
			continue
		}
		next[b] = id
		count[i]++
	}
	for _, b := range free {
		best := 0
		for i := range members {
			if target[i]-count[i] > target[best]-count[best] {
				best = i
			}
		}
		next[b] = members[best].ID
		count[best]++
	}
	return next
}

// shares splits NumBuckets by weight with the largest-remainder method.
func shares(members []Weighted) []int {
	var total uint64
	equal := false
	for _, m := range members {
		if m.Weight == 0 {
			equal = true
		}
		total += m.Weight
	}
	w := func(i int) uint64 {
		if equal {
			return 1
		}
		return members[i].Weight
	}
	if equal {
		total = uint64(len(members))
	}
	out := make([]int, len(members))
	rem := make([]uint64, len(members))
	given := 0
	for i := range members {
		q := uint64(NumBuckets) * w(i)
		out[i] = int(q / total)
		rem[i] = q % total
		given += out[i]
	}
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rem[order[a]] > rem[order[b]] })
	for k := 0; given < NumBuckets; k++ {
		out[order[k%len(order)]]++
		given++
	}
	return out
}

// Moved counts the buckets whose member differs between two tables.
func Moved(a, b Table) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// Heir returns the member of next that holds most of the buckets id holds
// in prev (the lowest ID on a tie), or 0 when id holds none or next gives
// them to no member.
func Heir(prev, next Table, id uint32) uint32 {
	n := map[uint32]int{}
	var best uint32
	for b, owner := range prev {
		if owner != id || next[b] == 0 {
			continue
		}
		h := next[b]
		n[h]++
		if best == 0 || n[h] > n[best] || (n[h] == n[best] && h < best) {
			best = h
		}
	}
	return best
}
