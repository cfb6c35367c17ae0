// Package nstest gives privileged tests a network namespace of their own.
package nstest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/nicteam/nicteam/internal/nsdo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// New creates a named network namespace (prefix, the pid and a random
// suffix, so parallel test binaries never share one) and a netlink handle
// in it; both are removed in t.Cleanup, failed test or not.
func New(t testing.TB, prefix string) (netns.NsHandle, string, *netlink.Handle) {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%08x", prefix, os.Getpid(), rand.Uint32())
	var ns netns.NsHandle
	if err := nsdo.OnNewThread(func() (err error) { ns, err = netns.NewNamed(name); return err }); err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return ns, name, h
}
