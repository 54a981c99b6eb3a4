package app

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// The control room shows exactly the agents of agents.Registry, in its
// order and with its titles, whether or not the engine runs them; only an
// agent the engine runs gets buttons, and its buttons post to its name.
func TestAdminCardsAreTheRegistry(t *testing.T) {
	var runs atomic.Int64
	f := newActionFixture(t, actionOptions{cycles: map[string]agents.Cycle{agents.Ops: okCycle(&runs)}})
	f.signInAs(t, db.RoleAdmin)
	resp, doc, _ := f.get(t, "/admin")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cards := doc.Find("#admin-agents .agent-card")
	if cards.Length() != len(agents.Registry) {
		t.Fatalf("agent cards = %d, want %d (the registry)", cards.Length(), len(agents.Registry))
	}
	cards.Each(func(i int, card *goquery.Selection) {
		a := agents.Registry[i]
		if id, _ := card.Attr("id"); id != "agent-"+a.Name {
			t.Errorf("card %d is %q, want agent-%s", i, id, a.Name)
		}
		if got := text(card.Find("h3")); got != a.Title {
			t.Errorf("card %s title = %q, want %q", a.Name, got, a.Title)
		}
		run := card.Find(`form[action="/admin/agents/` + a.Name + `/run"]`).Length()
		if want := map[bool]int{true: 1, false: 0}[a.Name == agents.Ops]; run != want {
			t.Errorf("card %s has %d run buttons, want %d", a.Name, run, want)
		}
	})
	if status, _, _ := f.act(t, "/admin/agents/marketing/run", nil); status != http.StatusNotFound {
		t.Errorf("run of an agent outside the registry = %d, want 404", status)
	}
}
