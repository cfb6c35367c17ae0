package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

func TestRateOf(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := api.Stats{Team: "Team0", Time: t0,
		Members: []api.MemberStats{{Name: "eth1", TxBytes: 1000, TxPackets: 10}, {Name: "eth2"}},
		Buckets: []api.BucketStats{{Bucket: 0, Member: "eth1", Bytes: 0}, {Bucket: 1, Member: "eth2", Bytes: 500}, {Bucket: 2, Member: "eth2"}},
	}
	b := a
	b.Time = t0.Add(2 * time.Second)
	b.Members = []api.MemberStats{{Name: "eth1", TxBytes: 1000 + 250e6, TxPackets: 10 + 2000}, {Name: "eth2", RxBytes: 125e6}}
	b.Buckets = []api.BucketStats{{Bucket: 0, Member: "eth1", Bytes: 750e6}, {Bucket: 1, Member: "eth2", Bytes: 500 + 250e6}, {Bucket: 2, Member: "eth2"}}
	r := rateOf(a, b)
	if r.Seconds != 2 || r.Members[0].TxBps != 1e9 || r.Members[0].TxPps != 1000 || r.Members[1].RxBps != 500e6 {
		t.Errorf("member rates: %+v", r)
	}
	if len(r.Buckets) != 2 || r.Buckets[0].Bucket != 0 || r.Buckets[0].Bps != 3e9 {
		t.Errorf("busiest buckets first, idle ones left out: %+v", r.Buckets)
	}
	if r.Load[0].Share != 0.75 || r.Load[1].Buckets != 2 {
		t.Errorf("load shares: %+v", r.Load)
	}
	var out bytes.Buffer
	writeRates(&out, r)
	if !strings.Contains(out.String(), "eth1    1 Gbps") || !strings.Contains(out.String(), "75.0%") {
		t.Errorf("table:\n%s", out.String())
	}
}
