package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/team"
	"github.com/vishvananda/netlink"
)

// The topology: the host's eth1 and eth2 form the team, eth3 stays a plain
// NIC and eth4 and eth5 form the OVS bond (ovs.go), all on the same
// switch, and the peer holds an address in each subnet, so the route alone
// decides which path a connection takes.
const (
	teamName   = "Team0"
	plainNIC   = "eth3"
	hostNICs   = 5
	plainCIDR  = "10.78.0.1/24"
	plainPeer  = "10.78.0.2"
	peerPlain  = plainPeer + "/24"
	daemonWait = 10 * time.Second
	statusWait = 5 * time.Second
	statusPoll = 5 * time.Millisecond
)

// teamMembers are the host NICs in the team.
var teamMembers = []string{"eth1", "eth2"}

// Binaries the benchmark runs in the lab, built unless Config.Bin names
// a directory that holds them.
var Binaries = []string{"nicteamd", "nicteam", "nicteam-seqstream"}

// env is one benchmark's world: the lab, nicteamd in its host, the team,
// and the OVS bond.
type env struct {
	lab    *lab.Basic
	dir    string // temporary: socket, state, built binaries
	bin    string // where the binaries are
	daemon *lab.Proc
	socket string
	client *api.Client
	ovs    *lab.OVS // nil unless a section needs the OVS bond
	pins   string   // the daemon's pin directory for the host's namespace
	// sw is a netlink handle in the switch's namespace, opened beforehand
	// so that a cable pull is one netlink call, timed to microseconds
	// rather than to the milliseconds an ip command takes to start.
	sw  *netlink.Handle
	log io.Writer
}

// newEnv builds the binaries (unless bin names them), the lab, the daemon,
// the team and the plain NIC beside it, and the OVS bond if withOVS. On
// error it undoes what it did.
func newEnv(ctx context.Context, bin string, withOVS bool, log io.Writer) (*env, error) {
	return newEnvWith(ctx, bin, log, hostNICs, func(e *env, ctx context.Context) error {
		if err := e.teamBesidePlain(ctx); err != nil {
			return err
		}
		if withOVS {
			return e.startOVS(ctx)
		}
		return nil
	})
}

// newEnvWith builds the binaries (unless bin names them), a lab whose host
// has nics NICs (eth1..ethN), and the daemon; then finish, if not nil,
// builds what the figure needs on top. On error it undoes what it did.
func newEnvWith(ctx context.Context, bin string, log io.Writer, nics int, finish func(*env, context.Context) error) (*env, error) {
	dir, err := os.MkdirTemp("", "nicteam-bench-")
	if err != nil {
		return nil, fmt.Errorf("set up: %w", err)
	}
	e := &env{dir: dir, bin: bin, log: log}
	if err := e.setUp(ctx, nics, finish); err != nil {
		if cerr := e.close(); cerr != nil {
			err = fmt.Errorf("%w (cleaning up: %v)", err, cerr)
		}
		return nil, fmt.Errorf("set up: %w", err)
	}
	return e, nil
}

func (e *env) setUp(ctx context.Context, nics int, finish func(*env, context.Context) error) error {
	if e.bin == "" {
		e.bin = e.dir
		fmt.Fprintf(e.log, "building %s\n", strings.Join(Binaries, ", "))
		if err := build(ctx, e.dir); err != nil {
			return err
		}
	}
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(e.bin, b)); err != nil {
			return fmt.Errorf("find %s: %w", b, err)
		}
	}
	var err error
	if e.lab, err = lab.NewBasic(lab.UniquePrefix("nb"), nics); err != nil {
		return err
	}
	if e.pins, err = e.lab.Host.PinDir(); err != nil {
		return err
	}
	if e.sw, err = e.lab.Switch.Handle(); err != nil {
		return err
	}
	if err := e.startDaemon(ctx); err != nil {
		return err
	}
	if finish == nil {
		return nil
	}
	return finish(e, ctx)
}

// teamBesidePlain builds what the throughput and failover figures compare:
// the team of teamMembers and the plain NIC with its own subnet.
func (e *env) teamBesidePlain(ctx context.Context) error {
	if err := e.configureHost(); err != nil {
		return err
	}
	return e.createTeam(ctx, teamMembers, team.TransportPorts)
}

// build compiles the binaries into dir. Package paths rather than ./cmd
// let it run from any directory of the module, as tests do.
func build(ctx context.Context, dir string) error {
	args := []string{"build", "-o", dir + "/"}
	for _, b := range Binaries {
		args = append(args, "github.com/nicteam/nicteam/cmd/"+b)
	}
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("build binaries: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setCable pulls the host's cable on nic (its switch port goes down, so
// nic loses carrier at once, as lab.Fail does) or plugs it back, and
// returns when it started.
func (e *env) setCable(nic string, plugged bool) (time.Time, error) {
	port := e.lab.SwitchPort(e.lab.Host, nic)
	link, err := e.sw.LinkByName(port)
	if err != nil {
		return time.Time{}, fmt.Errorf("find switch port %s of %s: %w", port, nic, err)
	}
	set, what := e.sw.LinkSetDown, "pull"
	if plugged {
		set, what = e.sw.LinkSetUp, "plug in"
	}
	at := time.Now()
	if err := set(link); err != nil {
		return at, fmt.Errorf("%s cable %s: %w", what, nic, err)
	}
	return at, nil
}

// configureHost gives the plain NIC and the peer their second subnet. The
// host answers ARP only on the interface that holds the address asked for:
// otherwise eth3 would answer for the team's address too (Linux answers
// for any local address by default), and the peer could send the team's
// traffic to eth3.
func (e *env) configureHost() error {
	if _, err := e.lab.Host.Run("sysctl", "-q", "-w",
		"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"); err != nil {
		return err
	}
	if err := e.lab.Host.AddAddr(plainNIC, plainCIDR); err != nil {
		return err
	}
	return e.lab.Peer.AddAddr("eth0", peerPlain)
}

func (e *env) startDaemon(ctx context.Context) error {
	e.socket = filepath.Join(e.dir, "nicteamd.sock")
	p, err := e.lab.Host.Start(filepath.Join(e.bin, "nicteamd"),
		"--socket", e.socket, "--state-dir", filepath.Join(e.dir, "state"))
	if err != nil {
		return err
	}
	e.daemon, e.client = p, api.NewClient(e.socket)
	err = lab.Poll(ctx, daemonWait, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := p.Exited(); err != nil {
			return true, err
		}
		_, err := e.client.Teams(ctx)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("start nicteamd: no answer on %s: %w: %s", e.socket, err, p.Output())
	}
	return nil
}

// createTeam creates the team teamName of members with algorithm alg,
// gives it the host's address and waits until it is Up.
func (e *env) createTeam(ctx context.Context, members []string, alg team.Algorithm) error {
	if _, err := e.client.NewTeam(ctx, api.NewTeam{
		Name: teamName, Members: members, SetTeam: api.SetTeam{Algorithm: alg.String()},
	}); err != nil {
		return fmt.Errorf("create team: %w", err)
	}
	if err := e.lab.Host.AddAddr(teamName, lab.HostCIDRv4); err != nil {
		return err
	}
	return e.waitUp(ctx)
}

// waitUp waits until the team's status is Up. The daemon reacts to
// events; the benchmark only polls to observe.
func (e *env) waitUp(ctx context.Context) error {
	return lab.Poll(ctx, statusWait, statusPoll, func(ctx context.Context) (bool, error) {
		tm, err := e.client.Team(ctx, teamName)
		if err == nil && tm.Status == team.Up {
			return true, nil
		}
		return false, fmt.Errorf("wait for %s up: status %v (%v)", teamName, tm.Status, err)
	})
}

// close removes the team through the daemon (which unpins its datapath),
// stops the daemon, removes the lab and the temporary directory, and
// checks that nothing is left behind. It goes on after errors.
func (e *env) close() error {
	var errs []error
	if e.client != nil {
		// A fresh context: close also runs after Ctrl-C.
		ctx, cancel := context.WithTimeout(context.Background(), statusWait)
		// Team0, and a team of the control section if it was stopped
		// half way. A team never made, or a daemon that died, leaves
		// nothing for the daemon to undo; its pins are removed below.
		for _, name := range []string{teamName, lifecycleTeam} {
			err := e.client.RemoveTeam(ctx, name)
			if err != nil && !isNotFound(err) && !errors.Is(err, api.ErrDaemonDown) {
				errs = append(errs, fmt.Errorf("remove team %s: %w", name, err))
			}
		}
		cancel()
	}
	if e.ovs != nil {
		if err := e.ovs.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop ovs: %w", err))
		}
	}
	if e.daemon != nil {
		if err := e.daemon.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s", err, e.daemon.Output()))
		}
	}
	if e.sw != nil {
		e.sw.Close()
	}
	if e.lab != nil {
		errs = append(errs, e.lab.Close())
	}
	if e.pins != "" {
		// The daemon unpinned when it removed the team, unless it could
		// not; pins left would keep the programs and maps alive.
		errs = append(errs, os.RemoveAll(e.pins))
	}
	errs = append(errs, os.RemoveAll(e.dir))
	if e.lab != nil {
		if left := leftovers(e.lab.Prefix, e.pins); len(left) > 0 {
			errs = append(errs, fmt.Errorf("left behind: %s", strings.Join(left, ", ")))
		}
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var ae *api.APIError
	return errors.As(err, &ae) && ae.Status == 404
}

// leftovers lists what a benchmark with lab prefix prefix and pin
// directory pins could have left behind and did: namespaces and pins. The
// interfaces lived in the namespaces and went with them.
func leftovers(prefix, pins string) []string {
	left, _ := filepath.Glob(filepath.Join("/run/netns", prefix+"-*"))
	if _, err := os.Stat(pins); err == nil {
		left = append(left, pins)
	}
	return left
}
