package host

import "testing"

func TestFactsCache(t *testing.T) {
	reads := map[string]int{}
	speed := uint64(10e9)
	var during func()
	c := &FactsCache{read: func(name string) Facts {
		reads[name]++
		if during != nil {
			during()
		}
		return Facts{Speed: speed, Driver: "veth"}
	}}
	eth1 := Link{Name: "eth1", Index: 2}
	if f := c.Get(eth1); f.Speed != 10e9 || f.Driver != "veth" {
		t.Fatalf("Get = %+v", f)
	}
	c.Get(eth1)
	if reads["eth1"] != 1 {
		t.Errorf("%d reads for two Gets, want 1", reads["eth1"])
	}
	// The link changed: the next Get reads again.
	c.Forget(eth1.Index)
	speed = 25e9
	if f := c.Get(eth1); f.Speed != 25e9 || reads["eth1"] != 2 {
		t.Errorf("after Forget: %+v, %d reads; want the new speed, 2 reads", f, reads["eth1"])
	}
	// A link event that comes while a read is under way: that read may be
	// stale, so it is returned but not kept.
	c.Forget(eth1.Index)
	during = func() { c.Forget(eth1.Index) }
	c.Get(eth1)
	during = nil
	c.Get(eth1)
	if reads["eth1"] != 4 {
		t.Errorf("%d reads, want 4: a read overtaken by Forget is not kept", reads["eth1"])
	}
	// Renamed: the facts are the device's, kept by ifindex.
	if c.Get(Link{Name: "uplink", Index: 2}); reads["uplink"] != 0 {
		t.Errorf("a rename read again")
	}
}
