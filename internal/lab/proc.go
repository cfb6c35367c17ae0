package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// stopTimeout is how long Stop waits after SIGTERM before it uses SIGKILL.
const stopTimeout = 5 * time.Second

// Proc is a long-running process started on a host by Start.
type Proc struct {
	Name string // the program as given to Start

	cmd     *exec.Cmd
	out     *syncBuffer // nil when the output goes to logPath
	logPath string      // set for StartDetached
	done    chan struct{}
	err     error // set before done is closed
}

// Start starts name with args in h's network namespace only: the process
// keeps the caller's mount namespace, so a bpffs mounted at /sys/fs/bpf is
// the same for it as for the caller, and objects it pins outlive it. Its
// standard output and error are collected for Output. The process is in a
// process group of its own, which Stop and Kill signal as a whole, and it
// is killed if the caller dies. Close stops it if the caller did not.
func (h *Host) Start(name string, args ...string) (*Proc, error) {
	return h.start("", nil, name, args)
}

// StartEnv is Start with env ("KEY=value") added to the caller's
// environment, for programs configured through it.
func (h *Host) StartEnv(env []string, name string, args ...string) (*Proc, error) {
	return h.start("", env, name, args)
}

// StartDetached is Start for a process that is to outlive the caller: it
// runs in a session of its own, is not killed when the caller dies, and
// writes its standard output and error to the file logPath (created or
// truncated), which Output reads. While the caller lives, Stop, Kill and
// Close work as for Start; afterwards, StopPID stops it.
func (h *Host) StartDetached(logPath, name string, args ...string) (*Proc, error) {
	if logPath == "" {
		return nil, fmt.Errorf("start %s on %s: no log file", name, h.Name)
	}
	return h.start(logPath, nil, name, args)
}

func (h *Host) start(logPath string, env []string, name string, args []string) (*Proc, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, h.Name, err)
	}
	// nsenter execs the program after setns, so the pid is the program's
	// own and signals reach it directly.
	cmd := exec.Command("nsenter", append([]string{"--net=" + nsPath(h.NS), "--", path}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	if logPath == "" {
		p.out = &syncBuffer{}
		cmd.Stdout, cmd.Stderr = p.out, p.out
		// Pdeathsig follows the thread that forked, not the process; the
		// Go runtime only retires threads whose goroutine exits while
		// locked, which this package never does, so in practice it fires
		// when the caller dies.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		// A child that inherited the output pipe must not hold Wait
		// forever after the process itself has exited.
		cmd.WaitDelay = time.Second
	} else {
		// A file, not a pipe: nothing of the caller's must be needed for
		// the process to go on writing after the caller is gone.
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("start %s on %s: %w", name, h.Name, err)
		}
		defer f.Close() // the child has its own copy once started
		cmd.Stdout, cmd.Stderr = f, f
		// Setsid: a session (and process group) of its own, so the
		// terminal's Ctrl-C and hangup do not reach it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}

	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("start %s on %s: lab is closed", name, h.Name)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, h.Name, err)
	}
	l.procs = append(l.procs, p)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited says how p ended, with its output, once it has; nil while it
// runs.
func (p *Proc) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v: %s", p.Name, p.err, p.Output())
	default:
		return nil
	}
}

// Wait waits for the process to exit and returns how it ended, as
// exec.Cmd.Wait does.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Output returns what the process has written to its standard output and
// error so far.
func (p *Proc) Output() string {
	if p.out != nil {
		return p.out.String()
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", p.logPath, err)
	}
	return string(b)
}

// Stop asks the process to exit with SIGTERM and waits for it; after
// stopTimeout it kills it with SIGKILL and says so. Exiting with status 0
// or by the SIGTERM counts as a clean stop; any other end is returned. A
// process that had already exited is reported the same way.
func (p *Proc) Stop() error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		if err := p.Kill(); err != nil {
			return err
		}
		return fmt.Errorf("stop %s: still running %v after SIGTERM, killed", p.Name, stopTimeout)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	if p.err != nil {
		return fmt.Errorf("stop %s: %w", p.Name, p.err)
	}
	return nil
}

// Kill kills the process group with SIGKILL and waits for the process.
func (p *Proc) Kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// stopAll is Close's Stop for all of procs at once: SIGTERM to each, one
// shared grace period, then SIGKILL to those still running. The processes
// go away with the lab, so how they exited does not matter.
func stopAll(procs []*Proc) error {
	var errs []error
	for _, p := range procs {
		if err := p.signal(syscall.SIGTERM); err != nil {
			errs = append(errs, err)
		}
	}
	deadline := time.Now().Add(stopTimeout)
	for _, p := range procs {
		select {
		case <-p.done:
			continue
		case <-time.After(time.Until(deadline)):
		}
		if err := p.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// signal sends sig to the process group, unless the process has exited:
// then its group id may already belong to someone else.
func (p *Proc) signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	return nil
}

// syncBuffer is a bytes.Buffer that the process's output copier and
// readers of Output may use at the same time.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StopPID stops a process that StartDetached started for an earlier
// caller, given its pid: SIGTERM to its process group, SIGKILL after
// stopTimeout. Unless the process's command line contains mark (say, its
// socket path), the pid is taken to belong to someone else by now and left
// alone. A process that is gone already is not an error.
func StopPID(pid int, mark string) error {
	if pid <= 0 {
		return fmt.Errorf("stop pid %d: invalid pid", pid)
	}
	if !pidRuns(pid, mark) {
		return nil
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		// The process is its session's and group's leader (Setsid).
		if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop pid %d: %w", pid, err)
		}
		err := Poll(context.Background(), stopTimeout, 10*time.Millisecond, func(context.Context) (bool, error) {
			return !pidRuns(pid, mark), nil
		})
		if err == nil {
			if sig == syscall.SIGKILL {
				return fmt.Errorf("stop pid %d: still running %v after SIGTERM, killed", pid, stopTimeout)
			}
			return nil
		}
	}
	return fmt.Errorf("stop pid %d: still running after SIGKILL", pid)
}

// pidRuns says whether pid is a live process (not a zombie) whose command
// line contains mark.
func pidRuns(pid int, mark string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(mark))
}
