package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ovsSchema is where Debian's openvswitch-common puts the database schema.
const ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// ovsStartTimeout bounds how long StartOVS waits for each daemon's socket.
const ovsStartTimeout = 10 * time.Second

// ovsCommands are the Open vSwitch programs StartOVS and its methods run.
var ovsCommands = []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"}

// ErrNoOVS says Open vSwitch is not installed.
var ErrNoOVS = errors.New("open vswitch is not installed (scripts/deps.sh ovs installs it)")

// OVSInstalled returns nil when every Open vSwitch program StartOVS needs
// is on the PATH, and an error wrapping ErrNoOVS naming the first that is
// not.
func OVSInstalled() error {
	for _, cmd := range ovsCommands {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrNoOVS, cmd, err)
		}
	}
	if _, err := os.Stat(ovsSchema); err != nil {
		return fmt.Errorf("%w: %v", ErrNoOVS, err)
	}
	return nil
}

// OVS is Open vSwitch running in a host's namespace with its own database,
// sockets and logs in a directory of its own: nothing is shared with a
// system OVS, and no kernel module is needed as long as bridges use the
// userspace datapath (datapath_type=netdev).
type OVS struct {
	Dir string // database, sockets, logs and the bridges' management sockets

	env    []string // points every OVS program at Dir
	db, sw *Proc
}

// StartOVS starts ovsdb-server and ovs-vswitchd in h's namespace with
// their state in dir, which must exist. Stop stops them, and so does the
// lab's Close.
func (h *Host) StartOVS(dir string) (*OVS, error) {
	if err := OVSInstalled(); err != nil {
		return nil, fmt.Errorf("start ovs on %s: %w", h.Name, err)
	}
	o := &OVS{Dir: dir}
	// The programs find the database, each other and the bridges'
	// sockets through these; the defaults are the system's /var/run.
	for _, k := range []string{"OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"} {
		o.env = append(o.env, k+"="+dir)
	}
	if err := o.start(h); err != nil {
		if serr := o.Stop(); serr != nil {
			err = fmt.Errorf("%w (stopping: %v)", err, serr)
		}
		return nil, fmt.Errorf("start ovs on %s: %w", h.Name, err)
	}
	return o, nil
}

func (o *OVS) start(h *Host) error {
	if out, err := o.command("ovsdb-tool", "create", o.path("conf.db"), ovsSchema).CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-tool create: %w: %s", err, strings.TrimSpace(string(out)))
	}
	var err error
	o.db, err = h.StartEnv(o.env, "ovsdb-server", o.path("conf.db"), "--remote=punix:"+o.path("db.sock"),
		"--unixctl="+o.path("ovsdb-server.ctl"), "--log-file="+o.path("ovsdb-server.log"))
	if err != nil {
		return err
	}
	if err := o.waitFile("db.sock", o.db); err != nil {
		return err
	}
	if _, err := o.Vsctl("--no-wait", "init"); err != nil {
		return err
	}
	o.sw, err = h.StartEnv(o.env, "ovs-vswitchd", "unix:"+o.path("db.sock"),
		"--unixctl="+o.path("ovs-vswitchd.ctl"), "--log-file="+o.path("ovs-vswitchd.log"))
	if err != nil {
		return err
	}
	return o.waitFile("ovs-vswitchd.ctl", o.sw)
}

func (o *OVS) path(name string) string { return filepath.Join(o.Dir, name) }

func (o *OVS) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), o.env...)
	return cmd
}

// waitFile waits until p has created name in the directory.
func (o *OVS) waitFile(name string, p *Proc) error {
	err := Poll(context.Background(), ovsStartTimeout, 20*time.Millisecond, func(context.Context) (bool, error) {
		if _, err := os.Stat(o.path(name)); err == nil {
			return true, nil
		}
		if err := p.Exited(); err != nil {
			return true, err
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s did not create %s within %v: %s", p.Name, name, ovsStartTimeout, p.Output())
	}
	return err
}

// Vsctl runs ovs-vsctl against this OVS's database and returns its output.
func (o *OVS) Vsctl(args ...string) (string, error) {
	return o.tool("ovs-vsctl", append([]string{"--db=unix:" + o.path("db.sock"), "--timeout=10"}, args...))
}

// Appctl runs ovs-appctl against this OVS's ovs-vswitchd (bond/show,
// lacp/show, ...) and returns its output.
func (o *OVS) Appctl(args ...string) (string, error) {
	return o.tool("ovs-appctl", append([]string{"-t", o.path("ovs-vswitchd.ctl"), "--timeout=10"}, args...))
}

func (o *OVS) tool(name string, args []string) (string, error) {
	out, err := o.command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Logs returns both daemons' log files, for a failure report.
func (o *OVS) Logs() string {
	var b strings.Builder
	for _, f := range []string{"ovs-vswitchd.log", "ovsdb-server.log"} {
		log, err := os.ReadFile(o.path(f))
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", f, err)
			continue
		}
		fmt.Fprintf(&b, "%s:\n%s", f, log)
	}
	return b.String()
}

// Stop stops ovs-vswitchd, then ovsdb-server. The directory is the
// caller's to remove.
func (o *OVS) Stop() error {
	var errs []error
	for _, p := range []*Proc{o.sw, o.db} {
		if p != nil {
			errs = append(errs, p.Stop())
		}
	}
	return errors.Join(errs...)
}
