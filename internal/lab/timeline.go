package lab

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// timelineRow is one line of the timeline, with continuation lines.
type timelineRow struct {
	At     time.Duration // from the pull
	Source string
	Text   string
	More   []string
}

// maxLossRows bounds the ping-loss rows of a timeline.
const maxLossRows = 12

// outage is a run of ping requests never answered.
type outage struct {
	From, To int       // seq, inclusive
	Start    time.Time // when From went out
	// End is when the first request answered after the run went out; zero
	// if none was.
	End time.Time
}

func (o outage) count() int { return o.To - o.From + 1 }

// outages returns the runs of unanswered requests, in order.
func outages(run *PullRun) []outage {
	var os []outage
	for _, r := range run.Ping.MissingRanges() {
		o := outage{From: r.From, To: r.To}
		if r.From < len(run.Sent) {
			o.Start = run.Sent[r.From]
		}
		if r.To+1 < len(run.Sent) {
			o.End = run.Sent[r.To+1]
		}
		os = append(os, o)
	}
	return os
}

// buildTimeline merges the pull and restore, both daemons' events, the
// lost pings and the snapshots into rows ordered by time.
func buildTimeline(run *PullRun, owners MACOwners) []timelineRow {
	rel := func(t time.Time) time.Duration { return t.Sub(run.Pulled) }
	p := run.Plan
	node := fmt.Sprintf("node%d", p.Node)
	var rows []timelineRow
	first := run.Start
	if len(run.Sent) > 1 && !run.Sent[1].IsZero() {
		first = run.Sent[1]
	}
	rows = append(rows, timelineRow{At: rel(first), Source: "ping",
		Text: fmt.Sprintf("%s → %s starts, one request every %v", run.From, run.To, p.Interval)})
	if len(run.Sent) > 1 {
		last := run.Sent[len(run.Sent)-1]
		rows = append(rows, timelineRow{At: rel(last), Source: "ping",
			Text: fmt.Sprintf("last request (seq %d); %d of %d answered", len(run.Sent)-1, run.Ping.Received, run.Ping.Transmitted)})
	}
	rows = append(rows,
		timelineRow{At: 0, Source: "lab", Text: fmt.Sprintf("%s %s: cable pulled (switch port down, took %s)", node, p.NIC, micro(run.PullTook))},
		timelineRow{At: rel(run.Restored), Source: "lab", Text: fmt.Sprintf("%s %s: cable plugged back in (took %s)", node, p.NIC, micro(run.RestoreTook))},
	)
	for _, e := range run.Events {
		text := e.Team + " " + e.Kind
		if e.Member != "" {
			text += " " + e.Member
		}
		if e.Detail != "" {
			text += ": " + e.Detail
		}
		rows = append(rows, timelineRow{At: rel(e.Time), Source: e.Node, Text: text})
	}
	os := outages(run)
	for i, o := range os {
		if i == maxLossRows {
			rest := 0
			for _, o := range os[i:] {
				rest += o.count()
			}
			rows = append(rows, timelineRow{At: rel(o.Start), Source: "ping",
				Text: fmt.Sprintf("… %d more runs of lost requests, %d requests in all", len(os)-i, rest)})
			break
		}
		seqs := fmt.Sprintf("seq %d", o.From)
		if o.To != o.From {
			seqs = fmt.Sprintf("seq %d–%d", o.From, o.To)
		}
		text := fmt.Sprintf("no reply from here: %s (%s) lost", seqs, plural(o.count(), "request"))
		rows = append(rows, timelineRow{At: rel(o.Start), Source: "ping", Text: text})
		if !o.End.IsZero() {
			rows = append(rows, timelineRow{At: rel(o.End), Source: "ping",
				Text: fmt.Sprintf("replies again from seq %d, after %s without", o.To+1, millis(o.End.Sub(o.Start)))})
		}
	}
	for _, s := range run.Snapshots {
		rows = append(rows, timelineRow{At: rel(s.Time), Source: "snapshot", Text: s.Label, More: snapshotLines(s, p, owners)})
	}
	slices.SortStableFunc(rows, func(a, b timelineRow) int {
		switch {
		case a.At < b.At:
			return -1
		case a.At > b.At:
			return 1
		}
		return 0
	})
	return rows
}

func snapshotLines(s Snapshot, p PullPlan, owners MACOwners) []string {
	node, peer := fmt.Sprintf("node%d", p.Node), fmt.Sprintf("node%d", 3-p.Node)
	tw := &strings.Builder{}
	w := tabwriter.NewWriter(tw, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "%s %s MAC\t%s\n", node, TeamName, owners.MAC(s.TeamMAC))
	fmt.Fprintf(w, "%s's neighbour %s\t%s\n", peer, s.Neighbor.IP, owners.Neighbor(s.Neighbor))
	for i, e := range s.FDB {
		label := ""
		if i == 0 {
			label = "switch table"
		}
		kind := "learned"
		if e.Static {
			kind = "static"
		}
		fmt.Fprintf(w, "%s\t%s → port %s (%s)\n", label, owners.MAC(e.MAC), e.Port, kind)
	}
	if len(s.FDB) == 0 {
		fmt.Fprintf(w, "switch table\tno entry for %s's MACs\n", node)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "error\t%s\n", e)
	}
	w.Flush()
	return strings.Split(strings.TrimRight(tw.String(), "\n"), "\n")
}

// micro spells d in µs.
func micro(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

// millis spells d in ms with µs precision.
func millis(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func writeTimeline(w io.Writer, rows []timelineRow) {
	const timeWidth = 10
	fmt.Fprintf(w, "  %*s  %-8s  %s\n", timeWidth, "ms", "source", "what")
	fmt.Fprintf(w, "  %*s  %-8s  %s\n", timeWidth, strings.Repeat("-", timeWidth), "--------", "----")
	for _, r := range rows {
		fmt.Fprintf(w, "  %*.3f  %-8s  %s\n", timeWidth, float64(r.At.Microseconds())/1000, r.Source, r.Text)
		for _, m := range r.More {
			fmt.Fprintf(w, "  %*s  %-8s    %s\n", timeWidth, "", "", m)
		}
	}
}

// plural spells n things: "1 request", "3 requests".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
