package datapath

import (
	"math/rand/v2"
	"net"
	"testing"
)

var allPolicies = []HashPolicy{HashTransportPorts, HashIPAddresses, HashMacAddresses, HashSourceMAC}

func TestHashDeterministic(t *testing.T) {
	for name, f := range testFrames {
		b := f.bytes()
		for _, p := range allPolicies {
			if h1, h2 := Hash(p, b), Hash(p, append([]byte{}, b...)); h1 != h2 {
				t.Errorf("%s/%s: %#x then %#x", name, p, h1, h2)
			}
		}
	}
}

// TestHashGolden pins the hash itself: a datapath adopted from an older
// daemon keeps its program, and tools predict buckets with Hash, so a change
// of the function must be deliberate (change bpf/team.c in step).
func TestHashGolden(t *testing.T) {
	b := testFrames["ipv4-tcp"].bytes()
	want := map[HashPolicy]uint32{
		HashTransportPorts: 0x8b14eadc, HashIPAddresses: 0x54c00fa1, HashMacAddresses: 0xb56e9bc8, HashSourceMAC: 0xf3ea2259,
	}
	for p, w := range want {
		if got := Hash(p, b); got != w {
			t.Errorf("Hash(%s, ipv4-tcp) = %#x, want %#x", p, got, w)
		}
	}
}

func TestHashPorts(t *testing.T) {
	for _, name := range []string{"ipv4-tcp", "ipv4-udp", "ipv6-tcp", "ipv6-udp", "ipv4-df", "ipv4-options"} {
		f := testFrames[name]
		g := f
		g.sport++
		a, b := f.bytes(), g.bytes()
		if Hash(HashTransportPorts, a) == Hash(HashTransportPorts, b) {
			t.Errorf("%s: TransportPorts ignores the source port", name)
		}
		g = f
		g.dport++
		if Hash(HashTransportPorts, a) == Hash(HashTransportPorts, g.bytes()) {
			t.Errorf("%s: TransportPorts ignores the destination port", name)
		}
		for _, p := range []HashPolicy{HashIPAddresses, HashMacAddresses, HashSourceMAC} {
			if Hash(p, a) != Hash(p, b) {
				t.Errorf("%s: %s depends on ports", name, p)
			}
		}
		if Hash(HashTransportPorts, a) == Hash(HashIPAddresses, a) {
			t.Errorf("%s: TransportPorts equals IPAddresses", name)
		}
	}
}

func TestHashProtocol(t *testing.T) {
	f := testFrames["ipv4-tcp"]
	g := f
	g.proto = ipprotoUDP
	if Hash(HashTransportPorts, f.bytes()) == Hash(HashTransportPorts, g.bytes()) {
		t.Error("TransportPorts: TCP and UDP with the same ports hash alike")
	}
}

func TestHashAddresses(t *testing.T) {
	for _, name := range []string{"ipv4-tcp", "ipv6-tcp"} {
		f := testFrames[name]
		for i := range f.srcIP {
			g := f
			g.srcIP = append(net.IP{}, f.srcIP...)
			g.srcIP[i] ^= 0x10
			for _, p := range []HashPolicy{HashTransportPorts, HashIPAddresses} {
				if Hash(p, f.bytes()) == Hash(p, g.bytes()) {
					t.Errorf("%s/%s ignores source address byte %d", name, p, i)
				}
			}
			if Hash(HashMacAddresses, f.bytes()) != Hash(HashMacAddresses, g.bytes()) {
				t.Errorf("%s/MacAddresses depends on addresses", name)
			}
		}
	}
}

// Fragments carry ports only in the first one, so every fragment and, for
// consistency, the first one too hash on the addresses alone.
func TestHashFragmentsUseAddresses(t *testing.T) {
	for _, name := range []string{"ipv4-first-frag", "ipv4-later-frag", "ipv6-frag", "ipv4-icmp", "ipv6-icmp", "ipv4-truncated"} {
		b := testFrames[name].bytes()
		if got, want := Hash(HashTransportPorts, b), Hash(HashIPAddresses, b); got != want {
			t.Errorf("%s: TransportPorts %#x, want the IPAddresses hash %#x", name, got, want)
		}
	}
	// DF is not fragmentation.
	b := testFrames["ipv4-df"].bytes()
	if Hash(HashTransportPorts, b) == Hash(HashIPAddresses, b) {
		t.Error("ipv4-df: DF treated as a fragment")
	}
}

func TestHashNonIPUsesMACs(t *testing.T) {
	for _, name := range []string{"arp", "vlan-arp", "lldp"} {
		b := testFrames[name].bytes()
		want := Hash(HashMacAddresses, b)
		for _, p := range []HashPolicy{HashTransportPorts, HashIPAddresses} {
			if got := Hash(p, b); got != want {
				t.Errorf("%s/%s: %#x, want the MacAddresses hash %#x", name, p, got, want)
			}
		}
	}
	f := testFrames["arp"]
	g := f
	g.dst = macA
	if Hash(HashMacAddresses, f.bytes()) == Hash(HashMacAddresses, g.bytes()) {
		t.Error("MacAddresses ignores the destination MAC")
	}
	if Hash(HashSourceMAC, f.bytes()) != Hash(HashSourceMAC, g.bytes()) {
		t.Error("SourceMAC depends on the destination MAC")
	}
	g.src = macC
	if Hash(HashSourceMAC, f.bytes()) == Hash(HashSourceMAC, g.bytes()) {
		t.Error("SourceMAC ignores the source MAC")
	}
}

func TestHashVLANLikeUntagged(t *testing.T) {
	for _, name := range []string{"vlan-ipv4-tcp", "qinq-ipv6-udp", "vlan-arp"} {
		f := testFrames[name]
		u := f
		u.vlan = 0
		for _, p := range allPolicies {
			if got, want := Hash(p, f.bytes()), Hash(p, u.bytes()); got != want {
				t.Errorf("%s/%s: tagged %#x, untagged %#x", name, p, got, want)
			}
		}
	}
	// IPv4 options move the ports, not the hash.
	f := testFrames["ipv4-options"]
	u := f
	u.ipv4Opts = 0
	if Hash(HashTransportPorts, f.bytes()) != Hash(HashTransportPorts, u.bytes()) {
		t.Error("IPv4 options change the TransportPorts hash")
	}
}

func TestHashShortFrames(t *testing.T) {
	for n := range 14 {
		for _, p := range allPolicies {
			if got, want := Hash(p, make([]byte, n)), Hash(p, make([]byte, 14)); got != want {
				t.Errorf("%d-byte frame/%s: %#x, want the all-zero header's %#x", n, p, got, want)
			}
		}
	}
}

// The bucket is hash % 256: the low byte must spread flows evenly.
func TestHashSpreadsBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const flows = 256 * 200
	var count [NumBuckets]int
	f := testFrames["ipv4-tcp"]
	for range flows {
		f.sport = uint16(rng.Uint32())
		f.dport = uint16(rng.Uint32())
		count[Hash(HashTransportPorts, f.bytes())%NumBuckets]++
	}
	for b, n := range count {
		// 200 expected per bucket; ±50% is > 7 standard deviations.
		if n < 100 || n > 300 {
			t.Errorf("bucket %d got %d of %d flows", b, n, flows)
		}
	}
}

func TestHashPolicyString(t *testing.T) {
	for p, want := range map[HashPolicy]string{HashTransportPorts: "TransportPorts", HashIPAddresses: "IPAddresses",
		HashMacAddresses: "MacAddresses", HashSourceMAC: "SourceMAC", 9: "HashPolicy(9)"} {
		if got := p.String(); got != want {
			t.Errorf("HashPolicy(%d).String() = %q, want %q", uint32(p), got, want)
		}
	}
}
