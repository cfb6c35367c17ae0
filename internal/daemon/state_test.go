package daemon

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/team"
)

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if recs, err := loadState(dir); err != nil || recs != nil {
		t.Fatalf("no state file: %v, %v; want nothing, no error", recs, err)
	}
	want := []record{{
		Spec: team.Spec{
			Name:      "Team0",
			Members:   []team.MemberSpec{{Name: "eth1"}, {Name: "eth2", Mode: team.AdminStandby}},
			Algorithm: team.TransportPorts,
			UpDelay:   2 * time.Second,
			MACPolicy: team.MACFollow,
			Notify:    team.Notify{Count: 5, Interval: 20 * time.Millisecond},
		},
		MAC: "02:00:00:00:00:01", Peer: peerName("Team0"), MTU: 1500, Primary: "eth1", NoLearning: true,
		Saved: map[string]saved{"eth1": {Up: false, Promisc: true, MTU: 9000}},
	}}
	if err := saveState(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got  %+v\n want %+v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only teams.json (no temp files left)", len(entries))
	}
}

func TestStateRefusesWhatItCannotRead(t *testing.T) {
	for name, content := range map[string]string{
		"corrupt": "{not json",
		"newer":   `{"version": 99, "teams": []}`,
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "teams.json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadState(dir)
		if err == nil || !strings.Contains(err.Error(), "teams.json") {
			t.Errorf("%s state: error %v, want one naming the file", name, err)
		}
	}
}

// FuzzDecodeState feeds the state loader arbitrary files: it must refuse
// or accept without panicking, and what it accepts must survive a save
// and a load unchanged.
func FuzzDecodeState(f *testing.F) {
	rec := record{
		Spec: team.Spec{Name: "Team0", Members: []team.MemberSpec{{Name: "eth1"}, {Name: "eth2", Mode: team.AdminStandby}}},
		MAC:  "02:00:00:00:00:01", Peer: peerName("Team0"), MTU: 1500,
		Saved: map[string]saved{"eth1": {Up: true, MTU: 1500}},
	}
	good, err := encodeState([]record{rec})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"teams":[]}`))
	f.Add([]byte(`{"version":1,"teams":[{"spec":{"name":"..","members":[{"name":"eth1"}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := decodeState(b)
		if err != nil {
			return
		}
		again, err := encodeState(recs)
		if err != nil {
			t.Fatalf("accepted state does not encode: %v", err)
		}
		back, err := decodeState(again)
		if err != nil {
			t.Fatalf("accepted state does not load once saved: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(normalize(back), normalize(recs)) {
			t.Fatalf("round trip changed the state:\n%+v\n%+v", back, recs)
		}
	})
}

// normalize makes an empty Saved map and a missing one the same.
func normalize(recs []record) []record {
	out := slices.Clone(recs)
	for i := range out {
		if len(out[i].Saved) == 0 {
			out[i].Saved = nil
		}
	}
	return out
}

// TestStateRefusesTrailingData checks that a state file is one JSON value:
// a stray bracket after it is as wrong as a second value.
func TestStateRefusesTrailingData(t *testing.T) {
	for _, tail := range []string{"]", "}", `{"version":1}`, "x"} {
		if _, err := decodeState([]byte(`{"version":1,"teams":[]}` + tail)); err == nil {
			t.Errorf("state followed by %q accepted", tail)
		}
	}
	if _, err := decodeState([]byte("{\"version\":1,\"teams\":[]}\n")); err != nil {
		t.Errorf("state with a final newline refused: %v", err)
	}
}
