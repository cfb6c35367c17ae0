package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IPConfig is what an operator configured on an interface at layer 3: its
// addresses and the routes through it, as far as they can be put back on a
// new interface of the same name. What the kernel derives itself (IPv6
// link-local addresses, routes of the connected prefixes, the local table)
// is left out: it comes back with the addresses.
type IPConfig struct {
	Addrs  []netip.Prefix `json:"addrs,omitempty"`
	Routes []Route        `json:"routes,omitempty"`
}

// Route is one unicast route through an interface.
type Route struct {
	Dst      netip.Prefix `json:"dst"`
	Gateway  netip.Addr   `json:"gateway,omitzero"`
	Src      netip.Addr   `json:"src,omitzero"`
	Table    int          `json:"table,omitempty"`
	Metric   int          `json:"metric,omitempty"`
	Scope    uint8        `json:"scope,omitempty"`
	Protocol int          `json:"protocol,omitempty"`
}

// Equal reports whether c and o hold the same addresses and routes in the
// same order.
func (c IPConfig) Equal(o IPConfig) bool {
	return slices.Equal(c.Addrs, o.Addrs) && slices.Equal(c.Routes, o.Routes)
}

// IPConfigOf reads the addresses and routes of the interface with ifindex
// index.
func IPConfigOf(index int) (IPConfig, error) {
	var c IPConfig
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return c, mapErr(fmt.Sprintf("read IP config of %d", index), err)
	}
	as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return c, mapErr("list addresses of "+l.Attrs().Name, err)
	}
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.Flags&unix.IFA_F_DADFAILED != 0 {
			continue
		}
		ip = ip.Unmap()
		if ip.Is6() && ip.IsLinkLocalUnicast() {
			continue
		}
		ones, _ := a.Mask.Size()
		c.Addrs = append(c.Addrs, netip.PrefixFrom(ip, ones))
	}
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: index, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return c, mapErr("list routes of "+l.Attrs().Name, err)
	}
	for _, r := range rs {
		if r.Table == unix.RT_TABLE_LOCAL || r.Type != unix.RTN_UNICAST || len(r.MultiPath) > 0 ||
			r.Protocol == unix.RTPROT_KERNEL || r.Protocol == unix.RTPROT_RA || r.Dst == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		rt := Route{Dst: netip.PrefixFrom(dst.Unmap(), ones), Table: r.Table, Metric: r.Priority, Scope: uint8(r.Scope), Protocol: int(r.Protocol)}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			rt.Gateway = gw.Unmap()
		}
		if src, ok := netip.AddrFromSlice(r.Src); ok {
			rt.Src = src.Unmap()
		}
		c.Routes = append(c.Routes, rt)
	}
	return c, nil
}

// ApplyIPConfig puts c on the interface called name: addresses first, so
// that the routes find their gateways on a connected prefix. It goes on
// after an error and returns them all.
func ApplyIPConfig(name string, c IPConfig) error {
	l, err := byName(name)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range c.Addrs {
		if err := netlink.AddrReplace(l, &netlink.Addr{IPNet: ipNet(a)}); err != nil {
			errs = append(errs, mapErr(fmt.Sprintf("add address %s to %s", a, name), err))
		}
	}
	for _, r := range c.Routes {
		nr := &netlink.Route{
			LinkIndex: l.Attrs().Index, Dst: ipNet(r.Dst), Table: r.Table, Priority: r.Metric,
			Scope: netlink.Scope(r.Scope), Protocol: netlink.RouteProtocol(r.Protocol),
		}
		if r.Gateway.IsValid() {
			nr.Gw = r.Gateway.AsSlice()
		}
		if r.Src.IsValid() {
			nr.Src = r.Src.AsSlice()
		}
		if err := netlink.RouteReplace(nr); err != nil {
			errs = append(errs, mapErr(fmt.Sprintf("add route %s to %s", r.Dst, name), err))
		}
	}
	return errors.Join(errs...)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// WatchIP sends to ch the ifindex of every interface whose addresses or
// routes change, until ctx ends; like Watch it never polls and, after a
// broken subscription, replays what exists.
func WatchIP(ctx context.Context, ch chan<- int, onErr func(error)) error {
	err := watch(ctx, "address events", func(replay bool, updates chan netlink.AddrUpdate, done chan struct{}) error {
		return netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
			ErrorCallback: onErr, ListExisting: replay, ReceiveBufferSize: 1 << 20,
		})
	}, func(u netlink.AddrUpdate) (int, bool) { return u.LinkIndex, u.LinkIndex > 0 }, ch, onErr)
	if err != nil {
		return err
	}
	return watch(ctx, "route events", func(replay bool, updates chan netlink.RouteUpdate, done chan struct{}) error {
		return netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{
			ErrorCallback: onErr, ListExisting: replay, ReceiveBufferSize: 1 << 20,
		})
	}, func(u netlink.RouteUpdate) (int, bool) { return u.LinkIndex, u.LinkIndex > 0 }, ch, onErr)
}
