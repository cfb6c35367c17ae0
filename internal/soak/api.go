package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lab"
	"github.com/nicteam/nicteam/internal/team"
)

// apiClient makes raw requests to one nicteamd. Unlike api.Client it keeps
// no idle connection open, so the daemon's file descriptor count, which
// the soak compares before and after, holds none of the soak's own; and it
// sends bodies as given, bad ones included.
type apiClient struct {
	socket string
	http   *http.Client
}

func newAPIClient(socket string) *apiClient {
	return &apiClient{socket: socket, http: &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// do sends one request and returns the status code and body.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://nicteamd"+path, r)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// call sends a request that must succeed and decodes its answer into out
// (unless out is nil).
func (c *apiClient) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	code, b, err := c.do(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if code/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, code, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *apiClient) team(ctx context.Context) (api.Team, error) {
	var t api.Team
	err := c.call(ctx, http.MethodGet, "/v1/teams/"+lab.TeamName, nil, &t)
	return t, err
}

// waitTeam waits up to within until the team's status is want, and
// returns the team as last seen.
func (c *apiClient) waitTeam(ctx context.Context, want team.Status, within time.Duration) (api.Team, error) {
	var t api.Team
	seen := false
	// Every 10ms, not faster: each poll is a request the daemon serves
	// while it should be reacting to what the soak just did.
	err := lab.Poll(ctx, within, 10*time.Millisecond, func(ctx context.Context) (bool, error) {
		got, err := c.team(ctx)
		if err != nil {
			return false, err
		}
		t, seen = got, true
		if t.Status != want {
			return false, fmt.Errorf("status %s", t.Status)
		}
		return true, nil
	})
	switch {
	case err == nil:
		return t, nil
	case seen:
		// The poll's last error may be a request the deadline cut short;
		// what the daemon last said is what matters.
		return t, fmt.Errorf("%s not %s within %v: last seen %s with %v", lab.TeamName, want, within, t.Status, t.Members)
	}
	return t, fmt.Errorf("%s not %s within %v: %w", lab.TeamName, want, within, err)
}
