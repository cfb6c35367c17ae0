package main

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/nicteam/nicteam/internal/bench"
)

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	cfg, err := parseFlags([]string{"-o", "docs/benchmarks.md"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	def, quick := bench.Default(), bench.Quick()
	if cfg.Runs != def.Runs || cfg.Pulls != def.Pulls || cfg.PPS != def.PPS || cfg.BalanceRuns != def.BalanceRuns ||
		cfg.Duration != def.Duration || cfg.Omit != def.Omit || cfg.JSONOut != "docs/benchmarks.json" ||
		!slices.Equal(cfg.Sections, bench.SectionNames()) || cfg.Quick {
		t.Errorf("defaults: got %+v", cfg)
	}
	cfg, err = parseFlags([]string{"-quick", "-pulls", "3", "-only", "pps,control"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runs != quick.Runs || cfg.Pulls != 3 || cfg.Duration != quick.Duration || cfg.Omit != 0 || cfg.JSONOut != "" ||
		cfg.BalanceRuns != quick.BalanceRuns || !slices.Equal(cfg.Sections, []string{"pps", "control"}) || !cfg.Quick {
		t.Errorf("-quick -pulls 3 -only pps,control: got %+v", cfg)
	}
	for _, bad := range [][]string{
		{"-runs", "0"}, {"-pulls", "0"}, {"-pps", "10"}, {"-duration", "1500ms"}, {"extra"}, {"-only", "nothing"},
		{"-balance-runs", "0"},
	} {
		if _, err := parseFlags(bad, &stderr); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
	stderr.Reset()
	if _, err := parseFlags([]string{"-help"}, &stderr); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(stderr.String(), "-only LIST") || !strings.Contains(stderr.String(), "throughput,pps,failover,control") {
		t.Errorf("-help: %v\n%s", err, stderr.String())
	}
}
