package soak

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickSoak is the short soak that make test runs: the warm-up round
// and one measured round of what passes before the Pending fixes.
func TestQuickSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the soak builds a lab and runs for about 40s")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and runs nicteamd")
	}
	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", bin+"/", "github.com/nicteam/nicteam/cmd/nicteamd", "github.com/nicteam/nicteam/cmd/nicteam-seqstream").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Bin: bin, Skip: Pending, StateRoot: filepath.Join(t.TempDir(), "state"), Out: &log})
	t.Log("\n" + log.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Flaps == 0 || res.Restarts == 0 || res.Sent == 0 {
		t.Errorf("counted %d flaps, %d restarts, %d packets: a disturbance did not run", res.Flaps, res.Restarts, res.Sent)
	}
	for _, v := range res.Violations {
		t.Error(v)
	}
}
