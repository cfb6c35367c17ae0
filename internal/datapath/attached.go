package datapath

import "slices"

// Attached lists, in ascending order, the member ifindexes whose ingress
// link is really attached: a link pinned for an interface that was since
// deleted is defunct and not listed, so a restarted daemon attaches again
// what lost its program.
func (t *Team) Attached() ([]int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int
	for ifindex, l := range t.members {
		if linkAlive(l, ifindex) {
			out = append(out, ifindex)
		}
	}
	slices.Sort(out)
	return out, nil
}
