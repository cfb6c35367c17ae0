package lab

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// DemoScenario is one of the demo's runs.
type DemoScenario struct {
	Title     string
	MACPolicy string // "" for the daemon's default
	ShowTeam  bool   // show node1's team before the pull
}

// demoScenarios are the seed's failure on a static switch, with the
// default MAC policy and then with keep; explain relies on the order.
var demoScenarios = []DemoScenario{
	{Title: "static switch, MAC policy auto (the default)", ShowTeam: true},
	{Title: "static switch, MAC policy keep", MACPolicy: "keep"},
}

// DemoOutcome is what a scenario showed.
type DemoOutcome struct {
	Scenario DemoScenario
	Run      *PullRun
	Owners   MACOwners
	Verdict  Verdict
}

// WriteTimeline writes the timeline of o's run: the pull and restore, both
// daemons' events, the lost pings and the snapshots, in time order.
func (o DemoOutcome) WriteTimeline(w io.Writer) {
	writeTimeline(w, buildTimeline(o.Run, o.Owners))
}

// DemoReporter hears of the demo's steps as they happen, to report them.
type DemoReporter interface {
	// Scenario says scenario i of n starts.
	Scenario(i, n int, sc DemoScenario)
	// Built says sc's lab s was built in took; an error ends the demo.
	Built(sc DemoScenario, s *Seed, took time.Duration) error
	// Pulling says plan is about to run.
	Pulling(plan PullPlan)
	// Judged gives a scenario's outcome, before its lab is taken down.
	Judged(o DemoOutcome)
}

// RunDemo runs the seed's failure under each of the demo's scenarios, each
// in a fresh Seed on a static switch, running daemon on its nodes with
// their state under dir, and tears each down before the next, also on
// error and when ctx ends. It tells r of each step as it happens.
func RunDemo(ctx context.Context, daemon, dir string, r DemoReporter) ([]DemoOutcome, error) {
	var outcomes []DemoOutcome
	for i, sc := range demoScenarios {
		r.Scenario(i+1, len(demoScenarios), sc)
		o, err := runScenario(ctx, sc, SeedOptions{
			Profile: ProfileStatic, MACPolicy: sc.MACPolicy, Daemon: daemon,
			StateRoot: filepath.Join(dir, fmt.Sprint(i+1)),
		}, r)
		if err != nil {
			return nil, err
		}
		outcomes = append(outcomes, o)
	}
	return outcomes, nil
}

// runScenario builds a Seed, runs the pull in it, judges it and tears it
// down, also on error and when ctx ends.
func runScenario(ctx context.Context, sc DemoScenario, so SeedOptions, r DemoReporter) (o DemoOutcome, err error) {
	o.Scenario = sc
	start := time.Now()
	s, err := NewSeed(UniquePrefix("nd"), so)
	if err != nil {
		return o, err
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("tear down lab %s: %w", s.Prefix, cerr)
		}
	}()
	if err := ctx.Err(); err != nil {
		return o, err
	}
	if err := r.Built(sc, s, time.Since(start)); err != nil {
		return o, err
	}
	o.Owners = s.MACOwners()
	plan := DefaultPullPlan()
	r.Pulling(plan)
	run, err := s.Pull(ctx, plan)
	if err != nil {
		return o, err
	}
	o.Run = run
	o.Verdict = judge(run)
	r.Judged(o)
	return o, nil
}
