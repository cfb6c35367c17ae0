package lab

import (
	"slices"
	"testing"
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
