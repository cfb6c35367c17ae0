package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Machine is what the figures were measured on.
type Machine struct {
	Kernel    string  `json:"kernel"`
	CPU       string  `json:"cpu"`
	CPUs      int     `json:"cpus"`
	MemoryGiB float64 `json:"memoryGiB"`
	Go        string  `json:"go"`
	Iperf3    string  `json:"iperf3"`
	OVS       string  `json:"ovs,omitempty"` // ovs-vswitchd --version, if installed
	// LoadBefore and LoadAfter are the 1, 5 and 15 minute load averages:
	// whatever else ran on the machine shows in them.
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
}

func readMachine() (Machine, error) {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadAverage()}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return m, fmt.Errorf("read machine: uname: %w", err)
	}
	m.Kernel = unix.ByteSliceToString(uts.Release[:])
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return m, fmt.Errorf("read machine: %w", err)
	}
	m.CPU = cpuModel(string(cpuinfo))
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return m, fmt.Errorf("read machine: %w", err)
	}
	if m.MemoryGiB, err = memTotalGiB(string(meminfo)); err != nil {
		return m, fmt.Errorf("read machine: %w", err)
	}
	out, err := exec.Command("iperf3", "--version").Output()
	if err != nil {
		return m, fmt.Errorf("read machine: iperf3 --version: %w", err)
	}
	m.Iperf3, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	// Only the sections with the OVS bond need it; they check on their own.
	if out, err := exec.Command("ovs-vswitchd", "--version").Output(); err == nil {
		m.OVS, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	return m, nil
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown"
// (some architectures do not name the model).
func cpuModel(cpuinfo string) string {
	for line := range strings.Lines(cpuinfo) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// memTotalGiB reads MemTotal (in kB) from /proc/meminfo.
func memTotalGiB(meminfo string) (float64, error) {
	for line := range strings.Lines(meminfo) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse MemTotal %q: %w", f[1], err)
			}
			return float64(kb) / (1 << 20), nil
		}
	}
	return 0, fmt.Errorf("no MemTotal in /proc/meminfo")
}

// loadAverage returns the load averages from /proc/loadavg, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
