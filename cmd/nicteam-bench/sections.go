package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// section is one figure of the benchmark; -only picks some.
type section struct {
	name    string
	ovs     bool // needs the OVS bond
	measure func(context.Context, *env, config, *Results) error
}

// sections in the order they run. With the default flags on an idle
// 2-core machine they take about 3.5 min (throughput: 5 iterations of 12
// iperf3 runs of 3 s), 1 min (pps: 5 iterations of 4 runs of 2 s), 1 min
// (failover: 20 pulls of about 1.4 s on each bond) and 30 s (control),
// about 6 minutes with the setup. -quick takes about 40 s.
var sections = []section{
	{name: "throughput", ovs: true, measure: func(ctx context.Context, e *env, cfg config, res *Results) (err error) {
		res.Throughput, err = measureThroughput(ctx, e, cfg)
		return err
	}},
	{name: "pps", measure: func(ctx context.Context, e *env, cfg config, res *Results) (err error) {
		res.PPS, err = measurePPS(ctx, e, cfg)
		return err
	}},
	{name: "failover", ovs: true, measure: func(ctx context.Context, e *env, cfg config, res *Results) (err error) {
		res.Failover, err = measureFailover(ctx, e, cfg)
		return err
	}},
	{name: "control", measure: func(ctx context.Context, e *env, cfg config, res *Results) (err error) {
		res.Control, err = measureControl(ctx, e, cfg)
		return err
	}},
}

func sectionNames() []string {
	var names []string
	for _, s := range sections {
		names = append(names, s.name)
	}
	return names
}

// pickSections returns the sections named in the comma-separated list
// only, in the order they run; all of them for "".
func pickSections(only string) ([]section, error) {
	if only == "" {
		return sections, nil
	}
	want := strings.Split(only, ",")
	for _, w := range want {
		if !slices.Contains(sectionNames(), w) {
			return nil, fmt.Errorf("-only %s: no section %q (want some of %s)", only, w, strings.Join(sectionNames(), ","))
		}
	}
	var picked []section
	for _, s := range sections {
		if slices.Contains(want, s.name) {
			picked = append(picked, s)
		}
	}
	return picked, nil
}
