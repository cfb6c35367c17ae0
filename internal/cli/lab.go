package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// demoScenario is one of lab demo's runs.
type demoScenario struct {
	Title     string
	MACPolicy string // "" for the daemon's default
	ShowTeam  bool   // print get and adapters before the pull
}

// demoOutcome is what a scenario showed.
type demoOutcome struct {
	Scenario demoScenario
	Run      *lab.PullRun
	Owners   lab.MACOwners
	Verdict  verdict
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
	scenarios := []demoScenario{
		{Title: "static switch, MAC policy auto (the default)", ShowTeam: true},
		{Title: "static switch, MAC policy keep", MACPolicy: "keep"},
	}
	var outcomes []demoOutcome
	for i, sc := range scenarios {
		fmt.Fprintf(c.out, "\n%s\n", banner(fmt.Sprintf("Scenario %d of %d: %s", i+1, len(scenarios), sc.Title)))
		o, err := c.demoRun(sc, lab.SeedOptions{
			Profile: lab.ProfileStatic, MACPolicy: sc.MACPolicy, Daemon: daemon,
			StateRoot: filepath.Join(root, fmt.Sprint(i+1)),
		})
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted; the lab was taken down")
		}
		if err != nil {
			return err
		}
		outcomes = append(outcomes, o)
	}
	fmt.Fprintf(c.out, "\n%s\n", banner("What happened"))
	writeDemoSummary(c.out, outcomes)
	fmt.Fprintln(c.out)
	fmt.Fprint(c.out, explain(outcomes[1], outcomes[0]))
	return nil
}

func banner(s string) string {
	line := strings.Repeat("=", min(len([]rune(s))+8, 78))
	return line + "\n=== " + s + "\n" + line
}

// demoRun builds a lab, runs the pull in it and tears it down, also on
// error and on Ctrl-C.
func (c *command) demoRun(sc demoScenario, so lab.SeedOptions) (o demoOutcome, err error) {
	o.Scenario = sc
	start := time.Now()
	s, err := lab.NewSeed(lab.UniquePrefix("nd"), so)
	if err != nil {
		return o, err
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("tear down lab %s: %w", s.Prefix, cerr)
		}
	}()
	if err := c.ctx.Err(); err != nil {
		return o, err
	}
	fmt.Fprintf(c.out, "lab %s built in %.1f s; c2 reaches c1.\n", s.Prefix, time.Since(start).Seconds())
	o.Owners = s.MACOwners()
	if sc.ShowTeam {
		if err := c.showTeam(s); err != nil {
			return o, err
		}
	}
	plan := lab.DefaultPullPlan()
	fmt.Fprintf(c.out, "\nc2 pings c1 every %v; pulling node1 %s at +%v, plugging it back in %v later ...\n",
		plan.Interval, plan.NIC, plan.Before, plan.Down)
	run, err := s.Pull(c.ctx, plan)
	if err != nil {
		return o, err
	}
	o.Run = run
	o.Verdict = judge(run)
	fmt.Fprintf(c.out, "\nTimeline (ms from the pull of node1 %s; node1's team MAC and how node2 and the switch see it in the snapshots)\n\n", plan.NIC)
	writeTimeline(c.out, buildTimeline(run, o.Owners))
	fmt.Fprintln(c.out)
	fmt.Fprintln(c.out, o.Verdict.line())
	return o, nil
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

// timelineRow is one line of the timeline, with continuation lines.
type timelineRow struct {
	At     time.Duration // from the pull
	Source string
	Text   string
	More   []string
}

// maxLossRows bounds the ping-loss rows of a timeline.
const maxLossRows = 12

// outage is a run of ping requests never answered.
type outage struct {
	From, To int       // seq, inclusive
	Start    time.Time // when From went out
	// End is when the first request answered after the run went out; zero
	// if none was.
	End time.Time
}

func (o outage) count() int { return o.To - o.From + 1 }

// outages returns the runs of unanswered requests, in order.
func outages(run *lab.PullRun) []outage {
	var os []outage
	for _, r := range run.Ping.MissingRanges() {
		o := outage{From: r.From, To: r.To}
		if r.From < len(run.Sent) {
			o.Start = run.Sent[r.From]
		}
		if r.To+1 < len(run.Sent) {
			o.End = run.Sent[r.To+1]
		}
		os = append(os, o)
	}
	return os
}

// buildTimeline merges the pull and restore, both daemons' events, the
// lost pings and the snapshots into rows ordered by time.
func buildTimeline(run *lab.PullRun, owners lab.MACOwners) []timelineRow {
	rel := func(t time.Time) time.Duration { return t.Sub(run.Pulled) }
	p := run.Plan
	node := fmt.Sprintf("node%d", p.Node)
	var rows []timelineRow
	first := run.Start
	if len(run.Sent) > 1 && !run.Sent[1].IsZero() {
		first = run.Sent[1]
	}
	rows = append(rows, timelineRow{At: rel(first), Source: "ping",
		Text: fmt.Sprintf("%s → %s starts, one request every %v", run.From, run.To, p.Interval)})
	if len(run.Sent) > 1 {
		last := run.Sent[len(run.Sent)-1]
		rows = append(rows, timelineRow{At: rel(last), Source: "ping",
			Text: fmt.Sprintf("last request (seq %d); %d of %d answered", len(run.Sent)-1, run.Ping.Received, run.Ping.Transmitted)})
	}
	rows = append(rows,
		timelineRow{At: 0, Source: "lab", Text: fmt.Sprintf("%s %s: cable pulled (switch port down, took %s)", node, p.NIC, micro(run.PullTook))},
		timelineRow{At: rel(run.Restored), Source: "lab", Text: fmt.Sprintf("%s %s: cable plugged back in (took %s)", node, p.NIC, micro(run.RestoreTook))},
	)
	for _, e := range run.Events {
		text := e.Team + " " + e.Kind
		if e.Member != "" {
			text += " " + e.Member
		}
		if e.Detail != "" {
			text += ": " + e.Detail
		}
		rows = append(rows, timelineRow{At: rel(e.Time), Source: e.Node, Text: text})
	}
	os := outages(run)
	for i, o := range os {
		if i == maxLossRows {
			rest := 0
			for _, o := range os[i:] {
				rest += o.count()
			}
			rows = append(rows, timelineRow{At: rel(o.Start), Source: "ping",
				Text: fmt.Sprintf("… %d more runs of lost requests, %d requests in all", len(os)-i, rest)})
			break
		}
		seqs := fmt.Sprintf("seq %d", o.From)
		if o.To != o.From {
			seqs = fmt.Sprintf("seq %d–%d", o.From, o.To)
		}
		text := fmt.Sprintf("no reply from here: %s (%s) lost", seqs, plural(o.count(), "request"))
		rows = append(rows, timelineRow{At: rel(o.Start), Source: "ping", Text: text})
		if !o.End.IsZero() {
			rows = append(rows, timelineRow{At: rel(o.End), Source: "ping",
				Text: fmt.Sprintf("replies again from seq %d, after %s without", o.To+1, millis(o.End.Sub(o.Start)))})
		}
	}
	for _, s := range run.Snapshots {
		rows = append(rows, timelineRow{At: rel(s.Time), Source: "snapshot", Text: s.Label, More: snapshotLines(s, p, owners)})
	}
	slices.SortStableFunc(rows, func(a, b timelineRow) int {
		switch {
		case a.At < b.At:
			return -1
		case a.At > b.At:
			return 1
		}
		return 0
	})
	return rows
}

func snapshotLines(s lab.Snapshot, p lab.PullPlan, owners lab.MACOwners) []string {
	node, peer := fmt.Sprintf("node%d", p.Node), fmt.Sprintf("node%d", 3-p.Node)
	tw := &strings.Builder{}
	w := tabwriter.NewWriter(tw, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "%s %s MAC\t%s\n", node, lab.TeamName, owners.MAC(s.TeamMAC))
	fmt.Fprintf(w, "%s's neighbour %s\t%s\n", peer, s.Neighbor.IP, owners.Neighbor(s.Neighbor))
	for i, e := range s.FDB {
		label := ""
		if i == 0 {
			label = "switch table"
		}
		kind := "learned"
		if e.Static {
			kind = "static"
		}
		fmt.Fprintf(w, "%s\t%s → port %s (%s)\n", label, owners.MAC(e.MAC), e.Port, kind)
	}
	if len(s.FDB) == 0 {
		fmt.Fprintf(w, "switch table\tno entry for %s's MACs\n", node)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "error\t%s\n", e)
	}
	w.Flush()
	return strings.Split(strings.TrimRight(tw.String(), "\n"), "\n")
}

// micro spells d in µs.
func micro(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

// millis spells d in ms with µs precision.
func millis(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func writeTimeline(w io.Writer, rows []timelineRow) {
	const timeWidth = 10
	fmt.Fprintf(w, "  %*s  %-8s  %s\n", timeWidth, "ms", "source", "what")
	fmt.Fprintf(w, "  %*s  %-8s  %s\n", timeWidth, strings.Repeat("-", timeWidth), "--------", "----")
	for _, r := range rows {
		fmt.Fprintf(w, "  %*.3f  %-8s  %s\n", timeWidth, float64(r.At.Microseconds())/1000, r.Source, r.Text)
		for _, m := range r.More {
			fmt.Fprintf(w, "  %*s  %-8s    %s\n", timeWidth, "", "", m)
		}
	}
}

// verdict is whether the seed's failure happened in a run: container
// traffic stopped while the cable was out although the other NIC was up.
type verdict struct {
	Lost, Sent int // all requests
	// WindowLost of WindowSent requests were lost between a grace period
	// after the pull and the restore.
	WindowLost, WindowSent int
	Longest                time.Duration // the longest outage
	Happened               bool
	Ping                   lab.PingResult
}

// failoverGrace is how long after the pull traffic may still be lost
// without that counting as the seed's failure.
const failoverGrace = 250 * time.Millisecond

func judge(run *lab.PullRun) verdict {
	v := verdict{Lost: run.Ping.Lost(), Sent: run.Ping.Transmitted, Ping: run.Ping}
	v.WindowLost, v.WindowSent = run.LostBetween(run.Pulled.Add(failoverGrace), run.Restored)
	v.Happened = v.WindowSent > 0 && 2*v.WindowLost > v.WindowSent
	for _, o := range outages(run) {
		end := o.End
		if end.IsZero() && len(run.Sent) > 1 {
			end = run.Sent[len(run.Sent)-1]
		}
		v.Longest = max(v.Longest, end.Sub(o.Start))
	}
	return v
}

func (v verdict) line() string {
	s := fmt.Sprintf("%s; longest outage %s.\n", v.Ping, millis(v.Longest))
	if v.Happened {
		return s + "The seed's failure HAPPENED: c2 could not reach c1 while node1's eth1 was out, although eth2 was up."
	}
	return s + "The seed's failure did NOT happen: traffic went on over eth2 while eth1 was out."
}

func writeDemoSummary(w io.Writer, os []demoOutcome) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tpings lost\tlongest outage\tseed's failure")
	fmt.Fprintln(tw, "--------\t----------\t--------------\t--------------")
	for _, o := range os {
		happened := "did not happen"
		if o.Verdict.Happened {
			happened = "happened"
		}
		fmt.Fprintf(tw, "%s\t%d of %d\t%s\t%s\n", o.Scenario.Title, o.Verdict.Lost, o.Verdict.Sent, millis(o.Verdict.Longest), happened)
	}
	tw.Flush()
	fmt.Fprintln(w, "(while requests go unanswered ping sends one every 10 ms, not every 1 ms)")
}

// snapshotAt returns the first snapshot taken in [from, to).
func snapshotAt(run *lab.PullRun, from, to time.Time) (lab.Snapshot, bool) {
	for _, s := range run.Snapshots {
		if !s.Time.Before(from) && s.Time.Before(to) {
			return s, true
		}
	}
	return lab.Snapshot{}, false
}

// explain says why keep failed and what auto did differently, from what
// the snapshots of each run saw.
func explain(keep, auto demoOutcome) string {
	var b strings.Builder
	p := keep.Run.Plan
	node, peer := fmt.Sprintf("node%d", p.Node), fmt.Sprintf("node%d", 3-p.Node)
	pulled := node + " " + p.NIC // as owners names it

	fmt.Fprintf(&b, "Why c2 lost c1 with MAC policy keep:\n")
	if k, ok := snapshotAt(keep.Run, keep.Run.Pulled, keep.Run.Restored); ok {
		fmt.Fprintf(&b, "  - %s's %s kept the MAC %s while the cable was out.\n", node, lab.TeamName, keep.Owners.MAC(k.TeamMAC))
		fmt.Fprintf(&b, "  - %s's neighbour entry for %s still said %s,\n", peer, k.Neighbor.IP, keep.Owners.Neighbor(k.Neighbor))
		fmt.Fprintf(&b, "    so %s kept sending the tunnel to that MAC.\n", peer)
		if keep.Owners[k.Neighbor.MAC] == pulled {
			fmt.Fprintf(&b, "  - The static switch delivers that MAC only to the port of %s, whose cable\n", pulled)
			fmt.Fprintf(&b, "    was out; it neither learns where a MAC went nor floods unknown unicast, so\n")
			fmt.Fprintf(&b, "    every frame was dropped although %s's other NIC was up: the seed's failure.\n", node)
		}
	}
	if e, ok := firstEvent(keep.Run, node, api.EventAnnounced); ok {
		fmt.Fprintf(&b, "  - nicteamd did announce the MAC from %s (+%s), which tells a learning switch\n", e.Member, millis(e.Time.Sub(keep.Run.Pulled)))
		fmt.Fprintf(&b, "    where it went; a static switch does not listen.\n")
	}
	if !keep.Verdict.Happened {
		fmt.Fprintf(&b, "  (This time traffic went on all the same: %s.)\n", keep.Verdict.Ping)
	}

	fmt.Fprintf(&b, "\nWhat auto did differently:\n")
	before, okB := snapshotAt(auto.Run, time.Time{}, auto.Run.Pulled)
	after, okA := snapshotAt(auto.Run, auto.Run.Pulled, auto.Run.Restored)
	nb := auto.Owners.Neighbor(after.Neighbor)
	switch {
	case !okB || !okA:
		fmt.Fprintf(&b, "  (no snapshots to compare)\n")
	case after.TeamMAC != before.TeamMAC && after.Neighbor.MAC == after.TeamMAC:
		fmt.Fprintf(&b, "  - %s's %s moved from %s to %s\n", node, lab.TeamName, auto.Owners.MAC(before.TeamMAC), auto.Owners.MAC(after.TeamMAC))
		if e, ok := firstEvent(auto.Run, node, api.EventMACChanged); ok {
			fmt.Fprintf(&b, "    %s after the pull", millis(e.Time.Sub(auto.Run.Pulled)))
			if v, ok := firstEvent(auto.Run, node, api.EventVerified); ok {
				fmt.Fprintf(&b, " (%s)", v.Detail)
			}
			fmt.Fprintf(&b, ",\n")
		}
		fmt.Fprintf(&b, "    and told its peers; %s's neighbour entry followed (%s),\n", peer, nb)
		fmt.Fprintf(&b, "    and the switch delivers that MAC to a port whose cable is in.\n")
	case after.TeamMAC != before.TeamMAC:
		fmt.Fprintf(&b, "  - %s's %s moved from %s to %s,\n", node, lab.TeamName, auto.Owners.MAC(before.TeamMAC), auto.Owners.MAC(after.TeamMAC))
		fmt.Fprintf(&b, "    but %s's neighbour entry still said %s.\n", peer, nb)
	case after.Neighbor.MAC != before.Neighbor.MAC:
		fmt.Fprintf(&b, "  - %s kept its MAC, and %s's neighbour entry changed to %s.\n", lab.TeamName, peer, nb)
	default:
		fmt.Fprintf(&b, "  - Nothing: %s kept %s,\n", lab.TeamName, auto.Owners.MAC(after.TeamMAC))
		fmt.Fprintf(&b, "    and %s's neighbour entry still said %s.\n", peer, nb)
	}
	if auto.Verdict.Happened {
		fmt.Fprintf(&b, "  - So auto failed the same way: %s, longest outage %s.\n", auto.Verdict.Ping, millis(auto.Verdict.Longest))
	} else {
		fmt.Fprintf(&b, "  - Traffic went on over %s's other NIC: %s, longest outage %s.\n", node, auto.Verdict.Ping, millis(auto.Verdict.Longest))
	}
	return b.String()
}

// firstEvent returns node's first event of kind between the pull and the
// restore.
func firstEvent(run *lab.PullRun, node, kind string) (lab.NodeEvent, bool) {
	for _, e := range run.Events {
		if e.Node == node && e.Kind == kind && !e.Time.Before(run.Pulled) && e.Time.Before(run.Restored) {
			return e, true
		}
	}
	return lab.NodeEvent{}, false
}

// plural spells n things: "1 request", "3 requests".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
