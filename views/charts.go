package views

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Charts are server-rendered SVG: no script draws them. Each has a fixed
// viewBox and scales to its container's width (CSS .chart), takes its
// colours from CSS classes (noir.css, "Charts"), is role="img" named by its
// <title>, and carries a visually hidden table with the same figures as its
// text alternative. The geometry is computed here from plain series, so it
// can be tested without a browser.

// Chart canvas sizes (viewBox units).
const (
	chartW       = 600.0
	chartH       = 160.0
	chartPad     = 4.0
	sparkW       = 200.0
	sparkH       = 36.0
	funnelW      = 360.0
	funnelStageH = 40.0
	funnelGap    = 22.0
	capBarH      = 18.0
	capBarGap    = 30.0
)

// Rect is one bar in viewBox units.
type Rect struct {
	X, Y, W, H float64
	Class      string
}

// Pt is a point in viewBox units.
type Pt struct{ X, Y float64 }

// fmtF writes a viewBox coordinate with at most two decimals.
func fmtF(f float64) string {
	return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64)
}

// points writes a polyline's points attribute.
func points(ps []Pt) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fmtF(p.X) + "," + fmtF(p.Y))
	}
	return b.String()
}

// maxOf is the largest of values and floor (floor keeps an all-zero series
// from dividing by zero).
func maxOf(floor int64, values ...[]int64) int64 {
	m := floor
	for _, vs := range values {
		for _, v := range vs {
			m = max(m, v)
		}
	}
	return m
}

// barGeometry lays out one bar per value side by side across w, from the
// baseline at h up to a height proportional to the value against top. A
// non-zero value gets at least one unit so it never vanishes.
func barGeometry(values []int64, top int64, w, h float64) []Rect {
	if len(values) == 0 {
		return nil
	}
	slot := w / float64(len(values))
	gap := math.Min(2, slot/4)
	out := make([]Rect, len(values))
	for i, v := range values {
		bh := 0.0
		if top > 0 && v > 0 {
			bh = math.Max(1, float64(v)/float64(top)*(h-chartPad))
		}
		out[i] = Rect{X: float64(i)*slot + gap/2, Y: h - bh, W: slot - gap, H: bh}
	}
	return out
}

// linePoints is a polyline through the middle of each value's slot across
// w, at heights against top on a baseline at h.
func linePoints(values []int64, top int64, w, h float64) []Pt {
	if len(values) == 0 {
		return nil
	}
	slot := w / float64(len(values))
	out := make([]Pt, len(values))
	for i, v := range values {
		y := h
		if top > 0 {
			y = h - float64(v)/float64(top)*(h-chartPad)
		}
		out[i] = Pt{X: float64(i)*slot + slot/2, Y: y}
	}
	return out
}

// Series is a chart's figures: one label, value and shown text per slot
// (Text is what the text alternative and the tooltip say: "$12.00", "3").
type Series struct {
	Labels []string
	Values []int64
	Texts  []string
}

// label is the label of slot i.
func (s Series) label(i int) string {
	if i < len(s.Labels) {
		return s.Labels[i]
	}
	return dash
}

// text is the shown figure of slot i.
func (s Series) text(i int) string {
	if i < len(s.Texts) {
		return s.Texts[i]
	}
	if i < len(s.Values) {
		return fmtCount(s.Values[i])
	}
	return dash
}

// BarChart is bars over time, optionally against the period before drawn as
// a line over the same slots ("this period against the last").
type BarChart struct {
	ID      string // unique on the page; names the title and the table
	Title   string // the accessible name, also shown as the caption
	Slot    string // the slot column's heading in the text alternative: "Day", "Hour"
	Current Series
	// Previous, when it has values, is the period before, slot for slot.
	Previous     Series
	CurrentName  string // "Last 30 days"
	PreviousName string // "30 days before"
	Summary      string // one line under the chart: the totals
}

// Bars lays out the current period's bars.
func (c BarChart) Bars() []Rect {
	top := maxOf(1, c.Current.Values, c.Previous.Values)
	rs := barGeometry(c.Current.Values, top, chartW, chartH)
	for i := range rs {
		rs[i].Class = "chart-bar"
	}
	return rs
}

// PreviousLine is the polyline of the previous period ("" without one).
func (c BarChart) PreviousLine() string {
	if len(c.Previous.Values) == 0 {
		return ""
	}
	top := maxOf(1, c.Current.Values, c.Previous.Values)
	return points(linePoints(c.Previous.Values, top, chartW, chartH))
}

// HasPrevious says whether the chart compares with a period before.
func (c BarChart) HasPrevious() bool { return len(c.Previous.Values) > 0 }

// Spark is one run on a sparkline: whether it failed and how long it took.
type Spark struct {
	Label    string // when it started, for the text alternative
	Outcome  string // ok, failed, panicked, …
	Failed   bool
	Duration time.Duration
}

// Sparkline is an agent's latest runs, oldest first: a line of their
// durations with a marker on each failure.
type Sparkline struct {
	ID    string
	Title string
	Runs  []Spark
}

// sparkTop is the longest duration of runs (at least 1ms).
func sparkTop(runs []Spark) time.Duration {
	top := time.Millisecond
	for _, r := range runs {
		top = max(top, r.Duration)
	}
	return top
}

// sparkPoints is one point per run across the sparkline, the longest at the top.
func (s Sparkline) sparkPoints() []Pt {
	if len(s.Runs) == 0 {
		return nil
	}
	top := float64(sparkTop(s.Runs))
	step := 0.0
	if len(s.Runs) > 1 {
		step = (sparkW - 2*chartPad) / float64(len(s.Runs)-1)
	}
	out := make([]Pt, len(s.Runs))
	for i, r := range s.Runs {
		x := chartPad + float64(i)*step
		if len(s.Runs) == 1 {
			x = sparkW / 2
		}
		out[i] = Pt{X: x, Y: sparkH - chartPad - float64(r.Duration)/top*(sparkH-2*chartPad)}
	}
	return out
}

// Line is the sparkline's polyline.
func (s Sparkline) Line() string { return points(s.sparkPoints()) }

// Failures are the points of the failed runs.
func (s Sparkline) Failures() []Pt {
	ps := s.sparkPoints()
	var out []Pt
	for i, r := range s.Runs {
		if r.Failed {
			out = append(out, ps[i])
		}
	}
	return out
}

// Summary counts the runs shown: "20 runs: 18 ok, 2 failed; longest 1.2s"
// (a run skipped or still running is neither).
func (s Sparkline) Summary() string {
	ok, failed := 0, 0
	for _, r := range s.Runs {
		switch {
		case r.Failed:
			failed++
		case r.Outcome == RunOK:
			ok++
		}
	}
	return fmt.Sprintf("%d runs: %d ok, %d failed; longest %s", len(s.Runs), ok, failed, fmtDuration(sparkTop(s.Runs)))
}

// FunnelStage is one stage of a funnel and how many reached it.
type FunnelStage struct {
	Name  string
	Count int64
}

// Funnel is stages that each hold part of the one before.
type Funnel struct {
	ID     string
	Title  string
	Stages []FunnelStage
}

// FunnelBar is one stage laid out: a bar centred on the funnel's axis, its
// width proportional to the stage's count against the first stage.
type FunnelBar struct {
	Rect
	Stage      FunnelStage
	Rate       string  // conversion from the stage before ("" for the first)
	LabelY     float64 // the baseline of the stage's label
	RateY      float64 // the baseline of the conversion label, between bars
	CenterX    float64
	LabelClass string
}

// conversion is part of whole as a percentage with one decimal, or a dash
// when whole is zero.
func conversion(part, whole int64) string {
	if whole <= 0 {
		return dash
	}
	return strconv.FormatFloat(math.Round(float64(part)*1000/float64(whole))/10, 'f', 1, 64) + "%"
}

// Bars lays out the funnel's stages from the top.
func (f Funnel) Bars() []FunnelBar {
	var top int64 = 1
	for _, s := range f.Stages {
		top = max(top, s.Count)
	}
	out := make([]FunnelBar, len(f.Stages))
	for i, s := range f.Stages {
		w := 0.0
		if s.Count > 0 {
			w = math.Max(2, float64(s.Count)/float64(top)*funnelW)
		}
		y := float64(i) * (funnelStageH + funnelGap)
		b := FunnelBar{Rect: Rect{X: (funnelW - w) / 2, Y: y, W: w, H: funnelStageH, Class: "chart-funnel"},
			Stage: s, LabelY: y + funnelStageH/2 + 5, CenterX: funnelW / 2, RateY: y - funnelGap/2 + 5}
		if i > 0 {
			b.Rate = conversion(s.Count, f.Stages[i-1].Count)
		}
		out[i] = b
	}
	return out
}

// Height is the funnel's viewBox height.
func (f Funnel) Height() float64 {
	n := float64(len(f.Stages))
	return math.Max(funnelStageH, n*funnelStageH+(n-1)*funnelGap)
}

// CapBar is one figure against its limit ("sent in the last hour against
// the hourly cap"). A limit of 0 stops sending: the cap is paused.
type CapBar struct {
	Name        string
	Used, Limit int64
}

// CapChart is figures against their caps as horizontal bars.
type CapChart struct {
	ID    string
	Title string
	Bars  []CapBar
}

// CapRow is one cap laid out: the track (the whole cap) and the used part.
type CapRow struct {
	CapBar
	Track, Fill Rect
	Text        string // "12 of 50 (24.0%)"
}

// capText says a figure against its cap, as the panel's figures do.
func capText(b CapBar) string {
	s := fmtCount(b.Used) + " of " + fmtCount(b.Limit)
	if b.Limit <= 0 {
		return s + " (paused)"
	}
	return s + " (" + conversion(b.Used, b.Limit) + ")"
}

// Rows lays out the caps from the top. The fill is the part of the cap
// used: amber when the cap is reached, red over it (a cap lowered below
// what already went out, or sends while paused), the whole track then.
func (c CapChart) Rows() []CapRow {
	out := make([]CapRow, len(c.Bars))
	for i, b := range c.Bars {
		y := float64(i)*(capBarH+capBarGap) + capBarGap/2
		r := CapRow{CapBar: b, Text: capText(b), Track: Rect{X: 0, Y: y, W: chartW, H: capBarH, Class: "chart-track"}}
		fill, class := 0.0, "chart-bar"
		if b.Limit > 0 {
			fill = math.Min(1, float64(b.Used)/float64(b.Limit)) * chartW
		} else if b.Used > 0 {
			fill = chartW
		}
		switch {
		case b.Used > b.Limit:
			class = "chart-bar chart-over"
		case b.Used == b.Limit && b.Limit > 0:
			class = "chart-bar chart-full"
		}
		r.Fill = Rect{X: 0, Y: y, W: fill, H: capBarH, Class: class}
		out[i] = r
	}
	return out
}

// Height is the cap chart's viewBox height.
func (c CapChart) Height() float64 {
	return math.Max(capBarH+capBarGap, float64(len(c.Bars))*(capBarH+capBarGap))
}

// AgentSparkline is the sparkline of an agent's latest runs, oldest first.
func AgentSparkline(agent, title string, runs []Spark) Sparkline {
	return Sparkline{ID: "spark-" + agent, Title: "Latest runs of " + orDash(title), Runs: runs}
}
