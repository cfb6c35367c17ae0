// Command nicteam-bench measures what a team costs and what it saves: TCP
// throughput and small-packet rates through a team against a plain NIC
// and an Open vSwitch bond, how long a stream stops when the member
// carrying it loses its cable, and what the daemon costs. It builds its
// own lab of network namespaces, runs the real nicteamd in it, alternates
// the compared configurations so machine noise hits them all, and writes
// the figures as Markdown, JSON and SVG plots. It needs root. This is its
// command line; the benchmark itself is package bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nicteam/nicteam/internal/bench"
)

const usage = `nicteam-bench compares a 2-member nicteam team with a plain NIC and an Open
vSwitch userspace bond on the same switch. Its sections (-only picks some):

  throughput  TCP, 1 and 8 flows, both directions: team, plain, OVS (iperf3)
  pps         64-byte UDP datagrams per second: team, plain (iperf3 -u)
  failover    the outage of a sequenced UDP stream when the carrying
              member's cable is pulled: team and OVS bond, alternated
  control     creating and removing teams of 2, 8 and 32 members; the
              daemon's memory and CPU idle and while rebalancing
  contention  the daemon's reaction to a pulled cable, idle and while 8
              clients at nice 19 list adapters, teams, members and stats
              in a loop, on a host with 1000 interfaces (in a lab of its
              own; needs curl)
  balance     how much of their members' rate teams of 2 and 4 members,
              each held to a rate by a token bucket, give 2 to 8 TCP flows
              under TransportPorts and Dynamic, and the reordering (in a
              lab of its own)

It builds a lab of network namespaces, starts nicteamd (and OVS) there, and
removes all of it at the end, also on error or Ctrl-C. It needs root,
iperf3, ethtool, Open vSwitch (scripts/deps.sh ovs) and Go (to build the
binaries unless -bin is given).

Usage: nicteam-bench [flags]

`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first Ctrl-C the benchmark cleans up; a second one
		// kills it the default way.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nicteam-bench: %v\n", err)
		os.Exit(1)
	}
}

// run parses args, runs the benchmark and writes the report. Progress goes
// to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return bench.Run(ctx, cfg, stdout, stderr)
}

func parseFlags(args []string, stderr io.Writer) (bench.Config, error) {
	cfg := bench.Default()
	cfg.Command = invocation(args)
	fs := flag.NewFlagSet("nicteam-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	q := bench.Quick()
	fs.IntVar(&cfg.Runs, "runs", cfg.Runs, "runs `N` per configuration, alternated (iperf3 runs; team creations per size)")
	fs.IntVar(&cfg.Pulls, "pulls", cfg.Pulls, "cable pulls `N` per bond")
	fs.Uint64Var(&cfg.PPS, "pps", cfg.PPS, "packets per second `N` of the stream during pulls")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length `D` of each iperf3 run, whole seconds")
	fs.BoolVar(&cfg.Quick, "quick", false, fmt.Sprintf("smoke test: -runs %d -pulls %d -duration %v -balance-runs %d, no warm-up and one load-balancing case, unless given", q.Runs, q.Pulls, q.Duration, q.BalanceRuns))
	fs.StringVar(&cfg.Out, "o", "", "write the Markdown report to `FILE`, the SVG plots beside it (default: the report to stdout, no plots)")
	fs.StringVar(&cfg.JSONOut, "json", "", "write the results as JSON to `FILE` (default: beside -o, with .json; none when the report goes to stdout)")
	fs.StringVar(&cfg.Bin, "bin", "", "use "+strings.Join(bench.Binaries, ", ")+" from `DIR` instead of building them")
	only := fs.String("only", "", "run only the sections in `LIST`, comma-separated, of "+strings.Join(bench.SectionNames(), ","))
	fs.IntVar(&cfg.BalanceRuns, "balance-runs", cfg.BalanceRuns, "load-balancing runs `N` per case and algorithm, alternated")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *only != "" {
		cfg.Sections = strings.Split(*only, ",")
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (see -help)", fs.Arg(0))
	}
	if cfg.Quick {
		applyQuick(&cfg, q, fs)
	}
	if cfg.JSONOut == "" && cfg.Out != "" {
		cfg.JSONOut = strings.TrimSuffix(cfg.Out, filepath.Ext(cfg.Out)) + ".json"
	}
	return cfg, cfg.Validate()
}

// applyQuick takes from q what the user did not set explicitly.
func applyQuick(cfg *bench.Config, q bench.Config, fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["runs"] {
		cfg.Runs = q.Runs
	}
	if !set["pulls"] {
		cfg.Pulls = q.Pulls
	}
	if !set["duration"] {
		cfg.Duration = q.Duration
	}
	if !set["balance-runs"] {
		cfg.BalanceRuns = q.BalanceRuns
	}
	cfg.Omit = q.Omit
}

// invocation spells how the benchmark was started: under `go run` the
// program is a temporary binary, so the report names the package instead.
func invocation(args []string) string {
	prog := filepath.Base(os.Args[0])
	if strings.Contains(os.Args[0], string(filepath.Separator)+"go-build") {
		prog = "go run ./cmd/nicteam-bench"
	}
	return strings.Join(append([]string{prog}, args...), " ")
}
