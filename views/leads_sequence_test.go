package views

import (
	"strings"
	"testing"
	"time"
)

// The leads table says where each lead is in its sequence and when its next
// step is due, so an operator sees the follow-ups coming without opening
// every lead.
func TestAdminLeadsShowSequencePosition(t *testing.T) {
	due := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	p := AdminPage{Leads: []Lead{
		{ID: 1, Company: "Fresh", Status: "new"},
		{ID: 2, Company: "Waiting", Status: "contacted", SequenceStep: 1, NextStepAt: &due},
		{ID: 3, Company: "Answered", Status: "responded", SequenceStep: 2, SequenceStop: "replied (interested)"},
		{ID: 4, Company: "Done", Status: "contacted", SequenceStep: 3},
	}}
	doc, _ := render(t, AdminLeads(p))
	want := []string{
		"not started",
		"1 sent step 2 due 2026-12-07 09:30 UTC",
		"2 sent ended: replied (interested)",
		"3 sent; finished",
	}
	rows := doc.Find("#admin-leads tbody tr td.lead-sequence")
	if rows.Length() != len(want) {
		t.Fatalf("%d sequence cells, want %d", rows.Length(), len(want))
	}
	for i, w := range want {
		if got := strings.Join(strings.Fields(rows.Eq(i).Text()), " "); got != w {
			t.Errorf("lead %d: sequence %q, want %q", i+1, got, w)
		}
	}
	// The first column is the bulk form's checkbox (issue 13).
	if got := doc.Find("#admin-leads thead th").Length(); got != 10 {
		t.Errorf("%d header cells, want 10", got)
	}
}
