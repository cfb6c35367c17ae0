package cli

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/team"
)

func TestFormatSpeed(t *testing.T) {
	for bps, want := range map[uint64]string{20e9: "20 Gbps", 10e9: "10 Gbps", 2.5e9: "2.5 Gbps", 100e6: "100 Mbps", 0: "0 bps"} {
		if got := formatSpeed(bps); got != want {
			t.Errorf("formatSpeed(%d) = %q, want %q", bps, got, want)
		}
	}
}

func TestTeamListLikeGetNetLbfoTeam(t *testing.T) {
	var b bytes.Buffer
	writeTeams(&b, []api.Team{{Name: "Team0", Members: []string{"Ethernet1", "Ethernet2"}, TeamNics: "Team0",
		TeamingMode: team.SwitchIndependent, LoadBalancingAlgorithm: team.Dynamic, Status: team.Degraded, DatapathFailover: true}})
	want := `Name                   : Team0
Members                : {Ethernet1, Ethernet2}
TeamNics               : Team0
TeamingMode            : SwitchIndependent
LoadBalancingAlgorithm : Dynamic
DatapathFailover       : True
Status                 : Degraded
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestAdaptersTable(t *testing.T) {
	var b bytes.Buffer
	writeAdapters(&b, []api.Adapter{{Name: "Team0", InterfaceDescription: "nicteam Multiplexor Driver", IfIndex: 15, Status: "Up", MacAddress: "00-50-56-8C-14-20", LinkSpeed: 20e9}})
	lines := strings.Split(b.String(), "\n")
	if !strings.HasPrefix(lines[0], "Name   InterfaceDescription") || !strings.Contains(lines[2], "00-50-56-8C-14-20  20 Gbps") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("new", flag.ContinueOnError)
	m := fs.String("members", "", "")
	pos, err := parse(fs, []string{"Team0", "--members", "a,b"}, 1, 1)
	if err != nil || pos[0] != "Team0" || *m != "a,b" {
		t.Fatalf("pos %v members %q err %v", pos, *m, err)
	}
	if _, err := parse(flag.NewFlagSet("x", flag.ContinueOnError), []string{"a", "b"}, 1, 1); err == nil {
		t.Error("extra positional accepted")
	}
}

func TestDaemonDownAdvice(t *testing.T) {
	var out, errb bytes.Buffer
	sock := filepath.Join(t.TempDir(), "none.sock")
	code := Run(context.Background(), []string{"--socket", sock, "get"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "nicteamd --socket "+sock) {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	code = Run(context.Background(), []string{"--socket", sock, "new", "Team0"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "--members is required") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

func TestLacpList(t *testing.T) {
	var b bytes.Buffer
	writeLacp(&b, api.Lacp{Team: "Team0", TeamingMode: team.Lacp, SystemPriority: 65535, Key: 1, Ports: []api.LacpPort{{
		Member: "eth1", Selected: true, Mux: "CollectingDistributing", Receive: "Current",
		Actor:   api.LacpInfo{SystemPriority: 65535, System: "02:00:00:00:00:01", Key: 1, PortPriority: 255, Port: 5, State: 0x3f, StateBits: []string{"Activity", "Timeout"}},
		Partner: api.LacpInfo{SystemPriority: 65534, System: "aa:00:00:00:00:01", Key: 5, Port: 6},
	}}})
	for _, want := range []string{
		"LacpTimer      : Fast",
		"Mux            : CollectingDistributing",
		"ActorSystem    : 65535,02:00:00:00:00:01",
		"ActorPort      : 5 (priority 255)",
		"ActorState     : 0x3f {Activity, Timeout}",
		"PartnerKey     : 5",
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

func TestCommandHelp(t *testing.T) {
	for args, want := range map[string]string{
		"new --help":        "-members string",
		"member add --help": "-standby",
		"stats -h":          "-interval duration",
	} {
		var out, errb bytes.Buffer
		code := Run(context.Background(), strings.Fields(args), &out, &errb)
		if code != 0 || !strings.Contains(out.String(), "options:") || !strings.Contains(out.String(), want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
		if first := strings.SplitN(out.String(), "\n", 3); len(first) < 2 || !strings.HasPrefix(first[1], "  "+strings.Fields(args)[0]) {
			t.Errorf("%s: help should start with the command's synopsis:\n%s", args, out.String())
		}
	}
}
