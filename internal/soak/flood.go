package soak

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/nicteam/nicteam/internal/lab"
)

// floodRequest is one request of a flood and what must answer it.
type floodRequest struct {
	method, path, body string
	bad                bool // must be refused with a 4xx; otherwise must succeed
}

// floodMix is what a flood worker sends, round and round: the listings an
// operator's scripts would poll, and every fourth a request that is wrong.
var floodMix = []floodRequest{
	{method: "GET", path: "/v1/teams"},
	{method: "GET", path: "/v1/adapters"},
	{method: "GET", path: "/v1/members"},
	{method: "POST", path: "/v1/teams", body: `{"name":"Team1","members":`, bad: true},
	{method: "GET", path: "/v1/teams/" + lab.TeamName},
	{method: "GET", path: "/v1/teams/" + lab.TeamName + "/stats"},
	{method: "GET", path: "/v1/teams/" + lab.TeamName + "/members"},
	{method: "GET", path: "/v1/teams/nosuchteam", bad: true},
	{method: "GET", path: "/v1/events"},
	{method: "GET", path: "/v1/adapters?name=eth1,eth2," + lab.TeamName},
	{method: "GET", path: "/v1/teams/" + lab.TeamName + "/ports"},
	{method: "PATCH", path: "/v1/teams/" + lab.TeamName, body: `{"bogus":true}`, bad: true},
	{method: "GET", path: "/v1/teams"},
	{method: "GET", path: "/v1/members"},
	{method: "GET", path: "/v1/adapters"},
	{method: "POST", path: "/v1/teams/" + lab.TeamName + "/members", body: `not json`, bad: true},
}

// floodTally is what the workers of one flood counted.
type floodTally struct {
	mu       sync.Mutex
	requests int           // guarded by mu
	rejected int           // guarded by mu; bad ones answered 4xx
	failed   []string      // guarded by mu; what went wrong, the first few
	nFailed  int           // guarded by mu
	slowest  time.Duration // guarded by mu
}

func (t *floodTally) add(r floodRequest, code int, took time.Duration, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	t.slowest = max(t.slowest, took)
	var wrong string
	switch {
	case err != nil:
		wrong = err.Error()
	case r.bad && code/100 == 4:
		t.rejected++
	case r.bad:
		wrong = fmt.Sprintf("answered %d, want 4xx", code)
	case code/100 != 2:
		wrong = fmt.Sprintf("answered %d", code)
	}
	if wrong == "" && took > floodLatency {
		wrong = fmt.Sprintf("answered after %v", took.Round(time.Millisecond))
	}
	if wrong != "" {
		t.nFailed++
		if len(t.failed) < 5 {
			t.failed = append(t.failed, fmt.Sprintf("%s %s: %s", r.method, r.path, wrong))
		}
	}
}

// flood hammers both daemons' APIs with floodWorkers clients each and
// keeps stalledConns connections each that never finish their headers,
// and pulls node1's eth1 (the primary) half a second in: the failover must
// not wait for the API.
func (s *soak) flood(ctx context.Context) error {
	return s.window(ctx, "flood", func() error {
		fctx, stop := context.WithTimeout(ctx, floodFor)
		defer stop()
		var tally floodTally
		var wg sync.WaitGroup
		var stalled []net.Conn
		defer func() {
			for _, c := range stalled {
				c.Close()
			}
		}()
		for i, n := range s.seed.Nodes {
			for range stalledConns {
				c, err := net.Dial("unix", n.Socket)
				if err != nil {
					return fmt.Errorf("%s: open a stalled connection: %w", n.Name, err)
				}
				stalled = append(stalled, c)
				if _, err := c.Write([]byte("GET /v1/teams HTTP/1.1\r\nHost: nicteamd\r\n")); err != nil {
					return fmt.Errorf("%s: write a stalled connection: %w", n.Name, err)
				}
			}
			for w := range floodWorkers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := w; fctx.Err() == nil; k++ {
						r := floodMix[k%len(floodMix)]
						var body []byte
						if r.body != "" {
							body = []byte(r.body)
						}
						began := time.Now()
						rctx, cancel := context.WithTimeout(ctx, 2*floodLatency)
						code, _, err := s.api[i].do(rctx, r.method, r.path, body)
						cancel()
						tally.add(r, code, time.Since(began), err)
					}
				}()
			}
		}
		s.logf("flood", "%d clients and %d stalled connections on each daemon for %v", floodWorkers, stalledConns, floodFor)
		flapErr := func() error {
			if err := lab.Sleep(ctx, 500*time.Millisecond); err != nil {
				return err
			}
			return s.failover(ctx, 1, "eth1", "eth1")
		}()
		wg.Wait()
		s.res.Requests += tally.requests
		s.res.Rejected += tally.rejected
		s.res.Failed += tally.nFailed
		s.res.Slowest = max(s.res.Slowest, tally.slowest)
		s.logf("flood", "%d requests, %d bad ones rejected, %d failed, slowest %dµs", tally.requests, tally.rejected, tally.nFailed, tally.slowest.Microseconds())
		var errs []error
		if flapErr != nil {
			errs = append(errs, fmt.Errorf("under the flood: %w", flapErr))
		}
		if tally.nFailed > 0 {
			errs = append(errs, fmt.Errorf("%d requests failed, the first: %v", tally.nFailed, tally.failed))
		}
		return errors.Join(errs...)
	})
}
