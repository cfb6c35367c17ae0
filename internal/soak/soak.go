// Package soak is nicteam's soak and chaos suite. It builds the seed lab
// (two nodes, each with Team0 = eth1 + eth2 and its own nicteamd, and a
// container on each talking to the other through the teams) and runs
// rounds of disturbances while sequenced UDP streams flow both ways
// between the containers: members flap, a daemon is killed and restarted,
// its state directory fills up, the API is flooded, members are renamed.
// Each disturbance states how many packets it may cost; any loss beyond
// that is a violation. The first round is the warm-up: after it and after
// the last, the daemons (fds, RSS) and what they made on the host
// (interfaces, tcx programs, pins) are compared, and any growth is a leak.
// At the end the teams are removed and the lab closed, and whatever is
// left of them is a leak too.
package soak

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

	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/team"
	"github.com/vishvananda/netlink"
)

// All is every disturbance, in the order a round runs them.
var All = []string{"kill", "flap", "flood", "rename", "full"}

// Pending lists disturbances (and "links") that fail on main because of a
// bug still being fixed; the short run in make test skips these, make soak
// runs everything. Add a name while its fix is open, delete it once merged.
var Pending = []string{}

// checkLinks names the check, at the end, that a daemon holds no BPF link
// once its last team is removed; Config.Skip may name it.
const checkLinks = "links"

// DefaultPPS is each stream's rate: one packet a millisecond, so a lost
// packet is a lost millisecond.
const DefaultPPS = 1000

// Config says what Run does.
type Config struct {
	// Bin holds nicteamd and nicteam-seqstream.
	Bin string
	// Disturbances are run in this order each round; nil means All.
	Disturbances []string
	// Skip names disturbances not to run after all, and "links" to skip
	// that check; see Pending.
	Skip []string
	// Duration: rounds after the warm-up start while less than this has
	// passed since the soak started; at least one does.
	Duration time.Duration
	// PPS is each stream's rate; 0 means DefaultPPS.
	PPS uint64
	// StateRoot holds the daemons' sockets and state directories.
	StateRoot string
	// Out gets the timeline as it happens and the counts at the end.
	Out io.Writer
}

// Result is what a soak counted and found.
type Result struct {
	Rounds   int // the warm-up included
	Flaps    int // cable pulls and members set down
	Restarts int
	Renames  int // there and back counts once
	Fills    int // of the state directory
	// Requests is the API requests of the floods: Rejected bad ones
	// answered 4xx as they should be, Failed ones answered wrongly (5xx,
	// a bad one accepted, a good one refused) or not at all.
	Requests, Rejected, Failed int
	Slowest                    time.Duration // the slowest answer in a flood
	Sent, Lost                 uint64        // stream packets
	// Streams are the stream counts by disturbance.
	Streams map[string]*StreamTally
	// Before is after the warm-up round, After after the last round.
	Before, After [2]NodeSnapshot
	Violations    []string
	Elapsed       time.Duration
}

// StreamTally is what the streams of one kind of disturbance saw.
type StreamTally struct {
	Windows     int    // disturbances run under streams
	Sent, Lost  uint64 // packets
	MaxOutageUs int64  // the longest gap in any stream
}

func (r *Result) add(name string, sent, lost uint64, outageUs int64) {
	if r.Streams == nil {
		r.Streams = make(map[string]*StreamTally)
	}
	t := r.Streams[name]
	if t == nil {
		t = &StreamTally{}
		r.Streams[name] = t
	}
	t.Windows++
	t.Sent += sent
	t.Lost += lost
	t.MaxOutageUs = max(t.MaxOutageUs, outageUs)
}

// soak is one run.
type soak struct {
	cfg   Config
	pps   uint64
	seed  *lab.Seed
	api   [2]*apiClient // by node index
	sw    *netlink.Handle
	start time.Time
	round int
	phase string // for the log when not in a round: "setup", "end"
	res   *Result
	// holder keeps node1's private mount namespace, with its state
	// directory on a small tmpfs, for every daemon started there.
	holder *lab.Proc
	// tmpfsDir is node1's state directory inside holder's namespace.
	tmpfsDir string
}

// Run builds the lab, runs the rounds and checks for leaks. It returns an
// error when the soak could not run; what it found is in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Disturbances == nil {
		cfg.Disturbances = All
	}
	for _, d := range cfg.Disturbances {
		if _, ok := disturbances[d]; !ok {
			return nil, fmt.Errorf("soak: unknown disturbance %q (want some of %s)", d, strings.Join(All, ", "))
		}
	}
	for _, d := range cfg.Skip {
		if _, ok := disturbances[d]; !ok && d != checkLinks {
			return nil, fmt.Errorf("soak: cannot skip %q: neither a disturbance (%s) nor %q", d, strings.Join(All, ", "), checkLinks)
		}
	}
	cfg.Disturbances = slices.DeleteFunc(slices.Clone(cfg.Disturbances), func(d string) bool { return slices.Contains(cfg.Skip, d) })
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	s := &soak{cfg: cfg, pps: cfg.PPS, res: &Result{}, start: time.Now()}
	if s.pps == 0 {
		s.pps = DefaultPPS
	}
	rootBefore, err := rootInterfaces()
	if err != nil {
		return nil, err
	}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	runErr := s.rounds(ctx)
	s.phase = "end"
	s.teardown(rootBefore)
	s.res.Elapsed = time.Since(s.start)
	s.summary()
	return s.res, runErr
}

func (s *soak) header() {
	w := s.cfg.Out
	fmt.Fprintf(w, "nicteam soak: lab %s; rounds of %s; 4 streams of %d pps (c1 ⇄ c2, two each way, through both nodes' Team0)\n",
		s.seed.Prefix, strings.Join(s.cfg.Disturbances, ", "), s.pps)
	fmt.Fprintln(w, "bounds, packets each stream may lose:")
	for _, d := range s.cfg.Disturbances {
		fmt.Fprintf(w, "  %-7s %d: %s\n", d, disturbances[d].bound(s.pps), disturbances[d].why)
	}
	if len(s.cfg.Skip) > 0 {
		fmt.Fprintf(w, "skipped: %s\n", strings.Join(s.cfg.Skip, ", "))
	}
	fmt.Fprintf(w, "leaks: daemon fds, interfaces, tcx programs and pins after the last round against after the warm-up round; RSS growth above %d%% (over %d rounds or more); pins or BPF links left after the teams are removed; namespaces, pins or root interfaces left after the lab is closed\n\n", maxRSSGrowthPercent, rssRounds)
	fmt.Fprintf(w, "  %11s  %-5s  %-7s  %s\n", "ms", "round", "what", "")
}

// setup builds the seed lab and prepares it; on error it closes it again.
func (s *soak) setup(ctx context.Context) error {
	var err error
	s.seed, err = lab.NewSeed(lab.UniquePrefix("sk"), lab.SeedOptions{
		Daemon: filepath.Join(s.cfg.Bin, "nicteamd"), StateRoot: s.cfg.StateRoot,
	})
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	for i, n := range s.seed.Nodes {
		s.api[i] = newAPIClient(n.Socket)
	}
	s.header()
	if err := s.prepare(ctx); err != nil {
		if s.sw != nil {
			s.sw.Close()
		}
		return errors.Join(fmt.Errorf("soak: %w", err), s.seed.Close())
	}
	return nil
}

// prepare opens the switch's netlink handle for the pulls, moves node1's
// daemon into a mount namespace of its own whose state directory is a
// small tmpfs, and crowds node1 with interfaces.
func (s *soak) prepare(ctx context.Context) error {
	var err error
	if s.sw, err = s.seed.Switch.Handle(); err != nil {
		return err
	}
	if err := s.privateStateDir(ctx); err != nil {
		return err
	}
	return s.crowd()
}

// crowdSize is how many interfaces besides the team's node1 has, so that
// its listings are as heavy as on a host with many containers.
const crowdSize = 200

// crowd gives node1 crowdSize more interfaces: veth pairs, since the
// kernel may have no dummy driver.
func (s *soak) crowd() error {
	var batch strings.Builder
	for i := range crowdSize / 2 {
		fmt.Fprintf(&batch, "link add soakv%d type veth peer name soakw%d\n", i, i)
	}
	path := filepath.Join(s.cfg.StateRoot, "crowd.ip")
	if err := os.WriteFile(path, []byte(batch.String()), 0o600); err != nil {
		return err
	}
	n := s.seed.Nodes[0]
	if _, err := n.Host.Run("ip", "-batch", path); err != nil {
		return err
	}
	s.logf("setup", "node1 has %d more interfaces (veth pairs) for its listings", crowdSize)
	return nil
}

// rounds runs the warm-up round, snapshots, runs measured rounds until the
// duration is up, and snapshots again.
func (s *soak) rounds(ctx context.Context) error {
	var roundTook time.Duration
	for s.round = 1; ; s.round++ {
		if s.round > 2 && time.Since(s.start)+roundTook > s.cfg.Duration {
			break
		}
		began := time.Now()
		for _, name := range s.cfg.Disturbances {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := disturbances[name].run(s, ctx); err != nil {
				s.violation(name, err)
				if rerr := s.recover(ctx); rerr != nil {
					s.violation(name, fmt.Errorf("could not bring the lab back, stopping: %w", rerr))
					return nil
				}
			}
		}
		s.res.Rounds = s.round
		roundTook = time.Since(began)
		at := &s.res.After
		if s.round == 1 {
			at = &s.res.Before
		}
		if err := s.snapshots(ctx, at); err != nil {
			s.violation("leaks", err)
			return nil
		}
	}
	for i, n := range s.seed.Nodes {
		for _, l := range leaks(n.Name, s.res.Before[i], s.res.After[i], s.judgeRSS()) {
			s.violation("leaks", errors.New(l))
		}
	}
	return nil
}

func (s *soak) snapshots(ctx context.Context, into *[2]NodeSnapshot) error {
	for i, n := range s.seed.Nodes {
		if _, err := s.api[i].waitTeam(ctx, team.Up, upWithin); err != nil {
			return err
		}
		snap, err := snapshot(ctx, n)
		if err != nil {
			return err
		}
		into[i] = snap
		s.logf("snap", "%s nicteamd pid %d: %d fds, %d KiB RSS; %d interfaces, %d tcx programs, %d pins",
			n.Name, snap.PID, snap.FDs, snap.RSSKiB, len(snap.Interfaces), sum(snap.Attached), len(snap.Pins))
	}
	return nil
}

// judgeRSS says whether enough rounds ran after the warm-up for the RSS
// to be compared.
func (s *soak) judgeRSS() bool { return s.res.Rounds-1 >= rssRounds }

// teardown removes the teams through the daemons, as a user would, checks
// that nothing of them is left, closes the lab and checks that nothing of
// it is left either.
func (s *soak) teardown(rootBefore []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, n := range s.seed.Nodes {
		if !n.DaemonRuns() {
			continue
		}
		if err := s.api[i].call(ctx, "DELETE", "/v1/teams/"+lab.TeamName, nil, nil); err != nil {
			s.violation("end", fmt.Errorf("%s: remove %s: %w", n.Name, lab.TeamName, err))
			continue
		}
		if left, err := pins(n.PinDir); err != nil || len(left) > 0 {
			s.violation("end", fmt.Errorf("%s: pins left after %s was removed: %v %v", n.Name, lab.TeamName, left, err))
		}
		// Its only team is gone: nothing may hold a link to it any more.
		if slices.Contains(s.cfg.Skip, checkLinks) {
			continue
		}
		if k, err := fdKinds(n.DaemonPID); err != nil || k["bpf-link"] > 0 {
			s.violation("end", fmt.Errorf("%s: nicteamd holds %d BPF links after its last team was removed %v", n.Name, k["bpf-link"], err))
		}
	}
	s.sw.Close()
	if err := s.seed.Close(); err != nil {
		s.violation("end", fmt.Errorf("close the lab: %w", err))
	}
	if left, _ := filepath.Glob(filepath.Join("/run/netns", s.seed.Prefix+"-*")); len(left) > 0 {
		s.violation("end", fmt.Errorf("namespaces left: %v", left))
	}
	for _, n := range s.seed.Nodes {
		if _, err := os.Stat(n.PinDir); err == nil {
			s.violation("end", fmt.Errorf("pin directory %s of %s left", n.PinDir, n.Name))
		}
	}
	after, err := rootInterfaces()
	if err != nil {
		s.violation("end", err)
	} else if extra := missingFrom(after, rootBefore); len(extra) > 0 {
		s.violation("end", fmt.Errorf("interfaces in the root namespace that were not there before: %v", extra))
	}
}

// rootInterfaces lists the interfaces of the namespace the soak runs in,
// which the lab must never touch.
func rootInterfaces() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names, nil
}

// logf prints one line of the timeline: ms since the start with µs.
func (s *soak) logf(what, format string, args ...any) {
	round := s.phase
	switch {
	case round != "":
	case s.round == 0:
		round = "setup"
	case s.round == 1:
		round = "warm"
	case s.round > 1:
		round = fmt.Sprint(s.round)
	}
	fmt.Fprintf(s.cfg.Out, "  %11.3f  %-5s  %-7s  %s\n",
		float64(time.Since(s.start).Microseconds())/1000, round, what, fmt.Sprintf(format, args...))
}

func (s *soak) violation(what string, err error) {
	msg := what + ": " + strings.ReplaceAll(err.Error(), "\n", "; ")
	s.res.Violations = append(s.res.Violations, msg)
	s.logf(what, "FAIL %s", strings.TrimPrefix(msg, what+": "))
}

// summary prints the counts.
func (s *soak) summary() {
	r, w := s.res, s.cfg.Out
	fmt.Fprintf(w, "\nsoak done in %v: %d rounds (the first the warm-up)\n", r.Elapsed.Round(time.Millisecond), r.Rounds)
	fmt.Fprintf(w, "  flaps      %d\n  restarts   %d\n  renames    %d\n  fills      %d\n", r.Flaps, r.Restarts, r.Renames, r.Fills)
	fmt.Fprintf(w, "  requests   %d (bad ones rejected %d, failed %d, slowest %v)\n", r.Requests, r.Rejected, r.Failed, r.Slowest.Round(time.Microsecond))
	fmt.Fprintf(w, "  packets    sent %d, lost %d\n", r.Sent, r.Lost)
	for _, d := range s.cfg.Disturbances {
		if t := r.Streams[d]; t != nil {
			fmt.Fprintf(w, "    %-7s  %d× sent %d, lost %d (bound %d per stream each time), longest outage %dµs\n",
				d, t.Windows, t.Sent, t.Lost, disturbances[d].bound(s.pps), t.MaxOutageUs)
		}
	}
	for i, n := range s.seed.Nodes {
		b, a := r.Before[i], r.After[i]
		fmt.Fprintf(w, "  %s fds    %d before, %d after (pid %d, %d)\n", n.Name, b.FDs, a.FDs, b.PID, a.PID)
		fmt.Fprintf(w, "  %s RSS    %d KiB before, %d KiB after\n", n.Name, b.RSSKiB, a.RSSKiB)
	}
	if !s.judgeRSS() {
		fmt.Fprintf(w, "  (RSS growth not judged: %d rounds after the warm-up, fewer than %d)\n", r.Rounds-1, rssRounds)
	}
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "PASS: no loss beyond the bounds, no leak")
		return
	}
	fmt.Fprintf(w, "FAIL: %d violations\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  %s\n", v)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
