package datapath

import (
	"testing"

	"github.com/nicteam/nicteam/internal/team"
)

// TestMemberLimit holds team.MaxMembers, which validation refuses beyond,
// to the size of the per-member maps: larger and the next member fails to
// attach; smaller and validation refuses teams the datapath can run.
func TestMemberLimit(t *testing.T) {
	spec, err := loadTeam()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"members", "member_stats"} {
		if got := spec.Maps[name].MaxEntries; got != team.MaxMembers {
			t.Errorf("map %s holds %d entries, team.MaxMembers is %d", name, got, team.MaxMembers)
		}
	}
}
