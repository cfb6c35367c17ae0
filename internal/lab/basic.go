package lab

import "fmt"

// Addresses of the Basic topology. They exist only inside the lab's
// namespaces. The host's are not assigned by NewBasic: they belong on
// whatever interface is under test (a team, or a NIC directly).
const (
	HostIPv4 = "10.77.0.1"
	HostIPv6 = "fd77::1"
	PeerIPv4 = "10.77.0.2"
	PeerIPv6 = "fd77::2"

	HostCIDRv4 = HostIPv4 + "/24"
	HostCIDRv6 = HostIPv6 + "/64"
	PeerCIDRv4 = PeerIPv4 + "/24"
	PeerCIDRv6 = PeerIPv6 + "/64"
)

// Basic is the topology of the demo and the foundation's tests: a host
// whose NICs eth1..ethN are all cabled to one switch, and a peer on the
// same switch to talk to.
type Basic struct {
	*Lab
	Switch *Switch // "sw"
	Host   *Host   // "host": eth1..ethN, no addresses
	Peer   *Host   // "peer": eth0 with PeerCIDRv4 and PeerCIDRv6
}

// NewBasic builds the Basic topology with nics host NICs. Every cable has
// carrier when it returns. On error nothing is left behind.
func NewBasic(prefix string, nics int) (*Basic, error) {
	if nics < 1 {
		return nil, fmt.Errorf("build basic lab: need at least one host NIC, got %d", nics)
	}
	b := &Basic{Lab: New(prefix)}
	if err := b.build(nics); err != nil {
		if cerr := b.Close(); cerr != nil {
			err = fmt.Errorf("%w (cleaning up: %v)", err, cerr)
		}
		return nil, fmt.Errorf("build basic lab: %w", err)
	}
	return b, nil
}

func (b *Basic) build(nics int) error {
	var err error
	if b.Switch, err = b.AddSwitch("sw"); err != nil {
		return err
	}
	if b.Host, err = b.AddHost("host"); err != nil {
		return err
	}
	if b.Peer, err = b.AddHost("peer"); err != nil {
		return err
	}
	for i := 1; i <= nics; i++ {
		if err := b.Connect(b.Host, fmt.Sprintf("eth%d", i), b.Switch); err != nil {
			return err
		}
	}
	if err := b.Connect(b.Peer, "eth0", b.Switch); err != nil {
		return err
	}
	if err := b.Peer.AddAddr("eth0", PeerCIDRv4); err != nil {
		return err
	}
	return b.Peer.AddAddr("eth0", PeerCIDRv6)
}
