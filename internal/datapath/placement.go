package datapath

import "slices"

// placementOrder is the order in which TCP connections that open take the
// buckets of table b (the egress program's placement map): every bucket
// once, the members interleaved by their share of the table (smooth
// weighted round robin, so any run of k connections gives each member
// within one of its share of k), and each member's buckets in turn, so that
// its connections land in buckets of their own the rebalancer can move one
// by one. Buckets that name no member come last.
func placementOrder(b [NumBuckets]uint32) [NumBuckets]uint32 {
	byMember := map[uint32][]uint32{}
	for i, id := range b {
		byMember[id] = append(byMember[id], uint32(i))
	}
	ids := make([]uint32, 0, len(byMember))
	for id := range byMember {
		if id != 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)

	var order [NumBuckets]uint32
	n := 0
	total := NumBuckets - len(byMember[0])
	weight := make([]int, len(ids))
	for i, id := range ids {
		weight[i] = len(byMember[id])
	}
	credit := make([]int, len(ids))
	for range total {
		best := 0
		for i := range ids {
			credit[i] += weight[i]
			if credit[i] > credit[best] {
				best = i
			}
		}
		credit[best] -= total
		id := ids[best]
		order[n], byMember[id] = byMember[id][0], byMember[id][1:]
		n++
	}
	copy(order[n:], byMember[0])
	return order
}
