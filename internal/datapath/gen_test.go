package datapath

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestGeneratedObjectsCurrent regenerates the BPF object with the
// //go:generate line of gen.go and compares it with the committed one, so a
// change to bpf/team.c without `go generate` fails here. clang output differs
// between major versions, so it only runs with the version recorded in
// bpf/CLANG_VERSION.
func TestGeneratedObjectsCurrent(t *testing.T) {
	recorded, err := os.ReadFile("bpf/CLANG_VERSION")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(recorded))
	out, err := exec.Command("clang", "--version").Output()
	if err != nil {
		t.Skipf("clang not installed (team_bpfel.o was built with clang %s): %v", want, err)
	}
	m := regexp.MustCompile(`clang version (\d+)\.`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("cannot tell the clang version from %q", out)
	}
	if have := string(m[1]); have != want {
		t.Skipf("clang %s installed, team_bpfel.o was built with clang %s: outputs differ between versions", have, want)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("go tool not in PATH: %v", err)
	}

	args := generateArgs(t) // run <bpf2go> <flags> <ident> <source>
	dir := t.TempDir()
	args = append(args[:2:2], append([]string{"-output-dir", dir}, args[2:]...)...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=datapath")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	for _, name := range []string{"team_bpfel.o", "team_bpfel.go"} {
		fresh, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s is stale: run go generate ./internal/datapath", name)
		}
	}
}

// generateArgs returns the arguments of gen.go's //go:generate line, unquoted
// as go generate does.
func generateArgs(t *testing.T) []string {
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(src), "\n") {
		rest, ok := strings.CutPrefix(line, "//go:generate go ")
		if !ok {
			continue
		}
		var args []string
		for _, f := range regexp.MustCompile(`"(?:[^"\\]|\\.)*"|\S+`).FindAllString(rest, -1) {
			if strings.HasPrefix(f, `"`) {
				if f, err = strconv.Unquote(f); err != nil {
					t.Fatal(err)
				}
			}
			args = append(args, f)
		}
		return args
	}
	t.Fatal("no //go:generate go line in gen.go")
	return nil
}
