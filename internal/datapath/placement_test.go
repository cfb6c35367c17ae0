package datapath

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPlacementOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tables := map[string][NumBuckets]uint32{
		"one member":        uniform(7),
		"nothing":           uniform(0),
		"equal contiguous":  tableBy(func(i int) uint32 { return uint32(10 + i/64) }),
		"equal interleaved": tableBy(func(i int) uint32 { return uint32(10 + i%4) }),
		"10G beside 1G":     tableBy(func(i int) uint32 { return map[bool]uint32{true: 10, false: 11}[i < 233] }),
		"random with holes": tableBy(func(int) uint32 { return uint32(rng.IntN(5)) }),
	}
	for name, tb := range tables {
		t.Run(name, func(t *testing.T) {
			order := placementOrder(tb)
			share := map[uint32]int{}
			total := 0
			for _, id := range tb {
				if id != 0 {
					share[id]++
					total++
				}
			}
			seen := map[uint32]bool{}
			got := map[uint32]int{}
			for k, bucket := range order {
				if bucket >= NumBuckets || seen[bucket] {
					t.Fatalf("order[%d] = %d: not a permutation of the buckets", k, bucket)
				}
				seen[bucket] = true
				id := tb[bucket]
				if k >= total {
					if id != 0 {
						t.Fatalf("order[%d] names member %d after the %d buckets with a member", k, id, total)
					}
					continue
				}
				got[id]++
				// Every prefix gives each member its share, to within one.
				for m, s := range share {
					want := float64(s) * float64(k+1) / float64(total)
					if d := float64(got[m]) - want; d > 1 || d < -1 {
						t.Fatalf("after %d connections member %d has %d, want %.1f ± 1", k+1, m, got[m], want)
					}
				}
			}
		})
	}
}

func tableBy(member func(bucket int) uint32) (tb [NumBuckets]uint32) {
	for i := range tb {
		tb[i] = member(i)
	}
	return tb
}

// TestConnectionPlacement opens TCP connections whose hashes all name member
// a: their SYNs spread them over a and b by the placement order, the rest of
// each connection follows where its SYN went, and a connection already
// running when first seen keeps its hash's bucket.
func TestConnectionPlacement(t *testing.T) {
	const a, b = 7, 8
	tb := tableBy(func(i int) uint32 { return uint32(a + i%2) })
	conn := func(sport uint16, flags byte) []byte {
		f := testFrames["ipv4-tcp"]
		f.sport, f.tcpFlags = sport, flags
		return f.bytes()
	}
	var sports []uint16
	for p := uint16(40000); len(sports) < 5; p++ {
		if tb[Hash(HashTransportPorts, conn(p, 0))%NumBuckets] == a {
			sports = append(sports, p)
		}
	}

	team := loadTeamForTest(t, Config{TeamIfindex: 1, TeamMAC: macA, Flowlet: time.Hour})
	testMember(t, team, a, macB, 0)
	testMember(t, team, b, macC, 0)
	setBuckets(t, team, tb)

	const syn, synAck, ack = 0x02, 0x12, 0x10
	for i, p := range sports[:4] {
		flags := byte(syn)
		if i%2 == 1 {
			flags = synAck // the accepting side opens a connection too
		}
		want := []int{a, b}[i%2]
		if got := sendVia(t, team, conn(p, flags)); got != want {
			t.Errorf("connection %d: SYN left through %d, want %d", i, got, want)
		}
		if got := sendVia(t, team, conn(p, ack)); got != want {
			t.Errorf("connection %d: next frame left through %d, want %d like its SYN", i, got, want)
		}
	}
	if got := sendVia(t, team, conn(sports[4], ack)); got != a {
		t.Errorf("connection first seen mid-stream left through %d, want its hash's member %d", got, a)
	}

	// The placed bucket carries the load and the connection: moved, it
	// takes the connection along once the gap has passed, while the
	// bucket its hash names stays.
	bs, err := team.BucketStats()
	if err != nil {
		t.Fatal(err)
	}
	order := placementOrder(tb)
	placed, hashed := order[0], Hash(HashTransportPorts, conn(sports[0], 0))%NumBuckets
	if placed == hashed {
		t.Fatalf("connection 0 was placed in the bucket its hash names (%d): pick other ports", placed)
	}
	if bs[placed].Packets != 2 || bs[hashed].Packets != 0 {
		t.Errorf("placed bucket %d counted %d frames, hashed bucket %d %d; want the 2 of connection 0 in the placed one",
			placed, bs[placed].Packets, hashed, bs[hashed].Packets)
	}
	if err := team.SetConfig(Config{TeamIfindex: 1, TeamMAC: macA, Flowlet: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	moved := tb
	moved[placed] = b
	setBuckets(t, team, moved)
	if got := sendVia(t, team, conn(sports[0], ack)); got != b {
		t.Errorf("connection 0 after its placed bucket moved left through %d, want %d", got, b)
	}
}
