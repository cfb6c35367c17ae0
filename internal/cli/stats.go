package cli

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

// rates is what `nicteam stats` shows: counters turned into rates over one
// interval, per member and per bucket.
type rates struct {
	Team         string        `json:"team"`
	Seconds      float64       `json:"seconds"` // the interval measured
	Members      []memberRate  `json:"members"`
	Buckets      []bucketRate  `json:"buckets"` // only buckets that carried load, busiest first
	FlowletMoves uint64        `json:"flowletMoves"`
	EgressDrops  uint64        `json:"egressDrops"`
	Load         []memberShare `json:"load"`
}

type memberRate struct {
	Name  string  `json:"name"`
	TxBps float64 `json:"txBitsPerSecond"`
	RxBps float64 `json:"rxBitsPerSecond"`
	TxPps float64 `json:"txPacketsPerSecond"`
	RxPps float64 `json:"rxPacketsPerSecond"`
}

type bucketRate struct {
	Bucket int     `json:"bucket"`
	Member string  `json:"member"`
	Bps    float64 `json:"bitsPerSecond"`
}

type memberShare struct {
	Name    string  `json:"name"`
	Buckets int     `json:"buckets"`
	Share   float64 `json:"share"` // of the load hashed into buckets, 0..1
}

// rateOf derives rates from two snapshots of the same team.
func rateOf(a, b api.Stats) rates {
	r := rates{Team: b.Team, Seconds: b.Time.Sub(a.Time).Seconds(), FlowletMoves: b.FlowletMoves, EgressDrops: b.EgressDrops}
	if r.Seconds <= 0 {
		return r
	}
	before := map[string]api.MemberStats{}
	for _, m := range a.Members {
		before[m.Name] = m
	}
	for _, m := range b.Members {
		p := before[m.Name]
		rate := func(a, b uint64) float64 { return float64(delta(a, b)) / r.Seconds }
		r.Members = append(r.Members, memberRate{
			Name:  m.Name,
			TxBps: rate(p.TxBytes, m.TxBytes) * 8, RxBps: rate(p.RxBytes, m.RxBytes) * 8,
			TxPps: rate(p.TxPackets, m.TxPackets), RxPps: rate(p.RxPackets, m.RxPackets),
		})
	}
	held := map[string]int{}
	load := map[string]float64{}
	total := 0.0
	for i, bk := range b.Buckets {
		held[bk.Member]++
		if i >= len(a.Buckets) || bk.Bytes <= a.Buckets[i].Bytes {
			continue
		}
		bps := float64(delta(a.Buckets[i].Bytes, bk.Bytes)) * 8 / r.Seconds
		r.Buckets = append(r.Buckets, bucketRate{Bucket: bk.Bucket, Member: bk.Member, Bps: bps})
		load[bk.Member] += bps
		total += bps
	}
	sort.SliceStable(r.Buckets, func(i, j int) bool { return r.Buckets[i].Bps > r.Buckets[j].Bps })
	for _, m := range b.Members {
		sh := memberShare{Name: m.Name, Buckets: held[m.Name]}
		if total > 0 {
			sh.Share = load[m.Name] / total
		}
		r.Load = append(r.Load, sh)
	}
	return r
}

func writeRates(w io.Writer, r rates) {
	fmt.Fprintf(w, "%s over %.1fs\n", r.Team, r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Member\tTx\tTx pkt/s\tRx\tRx pkt/s\tBuckets\tLoad")
	for i, m := range r.Members {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%.0f\t%d\t%.1f%%\n", m.Name, formatSpeed(uint64(m.TxBps)), m.TxPps,
			formatSpeed(uint64(m.RxBps)), m.RxPps, r.Load[i].Buckets, 100*r.Load[i].Share)
	}
	tw.Flush()
	if len(r.Buckets) > 0 {
		var top []string
		for _, b := range r.Buckets[:min(len(r.Buckets), 8)] {
			top = append(top, fmt.Sprintf("%d→%s %s", b.Bucket, orDash(b.Member), formatSpeed(uint64(b.Bps))))
		}
		fmt.Fprintf(w, "Busiest buckets: %s\n", strings.Join(top, ", "))
	}
	fmt.Fprintf(w, "Flowlet moves: %d, egress drops: %d\n", r.FlowletMoves, r.EgressDrops)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *command) stats(args []string) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	watch := fs.Bool("watch", false, "keep printing every interval until interrupted")
	interval := fs.Duration("interval", time.Second, "measure rates over this interval")
	o := output(fs)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *interval <= 0 {
		return usagef("--interval must be positive")
	}
	prev, err := c.client.Stats(c.ctx, pos[0])
	if err != nil {
		return err
	}
	for {
		select {
		case <-c.ctx.Done():
			return nil
		case <-time.After(*interval):
		}
		cur, err := c.client.Stats(c.ctx, pos[0])
		if err != nil {
			if c.ctx.Err() != nil {
				return nil
			}
			return err
		}
		r := rateOf(prev, cur)
		if err := c.emit(*o, r, func(w io.Writer) { writeRates(w, r) }); err != nil {
			return err
		}
		if !*watch {
			return nil
		}
		fmt.Fprintln(c.out)
		prev = cur
	}
}

// delta is how much a counter grew from a to b; 0 if it went back (the
// member was attached anew and its counters restarted).
func delta(a, b uint64) uint64 {
	if b < a {
		return 0
	}
	return b - a
}
