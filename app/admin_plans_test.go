package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// plansFixture is the fixture with the default catalogue stored, the
// process's copy of it wired (Deps.Catalogues), the seeded business and an
// admin signed in.
func plansFixture(t *testing.T) (*fixture, *agents.Catalogues) {
	t.Helper()
	var cats *agents.Catalogues
	f := newFixture(t, nil, func(d *Deps) {
		if _, err := agents.SeedCatalogue(context.Background(), d.Store, agents.DefaultCatalogue("usd")); err != nil {
			t.Fatal(err)
		}
		var err error
		if cats, err = agents.NewCatalogues(context.Background(), d.Store); err != nil {
			t.Fatal(err)
		}
		d.Catalogues = cats
	})
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	return f, cats
}

func (f *fixture) catalogue(t *testing.T) agents.Catalogue {
	t.Helper()
	c, err := agents.LoadCatalogue(context.Background(), f.store)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPlansPageListsKindsAndPlans(t *testing.T) {
	f, _ := plansFixture(t)
	resp, doc, _ := f.get(t, "/admin/plans")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	kinds := text(doc.Find("#catalogue-kinds"))
	assertContains(t, "kinds", kinds, "market_research_brief", "Market research brief", "$150.00", "Outreach copy pack", "$120.00")
	if v, _ := doc.Find("#kind-outreach_copy_pack-price").Attr("value"); v != "120.00" {
		t.Errorf("price field = %q", v)
	}
	assertContains(t, "plans", text(doc.Find("#catalogue-plans")), "Starter", "starter", "Growth", "$270.00 once", "$560.00 once")
	assertContains(t, "help", text(doc.Find("#plans-help")), "default plan starter", "applies to work opened from then on")
	if doc.Find("#plan-growth select[name=item]").Length() != 6 || doc.Find("#plan-growth option[selected][value=lead_list_enrichment]").Length() != 1 {
		t.Errorf("growth's task fields: %d", doc.Find("#plan-growth select[name=item]").Length())
	}
	if c, _ := doc.Find("#plan-starter button.danger").Attr("hx-confirm"); !strings.Contains(c, "Deactivate") {
		t.Errorf("deactivate asks nothing: %q", c)
	}
	// Admins only.
	anon := newClient(t)
	resp, _ = f.do(t, anon, http.MethodGet, "/admin/plans", nil, nil)
	if resp.StatusCode == http.StatusOK {
		t.Error("an anonymous visitor read the editor")
	}
	resp, _ = f.post(t, anon, "/admin/kinds/outreach_copy_pack/edit", url.Values{"title": {"x"}, "price": {"1"}}, f.withOrigin(nil))
	if resp.StatusCode == http.StatusOK || f.auditCount(t, db.AuditKindEdited) != 0 {
		t.Errorf("an anonymous POST edited a kind: %d", resp.StatusCode)
	}
	// A POST from another site is refused.
	resp, _ = f.post(t, f.client, "/admin/kinds/outreach_copy_pack/edit", url.Values{"title": {"x"}, "price": {"1"}}, map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden || f.auditCount(t, db.AuditKindEdited) != 0 {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
}

func TestEditKindValidatesThePriceExactlyAndAudits(t *testing.T) {
	f, cats := plansFixture(t)
	for _, tc := range []struct{ title, price, want string }{
		{"Copy pack", "abc", "is not a price"},
		{"Copy pack", "1.234", "more than two decimals"},
		{"Copy pack", "-5", "is not a price"},
		{"Copy pack", "", "enter a price"},
		{"Copy pack", "1000000", "largest price"},
		{"", "10", "the title is empty"},
		{strings.Repeat("x", 201), "10", "longer than 200"},
	} {
		resp, body := f.htmxPost(t, "/admin/kinds/outreach_copy_pack/edit", url.Values{"title": {tc.title}, "price": {tc.price}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tc.want) || !strings.Contains(body, `id="plans-editor"`) {
			t.Errorf("title %q price %q: %d, body lacks %q", tc.title, tc.price, resp.StatusCode, tc.want)
		}
	}
	if k, _ := f.catalogue(t).Kind(agents.KindOutreachCopy); k.PriceCents != 12000 || f.auditCount(t, db.AuditKindEdited) != 0 {
		t.Fatalf("a refused edit changed %+v", k)
	}
	resp, body := f.htmxPost(t, "/admin/kinds/outreach_copy_pack/edit", url.Values{"title": {" Cold e-mail pack <b> "}, "price": {"$1,099.95"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "saved") || strings.Contains(body, "<b>") {
		t.Fatalf("edit: %d %s", resp.StatusCode, body)
	}
	if k, _ := f.catalogue(t).Kind(agents.KindOutreachCopy); k.PriceCents != 109995 || k.Name != "Cold e-mail pack <b>" {
		t.Errorf("stored %+v", k)
	}
	entries := auditFor(t, f, "task kind outreach_copy_pack")
	if len(entries) != 1 || entries[0].Action != db.AuditKindEdited || !strings.Contains(entries[0].Detail, "$120.00 → $1,099.95") ||
		entries[0].Actor != "admin@hossagent.test" {
		t.Errorf("audit = %+v", entries)
	}
	// The process's catalogue follows: documents read the new title.
	if got := cats.Titles()(agents.KindOutreachCopy); got != "Cold e-mail pack <b>" {
		t.Errorf("titles after the edit: %q", got)
	}
	// An unknown kind is no page.
	if resp, _ := f.htmxPost(t, "/admin/kinds/astrology/edit", url.Values{"title": {"Stars"}, "price": {"1"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown kind: %d", resp.StatusCode)
	}
}

func TestEditAddAndDeactivatePlans(t *testing.T) {
	f, _ := plansFixture(t)
	edit := func(form url.Values) (int, string) {
		resp, body := f.htmxPost(t, "/admin/plans/starter/edit", form)
		return resp.StatusCode, body
	}
	good := url.Values{"title": {"Starter monthly"}, "billing": {"monthly"}, "niches": {"Dental Clinics, law firms, ,dental clinics"},
		"item": {"outreach_copy_pack", "", "lead_list_enrichment"}}
	for name, tc := range map[string]struct {
		change func(v url.Values)
		want   string
	}{
		"unknown kind":  {func(v url.Values) { v["item"] = []string{"outreach_copy_pack", "astrology"} }, `task kind &#34;astrology&#34; is not in the catalogue`},
		"empty plan":    {func(v url.Values) { v["item"] = []string{"", ""} }, "a plan needs at least one task"},
		"bad billing":   {func(v url.Values) { v.Set("billing", "weekly") }, "billing must be one-off (once) or monthly"},
		"no title":      {func(v url.Values) { v.Set("title", "  ") }, "the title is empty"},
		"long niche":    {func(v url.Values) { v.Set("niches", strings.Repeat("n", 101)) }, "longer than 100 bytes"},
		"too many kind": {func(v url.Values) { v["item"] = strings.Fields(strings.Repeat("outreach_copy_pack ", 21)) }, "at most 20 tasks"},
	} {
		v := url.Values{}
		for k, vs := range good {
			v[k] = append([]string(nil), vs...)
		}
		tc.change(v)
		if status, body := edit(v); status != http.StatusUnprocessableEntity || !strings.Contains(body, "Plan starter not saved: ") || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, body lacks %q: %.300s", name, status, tc.want, body)
		}
	}
	if f.auditCount(t, db.AuditPlanEdited) != 0 {
		t.Fatal("a refused edit was audited")
	}
	if status, body := edit(good); status != http.StatusOK || !strings.Contains(body, "Plan starter saved") {
		t.Fatalf("edit: %d %s", status, body)
	}
	p, _ := f.catalogue(t).Plan(agents.PlanStarter)
	if p.Title != "Starter monthly" || !p.Monthly() || strings.Join(p.Kinds, ",") != "outreach_copy_pack,lead_list_enrichment" ||
		strings.Join(p.Niches, ",") != "dental clinics,law firms" {
		t.Errorf("stored %+v", p)
	}
	if e := auditFor(t, f, "plan starter"); len(e) != 1 || !strings.Contains(e[0].Detail, `billing "once" → "monthly"`) {
		t.Errorf("audit = %+v", e)
	}

	// Adding: a bad key, a taken key, then a good one.
	add := url.Values{"name": {"Bad Key"}, "title": {"Retainer"}, "billing": {"monthly"}, "item": {"market_research_brief"}}
	resp, body := f.htmxPost(t, "/admin/plans/add", add)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "the key must be") || !strings.Contains(body, `value="Retainer"`) {
		t.Errorf("bad key: %d", resp.StatusCode)
	}
	add.Set("name", "growth")
	if resp, body = f.htmxPost(t, "/admin/plans/add", add); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "exists") {
		t.Errorf("taken key: %d", resp.StatusCode)
	}
	add.Set("name", "retainer")
	if resp, _ = f.htmxPost(t, "/admin/plans/add", add); resp.StatusCode != http.StatusOK {
		t.Fatalf("add: %d", resp.StatusCode)
	}
	cat := f.catalogue(t)
	if len(cat.Plans) != 3 || cat.Plans[2].Name != "retainer" || !cat.Plans[2].Monthly() || f.auditCount(t, db.AuditPlanAdded) != 1 {
		t.Errorf("plans after adding: %+v", cat.Plans)
	}

	// Deactivating: allowed until one active plan is left. Without htmx
	// the whole page comes back.
	for _, name := range []string{"starter", "growth"} {
		resp, doc := f.post(t, f.client, "/admin/plans/"+name+"/deactivate", nil, f.withOrigin(nil))
		if resp.StatusCode != http.StatusOK || !strings.Contains(text(doc.Find("main .result")), "deactivated") {
			t.Fatalf("deactivate %s: %d", name, resp.StatusCode)
		}
	}
	resp, body = f.htmxPost(t, "/admin/plans/retainer/deactivate", nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "last active plan") {
		t.Errorf("last active plan: %d", resp.StatusCode)
	}
	if f.auditCount(t, db.AuditPlanDeactivated) != 2 {
		t.Errorf("deactivations audited: %d", f.auditCount(t, db.AuditPlanDeactivated))
	}
	if resp, _ = f.htmxPost(t, "/admin/plans/growth/activate", nil); resp.StatusCode != http.StatusOK || f.auditCount(t, db.AuditPlanActivated) != 1 {
		t.Errorf("activate: %d", resp.StatusCode)
	}
	if resp, _ = f.htmxPost(t, "/admin/plans/platinum/deactivate", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown plan: %d", resp.StatusCode)
	}
}

func TestCustomerPlanChangeIsAuditedAndAppliesFromNowOn(t *testing.T) {
	f, _ := plansFixture(t)
	f.htmxPost(t, "/admin/plans/add", url.Values{"name": {"retainer"}, "title": {"Retainer"}, "billing": {"monthly"}, "item": {"outreach_copy_pack"}})
	_, doc, _ := f.get(t, "/admin/customers/1")
	panel := text(doc.Find("#customer-plan"))
	assertContains(t, "plan panel", panel, "Starter", "one-off", "applies to work opened from then on", "no monthly periods")
	if doc.Find("#customer-plan option[value=retainer]").Length() != 1 || doc.Find("#customer-plan option[selected][value=starter]").Length() != 1 {
		t.Errorf("plan options: %s", panel)
	}
	tasksBefore := f.count(t, "SELECT COUNT(*) FROM tasks")

	resp, body := f.htmxPost(t, "/admin/customers/1/plan", url.Values{"plan": {"platinum"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "there is no plan platinum") {
		t.Errorf("unknown plan: %d %s", resp.StatusCode, body)
	}
	resp, body = f.htmxPost(t, "/admin/customers/1/plan", url.Values{"plan": {"retainer"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Plan changed from starter to retainer, for work opened from now on") ||
		!strings.Contains(body, `id="customer-plan"`) {
		t.Fatalf("change: %d %s", resp.StatusCode, body)
	}
	e := auditFor(t, f, "customer 1")
	if len(e) != 1 || e[0].Action != db.AuditCustomerPlanSet || !strings.Contains(e[0].Detail, "starter → retainer; next period") {
		t.Errorf("audit = %+v", e)
	}
	if f.count(t, "SELECT COUNT(*) FROM customers WHERE id = 1 AND plan = 'retainer' AND next_period_at IS NOT NULL") != 1 ||
		f.count(t, "SELECT COUNT(*) FROM tasks") != tasksBefore {
		t.Error("the change did not apply as said, or touched the tasks")
	}
	// Without htmx: back to the customer page.
	resp, _ = f.post(t, f.client, "/admin/customers/1/plan", url.Values{"plan": {"growth"}}, f.withOrigin(nil))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/customers/1" {
		t.Errorf("plain POST: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if f.count(t, "SELECT COUNT(*) FROM customers WHERE id = 1 AND plan = 'growth' AND next_period_at IS NULL") != 1 {
		t.Error("the move to a one-off plan kept the periods")
	}
	// An inactive plan cannot be chosen; an unknown customer is no page.
	f.htmxPost(t, "/admin/plans/retainer/deactivate", nil)
	if resp, body = f.htmxPost(t, "/admin/customers/1/plan", url.Values{"plan": {"retainer"}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "not active") {
		t.Errorf("inactive plan: %d", resp.StatusCode)
	}
	if resp, _ = f.htmxPost(t, "/admin/customers/999/plan", url.Values{"plan": {"growth"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown customer: %d", resp.StatusCode)
	}
	if n := f.auditCount(t, db.AuditCustomerPlanSet); n != 2 {
		t.Errorf("plan changes audited: %d, want 2", n)
	}
}

// count runs a COUNT query on the fixture's store.
func (f *fixture) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := f.store.Bun().NewRaw(query, args...).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}
