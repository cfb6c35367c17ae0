package datapath

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: without CAP_BPF Probe is expected to fail (TestProbeUnprivileged)")
	}
	if err := Probe(); err != nil {
		t.Fatalf("Probe as root on a kernel with tcx: %v", err)
	}
}

// TestProbeUnprivileged runs the test binary as nobody: Probe must fail
// with ErrNotSupported and say which privileges are missing.
func TestProbeUnprivileged(t *testing.T) {
	if os.Getenv("NTDP_HELPER") == "probe" {
		err := Probe()
		if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "need CAP_BPF and CAP_NET_ADMIN") {
			t.Fatalf("Probe as nobody: %v; want ErrNotSupported naming the capabilities", err)
		}
		t.Log(err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	// The go test binary sits in a private build directory; copy it where
	// nobody can execute it.
	dir, err := os.MkdirTemp("", "ntdp-probe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "datapath.test")
	if err := copyFile(os.Args[0], bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestProbeUnprivileged$", "-test.v")
	cmd.Dir = dir
	cmd.Env = []string{"NTDP_HELPER=probe", "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
