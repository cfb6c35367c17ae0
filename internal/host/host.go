// Package host is the daemon's view of the host's interfaces: netlink for
// links and their events, ethtool for speeds and drivers. It holds no
// teaming logic; it only reads and changes interfaces.
package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is a snapshot of one interface.
type Link struct {
	Name     string
	Index    int
	MAC      net.HardwareAddr
	MTU      int
	AdminUp  bool // IFF_UP
	Carrier  bool // IFF_LOWER_UP
	Promisc  bool // IFF_PROMISC as set by a user, not by packet sockets
	Loopback bool
	Kind     string // "veth", "bridge", … ("" for physical NICs)
	Alias    string
	Master   int  // ifindex of the bridge (or other master) it is a port of; 0 if none
	Deleted  bool // set on events for a link that went away
}

func fromNetlink(l netlink.Link) Link {
	a := l.Attrs()
	return Link{
		Name:     a.Name,
		Index:    a.Index,
		MAC:      a.HardwareAddr,
		MTU:      a.MTU,
		AdminUp:  a.RawFlags&unix.IFF_UP != 0,
		Carrier:  a.RawFlags&unix.IFF_LOWER_UP != 0,
		Promisc:  a.RawFlags&unix.IFF_PROMISC != 0,
		Loopback: a.RawFlags&unix.IFF_LOOPBACK != 0,
		Kind:     l.Type(),
		Alias:    a.Alias,
		Master:   a.MasterIndex,
	}
}

// mapErr makes netlink's "not found" answers match os.ErrNotExist.
func mapErr(op string, err error) error {
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%s: %w", op, os.ErrNotExist)
	}
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s: %w", op, os.ErrPermission)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Get returns the interface called name; the error wraps os.ErrNotExist
// when there is none.
func Get(name string) (Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return Link{}, mapErr("get link "+name, err)
	}
	return fromNetlink(l), nil
}

// List returns every interface in the namespace.
func List() ([]Link, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, mapErr("list links", err)
	}
	out := make([]Link, len(ls))
	for i, l := range ls {
		out[i] = fromNetlink(l)
	}
	return out, nil
}

// GetByIndex returns the interface with ifindex index, whatever it is
// called now; the error wraps os.ErrNotExist when there is none.
func GetByIndex(index int) (Link, error) {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return Link{}, mapErr(fmt.Sprintf("get link %d", index), err)
	}
	return fromNetlink(l), nil
}

func byName(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, mapErr("get link "+name, err)
	}
	return l, nil
}

// SetUp sets the interface administratively up or down.
func SetUp(name string, up bool) error {
	l, err := byName(name)
	if err != nil {
		return err
	}
	if up {
		err = netlink.LinkSetUp(l)
	} else {
		err = netlink.LinkSetDown(l)
	}
	if err != nil {
		return mapErr(fmt.Sprintf("set %s up=%t", name, up), err)
	}
	return nil
}

// SetPromisc turns the interface's promiscuous flag on or off.
func SetPromisc(name string, on bool) error {
	l, err := byName(name)
	if err != nil {
		return err
	}
	if on {
		err = netlink.SetPromiscOn(l)
	} else {
		err = netlink.SetPromiscOff(l)
	}
	if err != nil {
		return mapErr(fmt.Sprintf("set %s promisc=%t", name, on), err)
	}
	return nil
}

// SetAlias sets the interface's alias (ifalias), which listings show.
func SetAlias(name, alias string) error {
	l, err := byName(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetAlias(l, alias); err != nil {
		return mapErr("set alias of "+name, err)
	}
	return nil
}

// SetMAC sets the interface's MAC address.
func SetMAC(name string, mac net.HardwareAddr) error {
	l, err := byName(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
		return mapErr(fmt.Sprintf("set %s mac %s", name, mac), err)
	}
	return nil
}

// SetMTU sets the interface's MTU.
func SetMTU(name string, mtu int) error {
	l, err := byName(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return mapErr(fmt.Sprintf("set %s mtu %d", name, mtu), err)
	}
	return nil
}

// CreateVethPair creates name and its peer, gives name the MAC, MTU and
// alias, and sets both up. On error nothing is left behind.
func CreateVethPair(name, peer string, mac net.HardwareAddr, mtu int, alias string) error {
	v := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac, MTU: mtu},
		PeerName:  peer,
	}
	if err := netlink.LinkAdd(v); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create veth %s/%s: %w", name, peer, os.ErrExist)
		}
		return mapErr(fmt.Sprintf("create veth %s/%s", name, peer), err)
	}
	err := func() error {
		if err := SetAlias(name, alias); err != nil {
			return err
		}
		if err := SetMTU(peer, mtu); err != nil {
			return err
		}
		if err := SetUp(peer, true); err != nil {
			return err
		}
		return SetUp(name, true)
	}()
	if err != nil {
		_ = Delete(name)
		return err
	}
	return nil
}

// Delete removes the interface (a veth takes its peer with it). A missing
// interface is not an error: deletion is what the caller wanted.
func Delete(name string) error {
	l, err := byName(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := netlink.LinkDel(l); err != nil {
		return mapErr("delete "+name, err)
	}
	return nil
}

// Speed returns the link speed in bit/s, or 0 when the driver does not know.
func Speed(name string) uint64 {
	c, err := ethtool.New()
	if err != nil {
		return 0
	}
	defer c.Close()
	lm, err := c.LinkMode(ethtool.Interface{Name: name})
	if err != nil || lm.SpeedMegabits <= 0 || lm.SpeedMegabits == 0xffffffff {
		return 0
	}
	return uint64(lm.SpeedMegabits) * 1e6
}

// Driver returns the interface's driver name as ethtool reports it.
func Driver(name string) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, name)
	if err != nil {
		return ""
	}
	return unix.ByteSliceToString(info.Driver[:])
}

// Watch sends every link change in the namespace to ch until ctx ends.
// Deleted links arrive with Deleted set. Events are the kernel's
// notifications: nothing here polls. Should the subscription fail, Watch
// subscribes again and replays every link's current state, so the caller
// never misses a change for good.
func Watch(ctx context.Context, ch chan<- Link, onErr func(error)) error {
	return watch(ctx, "link events", func(replay bool, updates chan netlink.LinkUpdate, done chan struct{}) error {
		return netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
			ErrorCallback: onErr, ListExisting: replay, ReceiveBufferSize: 1 << 20,
		})
	}, func(u netlink.LinkUpdate) (Link, bool) {
		l := fromNetlink(u.Link)
		l.Deleted = u.Header.Type == unix.RTM_DELLINK
		return l, true
	}, ch, onErr)
}

// FDBEntry is a change of a bridge's forwarding database: MAC was learned
// (or set) on the port with ifindex Port of the bridge with ifindex Bridge,
// or, with Deleted, forgotten there.
type FDBEntry struct {
	MAC       net.HardwareAddr
	Bridge    int
	Port      int
	Permanent bool // a port's own MAC or one set by hand, not learned
	Deleted   bool
}

// WatchFDB sends every change of the bridges' forwarding databases in the
// namespace to ch until ctx ends, as Watch does for links; after a broken
// subscription it replays the current entries (deletions in the gap are
// lost).
func WatchFDB(ctx context.Context, ch chan<- FDBEntry, onErr func(error)) error {
	return watch(ctx, "bridge fdb events", func(replay bool, updates chan netlink.NeighUpdate, done chan struct{}) error {
		return netlink.NeighSubscribeWithOptions(updates, done, netlink.NeighSubscribeOptions{
			ErrorCallback: onErr, ListExisting: replay, ReceiveBufferSize: 1 << 20,
		})
	}, func(u netlink.NeighUpdate) (FDBEntry, bool) {
		// The same subscription carries IPv4 and IPv6 neighbours.
		if u.Family != unix.AF_BRIDGE || u.MasterIndex == 0 || len(u.HardwareAddr) != 6 {
			return FDBEntry{}, false
		}
		return FDBEntry{
			MAC: u.HardwareAddr, Bridge: u.MasterIndex, Port: u.LinkIndex,
			Permanent: u.State&netlink.NUD_PERMANENT != 0, Deleted: u.Type == unix.RTM_DELNEIGH,
		}, true
	}, ch, onErr)
}

// watch forwards a netlink subscription's updates, converted by conv (false:
// skip), to ch until ctx ends, and subscribes again with replay when the
// kernel ends the subscription (a receive buffer overrun).
func watch[U, T any](ctx context.Context, what string, sub func(replay bool, updates chan U, done chan struct{}) error,
	conv func(U) (T, bool), ch chan<- T, onErr func(error)) error {
	subscribe := func(replay bool) (chan U, chan struct{}, error) {
		updates := make(chan U, 256)
		done := make(chan struct{})
		if err := sub(replay, updates, done); err != nil {
			return nil, nil, mapErr("subscribe to "+what, err)
		}
		return updates, done, nil
	}
	updates, done, err := subscribe(false)
	if err != nil {
		return err
	}
	// forward reports false when ctx ended and true when the subscription did.
	forward := func() bool {
		for {
			select {
			case <-ctx.Done():
				return false
			case u, ok := <-updates:
				if !ok {
					return ctx.Err() == nil
				}
				v, ok := conv(u)
				if !ok {
					continue
				}
				select {
				case ch <- v:
				case <-ctx.Done():
					return false
				}
			}
		}
	}
	go func() {
		for {
			if !forward() {
				close(done)
				return
			}
			close(done)
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				if updates, done, err = subscribe(true); err == nil {
					break
				}
				onErr(err)
			}
		}
	}()
	return nil
}

// Addrs returns the IPv4 and IPv6 addresses on the interface that are in
// use: not tentative (DAD still running) nor failed DAD, which must not be
// announced.
func Addrs(name string) ([]netip.Addr, error) {
	l, err := byName(name)
	if err != nil {
		return nil, err
	}
	as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, mapErr("list addresses of "+name, err)
	}
	var out []netip.Addr
	for _, a := range as {
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// Neighbors returns the addresses the interface has (or recently had) a
// working neighbour entry for: the peers that must hear of a MAC change.
func Neighbors(name string) ([]netip.Addr, error) {
	l, err := byName(name)
	if err != nil {
		return nil, err
	}
	ns, err := netlink.NeighList(l.Attrs().Index, netlink.FAMILY_ALL)
	if err != nil {
		return nil, mapErr("list neighbours of "+name, err)
	}
	const live = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT
	var out []netip.Addr
	for _, n := range ns {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.State&live == 0 || ip.IsMulticast() {
			continue
		}
		out = append(out, ip.Unmap())
	}
	return out, nil
}

// Stacked returns the interfaces whose traffic rides on index: VLAN-style
// devices whose parent it is, and the bridge it is a port of.
func Stacked(index int) ([]Link, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, mapErr("list links", err)
	}
	var out []Link
	for _, l := range ls {
		a := l.Attrs()
		if a.ParentIndex == index && a.Index != index && l.Type() != "vxlan" {
			out = append(out, fromNetlink(l))
		}
		if a.Index == index && a.MasterIndex > 0 {
			if m, err := netlink.LinkByIndex(a.MasterIndex); err == nil {
				out = append(out, fromNetlink(m))
			}
		}
	}
	return out, nil
}

// Endpoints returns the MACs the bridge with ifindex bridge learned on ports
// other than the one with ifindex via: the endpoints (containers, VMs)
// behind it, each once.
func Endpoints(bridge, via int) ([]net.HardwareAddr, error) {
	fdb, err := netlink.NeighList(0, unix.AF_BRIDGE)
	if err != nil {
		return nil, mapErr("list bridge fdb", err)
	}
	var out []net.HardwareAddr
	seen := map[string]bool{}
	for _, n := range fdb {
		if n.MasterIndex != bridge || n.LinkIndex == via || n.State&netlink.NUD_PERMANENT != 0 || len(n.HardwareAddr) != 6 || seen[n.HardwareAddr.String()] {
			continue
		}
		seen[n.HardwareAddr.String()] = true
		out = append(out, n.HardwareAddr)
	}
	return out, nil
}
