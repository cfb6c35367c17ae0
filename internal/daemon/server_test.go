package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

func testDaemon() *Daemon {
	return &Daemon{log: slog.New(slog.DiscardHandler), teams: map[string]*teamRT{}, events: newEventLog(16)}
}

// TestServerErrors: bad requests get a 4xx JSON answer, never a 500 or
// the mux's plain text.
func TestServerErrors(t *testing.T) {
	d := testDaemon()
	srv := httptest.NewServer(d.server().Handler)
	defer srv.Close()
	big := bytes.Repeat([]byte(" "), api.MaxRequestBody+1)
	cases := []struct {
		method, path string
		body         []byte
		code         int
		want         string
	}{
		{"GET", "/v1/nosuch", nil, 404, "no such API endpoint"},
		{"PUT", "/v1/teams", nil, 405, "method not allowed (allowed: GET, HEAD, POST)"},
		{"GET", "/v1/teams/%2E%2E", nil, 404, `no team ".."`},
		{"POST", "/v1/teams", []byte(`{"name":"T"} x`), 400, "more than one JSON value"},
		{"POST", "/v1/teams", big, 413, "larger than 1048576 bytes"},
		{"PATCH", "/v1/teams/T", []byte(`{}`), 404, `no team "T"`},
		{"DELETE", "/v1/teams/T/members/eth1", nil, 404, `no team "T"`},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, bytes.NewReader(c.body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e api.Error
		derr := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.code || derr != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %s: %d %q (%v); want %d with %q", c.method, c.path, resp.StatusCode, e.Error, derr, c.code, c.want)
		}
	}
}

// TestConnGuard: past its bound a new connection closes the one that
// waited longest without a request, never one being served.
func TestConnGuard(t *testing.T) {
	g := newConnGuard(3)
	var conns []net.Conn
	open := func() net.Conn {
		c, peer := net.Pipe()
		t.Cleanup(func() { c.Close(); peer.Close() })
		go io.Copy(io.Discard, peer)
		g.track(c, http.StateNew)
		conns = append(conns, c)
		return c
	}
	closed := func(c net.Conn) bool {
		_, err := c.Write([]byte("x"))
		return errors.Is(err, io.ErrClosedPipe)
	}
	served := open()
	g.track(served, http.StateActive)
	stalled := open()
	time.Sleep(time.Millisecond)
	open()
	fresh := open() // the fourth: the oldest waiting one goes
	if closed(served) || !closed(stalled) || closed(fresh) {
		t.Errorf("served closed %t, stalled closed %t, fresh closed %t; want false, true, false",
			closed(served), closed(stalled), closed(fresh))
	}
	g.track(stalled, http.StateClosed) // its server goroutine notices
	if len(g.conns) != 3 {
		t.Errorf("%d connections tracked, want 3", len(g.conns))
	}
}

// TestEventsOutliveTimeouts: an events stream goes on past the server's
// read and write timeouts, which bound every other request.
func TestEventsOutliveTimeouts(t *testing.T) {
	d := testDaemon()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = d.server()
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 50*time.Millisecond, 50*time.Millisecond
	srv.Start()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/v1/events?follow=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(200 * time.Millisecond)
	d.events.add("Team0", api.EventTeamChanged, "", "after the timeouts")
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(resp.Body).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if !strings.Contains(l, "after the timeouts") {
			t.Errorf("stream gave %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event on the stream")
	}
}
