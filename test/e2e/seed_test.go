package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
)

// maxLostPerPull is the acceptance bound for one pulled cable under a 1 ms
// container-to-container ping; the target is 2.
const maxLostPerPull = 10

func newSeed(t *testing.T, o lab.SeedOptions) *lab.Seed {
	needRoot(t)
	o.Daemon = filepath.Join(bin, "nicteamd")
	o.StateRoot = t.TempDir()
	s, err := lab.NewSeed(lab.UniquePrefix("s"), o)
	if err != nil {
		t.Fatalf("build seed lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range s.Nodes {
				if n != nil && n.Daemon != nil {
					t.Logf("%s nicteamd log:\n%s", n.Name, n.Daemon.Output())
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("close seed lab: %v", err)
		}
	})
	return s
}

// TestSeedScenario is the seed's failure, for each switch profile: every
// member of every node is pulled and restored under a 1 ms ping between
// the containers. Each pull costs at most maxLostPerPull pings, the team
// goes Degraded and back Up, the peer's neighbour entry and the switch's
// forwarding entry for it end on a live port, and the restore costs none.
func TestSeedScenario(t *testing.T) {
	for _, c := range []struct {
		name string
		opts lab.SeedOptions
	}{
		{"learning", lab.SeedOptions{Profile: lab.ProfileLearning}},
		{"static", lab.SeedOptions{Profile: lab.ProfileStatic}},
		{"static-ipv6", lab.SeedOptions{Profile: lab.ProfileStatic, IPv6: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSeed(t, c.opts)
			for node := 1; node <= 2; node++ {
				for _, nic := range []string{"eth1", "eth2"} {
					pullAndRestore(t, s, node, nic)
				}
			}
		})
	}
}

func pullAndRestore(t *testing.T, s *lab.Seed, node int, nic string) {
	t.Helper()
	const interval = time.Millisecond
	const count = 1200
	other := 3 - node
	live := map[string]string{"eth1": "eth2", "eth2": "eth1"}[nic]
	ctx := context.Background()
	c := s.Node(node).Client()

	type result struct {
		r   lab.PingResult
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		// From the other node's container to this one's: its frames reach
		// this node through the peer's neighbour entry and the switch.
		r, err := s.ContainerPing(ctx, other, interval, count)
		done <- result{r, err}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := s.Fail(node, nic); err != nil {
		t.Fatal(err)
	}
	waitTeam(t, c, "Degraded")
	time.Sleep(200 * time.Millisecond)
	where := fmt.Sprintf("node%d %s pulled", node, nic)
	checkLivePath(t, s, node, live, where)
	restoredAt := time.Since(start)
	if err := s.Restore(node, nic); err != nil {
		t.Fatal(err)
	}
	waitTeam(t, c, "Up")
	res := <-done
	if res.err != nil {
		t.Fatalf("%s: ping: %v", where, res.err)
	}
	// A sequence number says roughly when: pings go out every interval,
	// except that ping slows to one per 10 ms while a request goes
	// unanswered (after the pull). That puts restoreSeq after the
	// restore: a loss at the restore may count as the pull's, never the
	// other way round.
	restoreSeq := int(restoredAt / interval)
	var lostPull, lostRestore []int
	for _, seq := range res.r.Missing {
		if seq < restoreSeq {
			lostPull = append(lostPull, seq)
		} else {
			lostRestore = append(lostRestore, seq)
		}
	}
	t.Logf("%s: %s; lost at the pull %d, at the restore %d", where, res.r, len(lostPull), len(lostRestore))
	if len(lostPull) > maxLostPerPull {
		t.Errorf("%s: %d pings lost, want at most %d", where, len(lostPull), maxLostPerPull)
	}
	if len(lostRestore) > 0 {
		t.Errorf("%s: restoring cost %d pings (a second outage): seq %v", where, len(lostRestore), lostRestore)
	}
	checkLivePath(t, s, node, "", where+" and restored")
}

// checkLivePath checks that the other node's neighbour entry for node's
// underlay address names a MAC the switch forwards to a live port of node
// (live, or any port when live is "").
func checkLivePath(t *testing.T, s *lab.Seed, node int, live, where string) {
	t.Helper()
	n, err := s.PeerNeighbor(node)
	if err != nil {
		t.Fatal(err)
	}
	fdb, err := s.Switch.FDB()
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, e := range fdb {
		if strings.EqualFold(e.MAC, n.MAC) {
			ports = append(ports, e.Port)
		}
	}
	want := []string{s.SwitchPortOf(node, "eth1"), s.SwitchPortOf(node, "eth2")}
	if live != "" {
		want = []string{s.SwitchPortOf(node, live)}
	}
	ok := false
	for _, p := range ports {
		for _, w := range want {
			ok = ok || p == w
		}
	}
	if !ok {
		t.Errorf("%s: node%d's neighbour entry %s; the switch forwards that MAC to %v, want one of %v", where, 3-node, n, ports, want)
	}
}

// waitTeam waits until node's Team0 reports status.
func waitTeam(t *testing.T, c *api.Client, status string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tm, err := c.Team(context.Background(), lab.TeamName)
		if err == nil && tm.Status.String() == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Team0: status %v (err %v), want %s", tm.Status, err, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBroadcastSeenOnce sends an ARP request for node1's team address from
// node2: the switch floods it to both of node1's members, and node1's
// stack must see it once.
func TestBroadcastSeenOnce(t *testing.T) {
	s := newSeed(t, lab.SeedOptions{Profile: lab.ProfileLearning})
	n1, n2 := s.Node(1), s.Node(2)
	target := strings.Split(n1.UnderlayIP, "/")[0]

	// tcpdump on each member and on the team NIC, counting the request.
	count := func(dev string) func() int {
		cmd := n1.Host.Exec(context.Background(), "tcpdump", "-n", "-l", "-i", dev, "arp", "and", "arp[6:2] == 1")
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return func() int {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			return strings.Count(out.String(), "who-has "+target)
		}
	}
	stops := map[string]func() int{}
	for _, dev := range []string{"eth1", "eth2", lab.TeamName} {
		stops[dev] = count(dev)
	}
	time.Sleep(500 * time.Millisecond) // tcpdump attaches
	if _, err := n2.Host.Run("ip", "neigh", "flush", "dev", lab.TeamName); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Host.Run("ping", "-c", "1", "-W", "1", target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	got := map[string]int{}
	for dev, stop := range stops {
		got[dev] = stop()
	}
	if got["eth1"] < 1 || got["eth2"] < 1 {
		t.Fatalf("the switch should flood the request to both members: %v", got)
	}
	if got[lab.TeamName] != 1 {
		t.Errorf("node1's stack saw the ARP request %d times, want once (per device: %v)", got[lab.TeamName], got)
	}
}
