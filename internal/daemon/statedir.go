package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// prepareStateDir creates the state directory root-only, or checks that
// an existing one is: the state file says which NICs the daemon takes
// over, so whoever can write the directory or a file in it could make the
// root daemon take any NIC. The error names the command that fixes it.
func prepareStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := checkOwned(dir, true); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	for _, e := range entries {
		if err := checkOwned(filepath.Join(dir, e.Name()), false); err != nil {
			return err
		}
	}
	return nil
}

// checkOwned refuses path unless the daemon's user (root) owns it and no
// one else may write it; a file in the directory must be a regular file,
// not a link that could lead the daemon elsewhere.
func checkOwned(path string, isDir bool) error {
	stat := os.Stat // the directory itself may be a link an administrator made
	what, fix := "state dir", "chmod 700"
	if !isDir {
		stat, what, fix = os.Lstat, "state file", "chmod 600"
	}
	fi, err := stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return errors.New(what + ": no owner information")
	case isDir && !fi.IsDir():
		return fmt.Errorf("state dir %s is not a directory", path)
	case !isDir && !fi.Mode().IsRegular():
		return fmt.Errorf("state file %s is not a regular file (%s); remove it: rm %s", path, fi.Mode().Type(), path)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s %s is owned by uid %d, not root: whoever owns it can make nicteamd take over any NIC; fix it with: chown root:root %s && %s %s", what, path, st.Uid, path, fix, path)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s %s is writable by group or others (mode %04o): they could make nicteamd take over any NIC; fix it with: %s %s", what, path, fi.Mode().Perm(), fix, path)
	}
	return nil
}
