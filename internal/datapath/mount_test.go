package datapath

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func isBPFFS(t *testing.T, path string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	return st.Type == unix.BPF_FS_MAGIC
}

func mountsAt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			n++
		}
	}
	return n
}

func TestMountBPFFS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := filepath.Join(testBPFFS(t), "sub", "dir") // testBPFFS calls MountBPFFS on a missing dir
	if !isBPFFS(t, filepath.Dir(filepath.Dir(dir))) {
		t.Fatal("MountBPFFS did not mount a bpffs")
	}
	// A directory inside a bpffs is used as is, and so is the mount itself.
	for _, p := range []string{dir, filepath.Dir(filepath.Dir(dir))} {
		if err := MountBPFFS(p); err != nil {
			t.Fatal(err)
		}
		if n := mountsAt(t, p); n > 1 || (p == dir && n != 0) {
			t.Errorf("%s: %d mounts after MountBPFFS on a bpffs", p, n)
		}
	}
}

// TestMountBPFFSInNetnsExec runs the test binary under `ip netns exec`,
// where /sys is a fresh sysfs and /sys/fs/bpf an empty directory of it.
func TestMountBPFFSInNetnsExec(t *testing.T) {
	if os.Getenv("NTDP_HELPER") == "mount" {
		if isBPFFS(t, "/sys/fs/bpf") {
			t.Fatal("/sys/fs/bpf is already a bpffs inside ip netns exec; the test proves nothing")
		}
		if err := MountBPFFS("/sys/fs/bpf"); err != nil {
			t.Fatal(err)
		}
		if !isBPFFS(t, "/sys/fs/bpf") {
			t.Fatal("no bpffs at /sys/fs/bpf after MountBPFFS")
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and mounts")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skipf("ip (iproute2) not installed: %v", err)
	}
	_, name, _ := testNetns(t)
	cmd := exec.Command(ip, "netns", "exec", name, os.Args[0], "-test.run=^TestMountBPFFSInNetnsExec$", "-test.v")
	cmd.Env = append(os.Environ(), "NTDP_HELPER=mount")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("under ip netns exec: %v\n%s", err, out)
	}
}
