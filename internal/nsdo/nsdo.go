// Package nsdo runs code inside another network namespace. Namespaces
// belong to OS threads, so the code runs on a thread of its own that is
// thrown away afterwards: a namespace switch (or a capability drop) inside
// it can never leak to other goroutines.
package nsdo

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// OnNewThread runs fn on a fresh OS thread that dies with it (the goroutine
// exits while locked to the thread).
func OnNewThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- fn()
	}()
	return <-errc
}

// Do runs fn in network namespace ns. Sockets fn opens, and ifindexes it
// uses, belong to ns.
func Do(ns netns.NsHandle, fn func() error) error {
	return OnNewThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter netns: %w", err)
		}
		return fn()
	})
}
