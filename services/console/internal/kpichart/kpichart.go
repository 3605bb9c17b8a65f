// Package kpichart lays out the console's KPI charts: geometry only (bars,
// points, labels in SVG user units), which the page template draws as
// inline SVG with a title and a table for screen readers. No numbers are
// computed here beyond scaling.
package kpichart

import (
	"fmt"
	"strings"
	"time"
)

// Size of every chart's viewBox; the SVG scales to its container.
const (
	Width   = 720.0
	Height  = 220.0
	padLeft = 36.0
	padBot  = 24.0
	padTop  = 10.0
)

// Series is one named value per day.
type Series struct {
	Name   string
	Class  string // CSS class of its bars or line
	Values []float64
}

// Rect is one bar.
type Rect struct {
	X, Y, W, H float64
	Class      string
	Title      string // tooltip and accessible name, e.g. "3 May: 4 routed"
}

// Label is a piece of axis text.
type Label struct {
	X, Y   float64
	Text   string
	Anchor string
}

// Chart is a laid-out chart.
type Chart struct {
	Width, Height float64
	Rects         []Rect
	Lines         []Line
	Labels        []Label
	Grid          []float64 // y of horizontal grid lines
	Empty         bool      // nothing to show
}

// Line is a polyline with its dots.
type Line struct {
	Class  string
	Points string
	Dots   []Rect // X, Y is the centre; Title the value
}

// Bars lays out grouped bars, one group per day, for series of counts.
func Bars(days []time.Time, series ...Series) Chart {
	c := Chart{Width: Width, Height: Height}
	max := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			max = maxf(max, v)
		}
	}
	c.Empty = max == 0 || len(days) == 0
	if c.Empty {
		return c
	}
	top := niceCeil(max)
	c.axis(top, len(days), days)
	plotW, plotH := Width-padLeft, Height-padBot-padTop
	group := plotW / float64(len(days))
	bw := group * 0.8 / float64(len(series))
	for i, d := range days {
		for j, s := range series {
			v := s.Values[i]
			h := v / top * plotH
			c.Rects = append(c.Rects, Rect{
				X: padLeft + float64(i)*group + group*0.1 + float64(j)*bw, Y: padTop + plotH - h, W: bw, H: h,
				Class: s.Class, Title: fmt.Sprintf("%s: %g %s", d.Format("2 Jan"), v, strings.ToLower(s.Name)),
			})
		}
	}
	return c
}

// Trend lays out one line over days on a fixed scale lo..hi; a NaN-free
// zero value (no data that day) leaves a gap.
func Trend(days []time.Time, s Series, lo, hi float64) Chart {
	c := Chart{Width: Width, Height: Height}
	plotW, plotH := Width-padLeft, Height-padBot-padTop
	step := plotW / float64(max(len(days), 1))
	ln := Line{Class: s.Class}
	var pts []string
	for i, d := range days {
		v := s.Values[i]
		if v == 0 {
			continue
		}
		x := padLeft + step*(float64(i)+0.5)
		y := padTop + plotH - (v-lo)/(hi-lo)*plotH
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		ln.Dots = append(ln.Dots, Rect{X: x, Y: y, Class: s.Class, Title: fmt.Sprintf("%s: %s %.2f", d.Format("2 Jan"), s.Name, v)})
	}
	c.Empty = len(pts) == 0
	if c.Empty {
		return c
	}
	ln.Points = strings.Join(pts, " ")
	c.Lines = []Line{ln}
	for v := lo; v <= hi; v++ {
		y := padTop + plotH - (v-lo)/(hi-lo)*plotH
		c.Grid = append(c.Grid, y)
		c.Labels = append(c.Labels, Label{X: padLeft - 6, Y: y + 4, Text: fmt.Sprintf("%g", v), Anchor: "end"})
	}
	c.dayLabels(days)
	return c
}

func (c *Chart) axis(top float64, n int, days []time.Time) {
	plotH := Height - padBot - padTop
	for _, f := range []float64{0, 0.5, 1} {
		y := padTop + plotH - f*plotH
		c.Grid = append(c.Grid, y)
		c.Labels = append(c.Labels, Label{X: padLeft - 6, Y: y + 4, Text: fmt.Sprintf("%g", top*f), Anchor: "end"})
	}
	c.dayLabels(days)
}

// dayLabels puts at most about eight dates under the x axis.
func (c *Chart) dayLabels(days []time.Time) {
	plotW := Width - padLeft
	step := plotW / float64(len(days))
	every := max(1, (len(days)+7)/8)
	for i, d := range days {
		if i%every != 0 {
			continue
		}
		c.Labels = append(c.Labels, Label{X: padLeft + step*(float64(i)+0.5), Y: Height - 6, Text: d.Format("2 Jan"), Anchor: "middle"})
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so the axis reads well.
func niceCeil(v float64) float64 {
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}
