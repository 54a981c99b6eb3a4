package agents

import (
	"fmt"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// With the sorting path wired, the simulator writes replies of every class,
// each sorted as its class, labelled simulated, and acted on.
func TestSimulatorRepliesOfEveryClassThroughTheSortingPath(t *testing.T) {
	w := newFulfilmentWorld(t)
	for i := range 120 {
		l := w.lead(i, db.LeadContacted)
		at := w.clock.Now().Add(-time.Hour)
		if _, err := w.store.Bun().NewRaw("UPDATE leads SET contacted_at = ? WHERE id = ?", at, l.ID).Exec(w.ctx); err != nil {
			t.Fatal(err)
		}
	}
	replies := NewRepliesCycle(w.store, w.env, nil, RepliesOptions{})
	sim := NewProspectSimulator(w.store, w.env, SimulatorOptions{ReplyShare: 1, MaxPerCycle: 500, MinDelay: time.Minute, Replies: replies})
	wantFulfilmentCounts(t, w.run(sim), Counts{"replied": 120})
	var rows []struct {
		Class string `bun:"class"`
		N     int    `bun:"n"`
	}
	if err := w.store.Bun().NewRaw("SELECT class, COUNT(*) AS n FROM replies WHERE simulated AND class_reason <> '' GROUP BY class").Scan(w.ctx, &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	total := 0
	for _, r := range rows {
		got[r.Class] = r.N
		total += r.N
	}
	for _, c := range ReplyClasses {
		if got[c] == 0 {
			t.Errorf("no simulated reply sorted %s (all: %v)", c, got)
		}
	}
	if total != 120 {
		t.Errorf("sorted simulated replies = %d, want 120 (%v)", total, got)
	}
	// Acted on: the interested ones wait for onboarding, the bounced and
	// unsubscribed are suppressed, the not interested closed.
	for class, status := range map[string]string{ReplyInterested: db.LeadResponded, ReplyBounce: db.LeadBounced,
		ReplyUnsubscribe: db.LeadUnsubscribed, ReplyNotInterested: db.LeadDead, ReplyNotNow: db.LeadContacted} {
		n := w.count(fmt.Sprintf("SELECT COUNT(*) FROM replies AS r JOIN leads AS l ON l.id = r.lead_id WHERE r.class = '%s' AND l.status <> '%s'", class, status))
		if n != 0 {
			t.Errorf("%d leads with a %s reply are not %s", n, class, status)
		}
	}
	// A second run answers nobody twice.
	wantFulfilmentCounts(t, w.run(sim), Counts{"replied": 0})
}
