package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/team"
)

// The failover-under-load figure: the daemon's reaction to a pulled cable,
// idle and while API clients list everything in a loop, on a host with
// many interfaces, so that a listing is as large as it gets in the field.
const (
	// crowdPairs veth pairs, both ends up in the team's namespace: twice
	// as many interfaces with carrier, each a row of `nicteam adapters`.
	crowdPairs = 500
	// hammerClients loop over hammerPaths at hammerNice, so that they
	// take CPU only when nothing else wants it: what is left to slow the
	// daemon is its own work for them, and whatever it holds while doing
	// it.
	hammerClients = 8
	hammerNice    = 19
	// hammerStart lets the clients start (a process each) before the
	// first pull, and hammerWarmUp lets them get going again after a
	// pause, before the cable is pulled.
	hammerStart  = time.Second
	hammerWarmUp = 300 * time.Millisecond
	// reactionWait bounds the wait for the daemon's reaction to a pull or
	// a plug; beyond it the figure fails rather than wait for ever.
	reactionWait = 20 * time.Second
	// idleWindow without CPU time (five of the kernel's ticks) is when
	// the daemon counts as idle; idleWait bounds the wait for it.
	idleWindow = 5 * clockTick
	idleWait   = 30 * time.Second
	// settle is the pause after a member is back, before the next pull.
	settle = 50 * time.Millisecond
	// contentionTarget: the hammered median at most twice the idle one.
	contentionTarget = 2.0
)

// hammerPaths are what each client asks the API for, in a loop: the
// listings of `nicteam adapters`, `get`, `members` and `stats Team0`.
var hammerPaths = []string{"adapters", "teams", "members", "teams/" + teamName + "/stats"}

// Contention is the failover-under-load figure.
type Contention struct {
	Interfaces int      `json:"interfaces"` // on the team's host, besides lo and the team's own
	Clients    int      `json:"clients"`
	Nice       int      `json:"nice"`
	Paths      []string `json:"paths"` // each client's loop, under /v1/
	Lab        LabInfo  `json:"lab"`
	Loads      []Load   `json:"loads"`  // idle first, then hammered
	Ratio      float64  `json:"ratio"`  // hammered / idle median
	Target     float64  `json:"target"` // most ratio
	Met        bool     `json:"met"`
}

// Load is the pulls under one load.
type Load struct {
	Load     string     `json:"load"` // idle or hammered
	Pulls    []Reaction `json:"pulls"`
	MedianUs float64    `json:"medianUs"`
	MaxUs    int64      `json:"maxUs"`
	// Requests is how many requests the clients had answered over the
	// pulls' windows, and PerSecond their rate: the load the daemon served.
	Requests  int     `json:"requests,omitempty"`
	PerSecond float64 `json:"perSecond,omitempty"`
}

// Reaction is one pull: from the cable pulled to the daemon's log of the
// bucket rewrite, by the daemon's µs timestamps.
type Reaction struct {
	Pull       int    `json:"pull"`
	Member     string `json:"member"`
	ReactionUs int64  `json:"reactionUs"`
}

// The loads, in the order of the figure.
const (
	loadIdle     = "idle"
	loadHammered = "hammered"
)

// measureContention builds its own lab: a team of two members beside
// crowdPairs veth pairs. It pulls a member's cable cfg.Pulls times under
// each load, alternating them pull by pull, so noise on the machine hits
// both alike.
func measureContention(ctx context.Context, cfg Config, bin string, log io.Writer) (_ *Contention, err error) {
	e, err := newEnvWith(ctx, bin, log, len(teamMembers), func(e *env, ctx context.Context) error {
		if err := e.crowd(ctx, crowdPairs); err != nil {
			return err
		}
		return e.createTeam(ctx, teamMembers, team.TransportPorts)
	})
	if err != nil {
		return nil, fmt.Errorf("measure contention: %w", err)
	}
	defer func() {
		if cerr := e.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("measure contention: clean up: %w", cerr))
		}
	}()
	moves, stop := e.followMoves(ctx)
	defer stop()
	h, err := e.startHammer(ctx)
	if err != nil {
		return nil, fmt.Errorf("measure contention: %w", err)
	}
	defer h.kill()
	res := &Contention{Interfaces: 2 * crowdPairs, Clients: hammerClients, Nice: hammerNice,
		Paths: hammerPaths, Target: contentionTarget, Lab: LabInfo{Prefix: e.lab.Prefix, Pins: e.pins},
		Loads: []Load{{Load: loadIdle}, {Load: loadHammered}}}
	fmt.Fprintf(log, "contention: lab %s, %d interfaces beside the team\n", e.lab.Prefix, res.Interfaces)
	for i := range cfg.Pulls {
		for k := range res.Loads {
			j := (i + k) % len(res.Loads)
			l := &res.Loads[j]
			member := teamMembers[i%len(teamMembers)]
			hammered := l.Load == loadHammered
			if hammered {
				if err := h.resume(ctx); err != nil {
					return nil, fmt.Errorf("measure contention: %w", err)
				}
			}
			r, err := e.reaction(ctx, member, moves)
			served, secs := 0, 0.0
			if hammered {
				served, secs = h.pause()
			}
			if err != nil {
				return nil, fmt.Errorf("measure contention: %s pull %d: %w", l.Load, i+1, err)
			}
			if hammered {
				// The requests the clients were waiting for when paused
				// are still being answered.
				if err := e.waitIdle(ctx); err != nil {
					return nil, fmt.Errorf("measure contention: %w", err)
				}
			}
			r.Pull = i + 1
			l.Pulls = append(l.Pulls, r)
			l.Requests += served
			l.PerSecond += secs // the seconds, until summarize makes a rate of them
			fmt.Fprintf(log, "  %s pull %d of %s: reacted after %dµs (%d requests answered meanwhile)\n",
				l.Load, r.Pull, member, r.ReactionUs, served)
			if err := sleep(ctx, settle); err != nil {
				return nil, err
			}
		}
	}
	// Clients that died (no curl, a wrong socket) would make every
	// hammered pull an idle one, and the ratio meaningless.
	if hammered := res.Loads[1]; hammered.Requests == 0 {
		return nil, fmt.Errorf("measure contention: the API clients had no request answered in %d hammered pulls", len(hammered.Pulls))
	}
	res.summarize()
	return res, nil
}

// summarize takes the medians and their ratio.
func (c *Contention) summarize() {
	for i := range c.Loads {
		l := &c.Loads[i]
		var us []float64
		for _, p := range l.Pulls {
			us = append(us, float64(p.ReactionUs))
			l.MaxUs = max(l.MaxUs, p.ReactionUs)
		}
		l.MedianUs = median(us)
		if l.PerSecond > 0 {
			l.PerSecond = float64(l.Requests) / l.PerSecond
		}
	}
	if idle := c.Loads[0].MedianUs; idle > 0 {
		c.Ratio = c.Loads[1].MedianUs / idle
	}
	c.Met = c.Ratio > 0 && c.Ratio <= c.Target
}

// crowd gives the host n veth pairs, both ends up: 2n interfaces with
// carrier, made in one `ip -batch`.
func (e *env) crowd(ctx context.Context, n int) error {
	var batch strings.Builder
	for i := range n {
		fmt.Fprintf(&batch, "link add cr%da type veth peer name cr%db\nlink set cr%da up\nlink set cr%db up\n", i, i, i, i)
	}
	cmd := e.lab.Host.Exec(ctx, "ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("add %d veth pairs: %w: %s", n, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// followMoves follows the daemon's events and sends the times of its
// bucket moves; stop ends the following.
func (e *env) followMoves(ctx context.Context) (moves <-chan time.Time, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan time.Time, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		// An error ends the stream, which nextMove reports.
		e.client.Events(ctx, true, func(ev api.Event) error {
			if ev.Kind != api.EventBucketsMoved {
				return nil
			}
			select {
			case ch <- ev.Time:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return ch, func() {
		cancel()
		<-done
	}
}

// reaction pulls member's cable and returns how long the daemon took to
// move its buckets; then it plugs the cable back and waits for the
// buckets to return.
func (e *env) reaction(ctx context.Context, member string, moves <-chan time.Time) (Reaction, error) {
	r := Reaction{Member: member}
	pulled, err := e.setCable(member, false)
	if err != nil {
		return r, err
	}
	moved, err := nextMove(ctx, moves, pulled)
	if err != nil {
		return r, fmt.Errorf("pull %s: %w", member, err)
	}
	r.ReactionUs = moved.Sub(pulled).Microseconds()
	plugged, err := e.setCable(member, true)
	if err != nil {
		return r, err
	}
	if _, err := nextMove(ctx, moves, plugged); err != nil {
		return r, fmt.Errorf("plug %s back: %w", member, err)
	}
	return r, nil
}

// waitIdle waits until the daemon has used no CPU for idleWindow: until
// it has answered what it had been asked.
func (e *env) waitIdle(ctx context.Context) error {
	last, err := cpuTicks(e.daemon.Pid())
	if err != nil {
		return err
	}
	if err := sleep(ctx, idleWindow); err != nil {
		return err
	}
	return lab.Poll(ctx, idleWait, idleWindow, func(context.Context) (bool, error) {
		now, err := cpuTicks(e.daemon.Pid())
		if err != nil {
			return true, err
		}
		if now == last {
			return true, nil
		}
		last = now
		return false, fmt.Errorf("wait for nicteamd to be idle: still busy after %v", idleWait)
	})
}

// nextMove returns the first bucket move logged after from.
func nextMove(ctx context.Context, moves <-chan time.Time, from time.Time) (time.Time, error) {
	timeout := time.After(reactionWait)
	for {
		select {
		case at, ok := <-moves:
			if !ok {
				return at, fmt.Errorf("the daemon's event stream ended")
			}
			if at.After(from) {
				return at, nil
			}
		case <-timeout:
			return time.Time{}, fmt.Errorf("the daemon moved no buckets within %v", reactionWait)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// hammer is hammerClients clients of the API, paused (SIGSTOP) while the
// API is to be idle, so that both loads are measured in one run, pull by
// pull.
type hammer struct {
	procs   []*lab.Proc
	resumed time.Time
	served  int // answers counted at the last pause
}

// startHammer starts the clients, lets them get going for hammerStart
// and pauses them. Each is a curl that asks for hammerPaths over and
// over, a new connection for each round (as each run of the CLI makes
// one), and writes the status of every answer. curl rather than the CLI:
// a Go program's start would cost more CPU than the request, and at nice
// 19 on a busy machine the clients would then hardly ask at all.
func (e *env) startHammer(ctx context.Context) (*hammer, error) {
	url := fmt.Sprintf("http://round[1-1000000000]/v1/{%s}", strings.Join(hammerPaths, ","))
	h := &hammer{}
	for range hammerClients {
		p, err := e.lab.Host.Start("nice", "-n", strconv.Itoa(hammerNice), "curl", "--silent", "--unix-socket", e.socket,
			"--output", "/dev/null", "--write-out", "%{stderr}%{response_code}\n", url)
		if err != nil {
			h.kill()
			return nil, err
		}
		h.procs = append(h.procs, p)
	}
	if err := sleep(ctx, hammerStart); err != nil {
		h.kill()
		return nil, err
	}
	h.pause()
	if err := e.waitIdle(ctx); err != nil {
		h.kill()
		return nil, err
	}
	return h, nil
}

// resume lets the clients go on and gives them hammerWarmUp to.
func (h *hammer) resume(ctx context.Context) error {
	if err := h.signal(syscall.SIGCONT); err != nil {
		return err
	}
	h.resumed = time.Now()
	return sleep(ctx, hammerWarmUp)
}

// pause stops the clients and returns how many requests they had answered
// since they were resumed, and over how long.
func (h *hammer) pause() (served int, secs float64) {
	h.signal(syscall.SIGSTOP)
	secs = time.Since(h.resumed).Seconds()
	total := 0
	for _, p := range h.procs {
		total += strings.Count(p.Output(), "200\n")
	}
	served, h.served = total-h.served, total
	return served, secs
}

// signal signals every client's process group.
func (h *hammer) signal(sig syscall.Signal) error {
	for _, p := range h.procs {
		if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal API client: %w", err)
		}
	}
	return nil
}

// kill ends the clients, paused or not.
func (h *hammer) kill() {
	for _, p := range h.procs {
		p.Kill()
	}
}

// writeContention is the failover-under-load section of the report.
func writeContention(b *strings.Builder, c *Contention) {
	b.WriteString("## Failover while the API is hammered\n\n")
	fmt.Fprintf(b, "A lab of its own: the host's eth1 and eth2 on the switch, teamed as `%s` (SwitchIndependent, "+
		"TransportPorts), beside %d more interfaces with carrier (veth pairs, both ends on the host), so that "+
		"`nicteam adapters` lists %d rows, as on a host with many containers. A pull is a member's switch port set "+
		"down (the member loses carrier at once); the reaction is from then until nicteamd logs rewriting the "+
		"bucket table, by the µs timestamps of its event log; then the cable is plugged back and the buckets "+
		"return before the next pull. *Hammered*: %d clients, each a curl asking the API for `/v1/%s` over and "+
		"over, a new connection each round as the CLI makes one, at nice %d, so they take CPU only when nothing else wants it and what can slow the "+
		"daemon is the work it does for them, and whatever it holds while doing it. They are resumed %s before "+
		"the pull and paused (SIGSTOP) after the plug. The loads alternate pull by pull, so noise on the machine hits both.\n\n",
		teamName, c.Interfaces, c.Interfaces+len(teamMembers)+1, c.Clients, strings.Join(c.Paths, "`, `/v1/"),
		c.Nice, hammerWarmUp)
	b.WriteString("| load | pulls | median reaction µs | worst µs | requests answered | per second |\n|---|---|---|---|---|---|\n")
	for _, l := range c.Loads {
		rate := "–"
		if l.PerSecond > 0 {
			rate = fmt.Sprintf("%.0f", l.PerSecond)
		}
		fmt.Fprintf(b, "| %s | %d | %.0f | %d | %d | %s |\n", l.Load, len(l.Pulls), l.MedianUs, l.MaxUs, l.Requests, rate)
	}
	fmt.Fprintf(b, "\nhammered / idle = **%.2f**; target ≤ %.0f: %s.\n\n", c.Ratio, c.Target, metText(c.Met))
	b.WriteString("What it means: how much an operator's listings, a monitoring loop or a flood of them delay " +
		"a failover. The daemon reads what a listing needs from the kernel (the netlink dump of every interface; " +
		"ethtool's speed and driver, asked once per interface until its link changes; a datapath's counters from " +
		"its BPF maps) without its lock, and takes the lock only to copy its own state, so the carrier event, " +
		"which needs that lock to rewrite the buckets, waits for a copy, never for a listing of the host.\n\n")
	b.WriteString("What bounds it: the CPU the listings cost the daemon itself. Its threads run at the default " +
		"priority whoever asked, and a listing of every interface is a netlink dump of them all, parsed, and a " +
		"large JSON answer; the daemon runs one listing at a time, so they keep at most one core from the event " +
		"that reports the pulled cable, which on a machine of few cores still waits for the Go scheduler and the " +
		"kernel's RTNL lock that the dumps take.\n\n")
}
