// Package bench measures what a team costs and what it saves: TCP
// throughput and small-packet rates through a team against a plain NIC
// and an Open vSwitch bond, how long a stream stops when the member
// carrying it loses its cable, and what the daemon costs. It builds its
// own lab of network namespaces, runs the real nicteamd in it, alternates
// the compared configurations so machine noise hits them all, and writes
// the figures as Markdown, JSON and SVG plots. It needs root.
// cmd/nicteam-bench is its command line.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config is what the command line asks for.
type Config struct {
	Runs     int           // iperf3 runs per configuration and direction
	Pulls    int           // cable pulls
	PPS      uint64        // rate of the stream during pulls
	Duration time.Duration // of each iperf3 run, whole seconds
	Omit     time.Duration // iperf3's discarded warm-up before each run
	Quick    bool
	Out      string // Markdown report; "" for stdout
	JSONOut  string // JSON results; "" for none
	Bin      string // prebuilt binaries; "" to build
	Command  string // how the benchmark was invoked, for the report
	// Sections are the names of the sections to measure, of
	// SectionNames; they run in that order, whatever the order here.
	Sections []string
	// BalanceRuns is the load-balancing figure's runs per case and
	// algorithm.
	BalanceRuns int
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

// Default is the full benchmark, every section, as make bench runs it.
func Default() Config {
	return Config{
		Runs: defaultRuns, Pulls: defaultPulls, PPS: defaultPPS, Duration: defaultDuration,
		Omit: defaultOmit, BalanceRuns: defaultBalanceRuns, Sections: SectionNames(),
	}
}

// Quick is Default shrunk to a smoke test: one of everything, no warm-up
// and one load-balancing case.
func Quick() Config {
	c := Default()
	c.Quick = true
	c.Runs, c.Pulls, c.Duration, c.Omit, c.BalanceRuns = quickRuns, quickPulls, quickDuration, 0, quickBalanceRuns
	return c
}

// Validate checks c, naming the flag that sets a wrong value.
func (c Config) Validate() error {
	switch {
	case c.Runs < 1:
		return fmt.Errorf("-runs %d: want at least 1", c.Runs)
	case c.BalanceRuns < 1:
		return fmt.Errorf("-balance-runs %d: want at least 1", c.BalanceRuns)
	case c.Pulls < 1:
		return fmt.Errorf("-pulls %d: want at least 1", c.Pulls)
	case c.PPS < 1000:
		// Below that the stream cannot resolve an outage to a millisecond.
		return fmt.Errorf("-pps %d: want at least 1000", c.PPS)
	case c.Duration < time.Second || c.Duration%time.Second != 0:
		// iperf3 -t takes whole seconds.
		return fmt.Errorf("-duration %v: want whole seconds, at least 1s", c.Duration)
	}
	_, err := pickSections(c.Sections)
	return err
}

// Run runs the benchmark cfg asks for and writes the report. Progress goes
// to log.
func Run(ctx context.Context, cfg Config, stdout, log io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: builds network namespaces and loads eBPF programs")
	}
	res, err := bench(ctx, cfg, log)
	if err != nil {
		return err
	}
	return writeResults(cfg, res, stdout)
}

// writeResults writes the Markdown report to cfg.Out (or stdout), and the
// JSON and the plots beside it (none when the report goes to stdout).
func writeResults(cfg Config, res *Results, stdout io.Writer) error {
	if cfg.Out != "" {
		if err := writePlots(cfg.Out, res); err != nil {
			return err
		}
	}
	md := renderMarkdown(res)
	if cfg.Out == "" {
		if _, err := io.WriteString(stdout, md); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else if err := os.WriteFile(cfg.Out, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if cfg.JSONOut == "" {
		return nil
	}
	js, err := renderJSON(res)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfg.JSONOut, js, 0o644); err != nil {
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
