package views

import (
	"strconv"
	"time"
)

// DayCents is money on one UTC calendar day ("2026-03-14").
type DayCents struct {
	Day   string
	Cents int64
}

// ChartDays is the length of a period on the dashboard's charts: the last
// 30 days (today included) against the 30 before.
const ChartDays = 30

// ChartRange is the first and the last day (today) of the dashboard's two
// periods: from is the previous period's midnight, to tomorrow's.
func ChartRange(now time.Time) (from, to time.Time) {
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	return today.AddDate(0, 0, -2*ChartDays+1), today.AddDate(0, 0, 1)
}

// changeText says how cur compares with prev: "+25.0%", "-10.0%", or "new"
// when there was nothing before.
func changeText(cur, prev int64) string {
	switch {
	case prev == 0 && cur == 0:
		return "no change"
	case prev == 0:
		return "none before"
	}
	pct := float64(cur-prev) * 100 / float64(prev)
	s := strconv.FormatFloat(pct, 'f', 1, 64) + "%"
	if pct >= 0 {
		s = "+" + s
	}
	return s
}

// DailyMoneyChart lays the money of days (any order; missing days are
// zero) out as the last ChartDays days to now, against the ChartDays before.
func DailyMoneyChart(id, title, currency string, now time.Time, days []DayCents) BarChart {
	by := make(map[string]int64, len(days))
	for _, d := range days {
		by[d.Day] += d.Cents
	}
	from, _ := ChartRange(now)
	c := BarChart{ID: id, Title: title, Slot: "Day", CurrentName: "Last " + strconv.Itoa(ChartDays) + " days",
		PreviousName: strconv.Itoa(ChartDays) + " days before"}
	var curTotal, prevTotal int64
	for i := range ChartDays {
		pd := from.AddDate(0, 0, i).Format(time.DateOnly)
		cd := from.AddDate(0, 0, ChartDays+i).Format(time.DateOnly)
		c.Current.Labels = append(c.Current.Labels, cd)
		c.Current.Values = append(c.Current.Values, by[cd])
		c.Current.Texts = append(c.Current.Texts, Money{Cents: by[cd], Currency: currency}.String())
		c.Previous.Labels = append(c.Previous.Labels, pd)
		c.Previous.Values = append(c.Previous.Values, by[pd])
		c.Previous.Texts = append(c.Previous.Texts, Money{Cents: by[pd], Currency: currency}.String())
		curTotal += by[cd]
		prevTotal += by[pd]
	}
	c.Summary = c.CurrentName + " " + Money{Cents: curTotal, Currency: currency}.String() + "; " + c.PreviousName + " " +
		Money{Cents: prevTotal, Currency: currency}.String() + " (" + changeText(curTotal, prevTotal) + ")"
	return c
}

// PipelineFunnel is the leads by how far they got, from the kept counts by
// status: every lead; those written to (contacted, and every status only an
// e-mail leads to: responded, converted, bounced, unsubscribed); those who
// answered (responded, converted); and the converted.
func PipelineFunnel(by map[string]int64) Funnel {
	var all int64
	for _, n := range by {
		all += n
	}
	contacted := by[LeadContacted] + by[LeadResponded] + by[LeadConverted] + by[LeadBounced] + by[LeadUnsubscribed]
	return Funnel{ID: "chart-pipeline", Title: "Pipeline: leads by how far they got, with the conversion from each stage to the next",
		Stages: []FunnelStage{{"Leads", all}, {"Contacted", contacted},
			{"Responded", by[LeadResponded] + by[LeadConverted]}, {"Converted", by[LeadConverted]}}}
}

// CapChart is the e-mail sent in the last hour and the last 24 hours
// against the hourly cap and today's daily cap (the warm-up's when one
// runs): the panel's own figures, drawn.
func (e EmailPanel) CapChart() CapChart {
	return CapChart{ID: "chart-email-caps", Title: "E-mail sent against each cap", Bars: []CapBar{
		{"Last hour", int64(e.SentLastHour), int64(e.Caps.PerHour)},
		{"Last 24 h", int64(e.SentLastDay), int64(e.capToday())},
	}}
}
