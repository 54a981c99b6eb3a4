package views

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

func near(a, b float64) bool { return math.Abs(a-b) < 0.01 }

func TestBarGeometry(t *testing.T) {
	rs := barGeometry([]int64{0, 5, 10, 1}, 10, 400, 104)
	if len(rs) != 4 {
		t.Fatalf("got %d bars", len(rs))
	}
	// 100 units per slot, a 2-unit gap; heights against 10 over 100 units.
	if !near(rs[0].H, 0) || !near(rs[0].Y, 104) {
		t.Errorf("zero bar: %+v", rs[0])
	}
	if !near(rs[1].H, 50) || !near(rs[1].Y, 54) || !near(rs[1].X, 101) || !near(rs[1].W, 98) {
		t.Errorf("half bar: %+v", rs[1])
	}
	if !near(rs[2].H, 100) || !near(rs[2].Y, 4) {
		t.Errorf("full bar: %+v", rs[2])
	}
	if rs[3].H < 1 {
		t.Errorf("a non-zero value vanished: %+v", rs[3])
	}
	if barGeometry(nil, 10, 400, 100) != nil {
		t.Error("bars from no values")
	}
	// A previous period larger than this one sets the scale of both.
	c := BarChart{Current: Series{Values: []int64{5, 5}}, Previous: Series{Values: []int64{10, 0}}}
	if b := c.Bars(); !near(b[0].H, (chartH-chartPad)/2) {
		t.Errorf("current bar against the previous max: %+v", b[0])
	}
	if got := c.PreviousLine(); got != "150,4 450,160" {
		t.Errorf("previous line %q", got)
	}
}

func TestSparklineGeometry(t *testing.T) {
	s := Sparkline{Runs: []Spark{
		{Outcome: "ok", Duration: time.Second}, {Outcome: "failed", Duration: 2 * time.Second, Failed: true},
		{Outcome: "skipped", Duration: 0}, {Outcome: "ok", Duration: time.Second},
	}}
	ps := s.sparkPoints()
	step := (sparkW - 2*chartPad) / 3
	if !near(ps[0].X, chartPad) || !near(ps[3].X, sparkW-chartPad) || !near(ps[1].X, chartPad+step) {
		t.Errorf("x spacing: %+v", ps)
	}
	if !near(ps[1].Y, chartPad) || !near(ps[2].Y, sparkH-chartPad) || !near(ps[0].Y, sparkH/2) {
		t.Errorf("y by duration: %+v", ps)
	}
	if f := s.Failures(); len(f) != 1 || f[0] != ps[1] {
		t.Errorf("failure markers %+v", f)
	}
	if got := s.Summary(); got != "4 runs: 2 ok, 1 failed; longest 2s" {
		t.Errorf("summary %q", got)
	}
	one := Sparkline{Runs: []Spark{{Duration: time.Second}}}
	if p := one.sparkPoints(); !near(p[0].X, sparkW/2) {
		t.Errorf("one run not centred: %+v", p)
	}
}

func TestFunnelGeometry(t *testing.T) {
	f := Funnel{Stages: []FunnelStage{{"Leads", 200}, {"Contacted", 100}, {"Responded", 10}, {"Converted", 0}}}
	bs := f.Bars()
	if !near(bs[0].W, funnelW) || !near(bs[0].X, 0) || !near(bs[1].W, funnelW/2) || !near(bs[1].X, funnelW/4) {
		t.Errorf("widths: %+v %+v", bs[0].Rect, bs[1].Rect)
	}
	if bs[3].W != 0 {
		t.Errorf("an empty stage has width %v", bs[3].W)
	}
	if bs[0].Rate != "" || bs[1].Rate != "50.0%" || bs[2].Rate != "10.0%" || bs[3].Rate != "0.0%" {
		t.Errorf("rates %q %q %q %q", bs[0].Rate, bs[1].Rate, bs[2].Rate, bs[3].Rate)
	}
	if !near(bs[1].Y, funnelStageH+funnelGap) || !near(f.Height(), 4*funnelStageH+3*funnelGap) {
		t.Errorf("stacking: y=%v height=%v", bs[1].Y, f.Height())
	}
	if conversion(1, 0) != dash || conversion(1, 3) != "33.3%" {
		t.Error("conversion")
	}
}

func TestCapGeometry(t *testing.T) {
	c := CapChart{Bars: []CapBar{{"Today", 25, 100}, {"This hour", 12, 10}, {"Paused", 3, 0}, {"Full", 5, 5}, {"Idle", 0, 0}}}
	rs := c.Rows()
	if !near(rs[0].Fill.W, chartW/4) || rs[0].Fill.Class != "chart-bar" || rs[0].Text != "25 of 100 (25.0%)" {
		t.Errorf("quarter: %+v", rs[0])
	}
	if !near(rs[1].Fill.W, chartW) || !strings.Contains(rs[1].Fill.Class, "chart-over") {
		t.Errorf("over the cap: %+v", rs[1])
	}
	if rs[2].Text != "3 of 0 (paused)" || !near(rs[2].Fill.W, chartW) || !strings.Contains(rs[2].Fill.Class, "chart-over") {
		t.Errorf("sent while paused: %+v", rs[2])
	}
	if !strings.Contains(rs[3].Fill.Class, "chart-full") || rs[3].Text != "5 of 5 (100.0%)" {
		t.Errorf("cap reached: %+v", rs[3])
	}
	if rs[4].Fill.W != 0 || rs[4].Fill.Class != "chart-bar" {
		t.Errorf("paused and idle: %+v", rs[4])
	}
	if !near(rs[1].Track.Y-rs[0].Track.Y, capBarH+capBarGap) || !near(c.Height(), 5*(capBarH+capBarGap)) {
		t.Errorf("stacking: %v %v", rs[1].Track.Y, c.Height())
	}
}

// chartAlt is the rows of the text alternative of the chart with id.
func chartAlt(t *testing.T, doc *goquery.Document, id string) [][]string {
	t.Helper()
	fig := doc.Find("#" + id)
	if fig.Length() != 1 {
		t.Fatalf("no chart #%s", id)
	}
	svg := fig.Find("svg[role=img]")
	title := svg.AttrOr("aria-labelledby", "")
	if svg.Length() != 1 || title == "" || svg.Find("title#"+title).Length() != 1 {
		t.Fatalf("chart #%s is not an image named by its title", id)
	}
	if fig.Find("script").Length() > 0 || svg.AttrOr("viewBox", "") == "" {
		t.Fatalf("chart #%s has a script or no viewBox", id)
	}
	var rows [][]string
	fig.Find(".chart-alt table tbody tr").Each(func(_ int, tr *goquery.Selection) {
		var row []string
		tr.Children().Each(func(_ int, c *goquery.Selection) { row = append(row, strings.TrimSpace(c.Text())) })
		rows = append(rows, row)
	})
	return rows
}

func TestChartsTextAlternatives(t *testing.T) {
	doc, raw := render(t, barChart(BarChart{ID: "c1", Title: "Revenue " + evil, Slot: "Day",
		Current:     Series{Labels: []string{"03-01", "03-02"}, Values: []int64{1200, 0}, Texts: []string{"$12.00", "$0.00"}},
		Previous:    Series{Labels: []string{"01-30", "01-31"}, Values: []int64{500, 700}, Texts: []string{"$5.00", "$7.00"}},
		CurrentName: "Last 30 days", PreviousName: "30 days before", Summary: "total $12.00"}))
	noRawScript(t, raw)
	got := chartAlt(t, doc, "c1")
	want := [][]string{{"03-01", "$12.00", "01-30", "$5.00"}, {"03-02", "$0.00", "01-31", "$7.00"}}
	if len(got) != 2 || strings.Join(got[0], "|") != strings.Join(want[0], "|") || strings.Join(got[1], "|") != strings.Join(want[1], "|") {
		t.Errorf("bar chart alternative %v, want %v", got, want)
	}
	if doc.Find("#c1 rect.chart-bar").Length() != 2 || doc.Find("#c1 polyline.chart-prev").Length() != 1 {
		t.Error("bar chart marks missing")
	}

	doc, _ = render(t, sparkline(Sparkline{ID: "s1", Title: "Runs of bizdev", Runs: []Spark{
		{Label: "15:00:00", Outcome: "ok", Duration: 1500 * time.Millisecond},
		{Label: "15:01:00", Outcome: "failed", Failed: true, Duration: 300 * time.Millisecond},
	}}))
	got = chartAlt(t, doc, "s1")
	if len(got) != 2 || strings.Join(got[1], "|") != "15:01:00|failed|300ms" || strings.Join(got[0], "|") != "15:00:00|ok|1.5s" {
		t.Errorf("sparkline alternative %v", got)
	}
	if doc.Find("#s1 circle.chart-fail").Length() != 1 || !strings.Contains(doc.Find("#s1 svg title").Text(), "2 runs: 1 ok, 1 failed") {
		t.Error("sparkline marks or title")
	}

	doc, _ = render(t, funnelChart(Funnel{ID: "f1", Title: "Pipeline", Stages: []FunnelStage{{"Leads", 1000}, {"Contacted", 400}}}))
	got = chartAlt(t, doc, "f1")
	if len(got) != 2 || strings.Join(got[0], "|") != "Leads|1,000|"+dash || strings.Join(got[1], "|") != "Contacted|400|40.0%" {
		t.Errorf("funnel alternative %v", got)
	}

	doc, _ = render(t, capChart(CapChart{ID: "k1", Title: "Sent against caps", Bars: []CapBar{{"Last 24 h", 7, 50}, {"Last hour", 2, 0}}}))
	got = chartAlt(t, doc, "k1")
	if len(got) != 2 || strings.Join(got[0], "|") != "Last 24 h|7|50|7 of 50 (14.0%)" || strings.Join(got[1], "|") != "Last hour|2|0|2 of 0 (paused)" {
		t.Errorf("cap alternative %v", got)
	}
}
