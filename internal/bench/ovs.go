package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/lab"
)

// The OVS bond, what a user might run instead of a team: the host's eth4
// and eth5, on the same switch as the team's members, bonded by an Open
// vSwitch bridge on the userspace datapath (no kernel module needed)
// running in the host's namespace. The bridge's own port, a tap device,
// holds ovsCIDR; the peer holds ovsPeer.
const (
	ovsBridge   = "brbond"
	ovsBond     = "bond0"
	ovsCIDR     = "10.79.0.1/24"
	ovsPeer     = "10.79.0.2"
	ovsPeerCIDR = ovsPeer + "/24"
	// ovsMode: active-backup, the bond mode that moves traffic on carrier
	// loss alone. balance-slb would spread by source MAC, and the host has
	// one, so it would carry everything on one member as well;
	// balance-tcp needs LACP.
	ovsMode = "active-backup"
)

// ovsMembers are the host NICs in the OVS bond.
var ovsMembers = []string{"eth4", "eth5"}

// startOVS starts Open vSwitch in the host's namespace, builds the bond
// and waits until it carries traffic on both members.
//
// Offloads: OVS 3.1's userspace datapath reads the members with AF_PACKET
// and expects whole frames with their checksums filled in, but a frame
// the peer's TCP sent through veths and the Linux bridge arrives as one
// GSO frame of up to 64 KiB whose checksum is left to an offload that
// never happens, and OVS would pass it on broken. So the switch ports
// facing the bond's members have transmit checksumming off (which takes
// TSO with it): the kernel then segments and checksums each frame before
// it crosses the cable, as a physical NIC on the wire would have. The
// other way needs nothing: OVS asks for no offloads on its tap, so the
// host's stack hands it finished frames.
func (e *env) startOVS(ctx context.Context) error {
	dir := filepath.Join(e.dir, "ovs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("start ovs: %w", err)
	}
	var err error
	if e.ovs, err = e.lab.Host.StartOVS(dir); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"add-br", ovsBridge, "--", "set", "bridge", ovsBridge, "datapath_type=netdev"},
		{"add-bond", ovsBridge, ovsBond, ovsMembers[0], ovsMembers[1], "bond_mode=" + ovsMode,
			"other_config:bond-detect-mode=carrier"},
	} {
		if _, err := e.ovs.Vsctl(args...); err != nil {
			return fmt.Errorf("start ovs: %w", err)
		}
	}
	for _, m := range ovsMembers {
		port := e.lab.SwitchPort(e.lab.Host, m)
		if _, err := e.lab.Switch.Run("ethtool", "-K", port, "tx", "off"); err != nil {
			return fmt.Errorf("start ovs: %w", err)
		}
	}
	if err := e.lab.Host.SetUp(ovsBridge); err != nil {
		return err
	}
	if err := e.lab.Host.AddAddr(ovsBridge, ovsCIDR); err != nil {
		return err
	}
	if err := e.lab.Peer.AddAddr("eth0", ovsPeerCIDR); err != nil {
		return err
	}
	return e.waitBondUp(ctx)
}

// waitBondUp waits until the OVS bond has every member enabled. OVS
// reacts to carrier changes itself; the benchmark only polls to observe.
func (e *env) waitBondUp(ctx context.Context) error {
	return lab.Poll(ctx, statusWait, bondPoll, func(context.Context) (bool, error) {
		out, err := e.ovs.Appctl("bond/show", ovsBond)
		if err == nil && len(enabledMembers(out)) == len(ovsMembers) {
			return true, nil
		}
		return false, fmt.Errorf("wait for %s up: %v: %s", ovsBond, err, out)
	})
}

// bondPoll is how often waitBondUp asks; each ask starts ovs-appctl.
const bondPoll = 10 * time.Millisecond

// enabledMembers reads the members `ovs-appctl bond/show` reports enabled
// ("member eth4: enabled").
func enabledMembers(bondShow string) []string {
	var on []string
	for line := range strings.Lines(bondShow) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "member ")
		if !ok {
			continue
		}
		if name, state, ok := strings.Cut(rest, ": "); ok && state == "enabled" {
			on = append(on, name)
		}
	}
	return on
}

// activeMember returns the OVS bond's active member: the one carrying all
// of an active-backup bond's traffic, as OVS itself says. Unlike the
// team's transmit counters, it does not depend on the stream getting
// through, which on a busy machine OVS's userspace forwarding at times
// does not at the stream's rate.
func (e *env) activeMember(context.Context, uint64) (string, error) {
	out, err := e.ovs.Appctl("bond/show", ovsBond)
	if err != nil {
		return "", fmt.Errorf("find the active member: %w", err)
	}
	if m := activeIn(out); m != "" {
		return m, nil
	}
	return "", fmt.Errorf("find the active member: none in bond/show: %s", out)
}

// activeIn reads the active member from `ovs-appctl bond/show`: the
// member whose section says "active member".
func activeIn(bondShow string) string {
	member := ""
	for line := range strings.Lines(bondShow) {
		if rest, ok := strings.CutPrefix(line, "member "); ok {
			member, _, _ = strings.Cut(rest, ":")
			continue
		}
		if member != "" && strings.TrimSpace(line) == "active member" {
			return member
		}
	}
	return ""
}

// checkOVS is what the benchmark needs to build the OVS bond, checked
// before anything is built.
func checkOVS() error {
	if err := lab.OVSInstalled(); err != nil {
		return fmt.Errorf("the OVS bond: %w", err)
	}
	return nil
}
