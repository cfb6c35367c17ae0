package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/team"
)

const teams = `teams:
  - name: Team0
    members: [eth1, eth2]
    loadBalancingAlgorithm: TransportPorts
    upDelay: 2s
  - name: Team1
    members:
      - eth3
      - eth4
    standby: eth4
    teamingMode: lacp
    lacpTimer: slow
    minLinks: 1
`

func TestParse(t *testing.T) {
	f, err := Parse([]byte(teams), nil)
	if err != nil {
		t.Fatal(err)
	}
	one := 1
	want := File{Teams: []api.NewTeam{
		{Name: "Team0", Members: []string{"eth1", "eth2"}, SetTeam: api.SetTeam{Algorithm: "TransportPorts", UpDelay: "2s"}},
		{Name: "Team1", Members: []string{"eth3", "eth4"}, Standby: "eth4", SetTeam: api.SetTeam{
			Mode: "lacp", LacpSettings: api.LacpSettings{LacpTimer: "slow", MinLinks: &one}}},
	}}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", f, want)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct {
		name, file, want string
		check            func(int, api.NewTeam) error
	}{
		{"unknown key", strings.Replace(teams, "upDelay: 2s", "upDelay: 2s\n    upDleay: 3s", 1), "[6:5] unknown field \"upDleay\"", nil},
		{"wrong type", strings.Replace(teams, "minLinks: 1", "minLinks: many", 1), "[13:15]", nil},
		{"duplicate team", strings.Replace(teams, "name: Team1", "name: Team0", 1), "line 6: team Team0 is declared twice (also at line 2)", nil},
		{"no members", "teams:\n  - name: Team0\n", "line 2: team Team0: no members", nil},
		{"no name", "teams:\n  - members: [eth1]\n", "line 2: a team needs a name", nil},
		{"refused value", teams, "line 5: bad up-delay", func(i int, nt api.NewTeam) error {
			if nt.UpDelay != "" {
				return &FieldError{Field: "upDelay", Err: errors.New("bad up-delay")}
			}
			return nil
		}},
		{"refused team", teams, "line 6: no", func(i int, nt api.NewTeam) error {
			if i == 1 {
				return errors.New("no")
			}
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.file), c.check)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one with %q", err, c.want)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	f, err := Parse([]byte(teams), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Teams[0], f.Teams[1] = f.Teams[1], f.Teams[0] // Marshal sorts by name
	b, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(b, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b2, _ := Marshal(again)
	if string(b) != string(b2) || !strings.HasPrefix(string(b), "teams:\n  - name: Team0\n") {
		t.Errorf("not stable:\n%s\n---\n%s", b, b2)
	}
}

func spec(name string, members ...string) team.Spec {
	s := team.Spec{Name: name}
	for _, m := range members {
		mode := team.AdminActive
		if strings.HasSuffix(m, "*") {
			m, mode = strings.TrimSuffix(m, "*"), team.AdminStandby
		}
		s.Members = append(s.Members, team.MemberSpec{Name: m, Mode: mode})
	}
	return s
}

func TestDiff(t *testing.T) {
	slow := spec("Team0", "eth1", "eth2")
	slow.UpDelay = 2e9
	spelled := spec("Team0", "eth1", "eth2")
	spelled.Notify.Count = team.DefaultNotifyCount
	raised := spec("Team0", "eth1", "eth2", "eth3")
	raised.MinLinks = 3
	for _, c := range []struct {
		name             string
		current, desired []team.Spec
		prune            bool
		want             []string
	}{
		{"nothing", []team.Spec{spec("Team0", "eth1", "eth2")}, []team.Spec{spec("Team0", "eth1", "eth2")}, false, nil},
		{"a default spelled out is no change", []team.Spec{spec("Team0", "eth1", "eth2")}, []team.Spec{spelled}, false, nil},
		{"member order is no change", []team.Spec{spec("Team0", "eth1", "eth2")}, []team.Spec{spec("Team0", "eth2", "eth1")}, false, nil},
		{"create", nil, []team.Spec{spec("Team0", "eth1")}, false, []string{"create Team0"}},
		{"others left alone", []team.Spec{spec("Team9", "eth9")}, []team.Spec{spec("Team0", "eth1")}, false, []string{"create Team0"}},
		{"prune", []team.Spec{spec("Team9", "eth9")}, nil, true, []string{"remove Team9"}},
		{"settings", []team.Spec{spec("Team0", "eth1", "eth2")}, []team.Spec{slow}, false, []string{"change Team0"}},
		{"add before remove", []team.Spec{spec("Team0", "eth1")}, []team.Spec{spec("Team0", "eth2")}, false,
			[]string{"add member Team0 eth2", "remove member Team0 eth1"}},
		{"min-links raised after the members it needs", []team.Spec{spec("Team0", "eth1", "eth2")}, []team.Spec{raised}, false,
			[]string{"add member Team0 eth3", "change Team0"}},
		{"standby swapped", []team.Spec{spec("Team0", "eth1", "eth2*")}, []team.Spec{spec("Team0", "eth1*", "eth2")}, false,
			[]string{"set member active Team0 eth2", "set member standby Team0 eth1"}},
		{"a member moves between teams", []team.Spec{spec("TeamA", "eth1", "eth2"), spec("TeamB", "eth3")},
			[]team.Spec{spec("TeamA", "eth1"), spec("TeamB", "eth3", "eth2")}, false,
			[]string{"remove member TeamA eth2", "add member TeamB eth2"}},
		{"a new team takes a pruned team's members", []team.Spec{spec("TeamA", "eth1")}, []team.Spec{spec("TeamB", "eth1")}, true,
			[]string{"remove TeamA", "create TeamB"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, ch := range Diff(c.current, c.desired, c.prune) {
				got = append(got, strings.TrimSpace(ch.Action+" "+ch.Team+" "+ch.Member))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("diff %q, want %q", got, c.want)
			}
		})
	}
}
