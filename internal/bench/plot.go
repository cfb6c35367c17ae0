package bench

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The plots are SVG written by hand: a few lines, axes and labels need no
// plotting library, and the files diff and render on any forge.

// chart is a plot of series of steps against shared axes.
type chart struct {
	title, xLabel, yLabel string
	series                []series
	// marks are vertical lines at x, with a label: the pull.
	marks []mark
	// ymax, if set, is the top of the y axis; else the largest value,
	// rounded up to a tick.
	ymax float64
	// legendBottom puts the legend at the bottom right, out of the way of
	// lines that run along the top.
	legendBottom bool
}

// series is one line of steps: the value ys[i] holds from xs[i] to
// xs[i+1], and the last one for step beyond its x.
type series struct {
	name  string
	color string
	xs    []float64
	ys    []float64
	step  float64
}

type mark struct {
	x     float64
	label string
}

// The canvas and the plot area's margins, in SVG user units.
const (
	plotW, plotH                       = 760, 380
	marginL, marginR, marginT, marginB = 70, 20, 50, 50
	tickCount                          = 8 // about as many ticks per axis
)

// frame is what every plot has: a canvas, a title, a y axis from 0 with a
// grid, axis labels and a legend.
type frame struct {
	title, xLabel, yLabel string
	ymax                  float64 // the largest value shown
	fixed                 bool    // ymax is the top of the axis, not rounded up to a tick
}

// plotArea is the frame's inner rectangle.
const (
	areaW = float64(plotW - marginL - marginR)
	areaH = float64(plotH - marginT - marginB)
)

// open starts the SVG in b and draws the frame; y maps a value to its
// height on the canvas. The y axis ends on a tick.
func (f frame) open(b *strings.Builder) (y func(float64) float64) {
	ymax := max(f.ymax, 1) // an empty plot still has a scale
	ystep := niceStep(ymax, tickCount/2)
	if !f.fixed {
		ymax = math.Ceil(ymax/ystep) * ystep
	}
	y = func(v float64) float64 { return marginT + areaH - v/ymax*areaH }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(f.title))
	for v := 0.0; v <= ymax+ystep*1e-9; v += ystep {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y(v), plotW-marginR, y(v))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y(v)+4, number(v))
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", marginL, marginT, areaW, areaH)
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+areaW/2, plotH-10, html.EscapeString(f.xLabel))
	fmt.Fprintf(b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+areaH/2, html.EscapeString(f.yLabel))
	return y
}

// legend draws an entry per name in its colour at the top right of the
// plot area, or the bottom right, wide enough for the longest name.
func legend(b *strings.Builder, names, colors []string, bottom bool) {
	longest := 0
	for _, n := range names {
		longest = max(longest, utf8.RuneCountInString(n))
	}
	// 7 units is about the width of a character at font-size 12.
	lx := plotW - marginR - 36 - 7*longest
	for i, name := range names {
		ly := marginT + 16 + 18*i
		if bottom {
			ly = plotH - marginB - 8 - 18*(len(names)-1-i)
		}
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", lx, ly-4, lx+20, ly-4, colors[i])
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", lx+26, ly, html.EscapeString(name))
	}
}

// svg renders c.
func (c chart) svg() string {
	xmin, xmax, ymax := c.bounds()
	// The x axis spans the data exactly, ticked where round numbers fall.
	xstep := niceStep(xmax-xmin, tickCount)
	px := func(x float64) float64 { return marginL + (x-xmin)/(xmax-xmin)*areaW }
	var b strings.Builder
	f := frame{title: c.title, xLabel: c.xLabel, yLabel: c.yLabel, ymax: ymax}
	if c.ymax > 0 {
		f.ymax, f.fixed = c.ymax, true
	}
	py := f.open(&b)
	for x := math.Ceil(xmin/xstep) * xstep; x <= xmax+xstep*1e-9; x += xstep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px(x), marginT, px(x), plotH-marginB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), plotH-marginB+16, number(x))
	}
	for _, m := range c.marks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c00" stroke-dasharray="4 3"/>`+"\n", px(m.x), marginT, px(m.x), plotH-marginB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#c00">%s</text>`+"\n", px(m.x)+4, marginT+14, html.EscapeString(m.label))
	}
	var names, colors []string
	for _, s := range c.series {
		var pts []string
		for j, x := range s.xs {
			end := x + s.step
			if j+1 < len(s.xs) {
				end = s.xs[j+1]
			}
			y := py(s.ys[j])
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), y), fmt.Sprintf("%.1f,%.1f", px(end), y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		names, colors = append(names, s.name), append(colors, s.color)
	}
	legend(&b, names, colors, c.legendBottom)
	b.WriteString("</svg>\n")
	return b.String()
}

// bars is a grouped bar chart: for each group, one bar per series.
type bars struct {
	title, yLabel string
	groups        []string // labels under the groups
	series        []barSeries
}

// barSeries is one colour of bars; values[i] belongs to groups[i].
type barSeries struct {
	name   string
	color  string
	values []float64
}

// svg renders c, each bar labelled with its value.
func (c bars) svg() string {
	ymax := 0.0
	for _, s := range c.series {
		for _, v := range s.values {
			ymax = max(ymax, v)
		}
	}
	var b strings.Builder
	// A fifth more room above the tallest bar keeps the legend clear.
	y := frame{title: c.title, yLabel: c.yLabel, ymax: 1.2 * ymax}.open(&b)
	groupW := areaW / float64(max(len(c.groups), 1))
	// The bars take 70% of a group's width; the rest separates groups.
	barW := 0.7 * groupW / float64(max(len(c.series), 1))
	for g, label := range c.groups {
		x0 := marginL + float64(g)*groupW + 0.15*groupW
		for i, s := range c.series {
			v := s.values[g]
			x := x0 + float64(i)*barW
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y(v), barW, y(0)-y(v), s.color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x+barW/2, y(v)-3, strconv.FormatFloat(v, 'f', 1, 64))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+(float64(g)+0.5)*groupW, plotH-marginB+16, html.EscapeString(label))
	}
	var names, colors []string
	for _, s := range c.series {
		names, colors = append(names, s.name), append(colors, s.color)
	}
	legend(&b, names, colors, false)
	b.WriteString("</svg>\n")
	return b.String()
}

// bounds are the x range of every series and mark, and the largest y.
func (c chart) bounds() (xmin, xmax, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		for i, x := range s.xs {
			xmin, xmax = min(xmin, x), max(xmax, x+s.step)
			ymax = max(ymax, s.ys[i])
		}
	}
	for _, m := range c.marks {
		xmin, xmax = min(xmin, m.x), max(xmax, m.x)
	}
	switch {
	case xmin > xmax:
		// Nothing to show: any unit range.
		return 0, 1, ymax
	case xmin == xmax:
		return xmin, xmin + 1, ymax
	}
	return xmin, xmax, ymax
}

// niceStep is a tick spacing of 1, 2 or 5 times a power of ten that cuts
// span into about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 || n < 1 {
		return 1
	}
	raw := span / float64(n)
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

// number spells a tick value without float noise.
func number(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64)
}

// The colours of the paths, the same in every plot.
var pathColors = map[string]string{teamPath.name: "#1f77b4", plainPath.name: "#2ca02c", ovsPath.name: "#ff7f0e"}

func pathColor(name string) string {
	if c, ok := pathColors[name]; ok {
		return c
	}
	return "#333"
}

// throughputBars plots the medians of every throughput case.
func throughputBars(t *Throughput) bars {
	c := bars{title: "TCP throughput, medians of the alternated runs", yLabel: "Gbit/s"}
	for _, p := range paths {
		c.series = append(c.series, barSeries{name: pathText(p.name), color: pathColor(p.name)})
	}
	for _, tc := range t.Cases {
		short, _, _ := strings.Cut(tc.Direction, " (")
		c.groups = append(c.groups, flowsText(tc.Flows)+", "+short)
		for i, v := range []float64{tc.TeamGbps, tc.PlainGbps, tc.OVSGbps} {
			c.series[i].values = append(c.series[i].values, v)
		}
	}
	return c
}

// failoverChart plots the share of each millisecond's packets delivered
// around each bond's median pull.
func failoverChart(f *Failover) chart {
	c := chart{
		title:  fmt.Sprintf("A %d pps stream across a cable pull: each millisecond's packets, share delivered", f.PPS),
		xLabel: "ms from the pull, when the packets were sent",
		yLabel: "delivered, % of sent",
		marks:  []mark{{0, "cable pulled"}},
		// Room above 100% so that a line there is not the frame; the
		// lines run along the top and dip only around the pull.
		ymax:         110,
		legendBottom: true,
	}
	for _, bf := range f.Bonds {
		t := bf.Trace
		if t == nil || f.PPS == 0 {
			continue
		}
		s := series{name: fmt.Sprintf("%s (pull %d, outage %d µs)", pathText(bf.Bond), t.Pull, t.OutageUs),
			color: pathColor(bf.Bond), step: float64(t.Seqs) * 1000 / float64(f.PPS)}
		for i, n := range t.Counts {
			s.xs = append(s.xs, float64(t.AtUs[i])/1000)
			s.ys = append(s.ys, 100*float64(n)/float64(t.Seqs))
		}
		c.series = append(c.series, s)
	}
	return c
}
