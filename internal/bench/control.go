package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/balance"
	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/team"
)

// The control-plane figure: teams of these sizes are created and removed
// through the CLI, and the daemon's footprint is read over a window while
// idle and while a Dynamic team rebalances.
var teamSizes = []int{2, 8, 32}

const (
	// lifecycleTeam is the team created and removed; its members are
	// veths named ctl0.. whose other ends are in a namespace of their own,
	// there only to give them a carrier.
	lifecycleTeam = "Bench1"
	ctlPrefix     = "ctl"
	// lifecyclePoll is how often the benchmark asks the daemon whether
	// the team is Up or gone: often enough to resolve a millisecond,
	// rarely enough not to load the daemon it times.
	lifecyclePoll = time.Millisecond
	// lifecycleSlack, in ms: a command that returned within this of the
	// state it asked for had waited for it; the rest is the benchmark's
	// poll.
	lifecycleSlack = 5.0
	// usageWindow is how long the daemon's CPU time is watched, which
	// the kernel counts in 10 ms ticks: 0.2% of a core over 5 s.
	usageWindow      = 5 * time.Second
	quickUsageWindow = time.Second
	// rebalanceFlows through a Dynamic Team0 while the daemon is watched
	// rebalancing, each at rebalanceRate: a load that leaves the machine
	// CPU to spare, so the daemon is measured rather than starved.
	rebalanceFlows = 8
	rebalanceRate  = "250M"
	// clockTick is the unit of utime and stime in /proc/PID/stat:
	// USER_HZ, 100 on every Linux architecture's user ABI.
	clockTick = 10 * time.Millisecond
)

// Control is the control-plane figure.
type Control struct {
	Sizes []TeamLifecycle `json:"sizes"`
	Idle  DaemonUsage     `json:"idle"`
	Busy  DaemonUsage     `json:"rebalancing"`
}

// TeamLifecycle is the creation and removal of teams of one size, in
// milliseconds from the start of the CLI command.
type TeamLifecycle struct {
	Members   int            `json:"members"`
	Runs      []LifecycleRun `json:"runs"`
	Median    LifecycleRun   `json:"median"` // of each column; Run is 0
	MaxUpMs   float64        `json:"maxUpMs"`
	MaxGoneMs float64        `json:"maxGoneMs"`
}

// LifecycleRun is one creation and removal.
type LifecycleRun struct {
	Run    int     `json:"run"`
	NewMs  float64 `json:"newMs"`  // until `nicteam new` returned
	UpMs   float64 `json:"upMs"`   // until the daemon reported the team Up
	RmMs   float64 `json:"rmMs"`   // until `nicteam rm` returned
	GoneMs float64 `json:"goneMs"` // until the daemon no longer knew the team
}

// DaemonUsage is nicteamd's footprint over a window.
type DaemonUsage struct {
	Teams      string  `json:"teams"` // what the daemon ran meanwhile
	Window     string  `json:"window"`
	RSSKiB     uint64  `json:"rssKiB"`     // VmRSS at the end
	PeakKiB    uint64  `json:"peakKiB"`    // VmHWM: the most it ever had
	CPUPercent float64 `json:"cpuPercent"` // of one core
	// CPUResolution is one clock tick over the window, in percent: a
	// CPUPercent of 0 means less than that.
	CPUResolution float64 `json:"cpuResolution"`
	// CarriedGbps is what the team's members sent over the window, and
	// Moves counts the daemon's bucket moves since the flows started: the
	// load it balanced and how often it moved some of it.
	CarriedGbps float64 `json:"carriedGbps"`
	Moves       int     `json:"moves"`
}

// measureControl times team creation and removal, then reads the daemon's
// footprint idle and rebalancing.
func measureControl(ctx context.Context, e *env, cfg Config) (*Control, error) {
	if err := e.addCarriers(teamSizes[len(teamSizes)-1]); err != nil {
		return nil, fmt.Errorf("measure control: %w", err)
	}
	res := &Control{}
	runs := make([][]LifecycleRun, len(teamSizes))
	for i := range cfg.Runs {
		for k := range teamSizes {
			j := (i + k) % len(teamSizes)
			r, err := e.lifecycle(ctx, teamSizes[j])
			if err != nil {
				return nil, fmt.Errorf("measure control: team of %d: %w", teamSizes[j], err)
			}
			r.Run = i + 1
			fmt.Fprintf(e.log, "  run %d, %d members: new %.1f ms, Up %.1f ms, rm %.1f ms, gone %.1f ms\n",
				r.Run, teamSizes[j], r.NewMs, r.UpMs, r.RmMs, r.GoneMs)
			runs[j] = append(runs[j], r)
		}
	}
	for j, n := range teamSizes {
		res.Sizes = append(res.Sizes, summarizeLifecycle(n, runs[j]))
	}
	window := usageWindow
	if cfg.Quick {
		window = quickUsageWindow
	}
	var err error
	if res.Idle, err = e.usage(ctx, window); err != nil {
		return nil, fmt.Errorf("measure control: idle: %w", err)
	}
	res.Idle.Teams = fmt.Sprintf("%s (%s, 2 members), no traffic", teamName, team.TransportPorts)
	if res.Busy, err = e.rebalancing(ctx, window); err != nil {
		return nil, fmt.Errorf("measure control: rebalancing: %w", err)
	}
	fmt.Fprintf(e.log, "  idle: %d KiB, %.2f%% CPU; rebalancing: %d KiB, %.2f%% CPU, %.2f Gbit/s carried, %d moves\n",
		res.Idle.RSSKiB, res.Idle.CPUPercent, res.Busy.RSSKiB, res.Busy.CPUPercent, res.Busy.CarriedGbps, res.Busy.Moves)
	return res, nil
}

// addCarriers gives the host n interfaces with carrier, ctl0.., cabled to
// a namespace of their own.
func (e *env) addCarriers(n int) error {
	far, err := e.lab.AddHost("ctl")
	if err != nil {
		return err
	}
	for i := range n {
		name := ctlPrefix + strconv.Itoa(i)
		if err := e.lab.Cable(e.lab.Host, name, far, name); err != nil {
			return err
		}
	}
	return nil
}

// lifecycle creates a team of n members with the CLI, waits until the
// daemon reports it Up, removes it with the CLI and waits until the
// daemon no longer knows it.
func (e *env) lifecycle(ctx context.Context, n int) (LifecycleRun, error) {
	members := make([]string, n)
	for i := range members {
		members[i] = ctlPrefix + strconv.Itoa(i)
	}
	var r LifecycleRun
	start := time.Now()
	// The defaults (SwitchIndependent, Dynamic), as most users make teams.
	if err := e.cli(ctx, "new", lifecycleTeam, "--members", strings.Join(members, ",")); err != nil {
		return r, err
	}
	r.NewMs = msSince(start)
	if err := e.pollTeam(ctx, func(tm api.Team, err error) bool { return err == nil && tm.Status == team.Up }); err != nil {
		return r, fmt.Errorf("wait for %s Up: %w", lifecycleTeam, err)
	}
	r.UpMs = msSince(start)
	start = time.Now()
	if err := e.cli(ctx, "rm", lifecycleTeam); err != nil {
		return r, err
	}
	r.RmMs = msSince(start)
	if err := e.pollTeam(ctx, func(_ api.Team, err error) bool { return isNotFound(err) }); err != nil {
		return r, fmt.Errorf("wait for %s gone: %w", lifecycleTeam, err)
	}
	r.GoneMs = msSince(start)
	return r, nil
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// cli runs the nicteam CLI against the lab's daemon.
func (e *env) cli(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, statusWait)
	defer cancel()
	args = append([]string{"--socket", e.socket}, args...)
	out, err := exec.CommandContext(ctx, filepath.Join(e.bin, "nicteam"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nicteam %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// pollTeam asks the daemon about lifecycleTeam until done says so.
func (e *env) pollTeam(ctx context.Context, done func(api.Team, error) bool) error {
	return lab.Poll(ctx, statusWait, lifecyclePoll, func(ctx context.Context) (bool, error) {
		tm, err := e.client.Team(ctx, lifecycleTeam)
		if done(tm, err) {
			return true, nil
		}
		return false, fmt.Errorf("status %v (%v)", tm.Status, err)
	})
}

// summarizeLifecycle takes the medians and maxima of runs.
func summarizeLifecycle(n int, runs []LifecycleRun) TeamLifecycle {
	var nw, up, rm, gone []float64
	t := TeamLifecycle{Members: n, Runs: runs}
	for _, r := range runs {
		nw, up, rm, gone = append(nw, r.NewMs), append(up, r.UpMs), append(rm, r.RmMs), append(gone, r.GoneMs)
		t.MaxUpMs, t.MaxGoneMs = max(t.MaxUpMs, r.UpMs), max(t.MaxGoneMs, r.GoneMs)
	}
	t.Median = LifecycleRun{NewMs: median(nw), UpMs: median(up), RmMs: median(rm), GoneMs: median(gone)}
	return t
}

// usage watches the daemon over window.
func (e *env) usage(ctx context.Context, window time.Duration) (DaemonUsage, error) {
	pid := e.daemon.Pid()
	u := DaemonUsage{Window: window.String()}
	before, err := cpuTicks(pid)
	if err != nil {
		return u, err
	}
	start := time.Now()
	if err := sleep(ctx, window); err != nil {
		return u, err
	}
	after, err := cpuTicks(pid)
	if err != nil {
		return u, err
	}
	elapsed := time.Since(start).Seconds()
	u.CPUPercent = 100 * float64(after-before) * clockTick.Seconds() / elapsed
	u.CPUResolution = 100 * clockTick.Seconds() / elapsed
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("read daemon memory: %w", err)
	}
	if u.RSSKiB, err = statusKiB(string(status), "VmRSS"); err != nil {
		return u, err
	}
	if u.PeakKiB, err = statusKiB(string(status), "VmHWM"); err != nil {
		return u, err
	}
	return u, nil
}

// rebalancing makes Team0 Dynamic, sends rebalanceFlows flows through it
// and watches the daemon over window; then Team0 is as it was.
func (e *env) rebalancing(ctx context.Context, window time.Duration) (u DaemonUsage, err error) {
	if _, err := e.client.SetTeam(ctx, teamName, api.SetTeam{Algorithm: team.Dynamic.String()}); err != nil {
		return u, fmt.Errorf("make %s dynamic: %w", teamName, err)
	}
	defer func() {
		if _, serr := e.client.SetTeam(context.WithoutCancel(ctx), teamName, api.SetTeam{Algorithm: team.TransportPorts.String()}); serr != nil {
			err = errors.Join(err, fmt.Errorf("restore %s: %w", teamName, serr))
		}
	}()
	srv, err := e.iperfServer(ctx)
	if err != nil {
		return u, err
	}
	defer srv.Kill()
	// The flows get a second to start before the window and outlast it;
	// they are stopped when it ends.
	secs := int(window/time.Second) + 3
	flows := e.lab.Host.Exec(ctx, "iperf3", "-c", teamPath.dst, "--connect-timeout", "3000",
		"-P", strconv.Itoa(rebalanceFlows), "-b", rebalanceRate, "-t", strconv.Itoa(secs))
	if err := flows.Start(); err != nil {
		return u, fmt.Errorf("start iperf3: %w", err)
	}
	defer func() {
		flows.Process.Kill()
		flows.Wait()
	}()
	started := time.Now()
	if err := sleep(ctx, time.Second); err != nil {
		return u, err
	}
	// The members' counters, not the team NIC's: frames leave the team
	// NIC by a redirect from its egress program, which its own transmit
	// counters never see.
	_, before, err := e.txCounters(teamMembers)
	if err != nil {
		return u, err
	}
	from := time.Now()
	if u, err = e.usage(ctx, window); err != nil {
		return u, err
	}
	_, after, err := e.txCounters(teamMembers)
	if err != nil {
		return u, err
	}
	var carried uint64
	for _, m := range teamMembers {
		carried += after[m] - before[m]
	}
	u.CarriedGbps = float64(carried) * 8 / time.Since(from).Seconds() / 1e9
	u.Teams = fmt.Sprintf("%s (%s, 2 members), %d TCP flows of %sbit/s each", teamName, team.Dynamic, rebalanceFlows, rebalanceRate)
	err = e.client.Events(ctx, false, func(ev api.Event) error {
		if ev.Kind == api.EventBucketsMoved && ev.Time.After(started) {
			u.Moves++
		}
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("read daemon events: %w", err)
	}
	return u, nil
}

// cpuTicks reads a process's utime+stime from /proc/PID/stat.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read daemon cpu time: %w", err)
	}
	return parseCPUTicks(string(b))
}

// parseCPUTicks reads utime+stime, fields 14 and 15, from a /proc/PID/stat
// line. The command name, field 2, is in parentheses and may hold spaces
// and parentheses itself, so fields are counted after its last ')'.
func parseCPUTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/PID/stat: no command name: %q", stat)
	}
	// After ")": field 3 (state) onwards.
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/PID/stat: %d fields after the command name, want at least 13", len(f))
	}
	var total uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/PID/stat: cpu time %q: %w", s, err)
		}
		total += n
	}
	return total, nil
}

// statusKiB reads field ("VmRSS") from /proc/PID/status, in KiB.
func statusKiB(status, field string) (uint64, error) {
	for line := range strings.Lines(status) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != field {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
		if unit != "kB" {
			return 0, fmt.Errorf("parse /proc/PID/status: %s in %q, want kB", field, unit)
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/PID/status: %s: %w", field, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("parse /proc/PID/status: no %s", field)
}

// writeControl is the control-plane section of the report.
func writeControl(b *strings.Builder, c *Control) {
	b.WriteString("## Control plane\n\n")
	fmt.Fprintf(b, "`nicteam new %s --members ctl0,…` (SwitchIndependent, Dynamic) and `nicteam rm %s`, each a run of the CLI "+
		"against nicteamd, for teams of %s members, the sizes alternated. The members are veths whose other "+
		"ends are in a namespace of their own, so they have a carrier and nothing else. *Up* is from the start of "+
		"`new` until the daemon reports the team Up, *gone* from the start of `rm` until it no longer knows "+
		"the team; the benchmark asks every %v.\n\n", lifecycleTeam, lifecycleTeam, sizesText(), lifecyclePoll)
	b.WriteString("| members | `new` returned ms | Up ms | `rm` returned ms | gone ms | runs | worst Up ms | worst gone ms |\n" +
		"|---|---|---|---|---|---|---|---|\n")
	for _, s := range c.Sizes {
		m := s.Median
		fmt.Fprintf(b, "| %d | %.1f | %.1f | %.1f | %.1f | %d | %.1f | %.1f |\n",
			s.Members, m.NewMs, m.UpMs, m.RmMs, m.GoneMs, len(s.Runs), s.MaxUpMs, s.MaxGoneMs)
	}
	b.WriteString("\n(medians, then the worst run)\n\n")
	b.WriteString("nicteamd's footprint: resident memory (VmRSS, and VmHWM, the most it ever had) from " +
		"/proc/PID/status at the end of a window, and CPU time (utime + stime from /proc/PID/stat, counted " +
		"in 10 ms ticks) over it, as a share of one core.\n\n")
	b.WriteString("| while | window | RSS | peak RSS | CPU | team sent Gbit/s | bucket moves |\n|---|---|---|---|---|---|---|\n")
	for _, u := range []DaemonUsage{c.Idle, c.Busy} {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %.2f | %d |\n",
			u.Teams, u.Window, kib(u.RSSKiB), kib(u.PeakKiB), cpuText(u), u.CarriedGbps, u.Moves)
	}
	b.WriteString("\n")
	if len(c.Sizes) > 0 {
		big := c.Sizes[len(c.Sizes)-1]
		fmt.Fprintf(b, "What it means: a team of %d members is Up %.0f ms after `nicteam new` starts and gone "+
			"%.0f ms after `nicteam rm` does. ", big.Members, big.Median.UpMs, big.Median.GoneMs)
		if big.Median.UpMs-big.Median.NewMs < lifecycleSlack && big.Median.GoneMs-big.Median.RmMs < lifecycleSlack {
			b.WriteString("The commands return once that is done, so a provisioning script or an orchestrator " +
				"needs to wait for nothing but the command. ")
		}
	}
	fmt.Fprintf(b, "The daemon holds %s while idle and %s while a Dynamic team carries %.1f Gbit/s, using "+
		"%s and %s of a core: it sleeps until the kernel tells it something, and a Dynamic team adds a "+
		"read of the bucket counters and a rebalancing pass every %s.\n\n",
		kib(c.Idle.RSSKiB), kib(c.Busy.RSSKiB), c.Busy.CarriedGbps, cpuText(c.Idle), cpuText(c.Busy), balance.DefaultInterval)
	if len(c.Sizes) > 1 {
		small, big := c.Sizes[0], c.Sizes[len(c.Sizes)-1]
		perMember := (big.Median.UpMs - small.Median.UpMs) / float64(big.Members-small.Members)
		fmt.Fprintf(b, "What bounds it: the work per member, about %.1f ms each here (the difference between the "+
			"largest and the smallest team): attaching the member's tcx program and pinning its link, and "+
			"taking the member over (MTU, promiscuity, up); and on top a fixed cost of the team NIC's veth pair, "+
			"the maps and the CLI's own start. Removing undoes the same per member. ", perMember)
	}
	b.WriteString("The footprint is the Go runtime's floor plus the daemon's maps and buffers, and the CPU " +
		"share is as coarse as the kernel's 10 ms tick over the window.\n\n")
}

// cpuText spells a CPU share, or that it was below the tick's resolution.
func cpuText(u DaemonUsage) string {
	if u.CPUPercent == 0 {
		return fmt.Sprintf("< %.2f%%", u.CPUResolution)
	}
	return fmt.Sprintf("%.2f%%", u.CPUPercent)
}

// sizesText spells teamSizes, "2, 8 and 32".
func sizesText() string {
	var s []string
	for _, n := range teamSizes {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// kib spells an amount of memory given in KiB in MiB.
func kib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/1024) }
