// Command nicteamd is the nicteam daemon: it owns the host's NIC teams,
// their eBPF datapath and the API the nicteam CLI talks to.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/daemon"
)

func main() {
	cfg := daemon.Config{}
	flag.StringVar(&cfg.Socket, "socket", api.DefaultSocket, "API unix socket (root-only)")
	flag.StringVar(&cfg.StateDir, "state-dir", "/var/lib/nicteam", "where declared teams are persisted (root-only: 0700)")
	flag.StringVar(&cfg.BPFFS, "bpffs", "/sys/fs/bpf", "bpf filesystem for pinned maps and links (mounted if absent)")
	flag.StringVar(&cfg.ConfigFile, "config", "", "teams file to apply at start (see nicteam apply); it wins for the teams it names")
	debug := flag.Bool("debug", false, "log debug messages")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, `usage: nicteamd [--socket PATH] [--state-dir DIR] [--bpffs DIR] [--config FILE]

nicteamd runs NIC teams: one per host or network namespace. Teams and their
eBPF datapath outlive it; a restarted nicteamd adopts them without a lost
packet. Stop it with SIGTERM or SIGINT.

The state directory says which NICs nicteamd takes over: it is created mode
0700, and one (or a file in it) that another user owns or may write is
refused at start, with the chmod or chown that fixes it.

`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := daemon.New(cfg)
	if err == nil {
		err = d.Run(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nicteamd:", err)
		os.Exit(1)
	}
}
