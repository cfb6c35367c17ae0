// Package lab builds test and demo topologies out of network namespaces,
// veth pairs and Linux bridges: hosts with NICs cabled to switches, cables
// that can be pulled and plugged back, and processes running on the hosts.
//
// Everything a Lab makes lives in namespaces whose names start with its
// prefix, so parallel labs never collide and Close can remove all of it.
// Interfaces are created directly inside their namespaces, so nothing ever
// appears in the caller's namespace, not even for a moment.
//
// The OS is driven with the ip command rather than netlink calls: every
// step is one visible command, and a failure carries ip's own message.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/run/netns"

// ifNameMax is the longest Linux interface name (IFNAMSIZ - 1).
const ifNameMax = 15

// carrierTimeout bounds how long Connect waits for a new cable to come up.
const carrierTimeout = 5 * time.Second

// UniquePrefix returns base followed by four random hex digits, chosen so
// that no existing namespace starts with it. Keep base short: the prefix is
// handy in names with tight limits, such as interface names.
func UniquePrefix(base string) string {
	for {
		p := fmt.Sprintf("%s%04x", base, rand.N(1<<16))
		if m, _ := filepath.Glob(filepath.Join(netnsDir, p+"-*")); len(m) == 0 {
			return p
		}
	}
}

// Lab is a set of namespaces and the processes running in them.
type Lab struct {
	Prefix string

	mu     sync.Mutex
	netns  []string           // guarded by mu; every namespace created, oldest first
	ports  map[string]portRef // guarded by mu; by hostNIC(host, nic)
	procs  []*Proc            // guarded by mu; every process started
	closed bool               // guarded by mu
}

// portRef is the switch end of a host's cable.
type portRef struct {
	sw   *Switch
	port string
}

// Switch is a namespace holding one Linux bridge that behaves like a plain
// learning switch.
type Switch struct {
	Name   string // logical, e.g. "sw"
	NS     string // namespace name
	Bridge string // the bridge's interface name in NS

	ports map[string]bool // guarded by the lab's mu; port names in use
}

// Host is a namespace standing for one machine.
type Host struct {
	Name string // logical, e.g. "host", "peer", "node1"
	NS   string // namespace name
	// NICs are the cabled NICs in the order Connect made them; Connect
	// appends under lab.mu, so read it once the topology is built.
	NICs []string

	lab *Lab
}

// New returns an empty lab whose namespaces are named "<prefix>-<name>".
// Use UniquePrefix to pick the prefix.
func New(prefix string) *Lab {
	return &Lab{Prefix: prefix, ports: make(map[string]portRef)}
}

// AddSwitch creates a switch: a namespace with bridge "br0", up, STP off,
// no forward delay and no multicast snooping (so multicast is flooded like
// on a simple switch), MAC ageing at the kernel default. IPv6 is disabled
// in the namespace so the switch itself never sends a frame.
func (l *Lab) AddSwitch(name string) (*Switch, error) {
	ns, err := l.addNetns(name)
	if err != nil {
		return nil, err
	}
	// Before any interface exists, so that they all inherit it. -e: the
	// bridge-nf keys exist only when br_netfilter is built.
	if _, err := run("netns", "exec", ns, "sysctl", "-q", "-e", "-w",
		"net.ipv6.conf.all.disable_ipv6=1",
		"net.ipv6.conf.default.disable_ipv6=1",
		"net.bridge.bridge-nf-call-iptables=0",
		"net.bridge.bridge-nf-call-ip6tables=0",
		"net.bridge.bridge-nf-call-arptables=0"); err != nil {
		return nil, fmt.Errorf("add switch %s: %w", name, err)
	}
	// vlan_filtering is off by default; it is not named here because
	// kernels built without CONFIG_BRIDGE_VLAN_FILTERING refuse the option.
	if _, err := run("-n", ns, "link", "add", "br0", "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return nil, fmt.Errorf("add switch %s: %w", name, err)
	}
	if _, err := run("-n", ns, "link", "set", "br0", "up"); err != nil {
		return nil, fmt.Errorf("add switch %s: %w", name, err)
	}
	return &Switch{Name: name, NS: ns, Bridge: "br0", ports: make(map[string]bool)}, nil
}

// AddHost creates a host: a namespace with lo up. Duplicate address
// detection is off in it, so IPv6 addresses are usable the moment they are
// added instead of a second later.
func (l *Lab) AddHost(name string) (*Host, error) {
	ns, err := l.addNetns(name)
	if err != nil {
		return nil, err
	}
	if _, err := run("netns", "exec", ns, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.accept_dad=0",
		"net.ipv6.conf.default.accept_dad=0"); err != nil {
		return nil, fmt.Errorf("add host %s: %w", name, err)
	}
	if _, err := run("-n", ns, "link", "set", "lo", "up"); err != nil {
		return nil, fmt.Errorf("add host %s: %w", name, err)
	}
	return &Host{Name: name, NS: ns, lab: l}, nil
}

func (l *Lab) addNetns(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/ ") {
		return "", fmt.Errorf("add netns: invalid name %q", name)
	}
	ns := l.Prefix + "-" + name
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", fmt.Errorf("add netns %s: lab is closed", ns)
	}
	// Under the lock, so that Close cannot miss a namespace being made.
	if _, err := run("netns", "add", ns); err != nil {
		return "", err
	}
	l.netns = append(l.netns, ns)
	return ns, nil
}

// Connect cables h's NIC nic to sw: a veth pair with nic in h's namespace
// and the other end in sw's, enslaved to the bridge. Both ends are up and
// the cable has carrier when Connect returns. The switch port is named
// "<host>-<nic>", shortened and numbered when that is too long or taken.
func (l *Lab) Connect(h *Host, nic string, sw *Switch) error {
	if nic == "" || len(nic) > ifNameMax {
		return fmt.Errorf("connect %s %s: invalid interface name", h.Name, nic)
	}
	key := hostNIC(h, nic)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("connect %s %s: lab is closed", h.Name, nic)
	}
	if _, dup := l.ports[key]; dup {
		l.mu.Unlock()
		return fmt.Errorf("connect %s %s: already connected", h.Name, nic)
	}
	port := portName(h.Name, nic, sw.ports)
	sw.ports[port] = true
	l.ports[key] = portRef{sw: sw, port: port}
	l.mu.Unlock()

	if _, err := run("-n", h.NS, "link", "add", nic, "type", "veth",
		"peer", "name", port, "netns", sw.NS); err != nil {
		l.mu.Lock()
		delete(sw.ports, port)
		delete(l.ports, key)
		l.mu.Unlock()
		return fmt.Errorf("connect %s %s: %w", h.Name, nic, err)
	}
	l.mu.Lock()
	h.NICs = append(h.NICs, nic)
	l.mu.Unlock()
	if _, err := run("-n", sw.NS, "link", "set", port, "master", sw.Bridge, "up"); err != nil {
		return fmt.Errorf("connect %s %s: %w", h.Name, nic, err)
	}
	if err := h.SetUp(nic); err != nil {
		return fmt.Errorf("connect %s %s: %w", h.Name, nic, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), carrierTimeout)
	defer cancel()
	if err := h.WaitCarrier(ctx, nic, true); err != nil {
		return fmt.Errorf("connect %s %s: %w", h.Name, nic, err)
	}
	return nil
}

// Cable connects a's NIC nic directly to b's NIC port, without a switch:
// a veth pair with one end in each namespace, both up. Use it to put a
// switch of another kind (Open vSwitch, a host's team) at one end, or to
// give a host interfaces that only need a carrier.
func (l *Lab) Cable(a *Host, nic string, b *Host, port string) error {
	if _, err := run("-n", a.NS, "link", "add", nic, "type", "veth", "peer", "name", port, "netns", b.NS); err != nil {
		return fmt.Errorf("cable %s %s to %s %s: %w", a.Name, nic, b.Name, port, err)
	}
	if err := a.SetUp(nic); err != nil {
		return fmt.Errorf("cable %s %s to %s %s: %w", a.Name, nic, b.Name, port, err)
	}
	if err := b.SetUp(port); err != nil {
		return fmt.Errorf("cable %s %s to %s %s: %w", a.Name, nic, b.Name, port, err)
	}
	return nil
}

func hostNIC(h *Host, nic string) string { return h.NS + "/" + nic }

// portName picks a switch port name for host's nic that is a valid
// interface name and not in taken.
func portName(host, nic string, taken map[string]bool) string {
	base := host + "-" + nic
	if len(base) <= ifNameMax && !taken[base] {
		return base
	}
	for i := 1; ; i++ {
		n := strconv.Itoa(i)
		name := base[:min(len(base), ifNameMax-len(n))] + n
		if !taken[name] {
			return name
		}
	}
}

// SwitchPort returns the switch-side interface of h's nic, or "" if nic
// was not connected by Connect.
func (l *Lab) SwitchPort(h *Host, nic string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ports[hostNIC(h, nic)].port
}

// Fail pulls h's cable on nic: the switch port goes down, so nic loses
// carrier (NO-CARRIER, IFF_LOWER_UP cleared) while staying administratively
// up, as when a cable is unplugged or the switch port dies. The kernel
// clears the carrier synchronously, so it is gone when Fail returns.
func (l *Lab) Fail(h *Host, nic string) error {
	return l.setPort(h, nic, "down")
}

// Restore plugs h's cable on nic back in. The carrier is back when Restore
// returns.
func (l *Lab) Restore(h *Host, nic string) error {
	return l.setPort(h, nic, "up")
}

func (l *Lab) setPort(h *Host, nic, state string) error {
	l.mu.Lock()
	ref, ok := l.ports[hostNIC(h, nic)]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("set %s %s %s: not connected to a switch", h.Name, nic, state)
	}
	if _, err := run("-n", ref.sw.NS, "link", "set", ref.port, state); err != nil {
		return fmt.Errorf("set %s %s %s: %w", h.Name, nic, state, err)
	}
	return nil
}

// Close stops every process the lab started and deletes every namespace it
// made, which destroys the interfaces in them. It goes on after errors and
// returns them all. Calling it again does nothing.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, nss := l.procs, l.netns
	l.procs, l.netns = nil, nil
	l.mu.Unlock()

	var errs []error
	if err := stopAll(procs); err != nil {
		errs = append(errs, fmt.Errorf("close lab %s: %w", l.Prefix, err))
	}
	for i := len(nss) - 1; i >= 0; i-- {
		// A namespace outlives its name while a process is in it, and keeps
		// its interfaces; so whatever still runs there (a command a caller
		// started with Exec and did not wait for) goes first.
		if err := killNetnsPids(nss[i]); err != nil {
			errs = append(errs, fmt.Errorf("close lab %s: %w", l.Prefix, err))
		}
		if _, err := run("netns", "delete", nss[i]); err != nil {
			errs = append(errs, fmt.Errorf("close lab %s: %w", l.Prefix, err))
		}
	}
	return errors.Join(errs...)
}

func killNetnsPids(ns string) error {
	out, err := run("netns", "pids", ns)
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("ip netns pids %s: unexpected output %q", ns, f)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill pid %d in %s: %w", pid, ns, err)
		}
	}
	return nil
}

// run runs ip with args and returns its standard output.
func run(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ip %s: %s: %w", strings.Join(args, " "), strings.TrimSpace(stderr.String()), err)
	}
	return stdout.String(), nil
}

// nsPath is the file that names ns, for nsenter and netns.GetFromPath.
func nsPath(ns string) string { return filepath.Join(netnsDir, ns) }
