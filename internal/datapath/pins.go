package datapath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/nicteam/nicteam/internal/nsdo"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Every nicteamd on a host pins into one bpffs, one directory per network
// namespace:
//
//	<bpffs>/nicteam/netns-<cookie>/<team>/   a team's pins (see the package comment)
//
// The cookie (SO_NETNS_COOKIE) is a number the kernel never gives two
// namespaces, unlike the namespace's inode number, which a new namespace
// gets back once the old one is gone: with pins keyed on the inode, as
// nicteam's first releases did (ns<inode>), a new namespace found a dead
// one's teams in its directory.
const (
	pinRoot           = "nicteam"
	nsDirPrefix       = "netns-"
	legacyNSDirPrefix = "ns"
)

// halfBuiltGrace is how old a team directory without an egress link must be
// before TidyPins takes it for the remains of a Create that died: one that
// is running has no egress link either, for the milliseconds it loads and
// pins the rest.
const halfBuiltGrace = 5 * time.Minute

// NamespaceDir returns the directory, under the bpffs mounted at bpffs,
// where the teams of the calling thread's network namespace are pinned.
func NamespaceDir(bpffs string) (string, error) {
	cookie, err := netnsCookie()
	if err != nil {
		return "", err
	}
	return namespaceDir(bpffs, cookie), nil
}

func namespaceDir(bpffs string, cookie uint64) string {
	return filepath.Join(bpffs, pinRoot, nsDirPrefix+strconv.FormatUint(cookie, 10))
}

// netnsCookie returns the calling thread's network namespace's cookie.
func netnsCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("netns cookie: %w", os.NewSyscallError("socket", err))
	}
	defer unix.Close(fd)
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("netns cookie: %w", os.NewSyscallError("getsockopt SO_NETNS_COOKIE", err))
	}
	return cookie, nil
}

// TidyPins returns NamespaceDir(bpffs) after tidying the directories of
// every namespace under it. Pins left by namespaces that are gone are
// removed, which also detaches their links (a physical NIC returns to the
// host's namespace when its namespace dies, with the dead team's ingress
// program still on it). Teams the calling thread's namespace pinned under
// the inode-keyed layout of older releases are moved, attached and
// forwarding, to the new directory, where a restarted daemon adopts them.
// The other namespaces' pins are left alone. done says what it removed or
// moved; the error joins what it could not. The directory is returned
// with any error but one finding the namespace's cookie.
//
// A namespace's pins are stale when its cookie (or, for the old layout,
// inode) belongs to no live namespace that has a process or a thread in it
// or an `ip netns` name, and each of its teams is dead: the team NIC, a
// veth, is destroyed with its namespace, which leaves the egress link
// defunct; a team directory without an egress link must be older than
// halfBuiltGrace. A nicteamd runs in the namespace it pins for, so a daemon
// at work elsewhere (creating, adopting or rebuilding a team) always has a
// live namespace, and its pins are never touched. The dead-team test is the
// second guard, for namespaces the scan cannot see (one kept only by an open
// file descriptor or a bind mount outside /run/netns): a namespace of those
// loses at most teams that forward nothing, because their team NIC is gone.
func TidyPins(bpffs string) (dir string, done []string, err error) {
	return tidyPins(bpffs, halfBuiltGrace)
}

func tidyPins(bpffs string, grace time.Duration) (string, []string, error) {
	cookie, ino, err := ownNamespace()
	if err != nil {
		return "", nil, fmt.Errorf("tidy pins: %w", err)
	}
	dir := namespaceDir(bpffs, cookie)
	root := filepath.Join(bpffs, pinRoot)
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return dir, nil, nil
	}
	if err != nil {
		return dir, nil, fmt.Errorf("tidy pins: %w", err)
	}
	live, err := liveNamespaces()
	if err != nil {
		return dir, nil, fmt.Errorf("tidy pins: %w", err)
	}
	legacy := legacyNSDirPrefix + strconv.FormatUint(ino, 10)
	var done []string
	var errs []error
	for _, e := range entries {
		nsDir := filepath.Join(root, e.Name())
		if !e.IsDir() || !isNamespaceDir(e.Name()) || nsDir == dir {
			continue
		}
		mine := e.Name() == legacy
		if !mine && live.has(e.Name()) {
			continue
		}
		teams, err := os.ReadDir(nsDir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, tm := range teams {
			teamDir := filepath.Join(nsDir, tm.Name())
			switch {
			case deadTeam(teamDir, grace):
				if err := Remove(teamDir); err != nil {
					errs = append(errs, err)
					continue
				}
				done = append(done, "removed stale pins "+teamDir)
			case mine:
				msg, err := moveTeam(teamDir, filepath.Join(dir, tm.Name()))
				if err != nil {
					errs = append(errs, err)
					continue
				}
				done = append(done, msg)
			}
		}
		// Fails, as it should, while something is left in it.
		if os.Remove(nsDir) == nil {
			done = append(done, "removed empty "+nsDir)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return dir, done, fmt.Errorf("tidy pins: %w", err)
	}
	return dir, done, nil
}

// moveTeam moves a team's pins from the old layout to the new. A team of
// the same name already in the new layout is the one the daemon made last,
// and wins.
func moveTeam(from, to string) (string, error) {
	if _, err := os.Stat(to); err == nil {
		if err := Remove(from); err != nil {
			return "", err
		}
		return "removed " + from + ", superseded by " + to, nil
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return "", fmt.Errorf("move %s: %w", from, err)
	}
	// A rename on the bpffs: every link stays attached and every map in
	// use, so the team forwards throughout.
	if err := os.Rename(from, to); err != nil {
		return "", fmt.Errorf("move %s: %w", from, err)
	}
	return "moved " + from + " to " + to, nil
}

// deadTeam reports whether the team pinned in dir forwards nothing and
// nothing is building it: its egress link is defunct, or it has none and
// dir is older than grace. Anything it cannot tell counts as alive.
func deadTeam(dir string, grace time.Duration) bool {
	l, err := link.LoadPinnedLink(filepath.Join(dir, pinEgressLink), nil)
	if errors.Is(err, os.ErrNotExist) {
		fi, err := os.Stat(dir)
		// Pinning and unpinning in dir update its mtime.
		return err == nil && time.Since(fi.ModTime()) > grace
	}
	if err != nil {
		return false
	}
	defer l.Close()
	ifindex, ok := tcxIfindex(l)
	return ok && ifindex == 0
}

// tcxIfindex returns the interface a tcx link is attached to, 0 once the
// interface is gone (the link is defunct).
func tcxIfindex(l link.Link) (int, bool) {
	info, err := l.Info()
	if err != nil {
		return 0, false
	}
	tcx := info.TCX()
	if tcx == nil {
		return 0, false
	}
	return int(tcx.Ifindex), true
}

// ownNamespace returns the cookie and inode number of the calling thread's
// network namespace.
func ownNamespace() (cookie, ino uint64, err error) {
	// Both from one thread: the answers must be about one namespace.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cookie, err = netnsCookie(); err != nil {
		return 0, 0, err
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, 0, fmt.Errorf("identify network namespace: %w", err)
	}
	return cookie, st.Ino, nil
}

// namespaces holds live network namespaces by the names their pin
// directories would have, in either layout.
type namespaces map[string]bool

func (n namespaces) has(dirName string) bool { return n[dirName] }

// liveNamespaces finds the network namespaces that some thread is in or
// that `ip netns` named (in /run/netns), with their cookies. A namespace
// that goes away while it looks is left out, as it should be.
func liveNamespaces() (namespaces, error) {
	paths, err := filepath.Glob("/proc/[0-9]*/task/[0-9]*/ns/net")
	if err != nil {
		return nil, err
	}
	named, _ := filepath.Glob("/run/netns/*")
	live := namespaces{}
	seen := map[uint64]bool{}
	for _, p := range append(named, paths...) {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || seen[st.Ino] {
			continue
		}
		cookie, err := cookieOf(p)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // the thread exited meanwhile: look at the others
		}
		if err != nil {
			return nil, fmt.Errorf("find live namespaces: %s: %w", p, err)
		}
		seen[st.Ino] = true
		live[legacyNSDirPrefix+strconv.FormatUint(st.Ino, 10)] = true
		live[nsDirPrefix+strconv.FormatUint(cookie, 10)] = true
	}
	return live, nil
}

// cookieOf returns the cookie of the network namespace at path.
func cookieOf(path string) (uint64, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	var cookie uint64
	err = nsdo.Do(ns, func() (err error) {
		cookie, err = netnsCookie()
		return err
	})
	return cookie, err
}

// isNamespaceDir reports whether name is a namespace directory of either
// layout.
func isNamespaceDir(name string) bool {
	for _, prefix := range []string{nsDirPrefix, legacyNSDirPrefix} {
		if s, ok := strings.CutPrefix(name, prefix); ok {
			_, err := strconv.ParseUint(s, 10, 64)
			return err == nil
		}
	}
	return false
}
