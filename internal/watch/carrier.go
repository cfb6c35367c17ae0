// Package watch holds link watchers that complement the kernel's link
// events: the carrier backstop for members whose events the kernel delays.
package watch

import (
	"fmt"
	"time"

	"github.com/mdlayher/ethtool"
)

// CarrierInterval is how often the backstop reads a watched member's
// carrier: a loss is known within it, where linkwatch may take a second.
const CarrierInterval = 2 * time.Millisecond

// Why a backstop: the kernel's linkwatch reports carrier loss on a device
// that is its own link (ifindex == iflink: a physical NIC, a tap) and not a
// bonding or team port as a non-urgent event, run at most once a second for
// all devices of the host, so the RTM_NEWLINK can come 1 s late when any
// other link changed just before (container veths churn all the time).
// Reading the link state through ethtool reads the carrier bit directly,
// and the kernel's ethtool_op_get_link also runs the device's pending
// linkwatch event, so the RTM_NEWLINK follows at once. A veth's events are
// urgent (its iflink is its peer): veths are not polled.

// Carrier reads members' carrier through ethtool netlink, in the network
// namespace it was opened in. It is not safe for concurrent use.
type Carrier struct {
	c *ethtool.Client
}

// OpenCarrier opens the ethtool netlink client.
func OpenCarrier() (*Carrier, error) {
	c, err := ethtool.New()
	if err != nil {
		return nil, fmt.Errorf("open carrier backstop: %w", err)
	}
	return &Carrier{c: c}, nil
}

// Read returns whether the interface has carrier (and is up).
func (c *Carrier) Read(name string) (bool, error) {
	ls, err := c.c.LinkState(ethtool.Interface{Name: name})
	if err != nil {
		return false, fmt.Errorf("read carrier of %s: %w", name, err)
	}
	return ls.Link, nil
}

// Close releases the client.
func (c *Carrier) Close() error { return c.c.Close() }
