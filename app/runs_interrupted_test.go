package app

import (
	"context"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// A run closed as interrupted after a crash is listed by the API under its
// own status and shown in the control room's cycle log in the failed style.
func TestInterruptedRunsInTheAPIAndTheCycleLog(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.store.StartRun(ctx, "bizdev", db.TriggerAutopilot); err != nil {
		t.Fatal(err)
	}
	if n, err := f.store.CloseInterruptedRuns(ctx); err != nil || n != 1 {
		t.Fatalf("CloseInterruptedRuns = %d, %v", n, err)
	}
	_, token := f.newAPIToken(t, "test")
	if p := f.apiList(t, "/api/v1/runs?status=interrupted", token); p.Total != "1" || p.Data[0]["outcome"] != db.RunInterrupted {
		t.Errorf("interrupted runs = %+v", p)
	}
	f.signInAs(t, db.RoleAdmin)
	_, doc, _ := f.get(t, "/admin")
	badge := doc.Find("#admin-runs tbody tr .badge").First()
	if class, _ := badge.Attr("class"); class != "badge failed" || strings.TrimSpace(badge.Text()) != "interrupted" {
		t.Errorf("cycle log badge = %q %q", class, badge.Text())
	}
}
