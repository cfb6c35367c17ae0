package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/nicteam/nicteam/internal/lab"
	"github.com/vishvananda/netlink"
)

// NodeSnapshot is what one node's daemon holds and what it made on the
// host, at one moment.
type NodeSnapshot struct {
	PID    int            `json:"pid"`
	FDs    int            `json:"fds"`
	FDKind map[string]int `json:"fdKind"` // bpf-link, bpf-map, bpf-prog, socket, …
	RSSKiB int            `json:"rssKiB"`
	// Interfaces are the node's interfaces as "name (kind)".
	Interfaces []string `json:"interfaces"`
	// Attached counts the tcx programs per "interface direction".
	Attached map[string]int `json:"attached"`
	Pins     []string       `json:"pins"` // files under the node's pin directory
}

// snapshot reads n's daemon and host. The daemon's fd count is read until
// it stays the same for fdSettle, so that connections the soak just closed
// are gone from it.
func snapshot(ctx context.Context, n *lab.Node) (NodeSnapshot, error) {
	s := NodeSnapshot{PID: n.DaemonPID}
	var last map[string]int
	stable := time.Now()
	err := lab.Poll(ctx, 5*time.Second, 50*time.Millisecond, func(context.Context) (bool, error) {
		kinds, err := fdKinds(s.PID)
		if err != nil {
			return true, err
		}
		if !maps.Equal(kinds, last) {
			last, stable = kinds, time.Now()
		}
		if time.Since(stable) < fdSettle {
			return false, errors.New("fd count still changing")
		}
		return true, nil
	})
	if err != nil {
		return s, fmt.Errorf("snapshot %s: %w", n.Name, err)
	}
	s.FDKind = last
	for _, c := range last {
		s.FDs += c
	}
	if s.RSSKiB, err = rssKiB(s.PID); err != nil {
		return s, fmt.Errorf("snapshot %s: %w", n.Name, err)
	}
	if s.Interfaces, s.Attached, err = hostLinks(n.Host); err != nil {
		return s, fmt.Errorf("snapshot %s: %w", n.Name, err)
	}
	if s.Pins, err = pins(n.PinDir); err != nil {
		return s, fmt.Errorf("snapshot %s: %w", n.Name, err)
	}
	return s, nil
}

// fdSettle is how long a daemon's fd count must hold still to be read.
const fdSettle = 300 * time.Millisecond

// fdKinds counts pid's open file descriptors by what they are.
func fdKinds(pid int) (map[string]int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read fds: %w", err)
	}
	kinds := make(map[string]int)
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed since the listing
		}
		kinds[fdKind(target)]++
	}
	return kinds, nil
}

// fdKind names what an fd's link target is: "anon_inode:bpf-map" is
// bpf-map, "socket:[123]" socket, "anon_inode:[eventpoll]" eventpoll, a
// path file.
func fdKind(target string) string {
	if k, ok := strings.CutPrefix(target, "anon_inode:"); ok {
		return strings.Trim(k, "[]")
	}
	if i := strings.Index(target, ":["); i > 0 {
		return target[:i]
	}
	return "file"
}

// rssKiB reads pid's resident set size.
func rssKiB(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("read rss: no VmRSS in /proc/%d/status", pid)
}

// hostLinks lists h's interfaces and the tcx programs attached to each.
func hostLinks(h *lab.Host) ([]string, map[string]int, error) {
	var names []string
	attached := make(map[string]int)
	err := h.Do(func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("list interfaces: %w", err)
		}
		for _, l := range links {
			a := l.Attrs()
			names = append(names, fmt.Sprintf("%s (%s)", a.Name, l.Type()))
			for dir, at := range map[string]ebpf.AttachType{"ingress": ebpf.AttachTCXIngress, "egress": ebpf.AttachTCXEgress} {
				res, err := link.QueryPrograms(link.QueryOptions{Target: a.Index, Attach: at})
				if err != nil {
					return fmt.Errorf("query tcx %s of %s: %w", dir, a.Name, err)
				}
				if n := len(res.Programs); n > 0 {
					attached[a.Name+" "+dir] = n
				}
			}
		}
		return nil
	})
	slices.Sort(names)
	return names, attached, err
}

// pins lists the files under dir, relative to it; none if dir is absent.
func pins(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pins: %w", err)
	}
	return files, nil
}

// leaks compares a node's snapshot after the soak with the one before,
// both taken after the same warm-up, and says what grew: any fd, interface,
// attached program or pin more, or, if judgeRSS, the RSS by more than
// maxRSSGrowthPercent.
func leaks(node string, before, after NodeSnapshot, judgeRSS bool) []string {
	var out []string
	if after.FDs > before.FDs {
		out = append(out, fmt.Sprintf("%s: nicteamd has %d fds, %d before (%v, before %v)", node, after.FDs, before.FDs, after.FDKind, before.FDKind))
	}
	if limit := before.RSSKiB + before.RSSKiB*maxRSSGrowthPercent/100; judgeRSS && after.RSSKiB > limit {
		out = append(out, fmt.Sprintf("%s: nicteamd RSS %d KiB, %d before: more than %d%% growth", node, after.RSSKiB, before.RSSKiB, maxRSSGrowthPercent))
	}
	if extra := missingFrom(after.Interfaces, before.Interfaces); len(extra) > 0 {
		out = append(out, fmt.Sprintf("%s: interfaces not there before: %v", node, extra))
	}
	if gone := missingFrom(before.Interfaces, after.Interfaces); len(gone) > 0 {
		out = append(out, fmt.Sprintf("%s: interfaces gone: %v", node, gone))
	}
	for _, k := range slices.Sorted(maps.Keys(after.Attached)) {
		if after.Attached[k] > before.Attached[k] {
			out = append(out, fmt.Sprintf("%s: %d tcx programs on %s, %d before", node, after.Attached[k], k, before.Attached[k]))
		}
	}
	if extra := missingFrom(after.Pins, before.Pins); len(extra) > 0 {
		out = append(out, fmt.Sprintf("%s: pins not there before: %v", node, extra))
	}
	return out
}

// maxRSSGrowthPercent is how much a daemon's RSS may grow over the soak,
// judged only after rssRounds measured rounds: a daemon seconds old still
// grows its heap to where the garbage collector settles (12% over one
// quick round was seen), which says nothing about a leak.
const (
	maxRSSGrowthPercent = 10
	rssRounds           = 3
)

// missingFrom returns the elements of a that b lacks.
func missingFrom(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
