package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
)

// Client talks to one nicteamd over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	return &Client{
		socket: socket,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		}},
	}
}

// ErrDaemonDown means nothing answers on the socket.
var ErrDaemonDown = errors.New("nicteamd is not running")

// APIError is an error the daemon answered with.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// send makes one request and returns the answer when it is a 2xx; any
// other answer becomes an *APIError carrying the daemon's message.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://nicteamd"+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.dialErr(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e Error
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return nil, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// dialErr turns "no socket" and "nobody listening" into advice.
func (c *Client) dialErr(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: nothing listens on %s; start it as root with `nicteamd --socket %s &` (or point --socket / NICTEAM_SOCKET at a running one)", ErrDaemonDown, c.socket, c.socket)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("connect to %s: permission denied (the socket is root-only; run as root)", c.socket)
	}
	return fmt.Errorf("connect to %s: %w", c.socket, err)
}

func teamPath(name string, rest ...string) string {
	p := "/v1/teams/" + pathSegment(name)
	for _, r := range rest {
		p += "/" + pathSegment(r)
	}
	return p
}

// pathSegment escapes s as one segment of a path, dots too: a name "." or
// ".." would otherwise be cleaned out of the path before it is routed.
func pathSegment(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ".", "%2E")
}

// Teams lists every team.
func (c *Client) Teams(ctx context.Context) ([]Team, error) {
	var ts []Team
	return ts, c.do(ctx, http.MethodGet, "/v1/teams", nil, &ts)
}

// Team returns one team.
func (c *Client) Team(ctx context.Context, name string) (Team, error) {
	var t Team
	return t, c.do(ctx, http.MethodGet, teamPath(name), nil, &t)
}

// NewTeam creates a team.
func (c *Client) NewTeam(ctx context.Context, req NewTeam) (Team, error) {
	var t Team
	return t, c.do(ctx, http.MethodPost, "/v1/teams", req, &t)
}

// SetTeam changes a team's settings.
func (c *Client) SetTeam(ctx context.Context, name string, req SetTeam) (Team, error) {
	var t Team
	return t, c.do(ctx, http.MethodPatch, teamPath(name), req, &t)
}

// Lacp returns a team's LACP actor and partner state per member.
func (c *Client) Lacp(ctx context.Context, name string) (Lacp, error) {
	var l Lacp
	return l, c.do(ctx, http.MethodGet, teamPath(name, "lacp"), nil, &l)
}

// Ports lists the endpoints behind a HyperVPort or Dynamic team and the
// member each is pinned to.
func (c *Client) Ports(ctx context.Context, name string) ([]Port, error) {
	var ps []Port
	return ps, c.do(ctx, http.MethodGet, teamPath(name, "ports"), nil, &ps)
}

// Apply makes the daemon's teams what req declares and returns the changes.
func (c *Client) Apply(ctx context.Context, req Apply) ([]Change, error) {
	var out []Change
	return out, c.do(ctx, http.MethodPost, "/v1/apply", req, &out)
}

// Config returns the declared teams as an apply takes them, by name.
func (c *Client) Config(ctx context.Context) ([]NewTeam, error) {
	var out []NewTeam
	return out, c.do(ctx, http.MethodGet, "/v1/config", nil, &out)
}

// RemoveTeam removes a team and restores its members.
func (c *Client) RemoveTeam(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, teamPath(name), nil, nil)
}

// Members lists the members of one team, or of all teams when name is "".
func (c *Client) Members(ctx context.Context, name string) ([]Member, error) {
	var ms []Member
	p := "/v1/members"
	if name != "" {
		p = teamPath(name, "members")
	}
	return ms, c.do(ctx, http.MethodGet, p, nil, &ms)
}

// AddMember adds an interface to a team.
func (c *Client) AddMember(ctx context.Context, teamName string, req AddMember) error {
	return c.do(ctx, http.MethodPost, teamPath(teamName, "members"), req, nil)
}

// RemoveMember takes an interface out of a team and restores it.
func (c *Client) RemoveMember(ctx context.Context, teamName, member string) error {
	return c.do(ctx, http.MethodDelete, teamPath(teamName, "members", member), nil, nil)
}

// SetMember changes a member's administrative mode.
func (c *Client) SetMember(ctx context.Context, teamName, member string, req SetMember) error {
	return c.do(ctx, http.MethodPatch, teamPath(teamName, "members", member), req, nil)
}

// Adapters lists interfaces as Get-NetAdapter does; no names means all.
func (c *Client) Adapters(ctx context.Context, names ...string) ([]Adapter, error) {
	var as []Adapter
	p := "/v1/adapters"
	if len(names) > 0 {
		p += "?name=" + url.QueryEscape(strings.Join(names, ","))
	}
	return as, c.do(ctx, http.MethodGet, p, nil, &as)
}

// Events returns the logged events; with follow it then calls fn for every
// new event until ctx ends or fn returns an error.
func (c *Client) Events(ctx context.Context, follow bool, fn func(Event) error) error {
	p := "/v1/events"
	if follow {
		p += "?follow=1"
	}
	resp, err := c.send(ctx, http.MethodGet, p, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil
}
