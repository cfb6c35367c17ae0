package main

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// The plots are SVG written by hand: a few lines, axes and labels need no
// plotting library, and the files diff and render on any forge.

// chart is a plot of series of steps against shared axes.
type chart struct {
	title, xLabel, yLabel string
	series                []series
	// marks are vertical lines at x, with a label: the pull.
	marks []mark
}

// series is one line: the value ys[i] holds from xs[i] to xs[i+1], and
// the last one for step beyond its x.
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

// svg renders c.
func (c chart) svg() string {
	xmin, xmax, ymax := c.bounds()
	// The x axis spans the data exactly, ticked where round numbers fall;
	// the y axis starts at 0 and ends on a tick.
	xstep, ystep := niceStep(xmax-xmin, tickCount), niceStep(ymax, tickCount/2)
	ymax = math.Ceil(ymax/ystep) * ystep
	areaW, areaH := float64(plotW-marginL-marginR), float64(plotH-marginT-marginB)
	px := func(x float64) float64 { return marginL + (x-xmin)/(xmax-xmin)*areaW }
	py := func(y float64) float64 { return marginT + areaH - y/ymax*areaH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(c.title))
	for x := math.Ceil(xmin/xstep) * xstep; x <= xmax+xstep*1e-9; x += xstep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px(x), marginT, px(x), plotH-marginB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), plotH-marginB+16, number(x))
	}
	for y := 0.0; y <= ymax+ystep/2; y += ystep {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, py(y), plotW-marginR, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, py(y)+4, number(y))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", marginL, marginT, areaW, areaH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+areaW/2, plotH-10, html.EscapeString(c.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+areaH/2, html.EscapeString(c.yLabel))
	for _, m := range c.marks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c00" stroke-dasharray="4 3"/>`+"\n", px(m.x), marginT, px(m.x), plotH-marginB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#c00">%s</text>`+"\n", px(m.x)+4, marginT+14, html.EscapeString(m.label))
	}
	for i, s := range c.series {
		var pts []string
		for j, x := range s.xs {
			y := py(s.ys[j])
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), y), fmt.Sprintf("%.1f,%.1f", px(x+s.step), y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		ly := marginT + 16 + 18*i
		lx := plotW - marginR - 170
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", lx, ly-4, lx+20, ly-4, s.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+26, ly, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// bounds are the x range of every series and mark, and the largest y (at
// least 1, so an empty plot still has a scale).
func (c chart) bounds() (xmin, xmax, ymax float64) {
	xmin, xmax, ymax = math.Inf(1), math.Inf(-1), 1
	for _, s := range c.series {
		for i, x := range s.xs {
			xmin, xmax = min(xmin, x), max(xmax, x+s.step)
			ymax = max(ymax, s.ys[i])
		}
	}
	for _, m := range c.marks {
		xmin, xmax = min(xmin, m.x), max(xmax, m.x)
	}
	if xmin >= xmax {
		// Nothing, or a single point: any unit range around it.
		xmin, xmax = min(xmin, 0), max(xmin, 0)+1
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

// failoverChart plots the received rate around each bond's median pull.
func failoverChart(f *Failover) chart {
	c := chart{
		title:  fmt.Sprintf("Received rate of a %d pps stream around a cable pull (median pull of each)", f.PPS),
		xLabel: "ms from the pull",
		yLabel: "received kpps",
		marks:  []mark{{0, "cable pulled"}},
	}
	colors := map[string]string{teamPath.name: "#1f77b4", ovsPath.name: "#ff7f0e"}
	for _, bf := range f.Bonds {
		t := bf.Trace
		if t == nil {
			continue
		}
		color := colors[bf.Bond]
		if color == "" {
			color = "#333"
		}
		s := series{name: fmt.Sprintf("%s (pull %d, outage %d µs)", bondText(bf.Bond), t.Pull, t.OutageUs),
			color: color, step: float64(t.BinUs) / 1000}
		for i, n := range t.Counts {
			s.xs = append(s.xs, float64(t.FromUs+int64(i)*t.BinUs)/1000)
			s.ys = append(s.ys, float64(n)*1000/float64(t.BinUs))
		}
		c.series = append(c.series, s)
	}
	return c
}
