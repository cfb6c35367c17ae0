package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// section is one figure of the benchmark; -only picks some. Most share
// one lab (measure); one with a lab of its own has ownLab instead, given
// the binaries to use ("" to build them).
type section struct {
	name    string
	ovs     bool // needs the OVS bond
	measure func(context.Context, *env, Config, *Results) error
	ownLab  func(ctx context.Context, cfg Config, bin string, log io.Writer, res *Results) error
}

func (s section) shared() bool { return s.measure != nil }

// run logs the section's name and how long measure took.
func (s section) run(log io.Writer, measure func() error) error {
	start := time.Now()
	fmt.Fprintf(log, "%s:\n", s.name)
	if err := measure(); err != nil {
		return err
	}
	fmt.Fprintf(log, "%s took %v\n", s.name, time.Since(start).Round(time.Second))
	return nil
}

// sections in the order they run. With the default flags on the 2-core
// machine, busy with other work, they took 3 min (throughput: 5
// iterations of 12 iperf3 runs of 2 s after 1 s of warm-up), 40 s (pps: 5
// iterations of 4 runs of 2 s), 50 s (failover: 20 pulls of about 1.2 s
// on each bond) and 20 s (control: 15 team lifecycles, two 5 s windows),
// under 5 minutes with the setup; balance, in a lab of its own, about 2
// minutes more (3 runs per case and algorithm, 12 cases of 2 s after 1 s
// of warm-up), which leaves room under the 10 minutes make bench may take.
// contention, in a lab of its own, about 30 s more (20 pulls under each
// load). -quick takes about 30 s.
var sections = []section{
	{name: "throughput", ovs: true, measure: func(ctx context.Context, e *env, cfg Config, res *Results) (err error) {
		res.Throughput, err = measureThroughput(ctx, e, cfg)
		return err
	}},
	{name: "pps", measure: func(ctx context.Context, e *env, cfg Config, res *Results) (err error) {
		res.PPS, err = measurePPS(ctx, e, cfg)
		return err
	}},
	{name: "failover", ovs: true, measure: func(ctx context.Context, e *env, cfg Config, res *Results) (err error) {
		res.Failover, err = measureFailover(ctx, e, cfg)
		return err
	}},
	{name: "control", measure: func(ctx context.Context, e *env, cfg Config, res *Results) (err error) {
		res.Control, err = measureControl(ctx, e, cfg)
		return err
	}},
	{name: "contention", ownLab: func(ctx context.Context, cfg Config, bin string, log io.Writer, res *Results) (err error) {
		res.Contention, err = measureContention(ctx, cfg, bin, log)
		return err
	}},
	{name: "balance", ownLab: func(ctx context.Context, cfg Config, bin string, log io.Writer, res *Results) (err error) {
		res.Balance, err = measureBalance(ctx, cfg, bin, log)
		return err
	}},
}

// SectionNames are the sections' names, in the order they run.
func SectionNames() []string {
	var names []string
	for _, s := range sections {
		names = append(names, s.name)
	}
	return names
}

// pickSections returns the sections named in names, in the order they
// run.
func pickSections(names []string) ([]section, error) {
	for _, n := range names {
		if !slices.Contains(SectionNames(), n) {
			return nil, fmt.Errorf("-only %s: no section %q (want some of %s)", strings.Join(names, ","), n, strings.Join(SectionNames(), ","))
		}
	}
	var picked []section
	for _, s := range sections {
		if slices.Contains(names, s.name) {
			picked = append(picked, s)
		}
	}
	return picked, nil
}
