package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RunDir is where the Seed that `nicteam lab up` builds and leaves running
// is recorded for the commands after it: its state file, and in a
// directory named for its prefix its daemons' sockets, state and logs.
// One RunDir holds at most one lab.
type RunDir string

const runStateFile = "lab.json"

// RunState is the state file of a RunDir's lab.
type RunState struct {
	Seed    SeedState `json:"seed"`
	Created time.Time `json:"created"`
	// Building says Up has not finished; UpPID is its process.
	Building bool `json:"building,omitempty"`
	UpPID    int  `json:"upPid"`
}

// StatePath is the path of d's state file.
func (d RunDir) StatePath() string { return filepath.Join(string(d), runStateFile) }

// Up builds a Seed with o's profile, MAC policy, addressing and daemon,
// its daemons detached, and records it in d. It tells building the lab's
// prefix before it starts to build. If ctx ends while the lab is built, it
// takes the lab down and returns ctx's error. Only one Up of a RunDir
// wins; the others fail, saying who has it.
func (d RunDir) Up(ctx context.Context, o SeedOptions, building func(prefix string)) (RunState, *Seed, error) {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return RunState{}, nil, err
	}
	// O_EXCL: of two lab ups at once, one wins.
	f, err := os.OpenFile(d.StatePath(), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return RunState{}, nil, d.taken()
	}
	if err != nil {
		return RunState{}, nil, err
	}
	f.Close()
	prefix := UniquePrefix("nl")
	o.StateRoot, o.Detached = filepath.Join(string(d), prefix), true
	st := RunState{Seed: SeedState{Prefix: prefix, Options: o}, Created: time.Now(), Building: true, UpPID: os.Getpid()}
	// Written before anything is built, so that Down finds whatever a
	// killed Up leaves.
	if err := d.write(st); err != nil {
		os.Remove(d.StatePath())
		return st, nil, err
	}
	forget := func() {
		os.RemoveAll(o.StateRoot)
		os.Remove(d.StatePath())
	}
	building(prefix)
	s, err := NewSeed(prefix, o)
	if err != nil {
		forget()
		return st, nil, err
	}
	if err := ctx.Err(); err != nil {
		s.Close()
		forget()
		return st, nil, err
	}
	st.Seed, st.Building = s.State(), false
	if err := d.write(st); err != nil {
		s.Close()
		forget()
		return st, nil, err
	}
	return st, s, nil
}

// taken says why Up cannot have d.
func (d RunDir) taken() error {
	st, err := d.Read()
	if err != nil {
		return fmt.Errorf("a lab is already up (%s exists); take it down with `nicteam lab down`", d.StatePath())
	}
	if st.Building && processRuns(st.UpPID) {
		return fmt.Errorf("lab %s is being built by pid %d", st.Seed.Prefix, st.UpPID)
	}
	if st.Building {
		return fmt.Errorf("lab %s was left half-built by a lab up that died; clean it up with `nicteam lab down`", st.Seed.Prefix)
	}
	return fmt.Errorf("lab %s is already up (since %s); take it down with `nicteam lab down` first", st.Seed.Prefix, st.Created.Format(time.TimeOnly))
}

func processRuns(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func (d RunDir) write(st RunState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := d.StatePath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, d.StatePath())
}

// Read returns d's state file.
func (d RunDir) Read() (RunState, error) {
	var st RunState
	b, err := os.ReadFile(d.StatePath())
	if errors.Is(err, fs.ErrNotExist) {
		return st, errors.New("no lab is up (start one with `nicteam lab up`)")
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read %s: %w", d.StatePath(), err)
	}
	return st, nil
}

// attach returns d's lab in whatever state it is.
func (d RunDir) attach() (RunState, *Seed, error) {
	if err := needRoot(); err != nil {
		return RunState{}, nil, err
	}
	st, err := d.Read()
	if err != nil {
		return st, nil, err
	}
	s, err := AttachSeed(st.Seed)
	if err != nil {
		return st, nil, err
	}
	return st, s, nil
}

// Open returns d's lab, for the commands after Up; it fails unless the lab
// is complete.
func (d RunDir) Open() (RunState, *Seed, error) {
	st, s, err := d.attach()
	if err != nil {
		return st, nil, err
	}
	if st.Building {
		return st, nil, d.taken()
	}
	if m := s.Missing(); len(m) > 0 {
		return st, nil, fmt.Errorf("lab %s is broken: namespaces %s are gone; take it down with `nicteam lab down`", st.Seed.Prefix, strings.Join(m, ", "))
	}
	return st, s, nil
}

// Down takes d's lab down, whatever is left of it, and forgets it, unless
// an Up is still building it.
func (d RunDir) Down() (RunState, error) {
	st, s, err := d.attach()
	if err != nil {
		return st, err
	}
	if st.Building && processRuns(st.UpPID) {
		return st, fmt.Errorf("lab %s is being built by pid %d; wait for it or stop it first", st.Seed.Prefix, st.UpPID)
	}
	cerr := s.Close()
	if root := st.Seed.Options.StateRoot; root != "" && cerr == nil {
		if err := os.RemoveAll(root); err != nil {
			return st, err
		}
	}
	if err := os.Remove(d.StatePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, err
	}
	if cerr != nil {
		return st, fmt.Errorf("lab %s is down, with errors: %w", st.Seed.Prefix, cerr)
	}
	return st, nil
}
