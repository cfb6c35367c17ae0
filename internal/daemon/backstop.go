package daemon

import (
	"context"
	"maps"
	"time"

	"github.com/nicteam/nicteam/internal/host"
	"github.com/nicteam/nicteam/internal/watch"
)

// backstop reads, every watch.CarrierInterval, the carrier of the members
// that are not veths, and handles a member whose carrier differs from what
// the daemon believes as a link event: the kernel may hold that event back
// for up to a second (see package watch). Veth members are left to their
// events, which are never delayed.
func (d *Daemon) backstop(ctx context.Context) {
	c, err := watch.OpenCarrier()
	if err != nil {
		d.log.Warn("carrier backstop off: carrier losses on physical members are known when the kernel reports them", "err", err)
		return
	}
	defer c.Close()
	type member struct {
		name    string
		index   int
		carrier bool
	}
	veth := map[int]bool{} // by ifindex: whether the member is a veth
	tk := time.NewTicker(watch.CarrierInterval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		var watched []member
		seen := map[int]bool{}
		d.mu.Lock()
		for _, t := range d.teams {
			if t.dp == nil {
				continue
			}
			for name, idx := range t.ifindex {
				seen[idx] = true
				isVeth, ok := veth[idx]
				if !ok {
					l, err := host.Get(name)
					if err != nil || l.Index != idx {
						continue // changing: its events are on the way
					}
					isVeth = l.Kind == "veth"
					veth[idx] = isVeth
				}
				if !isVeth {
					watched = append(watched, member{name, idx, t.links[name].Carrier})
				}
			}
		}
		d.mu.Unlock()
		maps.DeleteFunc(veth, func(idx int, _ bool) bool { return !seen[idx] })
		for _, m := range watched {
			carrier, err := c.Read(m.name)
			if err == nil && carrier != m.carrier {
				// linkChanged reads the link by its ifindex, as a
				// netlink notification names it.
				d.linkChanged(host.Link{Name: m.name, Index: m.index})
			}
		}
	}
}
