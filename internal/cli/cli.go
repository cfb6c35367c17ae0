// Package cli is the nicteam command line: cmdlet-like verbs over the
// daemon's API, listings laid out like the NetLbfo cmdlets, JSON with -o json.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/nicteam/nicteam/internal/api"
)

const usage = `usage: nicteam [--socket PATH] COMMAND [ARGS]

NIC teaming for Linux, managed like the Windows NetLbfo cmdlets.

Teams:
  new NAME --members A,B[,...] [--mode MODE] [--lb ALG] [--standby IF] [--up-delay D]
      [--mac-policy auto|keep|follow] [--notify-count N] [--notify-interval D] [--verify-timeout D]
      [--lacp-timer fast|slow] [--lacp-system-priority N] [--lacp-key N] [--lacp-port-priority N]
      [--min-links N] [--flowlet-gap D] [--rebalance-interval D]
                        create a team (New-NetLbfoTeam): 1 to 64 members, at most one
                        standby; names are interface names (at most 15 bytes)
  get [NAME]            show teams (Get-NetLbfoTeam)
  set NAME [--mode MODE] [--lb ALG] [--up-delay D] [--mac-policy P] [--notify-… ] [--lacp-… ]
      [--min-links N] [--flowlet-gap D] [--rebalance-interval D]
                        change a team (Set-NetLbfoTeam)
  lacp NAME             LACP actor and partner per member: system, key, port, state bits, mux
  ports NAME            endpoints behind a hyperv-port or dynamic team (container and VM
                        MACs on a bridge above it) and the member each is pinned to
  rm NAME               remove a team and restore its members (Remove-NetLbfoTeam)
  apply -f FILE [--prune] [--dry-run]
                        make the teams FILE (YAML, - for stdin) names what it declares:
                        create them or change them; --prune also removes the teams it does
                        not name; --dry-run prints the changes and makes none
  export                print the teams as a file apply takes (settings only, by name)

Members and adapters:
  members [NAME]        show members (Get-NetLbfoTeamMember)
  member add NAME IF [--standby]     add a member (Add-NetLbfoTeamMember)
  member remove NAME IF              remove a member (Remove-NetLbfoTeamMember)
  member set NAME IF --standby|--active
                        change a member's administrative mode
  adapters [NAME...]    show interfaces (Get-NetAdapter)

Events and statistics:
  events [--follow]     timestamped log of failures, restorations, status changes, bucket moves,
                        and what was done to the teams' interfaces outside nicteam (renames,
                        deletions, MTU and MAC changes, the team NIC deleted or set down)
  stats NAME [--watch] [--interval D]
                        per-member tx/rx rates and the load per bucket

Lab (root; see nicteam lab --help):
  lab up|status|fail|restore|ping|down
                        the seed scenario in network namespaces, left running
  lab demo              a cable pulled under a 1 ms ping, with the timeline

MODE: switch-independent (default), static, lacp (IEEE 802.1AX, always active;
      --lacp-timer fast (default: a PDU every second, 3 s timeout) or slow (30 s, 90 s)).
ALG:  dynamic (default), transport-ports, ip-addresses, mac-addresses, hyperv-port.
      hyperv-port pins each endpoint behind the team (a MAC its bridge learned) to one
      member, spread evenly; dynamic hashes flows, moves them between members at flowlet
      boundaries as load changes, and pins endpoints for their ARP/ND and inbound traffic.
      --flowlet-gap (default 500µs): the pause after which a flow may move; it must exceed
      the difference in delay between the members' paths, queues included.
      --rebalance-interval (default 250ms): how often buckets move by measured load.
MAC policy (when the member whose MAC the team wears fails):
  auto (default) keep the MAC, verify neighbours still reach it, else follow;
  keep           keep the MAC and announce it from the new primary (learning switches);
  follow         take the new primary's own MAC and announce it (any switch).
Bounds: --up-delay 0-1h, --notify-count 1-100, --notify-interval 1ms-10s,
  --verify-timeout 100µs-1s, --min-links 0 to the member count.
Listings take -o json. The socket defaults to $NICTEAM_SOCKET, then
` + api.DefaultSocket + `.
`

// Run executes one command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("nicteam", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	socket := global.String("socket", envOr("NICTEAM_SOCKET", api.DefaultSocket), "daemon socket")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "nicteam: %v\n\n%s", err, usage)
		return 2
	}
	rest := global.Args()
	if len(rest) == 0 || rest[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	c := &command{ctx: ctx, client: api.NewClient(*socket), out: stdout}
	err := c.dispatch(rest[0], rest[1:])
	var ue usageError
	var he helpError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &he):
		he.print(stdout)
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "nicteam %s: %v\n(see nicteam --help)\n", rest[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "nicteam %s: %v\n", rest[0], err)
		return 1
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// helpError is a command's --help: it prints that command's lines of the
// usage and its options. It matches flag.ErrHelp.
type helpError struct{ fs *flag.FlagSet }

func (e helpError) Error() string { return flag.ErrHelp.Error() }
func (e helpError) Unwrap() error { return flag.ErrHelp }

func (e helpError) print(w io.Writer) {
	fmt.Fprintln(w, "usage: nicteam [--socket PATH]")
	in := false
	for _, line := range strings.Split(usage, "\n") {
		switch {
		case strings.HasPrefix(line, "  "+e.fs.Name()+" ") || line == "  "+e.fs.Name():
			in = true
		case !strings.HasPrefix(line, "      "):
			in = false
		}
		if in {
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w, "\noptions:")
	e.fs.SetOutput(w)
	e.fs.PrintDefaults()
}

// usageError is a malformed command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

type command struct {
	ctx    context.Context
	client *api.Client
	out    io.Writer
}

// parse parses flags that may stand before, between or after positional
// arguments (`new Team0 --members a,b` and `new --members a,b Team0`), and
// checks the count of positionals.
func parse(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpError{fs}
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	switch {
	case len(pos) < minPos:
		return nil, usagef("missing argument")
	case maxPos >= 0 && len(pos) > maxPos:
		return nil, usagef("unexpected argument %q", pos[maxPos])
	}
	return pos, nil
}

// output adds -o to fs and returns whether JSON was asked for.
func output(fs *flag.FlagSet) *string { return fs.String("o", "table", "output format: table or json") }

func (c *command) emit(format string, v any, table func(io.Writer)) error {
	switch format {
	case "json":
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "table", "":
		table(c.out)
		return nil
	}
	return usagef("unknown output format %q (want table or json)", format)
}

func (c *command) dispatch(verb string, args []string) error {
	switch verb {
	case "new":
		return c.newTeam(args)
	case "get":
		return c.get(args)
	case "set":
		return c.set(args)
	case "rm", "remove":
		return c.rm(args)
	case "members":
		return c.members(args)
	case "member":
		return c.member(args)
	case "adapters":
		return c.adapters(args)
	case "lacp":
		return c.lacp(args)
	case "ports":
		return c.ports(args)
	case "events":
		return c.events(args)
	case "stats":
		return c.stats(args)
	case "lab":
		return c.lab(args)
	case "apply":
		return c.apply(args)
	case "export":
		return c.export(args)
	}
	return usagef("unknown command %q", verb)
}

func (c *command) newTeam(args []string) error {
	fs := flag.NewFlagSet("new", flag.ContinueOnError)
	members := fs.String("members", "", "comma-separated member interfaces, at most 64; the first is the primary")
	standby := fs.String("standby", "", "member to hold in standby")
	settings := teamFlags(fs)
	o := output(fs)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *members == "" {
		return usagef("--members is required (e.g. --members eth1,eth2)")
	}
	t, err := c.client.NewTeam(c.ctx, api.NewTeam{
		Name: pos[0], Members: splitList(*members), Standby: *standby, SetTeam: settings(),
	})
	if err != nil {
		return err
	}
	return c.emit(*o, t, func(w io.Writer) { writeTeams(w, []api.Team{t}) })
}

// teamFlags adds the team settings new and set share; the returned
// function reads them once parsed.
func teamFlags(fs *flag.FlagSet) func() api.SetTeam {
	mode := fs.String("mode", "", "teaming mode")
	lb := fs.String("lb", "", "load-balancing algorithm")
	upDelay := fs.String("up-delay", "", "wait this long after carrier returns before a member carries traffic (0-1h)")
	macPolicy, notify := macFlags(fs)
	lacpSet := lacpFlags(fs)
	dyn := dynamicFlags(fs)
	return func() api.SetTeam {
		return api.SetTeam{Mode: *mode, Algorithm: *lb, UpDelay: *upDelay, MACPolicy: *macPolicy, Notify: *notify,
			LacpSettings: lacpSet(), DynamicSettings: *dyn}
	}
}

// macFlags adds the MAC policy and announcement options.
func macFlags(fs *flag.FlagSet) (*string, *api.Notify) {
	n := &api.Notify{}
	policy := fs.String("mac-policy", "", "keep, follow or auto: the team MAC when its member fails")
	fs.IntVar(&n.NotifyCount, "notify-count", 0, "announcements (GARP/NA/RARP) per change (1-100)")
	fs.StringVar(&n.NotifyInterval, "notify-interval", "", "time between announcements (1ms-10s)")
	fs.StringVar(&n.VerifyTimeout, "verify-timeout", "", "auto policy: how long neighbours have to answer before the team follows (100µs-1s)")
	return policy, n
}

// lacpFlags adds the LACP and min-links options new and set share; the
// returned function reads them once parsed.
func lacpFlags(fs *flag.FlagSet) func() api.LacpSettings {
	var l api.LacpSettings
	fs.StringVar(&l.LacpTimer, "lacp-timer", "", "fast or slow: the LACPDU rate asked of the partner")
	fs.IntVar(&l.LacpSystemPriority, "lacp-system-priority", 0, "LACP system priority (1-65535)")
	fs.IntVar(&l.LacpKey, "lacp-key", 0, "LACP key (1-65535)")
	fs.IntVar(&l.LacpPortPriority, "lacp-port-priority", 0, "LACP port priority of every member (1-65535)")
	// A Func flag tells "not given" (keep as is) from any number given.
	fs.Func("min-links", "fewest carrying members for the team to be up (`N`, 0 to the member count; 0: no minimum)", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", v)
		}
		l.MinLinks = &n
		return nil
	})
	return func() api.LacpSettings { return l }
}

// dynamicFlags adds the Dynamic options new and set share.
func dynamicFlags(fs *flag.FlagSet) *api.DynamicSettings {
	var d api.DynamicSettings
	fs.StringVar(&d.FlowletGap, "flowlet-gap", "", "dynamic: the pause after which a flow may move to another member (10µs-1s)")
	fs.StringVar(&d.RebalanceInterval, "rebalance-interval", "", "dynamic: how often buckets move by measured load (10ms-1m)")
	return &d
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *command) get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	o := output(fs)
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		t, err := c.client.Team(c.ctx, pos[0])
		if err != nil {
			return err
		}
		return c.emit(*o, t, func(w io.Writer) { writeTeams(w, []api.Team{t}) })
	}
	ts, err := c.client.Teams(c.ctx)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []api.Team{}
	}
	return c.emit(*o, ts, func(w io.Writer) { writeTeams(w, ts) })
}

func (c *command) set(args []string) error {
	fs := flag.NewFlagSet("set", flag.ContinueOnError)
	settings := teamFlags(fs)
	o := output(fs)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	req := settings()
	if req == (api.SetTeam{}) {
		return usagef("nothing to change: give --mode, --lb, --up-delay, --mac-policy, a --notify option, a --lacp option, --min-links, --flowlet-gap or --rebalance-interval")
	}
	t, err := c.client.SetTeam(c.ctx, pos[0], req)
	if err != nil {
		return err
	}
	return c.emit(*o, t, func(w io.Writer) { writeTeams(w, []api.Team{t}) })
}

func (c *command) rm(args []string) error {
	pos, err := parse(flag.NewFlagSet("rm", flag.ContinueOnError), args, 1, 1)
	if err != nil {
		return err
	}
	return c.client.RemoveTeam(c.ctx, pos[0])
}

func (c *command) members(args []string) error {
	fs := flag.NewFlagSet("members", flag.ContinueOnError)
	o := output(fs)
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	ms, err := c.client.Members(c.ctx, name)
	if err != nil {
		return err
	}
	return c.emit(*o, ms, func(w io.Writer) { writeMembers(w, ms) })
}

func (c *command) member(args []string) error {
	if len(args) == 0 {
		return usagef("member needs add, remove or set")
	}
	fs := flag.NewFlagSet("member "+args[0], flag.ContinueOnError)
	standby := fs.Bool("standby", false, "standby member")
	active := fs.Bool("active", false, "active member")
	pos, err := parse(fs, args[1:], 2, 2)
	if err != nil {
		return err
	}
	switch args[0] {
	case "add":
		if *active && *standby {
			return usagef("--standby and --active exclude each other")
		}
		return c.client.AddMember(c.ctx, pos[0], api.AddMember{Name: pos[1], Standby: *standby})
	case "remove", "rm":
		return c.client.RemoveMember(c.ctx, pos[0], pos[1])
	case "set":
		if *active == *standby {
			return usagef("member set needs exactly one of --standby or --active")
		}
		return c.client.SetMember(c.ctx, pos[0], pos[1], api.SetMember{Standby: *standby})
	}
	return usagef("unknown member command %q (want add, remove or set)", args[0])
}

func (c *command) adapters(args []string) error {
	fs := flag.NewFlagSet("adapters", flag.ContinueOnError)
	o := output(fs)
	pos, err := parse(fs, args, 0, -1)
	if err != nil {
		return err
	}
	as, err := c.client.Adapters(c.ctx, pos...)
	if err != nil {
		return err
	}
	return c.emit(*o, as, func(w io.Writer) { writeAdapters(w, as) })
}

func (c *command) lacp(args []string) error {
	fs := flag.NewFlagSet("lacp", flag.ContinueOnError)
	o := output(fs)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	l, err := c.client.Lacp(c.ctx, pos[0])
	if err != nil {
		return err
	}
	return c.emit(*o, l, func(w io.Writer) { writeLacp(w, l) })
}

func (c *command) ports(args []string) error {
	fs := flag.NewFlagSet("ports", flag.ContinueOnError)
	o := output(fs)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	ps, err := c.client.Ports(c.ctx, pos[0])
	if err != nil {
		return err
	}
	return c.emit(*o, ps, func(w io.Writer) { writePorts(w, ps) })
}

func (c *command) events(args []string) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	follow := fs.Bool("follow", false, "keep printing new events")
	fs.BoolVar(follow, "f", false, "short for --follow")
	o := output(fs)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	enc := json.NewEncoder(c.out)
	return c.client.Events(c.ctx, *follow, func(e api.Event) error {
		if *o == "json" {
			return enc.Encode(e)
		}
		writeEvent(c.out, e)
		return nil
	})
}
