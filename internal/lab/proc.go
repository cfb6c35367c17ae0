package lab

import (
	"bytes"
	"errors"
	"fmt"
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

	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // set before done is closed
}

// Start starts name with args in h's network namespace only: the process
// keeps the caller's mount namespace, so a bpffs mounted at /sys/fs/bpf is
// the same for it as for the caller, and objects it pins outlive it. Its
// standard output and error are collected for Output. The process is in a
// process group of its own, which Stop and Kill signal as a whole, and it
// is killed if the caller dies. Close stops it if the caller did not.
func (h *Host) Start(name string, args ...string) (*Proc, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, h.Name, err)
	}
	// nsenter execs the program after setns, so the pid is the program's
	// own and signals reach it directly.
	cmd := exec.Command("nsenter", append([]string{"--net=" + nsPath(h.NS), "--", path}, args...)...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig follows the thread that forked, not the process; the Go
	// runtime only retires threads whose goroutine exits while locked, which
	// this package never does, so in practice it fires when the caller dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A child that inherited the output pipe must not hold Wait forever
	// after the process itself has exited.
	cmd.WaitDelay = time.Second
	p := &Proc{Name: name, cmd: cmd, out: out, done: make(chan struct{})}

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

// Wait waits for the process to exit and returns how it ended, as
// exec.Cmd.Wait does.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Output returns what the process has written to its standard output and
// error so far.
func (p *Proc) Output() string { return p.out.String() }

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
