package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/team"
)

// server routes the API. Handlers decode, call one daemon operation and
// encode; the operations hold the logic.
func (d *Daemon) server() *http.Server {
	mux := http.NewServeMux()
	// handle wraps an operation: its error picks the status code, its value
	// is the JSON body.
	handle := func(pattern string, op func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
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
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return d.create(req)
	})
	handle("PATCH /v1/teams/{name}", func(r *http.Request) (any, error) {
		var req api.SetTeam
		if err := decode(r, &req); err != nil {
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
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, d.addMember(r.PathValue("name"), req)
	})
	handle("DELETE /v1/teams/{name}/members/{member}", func(r *http.Request) (any, error) {
		return nil, d.removeMember(r.PathValue("name"), r.PathValue("member"))
	})
	handle("PATCH /v1/teams/{name}/members/{member}", func(r *http.Request) (any, error) {
		var req api.SetMember
		if err := decode(r, &req); err != nil {
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
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return d.apply(req)
	})
	handle("GET /v1/config", func(r *http.Request) (any, error) { return d.declared(), nil })
	mux.HandleFunc("GET /v1/events", d.serveEvents)
	return &http.Server{Handler: mux}
}

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
	flusher, _ := w.(http.Flusher)
	for {
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case e := <-next:
			if enc.Encode(e) != nil {
				return
			}
		}
	}
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return team.Invalid(fmt.Errorf("bad request body: %w", err))
	}
	return nil
}

func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, team.ErrInvalid):
		code = http.StatusBadRequest
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
