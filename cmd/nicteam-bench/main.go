// Command nicteam-bench measures what a team costs and what it saves: TCP
// throughput and small-packet rates through a team against a plain NIC
// and an Open vSwitch bond, how long a stream stops when the member
// carrying it loses its cable, and what the daemon costs. It builds its
// own lab of network namespaces, runs the real nicteamd in it, alternates
// the compared configurations so machine noise hits them all, and writes
// the figures as Markdown, JSON and SVG plots. It needs root.
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
	"slices"
	"strings"
	"syscall"
	"time"
)

const usage = `nicteam-bench compares a 2-member nicteam team with a plain NIC and an Open
vSwitch userspace bond on the same switch. Its sections (-only picks some):

  throughput  TCP, 1 and 8 flows, both directions: team, plain, OVS (iperf3)
  pps         64-byte UDP datagrams per second: team, plain (iperf3 -u)
  failover    the outage of a sequenced UDP stream when the carrying
              member's cable is pulled: team and OVS bond, alternated
  control     creating and removing teams of 2, 8 and 32 members; the
              daemon's memory and CPU idle and while rebalancing
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

// config is what the flags ask for.
type config struct {
	runs     int           // iperf3 runs per configuration and direction
	pulls    int           // cable pulls
	pps      uint64        // rate of the stream during pulls
	duration time.Duration // of each iperf3 run, whole seconds
	omit     time.Duration // iperf3's discarded warm-up before each run
	quick    bool
	out      string // Markdown report; "" for stdout
	jsonOut  string // JSON results; "" for none
	bin      string // prebuilt binaries; "" to build
	command  string // how the benchmark was invoked, for the report
	sections []section
	// balanceRuns is the load-balancing figure's runs per case and
	// algorithm.
	balanceRuns int
}

// Defaults take about seven minutes (see sections), leaving room under ten:
// single iperf3 runs on a 2-core machine vary by tens of percent, and the
// median of 5 alternated runs of 2 s is steady enough to hold a ratio to a
// few percent; 20 pulls per bond give a median and a worst case worth
// quoting.
const (
	defaultRuns     = 5
	defaultPulls    = 20
	defaultPPS      = 50_000
	defaultDuration = 2 * time.Second
	defaultOmit     = time.Second
	quickRuns       = 1
	quickPulls      = 1
	quickDuration   = time.Second
)

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
	if os.Geteuid() != 0 {
		return errors.New("needs root: builds network namespaces and loads eBPF programs")
	}
	res, err := bench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	return writeResults(cfg, res, stdout)
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{command: invocation(args)}
	fs := flag.NewFlagSet("nicteam-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.runs, "runs", defaultRuns, "runs `N` per configuration, alternated (iperf3 runs; team creations per size)")
	fs.IntVar(&cfg.pulls, "pulls", defaultPulls, "cable pulls `N` per bond")
	fs.Uint64Var(&cfg.pps, "pps", defaultPPS, "packets per second `N` of the stream during pulls")
	fs.DurationVar(&cfg.duration, "duration", defaultDuration, "length `D` of each iperf3 run, whole seconds")
	fs.BoolVar(&cfg.quick, "quick", false, fmt.Sprintf("smoke test: -runs %d -pulls %d -duration %v -balance-runs %d, no warm-up and one load-balancing case, unless given", quickRuns, quickPulls, quickDuration, quickBalanceRuns))
	fs.StringVar(&cfg.out, "o", "", "write the Markdown report to `FILE`, the SVG plots beside it (default: the report to stdout, no plots)")
	fs.StringVar(&cfg.jsonOut, "json", "", "write the results as JSON to `FILE` (default: beside -o, with .json; none when the report goes to stdout)")
	fs.StringVar(&cfg.bin, "bin", "", "use "+strings.Join(binaries, ", ")+" from `DIR` instead of building them")
	only := fs.String("only", "", "run only the sections in `LIST`, comma-separated, of "+strings.Join(sectionNames(), ","))
	fs.IntVar(&cfg.balanceRuns, "balance-runs", defaultBalanceRuns, "load-balancing runs `N` per case and algorithm, alternated")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.sections, err = pickSections(*only); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (see -help)", fs.Arg(0))
	}
	cfg.omit = defaultOmit
	if cfg.quick {
		applyQuick(&cfg, fs)
	}
	if cfg.jsonOut == "" && cfg.out != "" {
		cfg.jsonOut = strings.TrimSuffix(cfg.out, filepath.Ext(cfg.out)) + ".json"
	}
	return cfg, cfg.validate()
}

// applyQuick shrinks what the user did not set explicitly.
func applyQuick(cfg *config, fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["runs"] {
		cfg.runs = quickRuns
	}
	if !set["pulls"] {
		cfg.pulls = quickPulls
	}
	if !set["duration"] {
		cfg.duration = quickDuration
	}
	if !set["balance-runs"] {
		cfg.balanceRuns = quickBalanceRuns
	}
	cfg.omit = 0
}

func (c config) validate() error {
	switch {
	case c.runs < 1:
		return fmt.Errorf("-runs %d: want at least 1", c.runs)
	case c.balanceRuns < 1:
		return fmt.Errorf("-balance-runs %d: want at least 1", c.balanceRuns)
	case c.pulls < 1:
		return fmt.Errorf("-pulls %d: want at least 1", c.pulls)
	case c.pps < 1000:
		// Below that the stream cannot resolve an outage to a millisecond.
		return fmt.Errorf("-pps %d: want at least 1000", c.pps)
	case c.duration < time.Second || c.duration%time.Second != 0:
		// iperf3 -t takes whole seconds.
		return fmt.Errorf("-duration %v: want whole seconds, at least 1s", c.duration)
	}
	return nil
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

// writeResults writes the Markdown report to cfg.out (or stdout), and the
// JSON and the plots beside it (none when the report goes to stdout).
func writeResults(cfg config, res *Results, stdout io.Writer) error {
	if cfg.out != "" {
		if err := writePlots(cfg.out, res); err != nil {
			return err
		}
	}
	md := renderMarkdown(res)
	if cfg.out == "" {
		if _, err := io.WriteString(stdout, md); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if cfg.jsonOut == "" {
		return nil
	}
	js, err := renderJSON(res)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.jsonOut, js, 0o644); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// writePlots writes the SVG plots into the directory of the report out,
// named after it, and records their names (relative to the report) in res.
func writePlots(out string, res *Results) error {
	base := strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	write := func(what, svg string) (string, error) {
		name := base + "-" + what + ".svg"
		if err := os.WriteFile(filepath.Join(filepath.Dir(out), name), []byte(svg), 0o644); err != nil {
			return "", fmt.Errorf("write plot: %w", err)
		}
		return name, nil
	}
	var err error
	if t := res.Throughput; t != nil {
		if t.Plot, err = write("throughput", throughputBars(t).svg()); err != nil {
			return err
		}
	}
	if f := res.Failover; f != nil && slices.ContainsFunc(f.Bonds, func(b BondFailover) bool { return b.Trace != nil }) {
		if f.Plot, err = write("failover", failoverChart(f).svg()); err != nil {
			return err
		}
	}
	return nil
}
