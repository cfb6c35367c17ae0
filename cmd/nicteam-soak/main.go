// Command nicteam-soak is nicteam's soak and chaos suite (internal/soak):
// traffic through the seed lab's teams while members flap, a daemon is
// killed and restarted, its state directory fills up, the API is flooded
// and members are renamed. It exits 1 on any loss beyond a disturbance's
// bound and on any leak.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nicteam/nicteam/internal/soak"
)

const usage = `usage: nicteam-soak [-duration D] [-quick] [-disturb LIST] [-bin DIR] [-pps N]

Builds the seed lab (two nodes, each with Team0 = eth1 + eth2 and its own
nicteamd, a container on each) and, while four sequenced UDP streams flow
between the containers, runs rounds of disturbances:

  kill    node1's nicteamd SIGKILLed and restarted: no packet may be lost
  flap    a member's cable pulled and plugged back, on each node
  flood   both APIs flooded with listings (node1 has 200 more interfaces
          to list), bad requests and stalled connections while node1's
          primary cable is pulled
  rename  node2's eth2 renamed while a member, its cable pulled, renamed back
  full    node1's state directory (a tmpfs in a private mount namespace)
          filled up under a change that must then be refused; freed;
          nicteamd restarted: nothing may have changed or be lost

Each disturbance and its outcome is printed as it happens, with a time
stamp in ms (µs precision). The first round is the warm-up; the daemons'
fds and RSS and the interfaces, tcx programs and pins of the nodes after
it are compared with those after the last round. Exits 1 on any packet lost
beyond a disturbance's stated bound, any fd, interface, tcx program or pin
more, RSS growth above 10% (judged from three rounds after the warm-up),
or anything left after the teams are removed and the lab is closed.
Needs root.

`

func main() {
	fs := flag.NewFlagSet("nicteam-soak", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fs.PrintDefaults()
	}
	duration := fs.Duration("duration", 4*time.Minute, "start rounds while less than `D` has passed (at least one after the warm-up)")
	quick := fs.Bool("quick", false, "the short run of make test: the warm-up and one round, skipping what fails before pending fixes ("+strings.Join(soak.Pending, ",")+")")
	disturb := fs.String("disturb", strings.Join(soak.All, ","), "the disturbances each round runs, in order, from `LIST` "+strings.Join(soak.All, ","))
	skip := fs.String("skip", "", "disturbances, or links (the BPF link check after the teams are removed), not to run, in `LIST` (default with -quick: "+strings.Join(soak.Pending, ",")+")")
	bin := fs.String("bin", "", "`DIR` with nicteamd and nicteam-seqstream (default: next to this program)")
	pps := fs.Uint64("pps", soak.DefaultPPS, "each stream's rate in packets per second (`N`)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "nicteam-soak: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	cfg := soak.Config{Bin: *bin, Duration: *duration, PPS: *pps, Out: os.Stdout, Disturbances: strings.Split(*disturb, ",")}
	if *skip != "" {
		cfg.Skip = strings.Split(*skip, ",")
	}
	if *quick {
		cfg.Duration = 0
		if *skip == "" {
			cfg.Skip = soak.Pending
		}
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "nicteam-soak: %v\n", err)
		os.Exit(1)
	}
}

func run(cfg soak.Config) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: builds network namespaces and runs nicteamd")
	}
	if cfg.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.Bin = filepath.Dir(exe)
	}
	dir, err := os.MkdirTemp("", "nicteam-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.StateRoot = dir
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := soak.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if n := len(res.Violations); n > 0 {
		return fmt.Errorf("%d violations", n)
	}
	return nil
}
