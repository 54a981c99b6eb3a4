package views

import (
	"strings"
	"testing"
	"time"
)

// An interrupted run shows as such in the cycle log, styled like a failure,
// with no duration (it was closed at the next start, not when it stopped),
// and its note.
func TestCycleLogShowsInterruptedRuns(t *testing.T) {
	finished := now.Add(time.Hour)
	runs := []AgentRun{
		{Agent: "bizdev", Trigger: "autopilot", StartedAt: now, FinishedAt: &finished, Outcome: RunInterrupted,
			Message: "interrupted: the process stopped (killed, crashed or lost power) before this run finished; closed at the next start"},
		{Agent: "ops", Trigger: "manual", StartedAt: now, FinishedAt: ptr(now.Add(2 * time.Second)), Outcome: RunOK},
	}
	doc, _ := render(t, AdminRuns(AdminPage{Runs: runs}))
	rows := doc.Find("#admin-runs tbody tr")
	if rows.Length() != 2 {
		t.Fatalf("%d rows", rows.Length())
	}
	cut := rows.Eq(0)
	badge := cut.Find(".badge")
	if class, _ := badge.Attr("class"); class != "badge failed" || text(badge) != "interrupted" {
		t.Errorf("interrupted badge = %q %q, want the failed style saying interrupted", class, text(badge))
	}
	if got := text(cut.Find("td.num")); got != dash {
		t.Errorf("interrupted run took %q, want a dash", got)
	}
	if !strings.Contains(text(cut), "before this run finished") {
		t.Errorf("the note is missing: %q", text(cut))
	}
	if got := text(rows.Eq(1).Find("td.num")); got != "2s" {
		t.Errorf("finished run took %q, want 2s", got)
	}
}
