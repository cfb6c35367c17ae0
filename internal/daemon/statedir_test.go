package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStateDirOwnership: a state directory, or a file in it, that another
// user could write is refused with the command that fixes it.
func TestStateDirOwnership(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "new", "state")
	if err := prepareStateDir(fresh); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created state dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
	cases := []struct {
		name  string
		setup func(dir string) error
		want  string
	}{
		{"world-writable", func(dir string) error { return os.Chmod(dir, 0o777) }, "chmod 700 "},
		{"group-writable", func(dir string) error { return os.Chmod(dir, 0o770) }, "writable by group or others"},
		{"other owner", func(dir string) error { return os.Chown(dir, 65534, 65534) }, "owned by uid 65534, not root"},
		{"writable state file", func(dir string) error {
			p := filepath.Join(dir, "teams.json")
			if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
				return err
			}
			return os.Chmod(p, 0o666)
		}, "chmod 600 "},
		{"foreign state file", func(dir string) error {
			p := filepath.Join(dir, "teams.json")
			if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
				return err
			}
			return os.Chown(p, 65534, 65534)
		}, "chown root:root "},
		{"linked state file", func(dir string) error {
			return os.Symlink("/etc/passwd", filepath.Join(dir, "teams.json"))
		}, "not a regular file"},
		{"a file", func(dir string) error {
			os.Remove(dir)
			return os.WriteFile(dir, nil, 0o600)
		}, "not a directory"},
	}
	for _, c := range cases {
		dir := filepath.Join(t.TempDir(), "state")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := c.setup(dir); err != nil {
			if os.IsPermission(err) {
				t.Skipf("%s: %v (needs root)", c.name, err)
			}
			t.Fatal(err)
		}
		err := prepareStateDir(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
}
