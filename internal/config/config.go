// Package config reads and writes teams files, the declarative form of
// nicteam's teams that `nicteam apply -f`, `nicteam export` and
// `nicteamd --config` share, and works out what an apply changes. Each
// team in a file is what `nicteam new` takes (api.NewTeam), so the file,
// the CLI and the API spell every setting the same way. Pure: no OS.
package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
	"github.com/nicteam/nicteam/internal/api"
)

// File is a teams file.
type File struct {
	Teams []api.NewTeam `json:"teams"`
}

// Parse reads a teams file strictly: an unknown key, a value of the wrong
// type, a duplicate key or team, or a team that check refuses is an error
// that names its line. check sees each team in turn (with its index) and
// may return a *FieldError to point at one of its keys.
func Parse(b []byte, check func(i int, t api.NewTeam) error) (File, error) {
	var f File
	if err := yaml.UnmarshalWithOptions(b, &f, yaml.Strict()); err != nil {
		return File{}, fmt.Errorf("teams file: %s", yaml.FormatError(err, false, true))
	}
	seen := map[string]int{}
	for i, t := range f.Teams {
		var err error
		switch j, dup := seen[t.Name]; {
		case t.Name == "":
			err = &FieldError{Field: "name", Err: errors.New("a team needs a name")}
		case dup:
			err = &FieldError{Field: "name", Err: fmt.Errorf("team %s is declared twice (also at line %d)", t.Name, line(b, j, ""))}
		case len(t.Members) == 0:
			err = &FieldError{Field: "members", Err: fmt.Errorf("team %s: no members", t.Name)}
		default:
			if check != nil {
				err = check(i, t)
			}
		}
		if err != nil {
			var fe *FieldError
			field := ""
			if errors.As(err, &fe) {
				field = fe.Field
			}
			return File{}, fmt.Errorf("teams file: line %d: %w", line(b, i, field), err)
		}
		seen[t.Name] = i
	}
	return f, nil
}

// FieldError is a refused value of one key of a team.
type FieldError struct {
	Field string // the key, as the file spells it
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// line finds the line of team i's key field in b (its first line when the
// key is absent or empty); 0 when b does not parse as YAML.
func line(b []byte, i int, field string) int {
	file, err := parser.ParseBytes(b, 0)
	if err != nil {
		return 0
	}
	for _, p := range []string{fmt.Sprintf("$.teams[%d].%s", i, field), fmt.Sprintf("$.teams[%d]", i)} {
		if field == "" && strings.HasSuffix(p, ".") {
			continue
		}
		path, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		if n, err := path.FilterFile(file); err == nil && n != nil {
			return n.GetToken().Position.Line
		}
	}
	return 0
}

// Marshal writes a teams file: teams by name, keys in a fixed order, unset
// settings left out, so that export, apply and export again print the same
// bytes.
func Marshal(f File) ([]byte, error) {
	f.Teams = slices.Clone(f.Teams)
	slices.SortFunc(f.Teams, func(a, b api.NewTeam) int { return strings.Compare(a.Name, b.Name) })
	b, err := yaml.MarshalWithOptions(f, yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("write teams file: %w", err)
	}
	return b, nil
}
