package team

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type fakeInventory map[string]LinkFacts

func (f fakeInventory) Link(name string) (LinkFacts, bool) { l, ok := f[name]; return l, ok }

func TestParseBothSpellings(t *testing.T) {
	for _, s := range []string{"transport-ports", "TransportPorts", "transportports"} {
		if a, err := ParseAlgorithm(s); err != nil || a != TransportPorts {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", s, a, err)
		}
	}
	if _, err := ParseMode("active-backup"); err == nil || !strings.Contains(err.Error(), "switch-independent") {
		t.Errorf("unknown mode error should list the choices, got %v", err)
	}
	b, _ := json.Marshal(struct {
		M Mode
		R FailureReason
	}{Lacp, WaitingForStableConnectivity})
	if string(b) != `{"M":"Lacp","R":"WaitingForStableConnectivity"}` {
		t.Errorf("JSON spelling: %s", b)
	}
}

func TestValidate(t *testing.T) {
	inv := fakeInventory{
		"eth1": {}, "eth2": {}, "eth3": {},
		"lo":    {Loopback: true},
		"Team1": {TeamNIC: "Team1"},
		"eth9":  {InTeam: "Team1"},
	}
	spec := func(members ...string) *Spec {
		s := &Spec{Name: "Team0"}
		for _, m := range members {
			ms := MemberSpec{Name: strings.TrimSuffix(m, "*")}
			if strings.HasSuffix(m, "*") {
				ms.Mode = AdminStandby
			}
			s.Members = append(s.Members, ms)
		}
		return s
	}
	long := spec("eth1")
	long.Name = "ThisNameIsTooLong"
	lacp := spec("eth1")
	lacp.Mode = Lacp
	bogus := spec("eth1")
	bogus.Mode = Mode(7)
	cases := []struct {
		spec *Spec
		want string
	}{
		{spec("eth1", "eth2"), ""},
		{spec("eth1", "eth2", "eth3*"), ""},
		{spec("eth1", "ethX"), `"ethX": no such interface`},
		{spec("eth1", "eth9"), `already in team "Team1"`},
		{spec("eth1", "lo"), "loopback"},
		{spec("eth1", "Team1"), "a team cannot be a member"},
		{long, "at most 15"},
		{spec("eth1", "eth2*", "eth3*"), "at most one standby"},
		{spec("eth1*"), "at least one must be active"},
		{spec(), "no members"},
		{spec("eth1", "eth1"), "listed twice"},
		{lacp, ""},
		{bogus, "not supported"},
		{&Spec{Name: "eth2", Members: []MemberSpec{{Name: "eth1"}}}, "already the name of an interface"},
		{&Spec{Name: "Team1", Members: []MemberSpec{{Name: "eth1"}}}, `team "Team1" already exists`},
	}
	for _, c := range cases {
		err := ValidateNew(c.spec, inv)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", c.spec.MemberNames(), err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %v: error %v, want it to mention %q", c.spec.Name, c.spec.MemberNames(), err, c.want)
		case err != nil && !errors.Is(err, ErrInvalid):
			t.Errorf("%v: error %v does not wrap ErrInvalid", c.spec.MemberNames(), err)
		}
	}
}

func TestEvaluate(t *testing.T) {
	up := LinkState{Present: true, AdminUp: true, Carrier: true, Speed: 10e9}
	pulled := up
	pulled.Carrier = false
	waiting := up
	waiting.Waiting = true
	s := &Spec{Name: "Team0", Members: []MemberSpec{{Name: "a"}, {Name: "b"}, {Name: "s", Mode: AdminStandby}}}

	e := Evaluate(s, map[string]LinkState{"a": up, "b": up, "s": up})
	if e.Status != Up || strings.Join(e.Carriers, ",") != "a,b" || e.Speed != 20e9 {
		t.Fatalf("all up: %+v", e)
	}
	if e.Members[2].Oper != OperStandby || e.Members[2].Reason != AdministrativeDecision {
		t.Errorf("standby member: %+v", e.Members[2])
	}

	e = Evaluate(s, map[string]LinkState{"a": pulled, "b": up, "s": up})
	if e.Status != Degraded || strings.Join(e.Carriers, ",") != "b,s" {
		t.Fatalf("a pulled: %+v", e)
	}
	if e.Members[0].Oper != OperFailed || e.Members[0].Reason != PhysicalMediaDisconnected {
		t.Errorf("pulled member: %+v", e.Members[0])
	}

	e = Evaluate(s, map[string]LinkState{"a": waiting, "b": up, "s": up})
	if e.Members[0].Reason != WaitingForStableConnectivity || !e.Carrying("s") {
		t.Errorf("waiting member: %+v", e)
	}

	e = Evaluate(s, map[string]LinkState{"b": pulled, "s": pulled})
	if e.Status != Down || len(e.Carriers) != 0 {
		t.Errorf("all gone: %+v", e)
	}
	if e.Members[0].Reason != NicNotPresent {
		t.Errorf("absent member: %+v", e.Members[0])
	}
}

func count(tb Table) map[uint32]int {
	c := map[uint32]int{}
	for _, id := range tb {
		c[id]++
	}
	return c
}

func TestEvaluateLacpAndMinLinks(t *testing.T) {
	up := LinkState{Present: true, AdminUp: true, Carrier: true, Speed: 10e9}
	unneg := up
	unneg.Unnegotiated = true
	pulled := unneg
	pulled.Carrier = false
	s := &Spec{Name: "Team0", Mode: Lacp, Members: []MemberSpec{{Name: "a"}, {Name: "b"}, {Name: "c"}}}

	e := Evaluate(s, map[string]LinkState{"a": up, "b": unneg, "c": pulled})
	if e.Status != Degraded || strings.Join(e.Carriers, ",") != "a" || e.Speed != 10e9 {
		t.Fatalf("one negotiated: %+v", e)
	}
	if m := e.Members[1]; m.Oper != OperFailed || m.Reason != LacpNegotiationIssue {
		t.Errorf("carrier without partner: %+v", m)
	}
	if m := e.Members[2]; m.Reason != PhysicalMediaDisconnected {
		t.Errorf("no carrier outranks LACP: %+v", m)
	}

	s.MinLinks = 2
	e = Evaluate(s, map[string]LinkState{"a": up, "b": unneg, "c": up})
	if e.Status != Degraded || len(e.Carriers) != 2 {
		t.Fatalf("two of min 2: %+v", e)
	}
	e = Evaluate(s, map[string]LinkState{"a": up, "b": unneg, "c": pulled})
	if e.Status != Down || len(e.Carriers) != 0 || e.Speed != 0 {
		t.Fatalf("one of min 2: %+v", e)
	}
	if e.Members[0].Oper != OperActive {
		t.Errorf("a usable member below min-links is still Active: %+v", e.Members[0])
	}
}

func TestAssignEvenAndMinimal(t *testing.T) {
	eq := func(ids ...uint32) []Weighted {
		var w []Weighted
		for _, id := range ids {
			w = append(w, Weighted{ID: id, Weight: 10e9})
		}
		return w
	}
	t2 := Assign(Table{}, eq(1, 2))
	if c := count(t2); c[1] != 128 || c[2] != 128 {
		t.Fatalf("2 members: %v", c)
	}
	// A member leaves: only its buckets move.
	t1 := Assign(t2, eq(2))
	if Moved(t2, t1) != 128 || count(t1)[2] != 256 {
		t.Fatalf("member 1 left: moved %d, %v", Moved(t2, t1), count(t1))
	}
	// It returns: it takes back exactly its share.
	back := Assign(t1, eq(1, 2))
	if Moved(t1, back) != 128 {
		t.Fatalf("member 1 back: moved %d", Moved(t1, back))
	}
	// Same input, same output: a restarted daemon rewrites nothing.
	if Moved(back, Assign(back, eq(1, 2))) != 0 {
		t.Fatal("re-assign of a balanced table moved buckets")
	}
	t8 := Assign(Table{}, eq(1, 2, 3, 4, 5, 6, 7, 8))
	for id, n := range count(t8) {
		if n != 32 {
			t.Errorf("8 members: member %d has %d buckets", id, n)
		}
	}
	t3 := Assign(t8, eq(1, 2, 3, 4, 5, 6, 7))
	if Moved(t8, t3) != 32 {
		t.Errorf("one of 8 left: moved %d, want 32", Moved(t8, t3))
	}
	for id, n := range count(t3) {
		if n < 36 || n > 37 {
			t.Errorf("7 members: member %d has %d buckets", id, n)
		}
	}
	if count(Assign(t8, nil))[0] != NumBuckets {
		t.Error("no members should empty the table")
	}
}

func TestAssignBySpeed(t *testing.T) {
	tb := Assign(Table{}, []Weighted{{1, 10e9}, {2, 1e9}, {3, 1e9}})
	c := count(tb)
	if c[1] != 214 || c[2] != 21 || c[3] != 21 {
		t.Errorf("10G+1G+1G: %v", c)
	}
	tb = Assign(Table{}, []Weighted{{1, 10e9}, {2, 0}})
	if c := count(tb); c[1] != 128 {
		t.Errorf("unknown speed should fall back to equal shares: %v", c)
	}
}

func TestLacpSpecRoundTrip(t *testing.T) {
	in := Spec{Name: "Team0", Mode: Lacp, Members: []MemberSpec{{Name: "eth1"}}, MinLinks: 2,
		Lacp: LacpSpec{Timer: LacpSlow, SystemPriority: 100, Key: 7, PortPriority: 9}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"lacp":{"timer":"Slow","systemPriority":100,"key":7,"portPriority":9},"minLinks":2`) {
		t.Errorf("encoded %s", b)
	}
	var out Spec
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Lacp != in.Lacp || out.MinLinks != 2 || out.Mode != Lacp {
		t.Errorf("round trip: %+v, want %+v", out, in)
	}
	// A spec without LACP settings stays without them, and takes the defaults.
	b, _ = json.Marshal(Spec{Name: "Team1"})
	if strings.Contains(string(b), "lacp") || strings.Contains(string(b), "minLinks") {
		t.Errorf("encoded %s", b)
	}
	if d := (LacpSpec{}).WithDefaults(); d != (LacpSpec{Timer: LacpFast, SystemPriority: 65535, Key: 1, PortPriority: 255}) {
		t.Errorf("defaults %+v", d)
	}
}

func TestHeir(t *testing.T) {
	var prev, next Table
	for b := range prev {
		prev[b] = uint32(1 + b%2) // 1 and 2 alternate
	}
	next = Assign(prev, []Weighted{{ID: 2}, {ID: 3}, {ID: 4}})
	// 1's 128 buckets go to 3 and 4 (2 holds its share already), 3 first.
	if h := Heir(prev, next, 1); h != 3 {
		t.Errorf("Heir of 1 = %d, want 3 (%v)", h, next)
	}
	if h := Heir(prev, next, 2); h != 2 {
		t.Errorf("Heir of 2, which keeps its buckets = %d, want 2", h)
	}
	if h := Heir(prev, next, 5); h != 0 {
		t.Errorf("Heir of a member without buckets = %d, want 0", h)
	}
	if h := Heir(prev, Table{}, 1); h != 0 {
		t.Errorf("Heir into an empty table = %d, want 0", h)
	}
}
