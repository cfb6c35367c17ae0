package soak

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/team"
)

// A disturbance is one kind of trouble a round makes under traffic.
type disturbance struct {
	// flaps is how many member failovers it makes, each allowed to cost
	// each stream flapBudget; 0 means it may cost no packet at all.
	flaps int
	why   string // why that bound, for the report
	run   func(*soak, context.Context) error
}

// disturbances by name; All orders them. Made in init because their runs
// look their bounds up here.
var disturbances map[string]disturbance

func init() {
	disturbances = map[string]disturbance{
		"kill": {0, "node1's nicteamd SIGKILLed, restarted after 300ms: the datapath is pinned and needs no daemon", (*soak).kill},
		"flap": {1, "per cable pull and plug-in (once per node, alternating eth1 and eth2)", (*soak).flaps},
		"flood": {1, "a pull of node1's eth1 while both daemons answer a flood of listings (node1 has 200 more " +
			"interfaces to list) and bad requests, each answered within 1s, bad ones 4xx", (*soak).flood},
		"rename": {3, "node2's eth2 set down, renamed and up; its cable pulled and plugged back while renamed; " +
			"renamed back: three failovers", (*soak).rename},
		"full": {0, "node1's state directory filled up, a member removal refused without touching the host, " +
			"freed, nicteamd SIGKILLed and restarted: nothing changed, so nothing may be lost", (*soak).full},
	}
}

// bound returns how many packets a stream may lose to d.
func (d disturbance) bound(pps uint64) uint64 {
	return uint64(d.flaps) * uint64(flapBudget) * pps / uint64(time.Second)
}

// The timings of the disturbances.
const (
	// flapBudget is what one member failover (a pull and a plug-in) may
	// cost a stream. It bounds whether the failover happened, not how
	// fast: speed is the benchmark's business (make bench). A failover is
	// a map write after the carrier event, and on a learning switch the
	// peers find the team's MAC at once; 0 to 13ms were lost per flap on
	// an idle machine, up to 74ms with the machine's two cores shared by a
	// load of 13. A failover that does not happen costs the whole time the
	// cable is out (down, four times as long); one that waits for the API
	// was seen to cost 743ms.
	flapBudget = 250 * time.Millisecond
	// lead and tail: the streams run this long before a disturbance and
	// after the team is Up again, so that loss at either end shows.
	lead = 200 * time.Millisecond
	tail = 300 * time.Millisecond
	// down is how long a pulled cable stays out.
	down = time.Second
	// noticeWithin is how soon the API must show a pulled member: a team
	// that says Up while it drops traffic is a bug.
	noticeWithin = time.Second
	// upWithin is how soon a team must be Up again after its last member
	// came back, or a restarted daemon answer.
	upWithin = 5 * time.Second
	// killGap is how long a killed daemon stays dead.
	killGap = 300 * time.Millisecond
	// floodFor is how long a flood lasts; floodWorkers clients per daemon
	// send requests back to back and stalledConns per daemon send half a
	// request header and then nothing; every answer must come within
	// floodLatency.
	floodFor     = 2 * time.Second
	floodWorkers = 4
	stalledConns = 32
	floodLatency = time.Second
	// stateTmpfs is the size of node1's state directory.
	stateTmpfs = "256k"
	// renamedPrefix makes a renamed member's name.
	renamedPrefix = "soak-"
	// streamPorts: each container receives two streams, on these ports.
	streamPort1, streamPort2 = "7701", "7702"
)

// window runs act under traffic: four streams between the containers,
// started lead before act and finished tail after it. Each may lose d's
// bound.
func (s *soak) window(ctx context.Context, name string, act func() error) error {
	exe := filepath.Join(s.cfg.Bin, "nicteam-seqstream")
	c1, c2 := s.seed.Nodes[0], s.seed.Nodes[1]
	type flow struct {
		name     string
		from, to *lab.Node
		port     string
	}
	flows := []flow{
		{"c1→c2 #1", c1, c2, streamPort1}, {"c1→c2 #2", c1, c2, streamPort2},
		{"c2→c1 #1", c2, c1, streamPort1}, {"c2→c1 #2", c2, c1, streamPort2},
	}
	var streams []*lab.Stream
	defer func() {
		for _, st := range streams {
			st.Kill()
		}
	}()
	for _, f := range flows {
		st, err := lab.StartStream(ctx, exe, f.from.Container, f.to.Container, net.JoinHostPort(f.to.OverlayIP, f.port), s.pps)
		if err != nil {
			return err
		}
		streams = append(streams, st)
	}
	if err := lab.Sleep(ctx, lead); err != nil {
		return err
	}
	errs := []error{act()}
	if err := lab.Sleep(ctx, tail); err != nil {
		return err
	}
	limit := disturbances[name].bound(s.pps)
	var sent, lost uint64
	var longest int64
	for i, st := range streams {
		rep, err := st.Finish(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", flows[i].name, err))
			continue
		}
		sent, lost = sent+rep.Sent, lost+rep.Lost
		longest = max(longest, rep.MaxOutageUs)
		if rep.Lost > limit {
			errs = append(errs, fmt.Errorf("stream %s lost %d packets of %d, bound %d", flows[i].name, rep.Lost, rep.Sent, limit))
		}
	}
	streams = nil
	s.res.Sent += sent
	s.res.Lost += lost
	s.res.add(name, sent, lost, longest)
	s.logf(name, "streams: sent %d, lost %d (bound %d per stream), longest outage %dµs", sent, lost, limit, longest)
	return errors.Join(errs...)
}

// cable pulls node's cable on nic (its switch port down) or plugs it back
// in, through the switch's netlink handle, so that when it happened is
// known to microseconds.
func (s *soak) cable(node int, nic string, plugged bool) error {
	port := s.seed.SwitchPortOf(node, nic)
	l, err := s.sw.LinkByName(port)
	if err != nil {
		return fmt.Errorf("switch port %s of node%d %s: %w", port, node, nic, err)
	}
	set, what := s.sw.LinkSetDown, "pulled"
	if plugged {
		set, what = s.sw.LinkSetUp, "plugged back in"
	}
	if err := set(l); err != nil {
		return fmt.Errorf("set switch port %s: %w", port, err)
	}
	s.logf("cable", "node%d %s %s", node, nic, what)
	return nil
}

// failover pulls node's cable on nic, checks that the team shows it,
// plugs it back after down and waits until the team is Up. label names the
// member in the log (a renamed member by its new name).
func (s *soak) failover(ctx context.Context, node int, nic, label string) error {
	c := s.api[node-1]
	if err := s.cable(node, nic, false); err != nil {
		return err
	}
	pulled := time.Now()
	s.res.Flaps++
	t, err := c.waitTeam(ctx, team.Degraded, noticeWithin)
	if err != nil {
		// Plugged back all the same, so that the next check starts clean.
		return errors.Join(fmt.Errorf("node%d %s pulled: %w", node, label, err), s.cable(node, nic, true))
	}
	s.logf("api", "node%d %s %s after %dµs", node, lab.TeamName, t.Status, time.Since(pulled).Microseconds())
	if err := lab.Sleep(ctx, time.Until(pulled.Add(down))); err != nil {
		return err
	}
	if err := s.cable(node, nic, true); err != nil {
		return err
	}
	plugged := time.Now()
	if _, err := c.waitTeam(ctx, team.Up, upWithin); err != nil {
		return fmt.Errorf("node%d %s plugged back: %w", node, label, err)
	}
	s.logf("api", "node%d %s Up after %dµs", node, lab.TeamName, time.Since(plugged).Microseconds())
	return nil
}

// flaps pulls and restores one member of each node, each under its own
// streams.
func (s *soak) flaps(ctx context.Context) error {
	var errs []error
	for node := 1; node <= 2; node++ {
		nic := lab.SeedNICs[(s.round+node)%2]
		errs = append(errs, s.window(ctx, "flap", func() error { return s.failover(ctx, node, nic, nic) }))
	}
	return errors.Join(errs...)
}

// kill SIGKILLs node1's daemon and restarts it.
func (s *soak) kill(ctx context.Context) error {
	return s.window(ctx, "kill", func() error { return s.restart(ctx, "kill") })
}

// restart SIGKILLs node1's daemon, starts it again after killGap and
// waits until it shows Team0 Up with both members.
func (s *soak) restart(ctx context.Context, what string) error {
	n := s.seed.Nodes[0]
	pid := n.DaemonPID
	if err := n.Daemon.Kill(); err != nil {
		return err
	}
	s.logf(what, "node1 nicteamd (pid %d) SIGKILLed", pid)
	if err := lab.Sleep(ctx, killGap); err != nil {
		return err
	}
	started := time.Now()
	if err := s.startDaemon(ctx, 0); err != nil {
		return err
	}
	s.res.Restarts++
	s.logf(what, "node1 nicteamd restarted (pid %d), answers after %dµs", n.DaemonPID, time.Since(started).Microseconds())
	t, err := s.api[0].waitTeam(ctx, team.Up, upWithin)
	if err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	if !slices.Equal(t.Members, lab.SeedNICs) {
		return fmt.Errorf("after the restart %s has members %v, want %v", lab.TeamName, t.Members, lab.SeedNICs)
	}
	s.logf("api", "node1 %s Up with %v", lab.TeamName, t.Members)
	return nil
}

// startDaemon starts node i's nicteamd, node1's in its private mount
// namespace, and waits until it answers.
func (s *soak) startDaemon(ctx context.Context, i int) error {
	n := s.seed.Nodes[i]
	args := []string{filepath.Join(s.cfg.Bin, "nicteamd"), "--socket", n.Socket, "--state-dir", n.StateDir}
	if i == 0 && s.holder != nil {
		// nsenter execs the daemon, so the pid is still the daemon's.
		args = append([]string{"nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", s.holder.Pid()), "--"}, args...)
	}
	p, err := n.Host.Start(args[0], args[1:]...)
	if err != nil {
		return err
	}
	n.Daemon, n.DaemonPID = p, p.Pid()
	err = lab.Poll(ctx, upWithin, 10*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := p.Exited(); err != nil {
			return true, err
		}
		err := s.api[i].call(ctx, "GET", "/v1/teams", nil, nil)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("start nicteamd on %s: %w", n.Name, err)
	}
	return nil
}

// privateStateDir moves node1's daemon into a mount namespace of its own
// in which its state directory is a tmpfs of stateTmpfs, so that the full
// disturbance can fill it without touching the host's disks. A holder
// process keeps the namespace for the daemons that follow; it drops its
// copies of the /run/netns mounts, which would otherwise keep every
// network namespace that existed when it started, other people's
// included, alive after its deletion.
func (s *soak) privateStateDir(ctx context.Context) error {
	n := s.seed.Nodes[0]
	dir := filepath.Join(filepath.Dir(n.StateDir), "tmpfs-state")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	script := `umount -R -l /run/netns 2>/dev/null; mount -t tmpfs -o size=` + stateTmpfs +
		`,mode=0700 nicteam-soak "$1" && echo ready && exec sleep infinity`
	h, err := n.Host.Start("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", dir)
	if err != nil {
		return err
	}
	if err := lab.WaitOutput(ctx, h, "ready", 5*time.Second); err != nil {
		return fmt.Errorf("mount a tmpfs for node1's state: %w", err)
	}
	s.holder, s.tmpfsDir = h, dir
	if err := n.Daemon.Stop(); err != nil {
		return err
	}
	state, err := os.ReadFile(filepath.Join(n.StateDir, "teams.json"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.inHolder("teams.json"), state, 0o600); err != nil {
		return err
	}
	n.StateDir = dir
	if err := s.startDaemon(ctx, 0); err != nil {
		return err
	}
	if _, err := s.api[0].waitTeam(ctx, team.Up, upWithin); err != nil {
		return err
	}
	s.logf("setup", "node1 nicteamd (pid %d) moved to a private mount namespace; its state directory is a %s tmpfs", n.DaemonPID, stateTmpfs)
	return nil
}

// inHolder returns the path of file in node1's state directory as the
// holder's mount namespace sees it.
func (s *soak) inHolder(file string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", s.holder.Pid()), s.tmpfsDir, file)
}

// junk is the file that fills node1's state directory.
const junk = "soak-junk"

// full fills node1's state directory, asks for a change that must be
// persisted (removing eth2), and checks that it is refused and changed
// nothing; then frees the directory and restarts the daemon, which must
// find the team as it was.
func (s *soak) full(ctx context.Context) error {
	return s.window(ctx, "full", func() error {
		n, err := fill(s.inHolder(junk))
		if err != nil {
			return err
		}
		s.res.Fills++
		s.logf("full", "node1 state directory filled up (%d KiB of junk, then ENOSPC)", n>>10)
		code, body, err := s.api[0].do(ctx, "DELETE", "/v1/teams/"+lab.TeamName+"/members/eth2", nil)
		if err != nil {
			return err
		}
		s.logf("api", "node1 member remove eth2: %d %s", code, trim(body))
		var errs []error
		if code/100 == 2 {
			errs = append(errs, errors.New("removing eth2 succeeded although its state could not be saved"))
		}
		t, err := s.api[0].team(ctx)
		switch {
		case err != nil:
			errs = append(errs, err)
		case t.Status != team.Up || !slices.Equal(t.Members, lab.SeedNICs):
			errs = append(errs, fmt.Errorf("after the refused change %s is %s with %v, want Up with %v", lab.TeamName, t.Status, t.Members, lab.SeedNICs))
		}
		if err := os.Remove(s.inHolder(junk)); err != nil {
			return errors.Join(append(errs, err)...)
		}
		s.logf("full", "node1 state directory freed")
		errs = append(errs, s.restart(ctx, "full"))
		return errors.Join(errs...)
	})
}

// fill writes path until the file system is full and returns how much it
// wrote.
func fill(path string) (int, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("fill the state directory: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	total := 0
	for {
		n, err := f.Write(buf)
		total += n
		if errors.Is(err, syscall.ENOSPC) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("fill the state directory: %w", err)
		}
	}
}

// rename renames node2's eth2 while it is a member: set down, renamed, set
// up; its cable pulled and plugged back; renamed back. The team must show
// each failure and be Up again after each return, with its members under
// their own names at the end.
func (s *soak) rename(ctx context.Context) error {
	const node, nic = 2, "eth2"
	h := s.seed.Nodes[node-1].Host
	c := s.api[node-1]
	renamed := renamedPrefix + nic
	return s.window(ctx, "rename", func() error {
		s.res.Renames++ // counted when made, whether the team copes or not
		if err := s.renameLink(ctx, h, c, nic, renamed); err != nil {
			return err
		}
		if err := s.failover(ctx, node, nic, renamed); err != nil {
			return err
		}
		if err := s.renameLink(ctx, h, c, renamed, nic); err != nil {
			return err
		}
		t, err := c.team(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(t.Members, lab.SeedNICs) {
			return fmt.Errorf("renamed back, %s has members %v, want %v", lab.TeamName, t.Members, lab.SeedNICs)
		}
		return nil
	})
}

// renameLink sets from down (the team must show a failure), renames it to
// and sets it up (the team must be Up again).
func (s *soak) renameLink(ctx context.Context, h *lab.Host, c *apiClient, from, to string) error {
	if _, err := h.Run("ip", "link", "set", from, "down"); err != nil {
		return err
	}
	s.res.Flaps++
	if _, err := c.waitTeam(ctx, team.Degraded, noticeWithin); err != nil {
		return fmt.Errorf("%s set down: %w", from, err)
	}
	if _, err := h.Run("ip", "link", "set", from, "name", to); err != nil {
		return err
	}
	if _, err := h.Run("ip", "link", "set", to, "up"); err != nil {
		return err
	}
	s.logf("rename", "%s %s set down, renamed %s and set up", h.Name, from, to)
	if _, err := c.waitTeam(ctx, team.Up, upWithin); err != nil {
		return fmt.Errorf("%s renamed %s and up: %w", from, to, err)
	}
	s.logf("api", "%s %s Up", h.Name, lab.TeamName)
	return nil
}

// recover brings the lab back to how a round expects it after a
// disturbance failed: every cable in, every member under its own name and
// up, node1's state directory free, both daemons running, Team0 Up with
// both members, each with its ingress program (a member re-added if it
// lacks it), and the containers reaching each other.
func (s *soak) recover(ctx context.Context) error {
	var errs []error
	for i, n := range s.seed.Nodes {
		for _, nic := range lab.SeedNICs {
			if err := s.cable(i+1, nic, true); err != nil {
				errs = append(errs, err)
			}
			if _, err := n.Host.Link(renamedPrefix + nic); err == nil {
				n.Host.Run("ip", "link", "set", renamedPrefix+nic, "down")
				n.Host.Run("ip", "link", "set", renamedPrefix+nic, "name", nic)
			}
			if err := n.Host.SetUp(nic); err != nil {
				errs = append(errs, err)
			}
		}
	}
	os.Remove(s.inHolder(junk))
	for i, n := range s.seed.Nodes {
		if !n.DaemonRuns() {
			if err := s.startDaemon(ctx, i); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := s.repairMembers(ctx, i); err != nil {
			errs = append(errs, err)
		}
		if _, err := s.api[i].waitTeam(ctx, team.Up, upWithin); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for from := 1; from <= 2; from++ {
		err := lab.Poll(ctx, upWithin, 0, func(ctx context.Context) (bool, error) {
			res, err := s.seed.ContainerPing(ctx, from, 5*time.Millisecond, 40)
			if err != nil {
				return true, err
			}
			if res.Lost() > 0 {
				return false, errors.New(res.String())
			}
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("container of node%d cannot reach the other: %w", from, err)
		}
	}
	s.logf("recover", "lab back: cables in, names restored, daemons running, both teams Up, containers reach each other")
	return nil
}

// repairMembers adds node i's members back that the team lost, and
// removes and adds back those that lack their ingress program.
func (s *soak) repairMembers(ctx context.Context, i int) error {
	n, c := s.seed.Nodes[i], s.api[i]
	t, err := c.team(ctx)
	if err != nil {
		return err
	}
	_, attached, err := hostLinks(n.Host)
	if err != nil {
		return err
	}
	path := "/v1/teams/" + lab.TeamName + "/members"
	for _, m := range lab.SeedNICs {
		if slices.Contains(t.Members, m) && attached[m+" ingress"] > 0 {
			continue
		}
		if slices.Contains(t.Members, m) {
			if err := c.call(ctx, "DELETE", path+"/"+m, nil, nil); err != nil {
				return err
			}
		}
		if err := c.call(ctx, "POST", path, map[string]string{"name": m}, nil); err != nil {
			return err
		}
		s.logf("recover", "%s %s had no ingress program or was no member: added back", n.Name, m)
	}
	return nil
}

// trim shortens an API answer for the log.
func trim(b []byte) string {
	const most = 160
	s := strings.TrimSpace(string(b))
	if len(s) > most {
		s = s[:most] + "…"
	}
	return s
}
