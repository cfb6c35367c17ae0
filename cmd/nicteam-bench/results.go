package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Results is everything one benchmark run measured; it is the JSON file.
type Results struct {
	Command    string     `json:"command"`
	Date       time.Time  `json:"date"`
	Machine    Machine    `json:"machine"`
	Settings   Settings   `json:"settings"`
	Lab        LabInfo    `json:"lab"`
	Throughput Throughput `json:"throughput"`
	Failover   Failover   `json:"failover"`
	Balance    Balance    `json:"balance"`
}

// Settings are the flags that shaped the run.
type Settings struct {
	Runs     int    `json:"runs"`
	Pulls    int    `json:"pulls"`
	PPS      uint64 `json:"pps"`
	Duration string `json:"duration"`
	Quick    bool   `json:"quick"`
}

// LabInfo names what the run built, all of it removed at the end.
type LabInfo struct {
	Prefix string `json:"prefix"` // of the namespaces
	Pins   string `json:"pins"`   // the daemon's pin directory
}

// Throughput is the single-flow TCP figure.
type Throughput struct {
	Duration   string            `json:"duration"` // of each run
	Omit       string            `json:"omit"`     // warm-up discarded before each run
	Target     float64           `json:"target"`   // least team/plain ratio
	Directions []DirectionResult `json:"directions"`
	Offloads   []Offloads        `json:"offloads"`
}

// DirectionResult compares the paths for one direction of the flow.
type DirectionResult struct {
	Direction string   `json:"direction"`
	Runs      []TCPRun `json:"runs"` // in the order run, paths alternating
	TeamGbps  float64  `json:"teamGbps"`
	PlainGbps float64  `json:"plainGbps"`
	Ratio     float64  `json:"ratio"` // team / plain medians
	Met       bool     `json:"met"`
}

// TCPRun is one iperf3 test.
type TCPRun struct {
	Run         int     `json:"run"`
	Path        string  `json:"path"` // team or plain
	Gbps        float64 `json:"gbps"` // as received
	Retransmits int     `json:"retransmits"`
	// Member is the team member that sent the most frames during a team
	// run: the flow's member when the team sends, the one its ACKs
	// hashed to when it receives.
	Member string `json:"member,omitempty"`
}

// Offloads are an interface's offload features as ethtool shows them.
type Offloads struct {
	Interface string            `json:"interface"`
	Features  map[string]string `json:"features"`
}

// Failover is the cable-pull figure.
type Failover struct {
	PPS            uint64  `json:"pps"`
	Down           string  `json:"down"` // how long each cable stayed out
	Pulls          []Pull  `json:"pulls"`
	MedianOutageUs float64 `json:"medianOutageUs"`
	MaxOutageUs    int64   `json:"maxOutageUs"`
	MedianMissing  float64 `json:"medianMissing"`
	MaxMissing     uint64  `json:"maxMissing"`
	MedianLostUs   float64 `json:"medianLostUs"`
	// MedianMovedAfterUs is the median of the daemon's reaction times.
	MedianMovedAfterUs float64 `json:"medianMovedAfterUs"`
	RestoreOutages     int     `json:"restoreOutages"` // over all pulls
	TargetUs           int64   `json:"targetUs"`       // most median outage
	Met                bool    `json:"met"`
	RestoreMet         bool    `json:"restoreMet"` // no outage on restore
}

// Pull is one cable pull under one stream.
type Pull struct {
	Pull   int    `json:"pull"`
	Member string `json:"member"` // the member pulled: the one carrying the stream
	// OutageUs is the longest outage before the restore as the receiver
	// timed it; Outages counts them and Missing the packets they lost.
	OutageUs int64  `json:"outageUs"`
	Outages  int    `json:"outages"`
	Missing  uint64 `json:"missing"`
	// LostUs is Missing at the stream's rate: the outage by the sender's
	// clock, which the receiver's scheduling cannot stretch or squeeze.
	LostUs int64 `json:"lostUs"`
	// MovedAfterUs is from the pull until the daemon logged moving the
	// pulled member's buckets: its reaction time.
	MovedAfterUs int64 `json:"movedAfterUs"`
	// RestoreOutages and RestoreMissing are the same after the restore.
	RestoreOutages int    `json:"restoreOutages"`
	RestoreMissing uint64 `json:"restoreMissing"`
	// UpAfterMs is from the restore until the daemon reported the team Up.
	UpAfterMs float64 `json:"upAfterMs"`
	Sent      uint64  `json:"sent"`
	Received  uint64  `json:"received"`
	SentPPS   float64 `json:"sentPps"` // the rate the sender achieved
}

// bench builds the environment, measures both figures and tears it down.
// log gets progress.
func bench(ctx context.Context, cfg config, log io.Writer) (_ *Results, err error) {
	res := &Results{
		Command: cfg.command,
		Date:    time.Now().UTC().Truncate(time.Second),
		Settings: Settings{
			Runs: cfg.runs, Pulls: cfg.pulls, PPS: cfg.pps,
			Duration: cfg.duration.String(), Quick: cfg.quick,
		},
	}
	if res.Machine, err = readMachine(); err != nil {
		return nil, err
	}
	if cfg.only == onlyBalance {
		// Its lab is its own: skip the others'.
		if res.Balance, err = measureBalance(ctx, cfg, cfg.bin, log); err != nil {
			return nil, err
		}
		res.Machine.LoadAfter = loadAverage()
		return res, nil
	}
	e, err := newEnv(ctx, cfg.bin, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := e.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()
	res.Lab = LabInfo{Prefix: e.lab.Prefix, Pins: e.pins}
	fmt.Fprintf(log, "lab %s, pins %s\nthroughput: %d runs per path and direction\n", e.lab.Prefix, e.pins, cfg.runs)
	if res.Throughput, err = measureThroughput(ctx, e, cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "failover: %d pulls at %d pps\n", cfg.pulls, cfg.pps)
	if res.Failover, err = measureFailover(ctx, e, cfg); err != nil {
		return nil, err
	}
	// The binaries the first lab built serve the balance figure's lab too.
	if res.Balance, err = measureBalance(ctx, cfg, e.bin, log); err != nil {
		return nil, err
	}
	res.Machine.LoadAfter = loadAverage()
	return res, nil
}

// median of xs, the mean of the middle two for an even count; 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
