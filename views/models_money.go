package views

// MoneyFigures are the owner's money as the dashboard and the control room
// show it, each a total per currency. Only Collected and CollectedProfit are
// money made; WorkValue is what all done work is worth at list price,
// whether it was billed, paid, refunded or written off.
type MoneyFigures struct {
	Collected       Totals // paid invoices; a refunded invoice is not in it
	Refunded        Totals // refunded invoices, apart
	CollectedCost   Totals // the cost of the tasks on paid invoices
	CollectedProfit Totals // Collected - CollectedCost - ReplySortCost: profit on collected work
	ReplySortCost   Totals // what the LLM's sortings of replies cost, an expense of the business
	Outstanding     Totals // open invoices: NotDue + the three overdue buckets
	NotDue          Totals // open, not yet due (or with no due date)
	Days0To30       Totals // 0 to 30 days overdue
	Days31To60      Totals // 31 to 60 days overdue
	DaysOver60      Totals // more than 60 days overdue
	Unbilled        Totals // done work on no invoice yet, at list price
	WrittenOff      Totals // void invoices, apart
	WorkValue       Totals // all done work at list price: not profit
	TasksDone       int64
}

// agingRow is one line of the outstanding money's aging.
type agingRow struct {
	Label string
	Money Totals
	Tone  string // class of a non-zero amount: "", warn or bad
}

// aging is the outstanding money's lines, from not yet due to the oldest.
func (m MoneyFigures) aging() []agingRow {
	return []agingRow{
		{"Not yet due", m.NotDue, ""},
		{"0–30 days late", m.Days0To30, "warn"},
		{"31–60 days late", m.Days31To60, "warn"},
		{"Over 60 days late", m.DaysOver60, "bad"},
	}
}

// toneOf is the class of an amount shown in tone: a signed figure (tone
// "") is green, or red when negative; otherwise the tone when the amount is
// not zero.
func toneOf(tone string, m Money) string {
	switch {
	case tone == "":
		return signClass(m)
	case m.Cents == 0:
		return ""
	}
	return tone
}

// plusBefore joins the amounts of a total in several currencies.
func plusBefore(i int) string {
	if i > 0 {
		return " + "
	}
	return ""
}
