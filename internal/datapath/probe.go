package datapath

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// ErrNotSupported is wrapped by Probe's error: the datapath cannot run here.
var ErrNotSupported = errors.New("ebpf datapath not supported")

// Probe checks that this kernel and process can run the datapath: sched_cls
// programs with the helpers and map types team.c uses, and tcx links (Linux
// 6.6+). The error wraps ErrNotSupported and names what is missing.
func Probe() error {
	if err := features.HaveProgramType(ebpf.SchedCLS); err != nil {
		return probeError("sched_cls programs", err)
	}
	for _, mt := range []ebpf.MapType{ebpf.Hash, ebpf.Array, ebpf.PerCPUHash, ebpf.PerCPUArray} {
		if err := features.HaveMapType(mt); err != nil {
			return probeError(fmt.Sprintf("%s maps", mt), err)
		}
	}
	for _, fn := range []asm.BuiltinFunc{asm.FnMapLookupElem, asm.FnSkbLoadBytes, asm.FnSkbStoreBytes, asm.FnRedirect} {
		if err := features.HaveProgramHelper(ebpf.SchedCLS, fn); err != nil {
			return probeError(fmt.Sprintf("helper %s for sched_cls", fn), err)
		}
	}
	if err := haveTCX(); err != nil {
		return probeError("tcx links (Linux 6.6+)", err)
	}
	return nil
}

// haveTCX attaches a trivial program to an interface that cannot exist: a
// kernel with tcx answers ENODEV, one without fails the link type.
func haveTCX() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.AttachTCX(link.TCXOptions{Interface: math.MaxInt32, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err == nil {
		_ = l.Close()
		return errors.New("attach to a nonexistent interface succeeded")
	}
	if errors.Is(err, unix.ENODEV) {
		return nil
	}
	return err
}

func probeError(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %s: need CAP_BPF and CAP_NET_ADMIN (run as root): %w", ErrNotSupported, what, err)
	}
	release := "unknown"
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		release = unix.ByteSliceToString(uts.Release[:])
	}
	return fmt.Errorf("%w: kernel %s lacks %s: %w", ErrNotSupported, release, what, err)
}

// MountBPFFS makes path a bpffs mount unless it already is one or lies
// inside one, creating the directory first. Inside `ip netns exec` /sys is a
// fresh sysfs whose fs/bpf is an empty directory, so the mount is needed
// there too; note that such a mount lives in that process's private mount
// namespace and disappears, with everything pinned in it, when the
// namespace does.
func MountBPFFS(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", path, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", path, err)
	}
	if st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := unix.Mount("bpf", path, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", path, err)
	}
	return nil
}

// ErrNoFailover is wrapped by ProbeFailover's error: the egress program
// cannot check carrier by itself here, and failover is the control plane's
// alone.
var ErrNoFailover = errors.New("in-datapath failover not supported")

// ProbeFailover checks that the egress program with in-datapath failover
// loads here: it reads members' struct net_device, which needs kernel BTF,
// the bpf_cast_to_kern_ctx and bpf_rdonly_cast kfuncs and CAP_PERFMON. It
// loads exactly those programs and closes them. The error wraps
// ErrNoFailover and names what is missing.
func ProbeFailover() error {
	if _, err := btf.LoadKernelSpec(); err != nil {
		return fmt.Errorf("%w: no kernel BTF: %w", ErrNoFailover, err)
	}
	spec, err := loadTeam()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoFailover, err)
	}
	var objs struct {
		Egress *ebpf.Program `ebpf:"team_egress_fo"`
		Learn  *ebpf.Program `ebpf:"team_learn_dev"`
	}
	err = spec.LoadAndAssign(&objs, nil)
	if err == nil {
		_ = objs.Egress.Close()
		_ = objs.Learn.Close()
		return nil
	}
	var ve *ebpf.VerifierError
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || (errors.As(err, &ve) && strings.Contains(ve.Error(), "CAP_PERFMON")) {
		return fmt.Errorf("%w: need CAP_PERFMON to read members' carrier: %w", ErrNoFailover, err)
	}
	return fmt.Errorf("%w: %w", ErrNoFailover, err)
}
