package lab

import (
	"slices"
	"testing"
	"time"
)

func TestParsePing(t *testing.T) {
	tests := []struct {
		name     string
		out      string
		want     PingResult
		wantText string
	}{
		{
			name: "all answered, IPv6",
			out: `PING fd77::2(fd77::2) 56 data bytes
64 bytes from fd77::2: icmp_seq=1 ttl=64 time=0.030 ms
64 bytes from fd77::2: icmp_seq=2 ttl=64 time=0.021 ms
64 bytes from fd77::2: icmp_seq=3 ttl=64 time=0.019 ms

--- fd77::2 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 4ms
rtt min/avg/max/mdev = 0.019/0.023/0.030/0.004 ms
`,
			want:     PingResult{Transmitted: 3, Received: 3},
			wantText: "pings lost: 0 of 3",
		},
		{
			name: "outages, late reply, duplicate, errors, IPv4",
			out: `PING 10.77.0.2 (10.77.0.2) 56(84) bytes of data.
64 bytes from 10.77.0.2: icmp_seq=1 ttl=64 time=0.050 ms
no answer yet for icmp_seq=2
no answer yet for icmp_seq=3
no answer yet for icmp_seq=4
64 bytes from 10.77.0.2: icmp_seq=2 ttl=64 time=3.1 ms
64 bytes from 10.77.0.2: icmp_seq=5 ttl=64 time=0.050 ms
64 bytes from 10.77.0.2: icmp_seq=5 ttl=64 time=0.052 ms (DUP!)
From 10.77.0.1 icmp_seq=6 Destination Host Unreachable
64 bytes from 10.77.0.2: icmp_seq=7 ttl=64 time=0.050 ms
64 bytes from 10.77.0.2: icmp_seq=8 ttl=64 time=0.050 ms

--- 10.77.0.2 ping statistics ---
10 packets transmitted, 5 received, +1 duplicates, +1 errors, 50% packet loss, time 9ms
rtt min/avg/max/mdev = 0.050/0.6/3.1/1.2 ms, pipe 3
`,
			want:     PingResult{Transmitted: 10, Received: 5, Duplicates: 1, Errors: 1, Missing: []int{3, 4, 6, 9, 10}},
			wantText: "pings lost: 5 of 10 (seq 3–4, 6, 9–10)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePing(tt.out)
			if err != nil {
				t.Fatal(err)
			}
			if got.Transmitted != tt.want.Transmitted || got.Received != tt.want.Received ||
				got.Duplicates != tt.want.Duplicates || got.Errors != tt.want.Errors ||
				!slices.Equal(got.Missing, tt.want.Missing) {
				t.Errorf("parsePing = %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.wantText {
				t.Errorf("String() = %q, want %q", s, tt.wantText)
			}
		})
	}
}

func TestParsePingNoStatistics(t *testing.T) {
	if _, err := parsePing("ping: connect: Network is unreachable\n"); err == nil {
		t.Error("parsePing accepted output without statistics")
	}
}

func TestPortName(t *testing.T) {
	taken := map[string]bool{}
	for _, tt := range []struct{ host, nic, want string }{
		{"host", "eth1", "host-eth1"},
		{"averylonghost", "eth1", "averylonghost-1"},
		{"averylonghost", "eth2", "averylonghost-2"},
		{"host", "eth1", "host-eth11"}, // same pair on a second host namespace, same switch
	} {
		got := portName(tt.host, tt.nic, taken)
		if got != tt.want {
			t.Errorf("portName(%q, %q) = %q, want %q", tt.host, tt.nic, got, tt.want)
		}
		if len(got) > ifNameMax {
			t.Errorf("portName(%q, %q) = %q: longer than %d", tt.host, tt.nic, got, ifNameMax)
		}
		taken[got] = true
	}
}

func TestSendTimes(t *testing.T) {
	// 1 ms apart while answered; seq 4–6 unanswered, ping waiting 10 ms
	// before each next request and reporting the unanswered one as it
	// sends; seq 9 unanswered at the end.
	out := `PING 10.20.0.1 (10.20.0.1) 56(84) bytes of data.
[1000.000100] 64 bytes from 10.20.0.1: icmp_seq=1 ttl=64 time=0.100 ms
[1000.001100] 64 bytes from 10.20.0.1: icmp_seq=2 ttl=64 time=0.100 ms
[1000.002100] 64 bytes from 10.20.0.1: icmp_seq=3 ttl=64 time=0.100 ms
[1000.013000] no answer yet for icmp_seq=4
[1000.023000] no answer yet for icmp_seq=5
[1000.033000] no answer yet for icmp_seq=6
[1000.033100] 64 bytes from 10.20.0.1: icmp_seq=7 ttl=64 time=0.100 ms
[1000.034100] 64 bytes from 10.20.0.1: icmp_seq=8 ttl=64 time=0.100 ms
[1000.034150] 64 bytes from 10.20.0.1: icmp_seq=8 ttl=64 time=0.150 ms (DUP!)

--- 10.20.0.1 ping statistics ---
9 packets transmitted, 5 received, +1 duplicates, 44.4444% packet loss, time 35ms
`
	res, err := parsePing(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{4, 5, 6, 9}; !slices.Equal(res.Missing, want) {
		t.Fatalf("Missing = %v, want %v", res.Missing, want)
	}
	got := res.SendTimes(time.Millisecond)
	base := time.Unix(1000, 0)
	want := []time.Duration{
		0,
		0, time.Millisecond, 2 * time.Millisecond, // answered: reply - rtt
		3 * time.Millisecond,                                                // right after an answered one
		13 * time.Millisecond, 23 * time.Millisecond, 33 * time.Millisecond, // reported as the next went out
		34 * time.Millisecond, // answered (the duplicate ignored)
		35 * time.Millisecond, // past the last known
	}
	if len(got) != len(want) {
		t.Fatalf("len = %d, want %d", len(got), len(want))
	}
	for seq := 1; seq < len(want); seq++ {
		if d := got[seq].Sub(base); d != want[seq] {
			t.Errorf("seq %d sent at +%v, want +%v", seq, d, want[seq])
		}
	}
	if plain := (PingResult{Transmitted: 2}).SendTimes(time.Millisecond); !plain[1].IsZero() || !plain[2].IsZero() {
		t.Errorf("without timestamps: %v, want zero times", plain)
	}
}

func TestParseSwitchProfile(t *testing.T) {
	for in, want := range map[string]SwitchProfile{"learning": ProfileLearning, "Static": ProfileStatic} {
		if got, err := ParseSwitchProfile(in); err != nil || got != want {
			t.Errorf("ParseSwitchProfile(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseSwitchProfile("vswitch"); err == nil {
		t.Error("ParseSwitchProfile accepted vswitch")
	}
	for in, want := range map[string]int{"node1": 1, "2": 2} {
		if got, err := NodeIndex(in); err != nil || got != want {
			t.Errorf("NodeIndex(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"node3", "node0", "c1", ""} {
		if _, err := NodeIndex(in); err == nil {
			t.Errorf("NodeIndex(%q) accepted", in)
		}
	}
}
