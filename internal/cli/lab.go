package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/team"
)

// labDir is where `lab up` keeps the running lab's state file and its
// daemons' sockets, state and logs.
var labDir lab.RunDir = "/run/nicteam/lab"

const labUsage = `usage: nicteam lab COMMAND [ARGS]

The seed scenario in network namespaces: two compute nodes, each with
Team0 = eth1 + eth2 cabled to one switch and its own nicteamd, and a
container on each that reaches the other through a VXLAN tunnel between
the team addresses. Needs root.

  up [--switch learning|static] [--mac-policy keep|follow|auto] [--ipv6]
                        build the lab and leave it running
  status                teams, members, neighbour entries, switch table
  fail NODE IF          pull a cable (switch port down), e.g. fail node1 eth1
  restore NODE IF       plug it back in
  ping [--count N] [--interval D] [--from NODE]
                        ping between the containers
  down                  take the lab down
  demo                  pull node1's primary cable under a 1 ms ping on a
                        static switch, with MAC policy auto and then keep,
                        and print what happened (what make demo runs)

Run nicteam lab COMMAND --help for a command's options.
`

var labHelp = map[string]string{
	"up": `usage: nicteam lab up [--switch learning|static] [--mac-policy keep|follow|auto] [--ipv6]

Builds the seed topology and leaves it running: switch "sw"; nodes node1 and
node2, each with eth1 and eth2 cabled to the switch, a nicteamd and
Team0 = eth1,eth2 (underlay 10.10.0.1 and .2/24); containers c1 and c2
(10.20.0.1 and .2/24) on a VXLAN overlay (id 42) between the team addresses.
Namespaces are named <prefix>-sw, -node1, -node2, -c1, -c2; enter one with
ip netns exec. State, sockets and daemon logs are in ` + "/run/nicteam/lab" + `.

  --switch learning   an ordinary learning bridge (default)
  --switch static     like a VMware vSwitch: each port owns the MAC of its
                      NIC, nothing is learned, unknown unicast is dropped
  --mac-policy P      the teams' MAC policy: keep, follow or auto
                      (default: the daemon's, auto)
  --ipv6              underlay fd10::1,2/64 and overlay fd20::1,2/64
`,
	"status": `usage: nicteam lab status

Per node: the daemon, Team0's status and MAC, its members, and the other
node's neighbour entry for this node's underlay address (the MAC it sends
the tunnel to); then the switch's forwarding table.
`,
	"fail": `usage: nicteam lab fail NODE IF

Pulls the cable of NODE's IF (node1|node2, eth1|eth2): the switch port goes
down and the NIC loses carrier, as when a cable is unplugged.
`,
	"restore": `usage: nicteam lab restore NODE IF

Plugs the cable of NODE's IF back in.
`,
	"ping": `usage: nicteam lab ping [--count N] [--interval D] [--from NODE]

Pings from the container of --from (default node2, so c2 to c1) to the
other container and reports the requests never answered.

  --count N       requests (default 100)
  --interval D    between requests, a Go duration (default 10ms)
  --from NODE     node1 or node2 (default node2)
`,
	"down": `usage: nicteam lab down

Removes the teams through the daemons, stops the daemons and deletes every
namespace and pin of the lab that lab up built.
`,
	"demo": `usage: nicteam lab demo

The seed's failure, twice, each time in a fresh lab on a static switch
(ports own fixed MACs, as on a VMware vSwitch): a container pings the other
every 1 ms while node1's eth1, the primary whose MAC the team wears, is
pulled for 2 s. First with the default MAC policy (auto), then with keep.
Prints a timeline of the daemons' events, the lost pings and what the
network thought of node1's MAC, and a verdict. Takes about 15 s.
`,
}

func (c *command) lab(args []string) error {
	if len(args) == 0 {
		return usagef("lab needs a command: up, status, fail, restore, ping, down or demo (see nicteam lab --help)")
	}
	sub, rest := args[0], args[1:]
	var err error
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.out, labUsage)
		return nil
	case "up":
		err = c.labUp(rest)
	case "status":
		err = c.labStatus(rest)
	case "fail", "restore":
		err = c.labCable(sub, rest)
	case "ping":
		err = c.labPing(rest)
	case "down":
		err = c.labDown(rest)
	case "demo":
		err = c.labDemo(rest)
	default:
		return usagef("unknown lab command %q (want up, status, fail, restore, ping, down or demo)", sub)
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(c.out, labHelp[sub])
		return nil
	}
	return err
}

// labUpOptions are the flags of lab up.
type labUpOptions struct {
	Profile   lab.SwitchProfile
	MACPolicy string
	IPv6      bool
}

func parseLabUp(args []string) (labUpOptions, error) {
	fs := flag.NewFlagSet("lab up", flag.ContinueOnError)
	sw := fs.String("switch", string(lab.ProfileLearning), "switch profile: learning or static")
	policy := fs.String("mac-policy", "", "MAC policy: keep, follow or auto")
	ipv6 := fs.Bool("ipv6", false, "IPv6 underlay and overlay")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return labUpOptions{}, err
	}
	p, err := lab.ParseSwitchProfile(*sw)
	if err != nil {
		return labUpOptions{}, usagef("--switch: %v", err)
	}
	o := labUpOptions{Profile: p, IPv6: *ipv6}
	if *policy != "" {
		if _, err := team.ParseMACPolicy(*policy); err != nil {
			return labUpOptions{}, usagef("--mac-policy: %v", err)
		}
		o.MACPolicy = strings.ToLower(*policy)
	}
	return o, nil
}

func (c *command) labUp(args []string) error {
	o, err := parseLabUp(args)
	if err != nil {
		return err
	}
	daemon, err := lab.Prerequisites()
	if err != nil {
		return err
	}
	so := lab.SeedOptions{Profile: o.Profile, MACPolicy: o.MACPolicy, IPv6: o.IPv6, Daemon: daemon}
	st, s, err := labDir.Up(c.ctx, so, func(prefix string) {
		fmt.Fprintf(c.out, "building lab %s (%s switch, MAC policy %s, %s) ...\n", prefix, o.Profile, policyName(o.MACPolicy), family(o.IPv6))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "lab %s is up; containers c1 %s and c2 %s reach each other.\n\n", s.Prefix, s.Nodes[0].OverlayIP, s.Nodes[1].OverlayIP)
	return c.writeLabStatus(st, s)
}

func (c *command) labStatus(args []string) error {
	if _, err := parse(flag.NewFlagSet("lab status", flag.ContinueOnError), args, 0, 0); err != nil {
		return err
	}
	st, s, err := labDir.Open()
	if err != nil {
		return err
	}
	return c.writeLabStatus(st, s)
}

func policyName(p string) string {
	if p == "" {
		return "default"
	}
	return p
}

func family(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

func (c *command) writeLabStatus(st lab.RunState, s *lab.Seed) error {
	o := st.Seed.Options
	owners := s.MACOwners()
	fmt.Fprintf(c.out, "lab %s: %s switch, MAC policy %s, %s, up since %s\n",
		s.Prefix, o.Profile, policyName(o.MACPolicy), family(o.IPv6), st.Created.Format(time.TimeOnly))
	for i, n := range s.Nodes {
		fmt.Fprintln(c.out)
		running := "not running"
		if n.DaemonRuns() {
			running = "running"
		}
		fmt.Fprintf(c.out, "%s  (namespace %s)  nicteamd pid %d %s, log %s\n", n.Name, n.Host.NS, n.DaemonPID, running, n.LogPath)
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		t, terr := n.Client().Team(ctx, lab.TeamName)
		ms, merr := n.Client().Members(ctx, lab.TeamName)
		cancel()
		tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
		if terr != nil {
			fmt.Fprintf(tw, "  %s\t%v\n", lab.TeamName, terr)
		} else {
			mac, _ := s.TeamMAC(i + 1)
			fmt.Fprintf(tw, "  %s\t%s\tMAC %s\tMAC policy %s\t%s\n", t.Name, t.Status, owners.MAC(mac), t.MACPolicy, n.UnderlayIP)
		}
		if merr == nil {
			for _, m := range ms {
				mac, _ := s.NICMAC(i+1, m.Name)
				fmt.Fprintf(tw, "  %s\t%s\tMAC %s\t%s\tswitch port %s\n", m.Name, m.OperationalStatus, mac, m.FailureReason, s.SwitchPortOf(i+1, m.Name))
			}
		}
		tw.Flush()
		peer := s.Nodes[1-i].Name
		if nb, err := s.PeerNeighbor(i + 1); err != nil {
			fmt.Fprintf(c.out, "  %s's neighbour entry for %s: %v\n", peer, n.UnderlayIP, err)
		} else {
			fmt.Fprintf(c.out, "  %s's neighbour entry for %s: %s\n", peer, n.UnderlayIP, owners.Neighbor(nb))
		}
		fmt.Fprintf(c.out, "  container %s (namespace %s): %s\n", n.Container.Name, n.Container.NS, n.OverlayIP)
	}
	fmt.Fprintln(c.out)
	fdb, err := s.Switch.FDB()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "switch (namespace %s) forwarding table:\n", s.Switch.NS)
	writeFDB(c.out, "  ", fdb, owners)
	return nil
}

func writeFDB(w io.Writer, indent string, fdb []lab.FDBEntry, owners lab.MACOwners) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%sMAC\tport\tkind\towner\n", indent)
	for _, e := range fdb {
		kind := "learned"
		if e.Static {
			kind = "static"
		}
		owner := owners[e.MAC]
		if owner == "" {
			owner = "?"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\n", indent, e.MAC, e.Port, kind, owner)
	}
	tw.Flush()
}

// parseNodeNIC reads NODE IF.
func parseNodeNIC(pos []string) (int, string, error) {
	node, err := lab.NodeIndex(pos[0])
	if err != nil {
		return 0, "", usagef("%v", err)
	}
	if !slices.Contains(lab.SeedNICs, pos[1]) {
		return 0, "", usagef("unknown interface %q (want %s)", pos[1], strings.Join(lab.SeedNICs, " or "))
	}
	return node, pos[1], nil
}

func (c *command) labCable(verb string, args []string) error {
	pos, err := parse(flag.NewFlagSet("lab "+verb, flag.ContinueOnError), args, 2, 2)
	if err != nil {
		return err
	}
	node, nic, err := parseNodeNIC(pos)
	if err != nil {
		return err
	}
	_, s, err := labDir.Open()
	if err != nil {
		return err
	}
	port := s.SwitchPortOf(node, nic)
	if verb == "fail" {
		if err := s.Fail(node, nic); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "node%d %s: cable pulled (switch port %s down)\n", node, nic, port)
		return nil
	}
	if err := s.Restore(node, nic); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "node%d %s: cable plugged back in (switch port %s up)\n", node, nic, port)
	return nil
}

func (c *command) labPing(args []string) error {
	fs := flag.NewFlagSet("lab ping", flag.ContinueOnError)
	count := fs.Int("count", 100, "requests")
	interval := fs.Duration("interval", 10*time.Millisecond, "between requests")
	from := fs.String("from", "node2", "pinging node")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	node, err := lab.NodeIndex(*from)
	if err != nil {
		return usagef("--from: %v", err)
	}
	if *count < 1 || *interval <= 0 {
		return usagef("--count and --interval must be positive")
	}
	_, s, err := labDir.Open()
	if err != nil {
		return err
	}
	src, dst := s.Nodes[node-1], s.Nodes[2-node]
	fmt.Fprintf(c.out, "%s %s → %s %s: %d requests, one every %v\n", src.Container.Name, src.OverlayIP, dst.Container.Name, dst.OverlayIP, *count, *interval)
	res, err := s.ContainerPing(c.ctx, node, *interval, *count)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.out, res)
	return nil
}

func (c *command) labDown(args []string) error {
	if _, err := parse(flag.NewFlagSet("lab down", flag.ContinueOnError), args, 0, 0); err != nil {
		return err
	}
	st, err := labDir.Down()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "lab %s is down\n", st.Seed.Prefix)
	return nil
}

func (c *command) labDemo(args []string) error {
	if _, err := parse(flag.NewFlagSet("lab demo", flag.ContinueOnError), args, 0, 0); err != nil {
		return err
	}
	daemon, err := lab.Prerequisites()
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "nicteam-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)

	fmt.Fprint(c.out, `nicteam lab demo: the seed scenario

Two compute nodes, each with Team0 = eth1 + eth2 (SwitchIndependent, Dynamic)
cabled to one switch; a container on each; the containers talk through a
VXLAN tunnel between the team addresses 10.10.0.1 and 10.10.0.2. The switch
is static, like a VMware vSwitch: each port owns the MAC of its NIC, learns
nothing and drops unicast to any other MAC. c2 pings c1 every 1 ms; after
1 s node1's eth1 (the primary: the team wears its MAC) is pulled for 2 s.
`)
	outcomes, err := lab.RunDemo(c.ctx, daemon, root, demoReporter{c})
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted; the lab was taken down")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "\n%s\n", banner("What happened"))
	lab.WriteDemoReport(c.out, outcomes)
	return nil
}

func banner(s string) string {
	line := strings.Repeat("=", min(len([]rune(s))+8, 78))
	return line + "\n=== " + s + "\n" + line
}

// demoReporter prints the demo's steps as they happen.
type demoReporter struct{ c *command }

func (r demoReporter) Scenario(i, n int, sc lab.DemoScenario) {
	fmt.Fprintf(r.c.out, "\n%s\n", banner(fmt.Sprintf("Scenario %d of %d: %s", i, n, sc.Title)))
}

func (r demoReporter) Built(sc lab.DemoScenario, s *lab.Seed, took time.Duration) error {
	fmt.Fprintf(r.c.out, "lab %s built in %.1f s; c2 reaches c1.\n", s.Prefix, took.Seconds())
	if sc.ShowTeam {
		return r.c.showTeam(s)
	}
	return nil
}

func (r demoReporter) Pulling(plan lab.PullPlan) {
	fmt.Fprintf(r.c.out, "\nc2 pings c1 every %v; pulling node1 %s at +%v, plugging it back in %v later ...\n",
		plan.Interval, plan.NIC, plan.Before, plan.Down)
}

func (r demoReporter) Judged(o lab.DemoOutcome) {
	fmt.Fprintf(r.c.out, "\nTimeline (ms from the pull of node1 %s; node1's team MAC and how node2 and the switch see it in the snapshots)\n\n", o.Run.Plan.NIC)
	o.WriteTimeline(r.c.out)
	fmt.Fprintln(r.c.out)
	fmt.Fprintln(r.c.out, o.Verdict)
}

// showTeam prints node1's team as `nicteam get` and `nicteam adapters` do.
func (c *command) showTeam(s *lab.Seed) error {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	cl := s.Nodes[0].Client()
	t, err := cl.Team(ctx, lab.TeamName)
	if err != nil {
		return err
	}
	as, err := cl.Adapters(ctx, append([]string{lab.TeamName}, lab.SeedNICs...)...)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "\nnode1# nicteam get %s\n", lab.TeamName)
	writeTeams(c.out, []api.Team{t})
	fmt.Fprintf(c.out, "\nnode1# nicteam adapters %s %s\n", lab.TeamName, strings.Join(lab.SeedNICs, " "))
	writeAdapters(c.out, as)
	return nil
}
