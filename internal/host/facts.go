package host

import "sync"

// Facts are what ethtool says of an interface: its speed in bit/s (0 when
// the driver does not know) and its driver's name.
type Facts struct {
	Speed  uint64
	Driver string
}

// FactsCache remembers interfaces' Facts by ifindex, so that a listing of
// every interface on a host with many need not ask ethtool twice per
// interface each time: each ethtool call takes the kernel's RTNL lock,
// which the link events that report a lost carrier wait for too. Facts
// change only with the link (a speed is renegotiated when the carrier
// comes back), so the owner calls Forget for every link event it gets.
// The zero value is ready to use; it is safe for concurrent use.
type FactsCache struct {
	// read asks ethtool; tests replace it.
	read func(name string) Facts

	mu    sync.Mutex
	facts map[int]*entry // guarded by mu; by ifindex
}

// entry is one interface's facts; a pending one is being read, and Forget
// deletes it, so that a read that a link event overtook is not kept.
type entry struct {
	Facts
	pending bool
}

// Get returns the facts of l, asking ethtool only if they are not known
// since the last Forget of its ifindex.
func (c *FactsCache) Get(l Link) Facts {
	c.mu.Lock()
	if c.facts == nil {
		c.facts = map[int]*entry{}
	}
	e, ok := c.facts[l.Index]
	if ok && !e.pending {
		c.mu.Unlock()
		return e.Facts
	}
	if !ok {
		e = &entry{pending: true}
		c.facts[l.Index] = e
	}
	read := c.read
	c.mu.Unlock()
	if read == nil {
		read = ethtoolFacts
	}
	f := read(l.Name)
	c.mu.Lock()
	if c.facts[l.Index] == e {
		e.Facts, e.pending = f, false
	}
	c.mu.Unlock()
	return f
}

// Forget drops what is known of the interface with ifindex index: its link
// changed, or it is gone.
func (c *FactsCache) Forget(index int) {
	c.mu.Lock()
	delete(c.facts, index)
	c.mu.Unlock()
}

func ethtoolFacts(name string) Facts { return Facts{Speed: Speed(name), Driver: Driver(name)} }
