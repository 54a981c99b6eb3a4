package agents

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

func TestSeedAndLoadCatalogueRoundTrip(t *testing.T) {
	w := newFulfilmentWorld(t)
	if _, err := LoadCatalogue(w.ctx, w.store); !errors.Is(err, ErrNoCatalogue) {
		t.Fatalf("empty store: %v", err)
	}
	want := DefaultCatalogue("usd")
	for i := range 2 {
		seeded, err := SeedCatalogue(w.ctx, w.store, want)
		if err != nil || seeded != (i == 0) {
			t.Fatalf("SeedCatalogue #%d = %v, %v", i+1, seeded, err)
		}
	}
	got, err := LoadCatalogue(w.ctx, w.store)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded\n %+v\nwant\n %+v", got, want)
	}
	bad := DefaultCatalogue("usd")
	bad.Kinds[0].PriceCents = -1
	if _, err := SeedCatalogue(w.ctx, w.store, bad); err == nil {
		t.Error("an invalid catalogue was accepted for seeding")
	}

	// The holder's titles follow the store once reloaded.
	h, err := NewCatalogues(w.ctx, w.store)
	if err != nil {
		t.Fatal(err)
	}
	titles := h.Titles()
	if titles(KindOutreachCopy) != "Outreach copy pack" || titles("astrology") != "astrology" {
		t.Errorf("titles: %q %q", titles(KindOutreachCopy), titles("astrology"))
	}
	if _, err := w.store.UpdateTaskKind(w.ctx, KindOutreachCopy, "Cold e-mail pack", 99_50); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(w.ctx); err != nil {
		t.Fatal(err)
	}
	if titles(KindOutreachCopy) != "Cold e-mail pack" {
		t.Errorf("title after reload = %q", titles(KindOutreachCopy))
	}
	if k, _ := h.Current().Kind(KindOutreachCopy); k.RewardCents() != 9950 {
		t.Errorf("price after reload = %d", k.RewardCents())
	}
}

// nicheCatalogue is the default catalogue with a monthly plan for dental
// clinics placed after the two one-off plans.
func nicheCatalogue() Catalogue {
	c := DefaultCatalogue("usd")
	c.Plans = append(c.Plans, Plan{Name: "dental_monthly", Title: "Dental monthly", Billing: db.BillingMonthly,
		Kinds: []string{KindOutreachCopy, KindLeadEnrichment}, Niches: []string{"Dental Clinics"}})
	return c
}

func TestPlanForPicksTheNicheElseTheDefault(t *testing.T) {
	c := nicheCatalogue()
	for _, tc := range []struct{ niche, fallback, want string }{
		{"dental clinics", "", "dental_monthly"},
		{"  DENTAL   clinics ", "", "dental_monthly"},
		{"law firms", "", PlanStarter},
		{"", "", PlanStarter},
		{"law firms", PlanGrowth, PlanGrowth},
		{"dental clinics", PlanGrowth, "dental_monthly"},
		{"law firms", "platinum", PlanStarter},
	} {
		if p, ok := c.PlanFor(tc.niche, tc.fallback); !ok || p.Name != tc.want {
			t.Errorf("PlanFor(%q, %q) = %s, want %s", tc.niche, tc.fallback, p.Name, tc.want)
		}
	}
	c.Plans[2].Inactive = true // an inactive plan is not chosen, whatever its niches
	c.Plans[0].Inactive = true // nor as the default
	if p, _ := c.PlanFor("dental clinics", PlanStarter); p.Name != PlanGrowth {
		t.Errorf("with starter and dental inactive: %s", p.Name)
	}
}

func TestOnboardingPutsEachLeadOnItsNichesPlan(t *testing.T) {
	w := newFulfilmentWorld(t)
	if _, err := SeedCatalogue(w.ctx, w.store, nicheCatalogue()); err != nil {
		t.Fatal(err)
	}
	dental := w.lead(1, db.LeadResponded) // niche "dental clinics"
	other, err := w.store.CreateLead(w.ctx, nil, db.NewLead{Email: "pat@law.example", Company: "Law LLP", Niche: "law firms", Source: "test", DomainKey: "law.example"})
	if err != nil {
		t.Fatal(err)
	}
	w.setLeadStatus(other, db.LeadResponded)
	// The seed the cycle holds is not used: the store has a catalogue.
	wantFulfilmentCounts(t, w.run(NewOnboardingCycle(w.store, w.env, DefaultCatalogue("eur"), OnboardingOptions{})), Counts{"converted": 2})
	for _, tc := range []struct {
		lead      *db.Lead
		plan      string
		tasks     int
		recurring bool
	}{{dental, "dental_monthly", 2, true}, {other, PlanStarter, 2, false}} {
		var c db.Customer
		if err := w.store.Bun().NewSelect().Model(&c).Where("c.lead_id = ?", tc.lead.ID).Scan(w.ctx); err != nil {
			t.Fatal(err)
		}
		if c.Plan != tc.plan || (c.NextPeriodAt != nil) != tc.recurring {
			t.Errorf("lead %s: plan %s, next period %v", tc.lead.Company, c.Plan, c.NextPeriodAt)
		}
		if tc.recurring && !c.NextPeriodAt.Equal(db.AddMonth(w.clock.Now())) {
			t.Errorf("next period %v, want a month after %v", c.NextPeriodAt, w.clock.Now())
		}
		if n := w.count("SELECT COUNT(*) FROM tasks WHERE customer_id = ? AND currency = 'usd'", c.ID); n != tc.tasks {
			t.Errorf("lead %s: %d tasks", tc.lead.Company, n)
		}
	}
	// The operator moves the niche to the growth plan: the next lead of it
	// gets growth.
	if _, err := w.store.UpdatePlan(w.ctx, db.CataloguePlan{Name: PlanGrowth, Title: "Growth", Billing: db.BillingOnce,
		Kinds: []string{KindMarketResearch}, Niches: []string{"law firms"}}); err != nil {
		t.Fatal(err)
	}
	third, err := w.store.CreateLead(w.ctx, nil, db.NewLead{Email: "pat@law2.example", Company: "Law Two", Niche: "Law Firms", Source: "test", DomainKey: "law2.example"})
	if err != nil {
		t.Fatal(err)
	}
	w.setLeadStatus(third, db.LeadResponded)
	w.run(NewOnboardingCycle(w.store, w.env, DefaultCatalogue("usd"), OnboardingOptions{}))
	if n := w.count("SELECT COUNT(*) FROM customers WHERE lead_id = ? AND plan = ?", third.ID, PlanGrowth); n != 1 {
		t.Error("the edited niche did not pick growth")
	}
}

// TestMonthlyPlanRecursOverThreeMonths converts a lead to a monthly plan on
// 31 January and walks the clock through three renewals: each opens the
// plan's tasks once, however many cycles run in the period, and billing
// invoices each period's work.
func TestMonthlyPlanRecursOverThreeMonths(t *testing.T) {
	w := newFulfilmentWorld(t)
	w.clock.Set(time.Date(2026, time.January, 31, 10, 0, 0, 0, time.UTC))
	if _, err := SeedCatalogue(w.ctx, w.store, nicheCatalogue()); err != nil {
		t.Fatal(err)
	}
	w.lead(1, db.LeadResponded)
	onboarding := NewOnboardingCycle(w.store, w.env, DefaultCatalogue("usd"), OnboardingOptions{})
	billing := NewBillingCycle(w.store, w.env, DisabledPayments{}, BillingOptions{Currency: "usd", BaseURL: "http://localhost:8080"})
	wantFulfilmentCounts(t, w.run(onboarding), Counts{"converted": 1, "periods_opened": 0})
	tasks := func() int { return w.count("SELECT COUNT(*) FROM tasks") }
	finishAndBill := func() {
		t.Helper()
		if _, err := w.store.Bun().ExecContext(w.ctx, `UPDATE tasks SET status = 'done', completed_at = ?, updated_at = ?
			WHERE status = 'pending'`, w.clock.Now(), w.clock.Now()); err != nil {
			t.Fatal(err)
		}
		w.run(billing)
	}
	if tasks() != 2 {
		t.Fatalf("tasks after conversion = %d", tasks())
	}
	finishAndBill()

	periods := []time.Time{
		time.Date(2026, time.February, 28, 10, 0, 0, 0, time.UTC),
		time.Date(2026, time.March, 28, 10, 0, 0, 0, time.UTC), // the 28th stays: one calendar month from the last
		time.Date(2026, time.April, 28, 10, 0, 0, 0, time.UTC),
	}
	for i, at := range periods {
		// A second before the period: nothing.
		w.clock.Set(at.Add(-time.Second))
		wantFulfilmentCounts(t, w.run(onboarding), Counts{"periods_opened": 0})
		// At the period: its tasks, once, whatever runs after in the period.
		w.clock.Set(at)
		wantFulfilmentCounts(t, w.run(onboarding), Counts{"periods_opened": 1})
		w.clock.Advance(3 * time.Hour)
		wantFulfilmentCounts(t, w.run(onboarding), Counts{"periods_opened": 0})
		wantFulfilmentCounts(t, w.run(onboarding), Counts{"periods_opened": 0})
		if got, want := tasks(), 2*(i+2); got != want {
			t.Fatalf("period %d: tasks = %d, want %d", i+1, got, want)
		}
		want := "Outreach copy pack for Lead 001 Ltd, " + at.Format("January 2006")
		if n := w.count("SELECT COUNT(*) FROM tasks WHERE description = ? AND reward_cents = 12000", want); n != 1 {
			t.Errorf("period %d: no task %q", i+1, want)
		}
		var next time.Time
		if err := w.store.Bun().NewRaw("SELECT next_period_at FROM customers").Scan(w.ctx, &next); err != nil {
			t.Fatal(err)
		}
		if !next.Equal(db.AddMonth(at)) {
			t.Errorf("period %d: next period %v, want %v", i+1, next, db.AddMonth(at))
		}
		finishAndBill()
	}
	if n := w.count("SELECT COUNT(*) FROM invoices"); n != 4 {
		t.Errorf("invoices = %d, want one per period (4)", n)
	}
	if n := w.count("SELECT COALESCE(SUM(amount_cents), 0) FROM invoices"); n != 4*(12000+9000) {
		t.Errorf("invoiced = %d cents", n)
	}

	// A paused customer's period passes without work; a closed one's stop.
	w.clock.Set(time.Date(2026, time.May, 28, 10, 0, 0, 0, time.UTC))
	if _, err := w.store.Bun().ExecContext(w.ctx, "UPDATE customers SET status = 'paused'"); err != nil {
		t.Fatal(err)
	}
	wantFulfilmentCounts(t, w.run(onboarding), Counts{"periods_opened": 0, "periods_skipped": 1})
	w.clock.Set(time.Date(2026, time.June, 28, 10, 0, 0, 0, time.UTC))
	if _, err := w.store.Bun().ExecContext(w.ctx, "UPDATE customers SET status = 'closed'"); err != nil {
		t.Fatal(err)
	}
	wantFulfilmentCounts(t, w.run(onboarding), Counts{"periods_opened": 0, "periods_stopped": 1})
	if n := w.count("SELECT COUNT(*) FROM customers WHERE next_period_at IS NOT NULL"); n != 0 || tasks() != 8 {
		t.Errorf("after closing: %d customers with a period, %d tasks", n, tasks())
	}
	w.requireInvariants()
}
