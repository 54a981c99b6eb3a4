package app

import (
	"context"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// TestPagesAreReusedOnlyUntilSomethingChanges: the dashboard is rendered
// once between changes (a change straight in the database, with no event,
// is not seen yet), and an engine event or a state-changing request makes
// the next view render afresh. Another reader never gets a page made for
// someone else.
func TestPagesAreReusedOnlyUntilSomethingChanges(t *testing.T) {
	bus := agents.NewBus()
	hub := NewHub(bus)
	f := newFixture(t, nil, func(d *Deps) { d.Live = hub })
	f.seed(t)
	admin := f.signInAs(t, db.RoleAdmin)
	revenue := func() string {
		_, doc, _ := f.get(t, "/")
		return cardValue(doc, "#dash-cards", "Collected")
	}
	if got := revenue(); got != "$99.00" {
		t.Fatalf("revenue = %q", got)
	}
	f.payOpenInvoices(t)
	if got := revenue(); got != "$99.00" {
		t.Errorf("revenue right after a silent change = %q: the page was rendered again", got)
	}
	before := hub.changes.Load()
	bus.Publish(agents.Event{Kind: agents.EventMoneyChanged})
	// The hub counts the change as it takes the event off the bus; a view
	// after that renders afresh.
	deadline := time.Now().Add(10 * time.Second)
	for hub.changes.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the hub never saw the event")
		}
		runtime.Gosched()
	}
	if got := revenue(); got != "$249.00" {
		t.Errorf("revenue after an event = %q, want $249.00", got)
	}

	// A POST (here a sign-in of a second operator) counts as a change.
	if _, err := f.store.Bun().NewUpdate().Table("invoices").Set("amount_cents = amount_cents + 100").
		Where("status = 'paid'").Where("amount_cents = 15000").Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	viewer := f.createUser(t, "viewer@hossagent.test", db.RoleViewer)
	other := f.signIn(t, viewer.Email)
	if got := revenue(); got != "$250.00" {
		t.Errorf("revenue after a POST = %q, want $250.00", got)
	}
	resp, err := other.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), admin.Email) || !strings.Contains(string(body), viewer.Email) {
		t.Errorf("the viewer's dashboard names the wrong operator")
	}
}
