package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Prerequisites checks what building a Seed for a user needs: root, and a
// nicteamd binary to run on its nodes, whose path it returns.
func Prerequisites() (daemon string, err error) {
	if err := needRoot(); err != nil {
		return "", err
	}
	return findDaemon()
}

func needRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (network namespaces, eBPF)")
	}
	return nil
}

// findDaemon returns the nicteamd next to the running program, else the
// one in $PATH.
func findDaemon() (string, error) {
	exe, err := os.Executable()
	if err == nil {
		p := filepath.Join(filepath.Dir(exe), "nicteamd")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("nicteamd"); err == nil {
		return filepath.Abs(p)
	}
	where := "next to this program"
	if exe != "" {
		where = "in " + filepath.Dir(exe)
	}
	return "", fmt.Errorf("nicteamd not found %s nor in $PATH: build it with `make build` (or `go build -o bin/ ./cmd/...`) and run bin/nicteam", where)
}
