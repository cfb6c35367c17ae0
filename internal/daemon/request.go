package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/team"
)

// errTooLarge is a request body beyond api.MaxRequestBody; the API
// answers 413.
var errTooLarge = fmt.Errorf("request body larger than %d bytes (1 MiB)", api.MaxRequestBody)

// decodeOne reads exactly one JSON value into v: unknown fields and
// anything after the value are refused, so a request, or the state file,
// means one thing only.
func decodeOne(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	switch _, err := dec.Token(); {
	case err == io.EOF:
		return nil
	case err != nil && !errors.As(err, new(*json.SyntaxError)):
		return err // a read error, such as a body over the limit
	}
	return errors.New("more than one JSON value (data after the object)")
}

// decode reads a request body with decodeOne; what it refuses is the
// request's fault.
func decode(body io.Reader, v any) error {
	err := decodeOne(body, v)
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*http.MaxBytesError)):
		return errTooLarge
	case err == io.EOF:
		return team.Invalid(errors.New("bad request body: empty; want a JSON object"))
	}
	return team.Invalid(fmt.Errorf("bad request body: %w", err))
}

// parseSpec turns a create request into a validated spec.
func parseSpec(req api.NewTeam) (team.Spec, error) {
	s := team.Spec{Name: req.Name}
	for _, m := range req.Members {
		s.Members = append(s.Members, team.MemberSpec{Name: m})
	}
	if req.Standby != "" {
		i := slices.IndexFunc(s.Members, func(m team.MemberSpec) bool { return m.Name == req.Standby })
		if i < 0 {
			s.Members = append(s.Members, team.MemberSpec{Name: req.Standby})
			i = len(s.Members) - 1
		}
		s.Members[i].Mode = team.AdminStandby
	}
	return applySet(s, req.SetTeam)
}

// applySet returns s changed as req asks, validated.
func applySet(s team.Spec, req api.SetTeam) (team.Spec, error) {
	var err error
	for _, f := range []struct {
		v     string
		parse func(string) error
	}{
		{req.Mode, func(v string) (err error) { s.Mode, err = team.ParseMode(v); return }},
		{req.Algorithm, func(v string) (err error) { s.Algorithm, err = team.ParseAlgorithm(v); return }},
		{req.MACPolicy, func(v string) (err error) { s.MACPolicy, err = team.ParseMACPolicy(v); return }},
		{req.LacpTimer, func(v string) (err error) { s.Lacp.Timer, err = team.ParseLacpTimer(v); return }},
	} {
		if f.v == "" {
			continue
		}
		if err := f.parse(f.v); err != nil {
			return s, team.Invalid(err)
		}
	}
	for _, f := range []struct {
		what string
		v    string
		to   *time.Duration
	}{
		{"up-delay", req.UpDelay, &s.UpDelay},
		{"notify interval", req.NotifyInterval, &s.Notify.Interval},
		{"verify timeout", req.VerifyTimeout, &s.Notify.Verify},
		{"flowlet gap", req.FlowletGap, &s.Dynamic.FlowletGap},
		{"rebalance interval", req.RebalanceInterval, &s.Dynamic.Interval},
	} {
		if f.v == "" {
			continue
		}
		if *f.to, err = parseDuration(f.what, f.v); err != nil {
			return s, err
		}
	}
	for _, f := range []struct {
		what string
		v    int
		to   *uint16
	}{
		{"LACP system priority", req.LacpSystemPriority, &s.Lacp.SystemPriority},
		{"LACP key", req.LacpKey, &s.Lacp.Key},
		{"LACP port priority", req.LacpPortPriority, &s.Lacp.PortPriority},
	} {
		if f.v < 0 || f.v > 65535 {
			return s, team.Invalid(fmt.Errorf("%s %d: want 1 to 65535", f.what, f.v))
		}
		if f.v > 0 {
			*f.to = uint16(f.v)
		}
	}
	if req.NotifyCount != 0 {
		s.Notify.Count = req.NotifyCount
	}
	if req.MinLinks != nil {
		s.MinLinks = *req.MinLinks
	}
	return s, s.Validate()
}

func parseDuration(what, v string) (time.Duration, error) {
	dl, err := time.ParseDuration(v)
	if err != nil || dl < 0 {
		return 0, team.Invalid(fmt.Errorf("%s %q: want a duration like 500ms or 2s", what, v))
	}
	return dl, nil
}
