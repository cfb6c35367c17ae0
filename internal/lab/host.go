package lab

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/nsdo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// carrierPoll is how often WaitCarrier looks at the link.
const carrierPoll = 5 * time.Millisecond

// Exec returns a command that runs name in h's namespace. It goes through
// `ip netns exec`, which also gives the command a /sys of that namespace;
// use Start instead for processes that must share the caller's mounts.
func (h *Host) Exec(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Run runs a command in h's namespace and returns its combined output.
func (h *Host) Run(args ...string) (string, error) {
	return runIn(h.NS, args)
}

// Run runs a command in the switch's namespace (for instance
// `bridge fdb show`) and returns its combined output.
func (s *Switch) Run(args ...string) (string, error) {
	return runIn(s.NS, args)
}

func runIn(ns string, args []string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("run in %s: no command", ns)
	}
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("run %s in %s: %w: %s", strings.Join(args, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// AddAddr adds an address in CIDR notation ("10.77.0.1/24", "fd77::1/64")
// to ifname.
func (h *Host) AddAddr(ifname, cidr string) error {
	if _, err := run("-n", h.NS, "addr", "add", cidr, "dev", ifname); err != nil {
		return fmt.Errorf("add address %s to %s on %s: %w", cidr, ifname, h.Name, err)
	}
	return nil
}

// SetUp sets ifname administratively up.
func (h *Host) SetUp(ifname string) error {
	if _, err := run("-n", h.NS, "link", "set", ifname, "up"); err != nil {
		return fmt.Errorf("set %s up on %s: %w", ifname, h.Name, err)
	}
	return nil
}

// Link returns ifname as netlink sees it in h's namespace; Attrs().RawFlags
// has IFF_LOWER_UP while the cable has carrier.
func (h *Host) Link(ifname string) (netlink.Link, error) {
	var link netlink.Link
	err := h.withHandle(func(nh *netlink.Handle) error {
		var err error
		link, err = nh.LinkByName(ifname)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get link %s on %s: %w", ifname, h.Name, err)
	}
	return link, nil
}

// WaitCarrier waits until ifname's carrier (IFF_LOWER_UP) is up, or down,
// as asked.
func (h *Host) WaitCarrier(ctx context.Context, ifname string, up bool) error {
	err := h.withHandle(func(nh *netlink.Handle) error {
		return Poll(ctx, 0, carrierPoll, func(context.Context) (bool, error) {
			link, err := nh.LinkByName(ifname)
			if err != nil {
				return true, err
			}
			return (link.Attrs().RawFlags&unix.IFF_LOWER_UP != 0) == up, nil
		})
	})
	if err != nil {
		return fmt.Errorf("wait for %s carrier %s on %s: %w", ifname, upDown(up), h.Name, err)
	}
	return nil
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// Do runs fn on a thread in h's namespace (nsdo.Do). Sockets, taps and
// the like that fn opens stay in the namespace after it returns, so only
// the opening needs to happen there.
func (h *Host) Do(fn func() error) error {
	ns, err := netns.GetFromPath(nsPath(h.NS))
	if err != nil {
		return fmt.Errorf("open netns %s: %w", h.NS, err)
	}
	defer ns.Close()
	return nsdo.Do(ns, fn)
}

// withHandle calls fn with a netlink handle whose sockets live in h's
// namespace (nsHandle).
func (h *Host) withHandle(fn func(*netlink.Handle) error) error {
	nh, err := nsHandle(h.NS)
	if err != nil {
		return err
	}
	defer nh.Close()
	return fn(nh)
}
