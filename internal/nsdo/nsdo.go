// Package nsdo runs code inside another network namespace. Namespaces
// belong to OS threads, so the code runs locked to a thread of its own.
package nsdo

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// OnNewThread runs fn locked to an OS thread that dies with it (the
// goroutine exits while locked), so that whatever fn changes about the
// thread can never leak to other goroutines. A child process started
// with Pdeathsig from that thread earlier receives its signal then.
func OnNewThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- fn()
	}()
	return <-errc
}

// Do runs fn in network namespace ns. Sockets fn opens, and ifindexes it
// uses, belong to ns. The thread goes back to its namespace afterwards and
// on to other goroutines (fn must change nothing else about it; use
// OnNewThread for that); only if going back fails is it thrown away. Retiring
// threads by default would signal every child whose Pdeathsig was tied to
// one, and the runtime never retires the main thread but parks it, in ns
// for good, where /proc/PID/ns/net would show the whole process.
func Do(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread() // it never left
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread() // a failed setns changes nothing
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
