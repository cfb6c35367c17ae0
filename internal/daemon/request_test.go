package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/team"
)

// newTeamFromBody is what the API does with a create request's body up to
// the host: decode it and turn it into a validated spec.
func newTeamFromBody(body io.Reader) (team.Spec, error) {
	var req api.NewTeam
	if err := decode(body, &req); err != nil {
		return team.Spec{}, err
	}
	return parseSpec(req)
}

// TestDecodeOneValue: a body is one JSON object with known fields, no
// more; what is not is refused as bad input, never as a server error.
func TestDecodeOneValue(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"name":"Team0","members":["eth1"]}`, ""},
		{`{"name":"Team0","members":["eth1"]}` + "\n ", ""},
		{`{"name":"Team0","members":["eth1"]}{"name":"Team1"}`, "more than one JSON value"},
		{`{"name":"Team0","members":["eth1"]} garbage`, "more than one JSON value"},
		{`{"name":"Team0","members":["eth1"]}]`, "more than one JSON value"},
		{`{"name":"Team0","members":["eth1"],"bogus":1}`, `unknown field "bogus"`},
		{``, "empty"},
		{`{"name":"Team0"`, "bad request body"},
		{`[]`, "bad request body"},
		{`null`, "team name is empty"},
	}
	for _, c := range cases {
		_, err := newTeamFromBody(strings.NewReader(c.body))
		checkInvalid(t, c.body, err, c.want)
	}
}

func checkInvalid(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%q: unexpected error %v", what, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%q: error %v, want one mentioning %q", what, err, want)
	case err != nil && !errors.Is(err, team.ErrInvalid):
		t.Errorf("%q: error %v is not marked invalid (the API would answer 500)", what, err)
	}
}

// TestParseSpec: each setting of a request reaches the spec, and values
// out of bounds are refused with the bounds.
func TestParseSpec(t *testing.T) {
	ok := func(r api.NewTeam) api.NewTeam {
		r.Name, r.Members = "Team0", []string{"eth1", "eth2"}
		return r
	}
	two := 2
	three := 3
	cases := []struct {
		req  api.NewTeam
		want string
	}{
		{ok(api.NewTeam{}), ""},
		{ok(api.NewTeam{Standby: "eth3", SetTeam: api.SetTeam{LacpSettings: api.LacpSettings{MinLinks: &three}}}), ""},
		{ok(api.NewTeam{SetTeam: api.SetTeam{LacpSettings: api.LacpSettings{MinLinks: &three}}}), "min-links 3: want 0 to 2"},
		{ok(api.NewTeam{SetTeam: api.SetTeam{LacpSettings: api.LacpSettings{MinLinks: &two}}}), ""},
		{ok(api.NewTeam{SetTeam: api.SetTeam{Notify: api.Notify{VerifyTimeout: "2000000h"}}}), "verify timeout 2000000h0m0s: want 100µs to 1s"},
		{ok(api.NewTeam{SetTeam: api.SetTeam{Notify: api.Notify{NotifyInterval: "1h"}}}), "notify interval 1h0m0s: want 1ms to 10s"},
		{ok(api.NewTeam{SetTeam: api.SetTeam{Notify: api.Notify{NotifyCount: -1}}}), "notify count -1: want 1 to 100"},
		{ok(api.NewTeam{SetTeam: api.SetTeam{UpDelay: "876000h"}}), "up-delay 876000h0m0s: want 0s to 1h0m0s"},
		{ok(api.NewTeam{SetTeam: api.SetTeam{UpDelay: "-1s"}}), "want a duration"},
		{ok(api.NewTeam{SetTeam: api.SetTeam{DynamicSettings: api.DynamicSettings{FlowletGap: "9us"}}}), "flowlet gap 9µs: want 10µs to 1s"},
		{ok(api.NewTeam{SetTeam: api.SetTeam{DynamicSettings: api.DynamicSettings{RebalanceInterval: "5ms"}}}), "rebalance interval 5ms: want 10ms to 1m0s"},
		{ok(api.NewTeam{SetTeam: api.SetTeam{DynamicSettings: api.DynamicSettings{FlowletGap: "fast"}}}), `flowlet gap "fast": want a duration`},
		{ok(api.NewTeam{SetTeam: api.SetTeam{LacpSettings: api.LacpSettings{LacpKey: 70000}}}), "LACP key 70000: want 1 to 65535"},
		{ok(api.NewTeam{SetTeam: api.SetTeam{Mode: "bogus"}}), "unknown teaming mode"},
		{api.NewTeam{Name: "..", Members: []string{"eth1"}}, "not an interface name"},
		{api.NewTeam{Name: "Team0", Members: []string{"eth1\x00junk"}}, "not allowed"},
		{api.NewTeam{Name: "Team0", Members: []string{"eth1", "eth1"}}, "listed twice"},
		{api.NewTeam{Name: "Team0", Members: make([]string, 65)}, "at most 64"},
	}
	for _, c := range cases {
		_, err := parseSpec(c.req)
		checkInvalid(t, fmt.Sprintf("%+v", c.req), err, c.want)
	}
	s, err := parseSpec(ok(api.NewTeam{Standby: "eth2", SetTeam: api.SetTeam{
		Mode: "lacp", UpDelay: "2s", Notify: api.Notify{NotifyCount: 5, VerifyTimeout: "10ms"},
		LacpSettings:    api.LacpSettings{LacpKey: 7, MinLinks: &two},
		DynamicSettings: api.DynamicSettings{FlowletGap: "300us"},
	}}))
	if err != nil || s.Mode != team.Lacp || s.UpDelay != 2*time.Second || s.Notify.Count != 5 ||
		s.Notify.Verify != 10*time.Millisecond || s.Lacp.Key != 7 || s.MinLinks != 2 ||
		s.Dynamic.FlowletGap != 300*time.Microsecond || s.Members[1].Mode != team.AdminStandby {
		t.Errorf("parsed %+v, %v", s, err)
	}
}

// TestApplySetKeeps: a change request leaves what it does not name.
func TestApplySetKeeps(t *testing.T) {
	cur := team.Spec{Name: "Team0", Members: []team.MemberSpec{{Name: "eth1"}},
		Dynamic: team.DynamicSpec{FlowletGap: time.Millisecond, Interval: time.Second}}
	got, err := applySet(cur, api.SetTeam{DynamicSettings: api.DynamicSettings{RebalanceInterval: "100ms"}})
	want := team.DynamicSpec{FlowletGap: time.Millisecond, Interval: 100 * time.Millisecond}
	if err != nil || got.Dynamic != want {
		t.Errorf("got %+v, %v; want %+v", got.Dynamic, err, want)
	}
}

// FuzzDecode feeds arbitrary bodies to the create and change requests'
// decoding: none may panic or be anything but refused as bad input (400,
// 413) or give a spec that is valid.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"name":"Team0","members":["eth1","eth2"],"standby":"eth3"}`,
		`{"name":"T","members":["a"],"teamingMode":"lacp","lacpKey":7,"minLinks":1,"upDelay":"1s"}`,
		`{"name":"T","members":["a"],"verifyTimeout":"2000000h","notifyCount":101}`,
		`{"name":"..","members":["eth1\u0000x"]}`,
		`{"name":"T","members":["a"]} {}`,
		`{"flowletGap":"300us","rebalanceInterval":"1m","macPolicy":"follow","loadBalancingAlgorithm":"hyperv-port"}`,
	} {
		f.Add([]byte(seed))
	}
	cur := team.Spec{Name: "Team0", Members: []team.MemberSpec{{Name: "eth1"}, {Name: "eth2"}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := newTeamFromBody(bytes.NewReader(body))
		checkSpec(t, s, err)
		var req api.SetTeam
		if err := decode(bytes.NewReader(body), &req); err != nil {
			checkSpec(t, team.Spec{}, err)
			return
		}
		s, err = applySet(cur, req)
		checkSpec(t, s, err)
	})
}

func checkSpec(t *testing.T, s team.Spec, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, team.ErrInvalid) && !errors.Is(err, errTooLarge) {
			t.Fatalf("error %v is neither invalid nor too large: the API would answer 500", err)
		}
		return
	}
	if verr := s.Validate(); verr != nil {
		t.Fatalf("accepted spec %+v is invalid: %v", s, verr)
	}
	if len(s.Members) > team.MaxMembers || len(s.Members) == 0 {
		t.Fatalf("accepted %d members", len(s.Members))
	}
}
