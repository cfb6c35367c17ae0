package daemon

import (
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

// stats reads a team's counters from its datapath.
func (d *Daemon) stats(name string) (api.Stats, error) {
	d.mu.Lock()
	t, err := d.teamLocked(name)
	if err != nil {
		d.mu.Unlock()
		return api.Stats{}, err
	}
	dp, table, members := t.dp, t.table, t.rec.Spec.MemberNames()
	byIndex := map[int]string{}
	for name, idx := range t.ifindex {
		byIndex[idx] = name
	}
	d.mu.Unlock()
	s := api.Stats{Team: name, Time: time.Now()}
	if dp == nil {
		return s, notFound("team %q has no datapath", name)
	}
	// Read without the lock: these are map reads the failover path must
	// not wait for.
	ms, err := dp.MemberStats()
	if err != nil {
		return s, err
	}
	bs, err := dp.BucketStats()
	if err != nil {
		return s, err
	}
	if s.EgressDrops, err = dp.EgressDrops(); err != nil {
		return s, err
	}
	if s.FlowletMoves, err = dp.FlowletMoves(); err != nil {
		return s, err
	}
	counters := map[string]api.MemberStats{}
	for idx, c := range ms {
		counters[byIndex[idx]] = api.MemberStats{TxPackets: c.TxPackets, TxBytes: c.TxBytes, RxPackets: c.RxPackets, RxBytes: c.RxBytes, RxDropped: c.RxDropped}
	}
	for _, m := range members {
		c := counters[m]
		c.Name = m
		s.Members = append(s.Members, c)
	}
	for i, b := range bs {
		s.Buckets = append(s.Buckets, api.BucketStats{Bucket: i, Member: byIndex[int(table[i])], Packets: b.Packets, Bytes: b.Bytes})
	}
	return s, nil
}
