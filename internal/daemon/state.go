package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nicteam/nicteam/internal/team"
)

// record is what the daemon persists about one team: the declared spec and
// what it must restore or find again after a restart.
type record struct {
	Spec team.Spec `json:"spec"`
	MAC  string    `json:"macAddress"` // the team NIC's MAC (the primary's)
	Peer string    `json:"peer"`       // hidden veth end that gives the team NIC carrier
	MTU  int       `json:"mtu"`
	// Primary is the member carrying the team MAC, kept so a restarted
	// daemon does not move it (or announce) again.
	Primary string `json:"primary,omitempty"`
	// NoLearning records that an auto team found its fabric does not
	// deliver the team MAC to another port: later failovers follow at once.
	NoLearning bool `json:"noLearning,omitempty"`
	// Removing marks a team whose removal has begun: written before the
	// host is touched, so a daemon killed midway finishes it on start.
	Removing bool `json:"removing,omitempty"`
	// Saved holds each member's settings from before it joined, restored
	// when it leaves. It is written before the member is changed; an entry
	// for an interface that is no member any more is a removal half done.
	Saved map[string]saved `json:"saved"`
}

type saved struct {
	Up      bool `json:"up"`
	Promisc bool `json:"promisc"`
	MTU     int  `json:"mtu"`
}

type stateFile struct {
	Version int      `json:"version"`
	Teams   []record `json:"teams"`
}

const stateVersion = 1

func statePath(dir string) string { return filepath.Join(dir, "teams.json") }

// loadState reads the persisted teams; a missing file is an empty state.
func loadState(dir string) ([]record, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("read state %s: %w", statePath(dir), err)
	}
	if sf.Version != stateVersion {
		return nil, fmt.Errorf("read state %s: version %d, this nicteamd understands %d", statePath(dir), sf.Version, stateVersion)
	}
	return sf.Teams, nil
}

// saveState replaces the state file atomically: a crash leaves either the
// old or the new file, never half of one.
func saveState(dir string, teams []record) error {
	b, err := encodeState(teams)
	if err != nil {
		return err
	}
	return writeState(dir, b)
}

// encodeState is the state file's content for teams.
func encodeState(teams []record) ([]byte, error) {
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Teams: teams}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("save state: %w", err)
	}
	return append(b, '\n'), nil
}

// writeState replaces the state file with b atomically.
func writeState(dir string, b []byte) error {
	f, err := os.CreateTemp(dir, ".teams-*.json")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(f.Name(), statePath(dir)); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}
