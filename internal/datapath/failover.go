package datapath

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
)

// In-datapath failover: team_egress_fo checks, per frame, the carrier of the
// member it chose and sends through that member's fallback (SetFallbacks)
// while it has none, with no daemon in the path. It reads each member's
// struct net_device, found once per attachment by team_learn_dev, which
// needs kernel BTF, the bpf_cast_to_kern_ctx and bpf_rdonly_cast kfuncs and
// CAP_PERFMON. Where those are missing the datapath runs team_egress, which
// leaves failover to the control plane alone (ProbeFailover says why).

// Program names in bpf/team.c.
const (
	progEgress         = "team_egress"
	progEgressFailover = "team_egress_fo"
	progLearnDev       = "team_learn_dev"
)

// haveFailover is ProbeFailover, run once: Create picks its egress program
// by it.
var haveFailover = sync.OnceValue(ProbeFailover)

// loadObjects loads the maps and programs of a new team: the egress program
// with failover where the kernel and process allow it, else without.
func (t *Team) loadObjects() error {
	spec, err := loadTeam()
	if err != nil {
		return err
	}
	failover := haveFailover() == nil
	egress := progEgress
	if failover {
		egress = progEgressFailover
		delete(spec.Programs, progEgress)
	} else {
		delete(spec.Programs, progEgressFailover)
		delete(spec.Programs, progLearnDev)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return err
	}
	defer coll.Close()
	if err := coll.Assign(&t.maps); err != nil {
		return err
	}
	t.egress, t.ingress = coll.DetachProgram(egress), coll.DetachProgram("team_ingress")
	if failover {
		t.learn = coll.DetachProgram(progLearnDev)
	}
	return nil
}

// adoptFailover finds out whether the adopted egress program is the one
// with failover, and if so loads team_learn_dev on the pinned maps for the
// members attached from now on.
func (t *Team) adoptFailover() error {
	info, err := t.egress.Info()
	if err != nil {
		return fmt.Errorf("egress program info: %w", err)
	}
	if info.Name != progEgressFailover {
		return nil
	}
	spec, err := loadTeam()
	if err != nil {
		return err
	}
	var objs struct {
		Learn *ebpf.Program `ebpf:"team_learn_dev"`
	}
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{teamMapMembers: t.maps.Members}}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return fmt.Errorf("load %s: %w", progLearnDev, err)
	}
	t.learn = objs.Learn
	return nil
}

// Failover reports whether the team's egress program fails over to a
// member's fallback by itself while the member has no carrier.
func (t *Team) Failover() bool { return t.learn != nil }

// learnDevLocked records the member's struct net_device in its entry, for
// the egress program's carrier checks: a test run of team_learn_dev with the
// member as the frame's device. The calling thread must be in the member's
// network namespace.
func (t *Team) learnDevLocked(ifindex int) error {
	if t.learn == nil {
		return nil
	}
	// struct __sk_buff up to ifindex, its 11th word: the kernel takes the
	// frame's device from it and wants the other fields zero.
	var ctx [11]uint32
	ctx[10] = uint32(ifindex)
	ret, err := t.learn.Run(&ebpf.RunOptions{Data: make([]byte, 14), Context: ctx})
	if err != nil {
		return fmt.Errorf("learn device of member %d: %w", ifindex, err)
	}
	if ret != 0 {
		return fmt.Errorf("learn device of member %d: no entry in the members map", ifindex)
	}
	return nil
}

// SetFallbacks sets, for each member in fallbacks, the member the egress
// program sends through instead while it has no carrier (0: none). Only
// entries that change are written, in one batch; members not attached are
// skipped.
func (t *Team) SetFallbacks(fallbacks map[int]int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []uint32
	var values []teamMember
	for _, ifindex := range slices.Sorted(maps.Keys(fallbacks)) {
		var m teamMember
		err := t.maps.Members.Lookup(uint32(ifindex), &m)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("set fallbacks: member %d: %w", ifindex, err)
		}
		if want := uint32(fallbacks[ifindex]); m.Fallback != want {
			m.Fallback = want
			keys = append(keys, uint32(ifindex))
			values = append(values, m)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	// Under mu no DetachMember can delete an entry read above.
	if _, err := t.maps.Members.BatchUpdate(keys, values, nil); err != nil {
		return fmt.Errorf("set fallbacks: %w", err)
	}
	return nil
}

// Fallbacks reads every attached member's fallback.
func (t *Team) Fallbacks() (map[int]int, error) {
	out := map[int]int{}
	var key uint32
	var m teamMember
	it := t.maps.Members.Iterate()
	for it.Next(&key, &m) {
		out[int(key)] = int(m.Fallback)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read fallbacks: %w", err)
	}
	return out, nil
}
