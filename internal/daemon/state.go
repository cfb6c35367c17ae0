package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/nicteam/nicteam/internal/host"
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
	// IP is the team NIC's addresses and routes as last seen, put back
	// when the NIC is rebuilt (see follow.go).
	IP host.IPConfig `json:"teamNicIP,omitzero"`
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
	recs, err := decodeState(b)
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", statePath(dir), err)
	}
	return recs, nil
}

// decodeState parses a state file's content and checks that every record
// is one the daemon could have written: the file is the intent the host is
// reconciled to, so nothing in it is taken on trust.
func decodeState(b []byte) ([]record, error) {
	var sf stateFile
	if err := decodeOne(bytes.NewReader(b), &sf); err != nil {
		return nil, err
	}
	if sf.Version != stateVersion {
		return nil, fmt.Errorf("version %d, this nicteamd understands %d", sf.Version, stateVersion)
	}
	for _, rec := range sf.Teams {
		if err := rec.check(); err != nil {
			return nil, fmt.Errorf("team %q: %w", rec.Spec.Name, err)
		}
	}
	return sf.Teams, nil
}

// check refuses a record the daemon would not have written.
func (r record) check() error {
	if _, err := net.ParseMAC(r.MAC); err != nil {
		return fmt.Errorf("MAC %q: %w", r.MAC, err)
	}
	if r.Peer != peerName(r.Spec.Name) {
		return fmt.Errorf("carrier peer %q is not the team's (%s)", r.Peer, peerName(r.Spec.Name))
	}
	if r.MTU < 68 || r.MTU > 65535 {
		return fmt.Errorf("MTU %d: want 68 to 65535", r.MTU)
	}
	for n := range r.Saved {
		if err := team.ValidateMemberName(n); err != nil {
			return fmt.Errorf("saved settings: %w", err)
		}
	}
	return r.Spec.Validate()
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

// errNotSaved matches a failed write of the state file: the change it was
// written for was not made, and the disk, not the request, is at fault.
var errNotSaved = errors.New("state not saved")

type saveError struct{ err error }

func (e saveError) Error() string        { return "save state: " + e.err.Error() }
func (e saveError) Unwrap() error        { return e.err }
func (e saveError) Is(target error) bool { return target == errNotSaved }

// writeState replaces the state file with b atomically.
func writeState(dir string, b []byte) error {
	f, err := os.CreateTemp(dir, ".teams-*.json")
	if err != nil {
		return saveError{err}
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return saveError{err}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return saveError{err}
	}
	if err := f.Close(); err != nil {
		return saveError{err}
	}
	if err := os.Rename(f.Name(), statePath(dir)); err != nil {
		return saveError{err}
	}
	return nil
}
