package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/team"
	"golang.org/x/sys/unix"
)

// server routes the API. Handlers decode, call one daemon operation and
// encode; the operations hold the logic.
func (d *Daemon) server() *http.Server {
	mux := http.NewServeMux()
	// handle wraps an operation: its error picks the status code, its value
	// is the JSON body.
	handle := func(pattern string, op func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, api.MaxRequestBody)
			v, err := op(r)
			if err != nil {
				fail(w, err)
				return
			}
			if v == nil {
				v = struct{}{}
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	handle("GET /v1/teams", func(r *http.Request) (any, error) { return d.teamViews("") })
	handle("GET /v1/teams/{name}", func(r *http.Request) (any, error) {
		ts, err := d.teamViews(r.PathValue("name"))
		if err != nil {
			return nil, err
		}
		return ts[0], nil
	})
	handle("POST /v1/teams", func(r *http.Request) (any, error) {
		var req api.NewTeam
		if err := decode(r.Body, &req); err != nil {
			return nil, err
		}
		return d.create(req)
	})
	handle("PATCH /v1/teams/{name}", func(r *http.Request) (any, error) {
		var req api.SetTeam
		if err := decode(r.Body, &req); err != nil {
			return nil, err
		}
		return d.set(r.PathValue("name"), req)
	})
	handle("DELETE /v1/teams/{name}", func(r *http.Request) (any, error) {
		return nil, d.remove(r.PathValue("name"))
	})
	handle("GET /v1/teams/{name}/members", func(r *http.Request) (any, error) { return d.memberViews(r.PathValue("name")) })
	handle("GET /v1/teams/{name}/stats", func(r *http.Request) (any, error) { return d.stats(r.PathValue("name")) })
	handle("GET /v1/teams/{name}/ports", func(r *http.Request) (any, error) { return d.portViews(r.PathValue("name")) })
	handle("GET /v1/teams/{name}/lacp", func(r *http.Request) (any, error) { return d.lacpView(r.PathValue("name")) })
	handle("GET /v1/members", func(r *http.Request) (any, error) { return d.memberViews("") })
	handle("POST /v1/teams/{name}/members", func(r *http.Request) (any, error) {
		var req api.AddMember
		if err := decode(r.Body, &req); err != nil {
			return nil, err
		}
		return nil, d.addMember(r.PathValue("name"), req)
	})
	handle("DELETE /v1/teams/{name}/members/{member}", func(r *http.Request) (any, error) {
		return nil, d.removeMember(r.PathValue("name"), r.PathValue("member"))
	})
	handle("PATCH /v1/teams/{name}/members/{member}", func(r *http.Request) (any, error) {
		var req api.SetMember
		if err := decode(r.Body, &req); err != nil {
			return nil, err
		}
		return nil, d.setMember(r.PathValue("name"), r.PathValue("member"), req)
	})
	handle("GET /v1/adapters", func(r *http.Request) (any, error) {
		var names []string
		if n := r.URL.Query().Get("name"); n != "" {
			names = strings.Split(n, ",")
		}
		return d.adapters(names)
	})
	handle("POST /v1/apply", func(r *http.Request) (any, error) {
		var req api.Apply
		if err := decode(r.Body, &req); err != nil {
			return nil, err
		}
		return d.apply(req)
	})
	handle("GET /v1/config", func(r *http.Request) (any, error) { return d.declared(), nil })
	mux.HandleFunc("GET /v1/events", d.serveEvents)
	guard := newConnGuard(maxConns())
	return &http.Server{
		Handler:           routeErrors(mux),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         guard.track,
		// Clients that hang up or time out are theirs to report.
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
}

// The API's limits. A client has readHeaderTimeout to send its request's
// headers and readTimeout for the whole request; an answer must be
// written within writeTimeout (the events stream sets a deadline per
// event instead); a keep-alive connection may idle for idleTimeout.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = time.Minute
	idleTimeout       = time.Minute
	maxHeaderBytes    = 64 << 10
)

// connGuard bounds the API's open connections. Past the bound a new
// connection closes the one that has waited longest with no request in
// progress (still sending its headers, or idle between requests), so
// clients that stall cannot lock out a fresh one. A connection being
// served, such as an events stream, is never closed.
type connGuard struct {
	max int

	mu      sync.Mutex
	conns   map[net.Conn]bool      // guarded by mu; the open connections
	waiting map[net.Conn]time.Time // guarded by mu; those with no request in progress, since when
}

func newConnGuard(max int) *connGuard {
	return &connGuard{max: max, conns: map[net.Conn]bool{}, waiting: map[net.Conn]time.Time{}}
}

// track is the server's ConnState hook.
func (g *connGuard) track(c net.Conn, s http.ConnState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case s == http.StateNew:
		if len(g.conns) >= g.max {
			g.evictLocked()
		}
		g.conns[c] = true
		g.waiting[c] = time.Now()
	case !g.conns[c]: // evicted
	case s == http.StateIdle:
		g.waiting[c] = time.Now()
	case s == http.StateActive:
		delete(g.waiting, c)
	case s == http.StateHijacked || s == http.StateClosed:
		delete(g.conns, c)
		delete(g.waiting, c)
	}
}

// evictLocked closes the connection that has waited longest.
func (g *connGuard) evictLocked() {
	var oldest net.Conn
	var since time.Time
	for c, t := range g.waiting {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	if oldest == nil {
		return // every connection is being served
	}
	oldest.Close()
	delete(g.conns, oldest)
	delete(g.waiting, oldest)
}

// maxConns bounds the API's connections by the descriptor limit, which
// the Go runtime raises to the hard limit at start: a quarter of it, the
// rest left to the teams' maps, links and netlink sockets; at most 1024.
func maxConns() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 64
	}
	return int(min(1024, max(16, lim.Cur/4)))
}

// routeErrors answers a request no route takes as the operations answer
// errors: JSON with a message, 404 for an unknown path, 405 (with Allow)
// for a method the path does not have.
func routeErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &headerRecorder{header: w.Header()}
		h.ServeHTTP(rec, r)
		msg := fmt.Sprintf("%s %s: no such API endpoint", r.Method, r.URL.Path)
		if rec.code == http.StatusMethodNotAllowed {
			msg = fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, w.Header().Get("Allow"))
		}
		writeJSON(w, rec.code, api.Error{Error: msg})
	})
}

// headerRecorder keeps the status and headers a handler writes, and drops
// its body.
type headerRecorder struct {
	header http.Header
	code   int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(code int)        { h.code = code }

// serveEvents streams the log as JSON lines; with follow=1 it stays open.
func (d *Daemon) serveEvents(w http.ResponseWriter, r *http.Request) {
	follow := r.URL.Query().Get("follow") != ""
	past, next, cancel := d.events.snapshot(follow)
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, e := range past {
		enc.Encode(e)
	}
	if !follow {
		return
	}
	// The stream outlives the server's write timeout: each event gets a
	// write deadline of its own, so a follower that stops reading is
	// dropped rather than kept forever. (No read deadline holds while a
	// handler runs: the server clears it to watch for the client leaving.)
	rc := http.NewResponseController(w)
	for {
		if rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case e := <-next:
			rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if enc.Encode(e) != nil {
				return
			}
		}
	}
}

func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, errTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, team.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ERANGE):
		// The kernel refused what the request asked of an interface
		// (an MTU its driver cannot take, say): the message says what.
		code = http.StatusBadRequest
	case errors.Is(err, errNotSaved):
		// The intent could not be saved, so nothing changed: the
		// state directory's disk, not the request, is at fault.
		code = http.StatusInsufficientStorage
	case errors.Is(err, os.ErrNotExist):
		code = http.StatusNotFound
	case errors.Is(err, os.ErrExist):
		code = http.StatusConflict
	}
	writeJSON(w, code, api.Error{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
