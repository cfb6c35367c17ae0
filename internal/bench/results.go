package bench

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
	Command    string      `json:"command"`
	Date       time.Time   `json:"date"`
	Machine    Machine     `json:"machine"`
	Settings   Settings    `json:"settings"`
	Lab        LabInfo     `json:"lab"`
	Throughput *Throughput `json:"throughput,omitempty"`
	PPS        *PPS        `json:"pps,omitempty"`
	Failover   *Failover   `json:"failover,omitempty"`
	Control    *Control    `json:"control,omitempty"`
	Contention *Contention `json:"contention,omitempty"`
	Balance    *Balance    `json:"balance,omitempty"`
}

// Settings are the flags that shaped the run.
type Settings struct {
	Runs     int      `json:"runs"`
	Pulls    int      `json:"pulls"`
	PPS      uint64   `json:"pps"`
	Duration string   `json:"duration"`
	Quick    bool     `json:"quick"`
	Sections []string `json:"sections"` // measured, in order
}

// LabInfo names what the run built, all of it removed at the end.
type LabInfo struct {
	Prefix string `json:"prefix"` // of the namespaces
	Pins   string `json:"pins"`   // the daemon's pin directory
}

// Throughput is the TCP figure: one and 8 flows through the team, the
// plain NIC and the OVS bond.
type Throughput struct {
	Duration  string           `json:"duration"`  // of each run
	Omit      string           `json:"omit"`      // warm-up discarded before each run
	Target    float64          `json:"target"`    // least team/plain ratio
	OVSTarget float64          `json:"ovsTarget"` // least team/OVS ratio
	Cases     []ThroughputCase `json:"cases"`
	Offloads  []Offloads       `json:"offloads"`
	// Plot is the SVG file, beside the report, of the medians; "" when
	// none was written.
	Plot string `json:"plot,omitempty"`
}

// ThroughputCase compares the paths for a number of flows in one
// direction.
type ThroughputCase struct {
	Flows     int      `json:"flows"`
	Direction string   `json:"direction"`
	Runs      []TCPRun `json:"runs"` // in the order run, paths alternating
	TeamGbps  float64  `json:"teamGbps"`
	PlainGbps float64  `json:"plainGbps"`
	OVSGbps   float64  `json:"ovsGbps"`
	Ratio     float64  `json:"ratio"`    // team / plain medians
	OVSRatio  float64  `json:"ovsRatio"` // team / OVS medians
	Met       bool     `json:"met"`
	OVSMet    bool     `json:"ovsMet"`
}

// TCPRun is one iperf3 test.
type TCPRun struct {
	Run         int     `json:"run"`
	Path        string  `json:"path"` // team, plain or ovs
	Gbps        float64 `json:"gbps"` // as received
	Retransmits int     `json:"retransmits"`
	// Member is the team's or bond's member that sent the most frames
	// during the run: the flow's member when the host sends, the one its
	// ACKs left by when it receives. Share is that member's part of the
	// frames the members sent.
	Member string  `json:"member,omitempty"`
	Share  float64 `json:"share,omitempty"`
}

// Offloads are an interface's offload features as ethtool shows them.
type Offloads struct {
	Interface string            `json:"interface"`
	Features  map[string]string `json:"features"`
}

// Failover is the cable-pull figure, for the team and the OVS bond.
type Failover struct {
	PPS         uint64         `json:"pps"`
	Down        string         `json:"down"`        // how long each cable stayed out
	TargetUs    int64          `json:"targetUs"`    // most median outage
	MaxTargetUs int64          `json:"maxTargetUs"` // most longest outage
	Bonds       []BondFailover `json:"bonds"`       // the team's first
	// Plot is the SVG file, beside the report, of the received rate around
	// each bond's median pull; "" when none was written.
	Plot string `json:"plot,omitempty"`
}

// BondFailover is one bond's pulls, alternated with the other's.
type BondFailover struct {
	Bond           string  `json:"bond"` // team or ovs
	Pulls          []Pull  `json:"pulls"`
	MedianOutageUs float64 `json:"medianOutageUs"`
	MaxOutageUs    int64   `json:"maxOutageUs"`
	MedianMissing  float64 `json:"medianMissing"`
	MaxMissing     uint64  `json:"maxMissing"`
	MedianLostUs   float64 `json:"medianLostUs"`
	// MedianMovedAfterUs is the median of the team daemon's reaction
	// times; 0 for the OVS bond, which does not log them to the µs.
	MedianMovedAfterUs float64 `json:"medianMovedAfterUs"`
	RestoreOutages     int     `json:"restoreOutages"` // over all pulls
	Met                bool    `json:"met"`            // median and longest outage within the targets
	RestoreMet         bool    `json:"restoreMet"`     // no outage on restore
	// Trace is the received rate around the pull with the median outage.
	Trace *Trace `json:"trace,omitempty"`
}

// Trace is a stream's delivery around one pull: its packets in blocks of
// Seqs consecutive ones (a millisecond's worth), when each block was sent
// and how many of it arrived.
type Trace struct {
	Pull     int      `json:"pull"`
	OutageUs int64    `json:"outageUs"` // that pull's longest outage
	Seqs     uint64   `json:"seqs"`
	AtUs     []int64  `json:"atUs"`   // when each block's first packet was sent, from the pull
	Counts   []uint32 `json:"counts"` // how many of each block arrived
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
	// trace is the received rate around the pull; the report keeps only
	// the median pull's.
	trace *Trace
}

// bench builds the environment, measures the sections cfg asks for and
// tears it down. log gets progress.
func bench(ctx context.Context, cfg Config, log io.Writer) (_ *Results, err error) {
	res := &Results{
		Command: cfg.Command,
		Date:    time.Now().UTC().Truncate(time.Second),
		Settings: Settings{
			Runs: cfg.Runs, Pulls: cfg.Pulls, PPS: cfg.PPS,
			Duration: cfg.Duration.String(), Quick: cfg.Quick,
		},
	}
	sections, err := pickSections(cfg.Sections)
	if err != nil {
		return nil, err
	}
	withOVS := false
	for _, s := range sections {
		res.Settings.Sections = append(res.Settings.Sections, s.name)
		withOVS = withOVS || s.ovs
	}
	if withOVS {
		// Before anything is built: a missing OVS is the usual mistake.
		if err := checkOVS(); err != nil {
			return nil, err
		}
	}
	if res.Machine, err = readMachine(); err != nil {
		return nil, err
	}
	bin := cfg.Bin
	if slices.ContainsFunc(sections, section.shared) {
		e, err := newEnv(ctx, cfg.Bin, withOVS, log)
		if err != nil {
			return nil, err
		}
		defer func() {
			if cerr := e.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
			}
		}()
		res.Lab = LabInfo{Prefix: e.lab.Prefix, Pins: e.pins}
		fmt.Fprintf(log, "lab %s, pins %s\n", e.lab.Prefix, e.pins)
		for _, s := range sections {
			if s.shared() {
				if err := s.run(log, func() error { return s.measure(ctx, e, cfg, res) }); err != nil {
					return nil, err
				}
			}
		}
		// The binaries the shared lab built serve the other labs too.
		bin = e.bin
	}
	for _, s := range sections {
		if !s.shared() {
			if err := s.run(log, func() error { return s.ownLab(ctx, cfg, bin, log, res) }); err != nil {
				return nil, err
			}
		}
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
