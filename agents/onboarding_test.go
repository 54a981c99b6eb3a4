package agents

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

func TestDefaultCatalogueIsValidAndExactInCents(t *testing.T) {
	c := DefaultCatalogue("usd")
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := map[string]int64{
		KindMarketResearch: 15000, KindCompetitiveLandscape: 20000, KindLeadEnrichment: 9000, KindOutreachCopy: 12000,
	}
	for kind, cents := range want {
		k, ok := c.Kind(kind)
		if !ok || k.RewardCents() != cents {
			t.Errorf("kind %s: %+v (found %v), want %d cents", kind, k, ok, cents)
		}
	}
	starter, _ := c.PlanTasks(PlanStarter, "Acme")
	growth, _ := c.PlanTasks(PlanGrowth, "Acme")
	if len(starter) != 2 || starter[0].Kind != KindMarketResearch || starter[1].Kind != KindOutreachCopy {
		t.Errorf("starter tasks = %+v", starter)
	}
	if len(growth) != 4 || starter[0].Description != "Market research brief for Acme" || starter[0].Currency != "usd" {
		t.Errorf("growth tasks = %+v, starter = %+v", growth, starter)
	}
	if _, err := c.PlanTasks("platinum", "Acme"); err == nil {
		t.Error("PlanTasks accepted an unknown plan")
	}
}

func TestCatalogueValidateRefusesBadPriceLists(t *testing.T) {
	cases := map[string]func(c *Catalogue){
		"negative price":    func(c *Catalogue) { c.Kinds[0].PriceCents = -1 },
		"over Stripe's max": func(c *Catalogue) { c.Kinds[0].PriceCents = 100_000_000 },
		"bad billing":       func(c *Catalogue) { c.Plans[0].Billing = "weekly" },
		"no active plan":    func(c *Catalogue) { c.Plans[0].Inactive, c.Plans[1].Inactive = true, true },
		"duplicate kind":    func(c *Catalogue) { c.Kinds[1].Kind = c.Kinds[0].Kind },
		"empty kind":        func(c *Catalogue) { c.Kinds[2].Kind = "" },
		"unknown kind":      func(c *Catalogue) { c.Plans[0].Kinds = append(c.Plans[0].Kinds, "astrology") },
		"duplicate plan":    func(c *Catalogue) { c.Plans[1].Name = c.Plans[0].Name },
		"empty plan":        func(c *Catalogue) { c.Plans[0].Kinds = nil },
		"bad currency":      func(c *Catalogue) { c.Currency = "USD" },
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			c := DefaultCatalogue("usd")
			spoil(&c)
			if err := c.Validate(); err == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
	free := DefaultCatalogue("eur")
	free.Kinds[0].PriceCents = 0
	if err := free.Validate(); err != nil {
		t.Errorf("a free task kind is refused: %v", err)
	}
}

func TestOnboardingWithNothingToDo(t *testing.T) {
	w := newFulfilmentWorld(t)
	w.lead(1, db.LeadNew)
	counts := w.run(NewOnboardingCycle(w.store, w.env, DefaultCatalogue("usd"), OnboardingOptions{}))
	wantFulfilmentCounts(t, counts, Counts{"converted": 0, "already_customer": 0, "no_email": 0})
	if n := len(w.events.kinds()); n != 0 {
		t.Errorf("an idle cycle published %v", w.events.kinds())
	}
}

func TestOnboardingConvertsOnlyRespondedLeadsFiveAtATimeOldestFirst(t *testing.T) {
	w := newFulfilmentWorld(t)
	// Leads answer in an order unlike their ids: 7 answer, 2 were only contacted.
	order := []int{4, 1, 7, 2, 6, 3, 5}
	leads := map[int]*db.Lead{}
	for n := 1; n <= 7; n++ {
		leads[n] = w.lead(n, db.LeadContacted)
	}
	contacted := []*db.Lead{w.lead(8, db.LeadContacted), w.lead(9, db.LeadContacted)}
	for _, n := range order {
		w.clock.Advance(time.Minute)
		w.setLeadStatus(leads[n], db.LeadResponded)
	}
	var welcomed []string
	cycle := NewOnboardingCycle(w.store, w.env, DefaultCatalogue("usd"), OnboardingOptions{
		Welcome: func(_ context.Context, c db.Customer, token string) {
			welcomed = append(welcomed, c.ContactEmail+" "+token)
		},
	})

	wantFulfilmentCounts(t, w.run(cycle), Counts{"converted": 5, "already_customer": 0, "no_email": 0})
	for i, n := range order {
		var l db.Lead
		if err := w.store.Bun().NewSelect().Model(&l).Where("l.id = ?", leads[n].ID).Scan(w.ctx); err != nil {
			t.Fatal(err)
		}
		if converted := l.Status == db.LeadConverted && l.ConvertedAt != nil; converted != (i < 5) {
			t.Errorf("lead %d (answered #%d): status %s", n, i+1, l.Status)
		}
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"converted": 2})
	wantFulfilmentCounts(t, w.run(cycle), Counts{"converted": 0})
	for _, l := range contacted {
		if n := w.count("SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'contacted'", l.ID); n != 1 {
			t.Errorf("contacted lead %d was touched", l.ID)
		}
	}
	if n := w.count("SELECT COUNT(*) FROM customers WHERE lead_id IS NOT NULL AND plan = 'starter'"); n != 7 {
		t.Errorf("customers = %d, want 7", n)
	}
	// Each customer has the starter plan's two tasks, pending, at catalogue prices.
	if n := w.count(`SELECT COUNT(*) FROM tasks WHERE status = 'pending' AND currency = 'usd' AND attempts = 0 AND
		((kind = ? AND reward_cents = 15000) OR (kind = ? AND reward_cents = 12000))`, KindMarketResearch, KindOutreachCopy); n != 14 {
		t.Errorf("starter tasks = %d, want 14", n)
	}

	// Every new customer's portal link works: the tokens are the seeded
	// random stream's, in conversion order, and Welcome got the same ones.
	replay := rand.NewChaCha8(fulfilmentSeed)
	var customers []db.Customer
	if err := w.store.Bun().NewSelect().Model(&customers).OrderExpr("c.id").Scan(w.ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range customers {
		token, _, err := db.NewToken(replay)
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.store.CustomerByPortalToken(w.ctx, token)
		if err != nil || got.ID != c.ID {
			t.Errorf("customer %d: token resolves to %+v, %v", c.ID, got, err)
		}
		if welcomed[i] != c.ContactEmail+" "+token {
			t.Errorf("welcome %d = %q", i, welcomed[i])
		}
	}
	if k := w.events.kinds(); k[EventDataChanged] != 2 {
		t.Errorf("events = %v, want data_changed after each of the 2 working cycles", k)
	}
}

func TestOnboardingLeadWhoseEmailIsAlreadyACustomer(t *testing.T) {
	w := newFulfilmentWorld(t)
	first := w.lead(1, db.LeadResponded)
	// The customer exists already (an admin created it, or an earlier system did).
	existing, _, err := w.store.CreateCustomer(w.ctx, nil, db.NewCustomer{
		Company: "Already Here", ContactEmail: first.EmailAddr(), Plan: PlanGrowth,
	}, w.env.Random)
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Minute)
	second := w.lead(2, db.LeadResponded)

	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second) // a deadlock fails instead of hanging
	defer cancel()
	counts, err := NewOnboardingCycle(w.store, w.env, DefaultCatalogue("usd"), OnboardingOptions{}).Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantFulfilmentCounts(t, counts, Counts{"converted": 1, "already_customer": 1, "no_email": 0})
	if n := w.count("SELECT COUNT(*) FROM customers WHERE contact_email = ?", first.EmailAddr()); n != 1 {
		t.Errorf("customers with the e-mail = %d, want 1", n)
	}
	if n := w.count("SELECT COUNT(*) FROM tasks WHERE customer_id = ?", existing.ID); n != 0 {
		t.Errorf("the existing customer got %d new tasks", n)
	}
	if n := w.count("SELECT COUNT(*) FROM leads WHERE id IN (?, ?) AND status = 'converted'", first.ID, second.ID); n != 2 {
		t.Errorf("converted leads = %d, want 2", n)
	}

	// A lead put back to responded after its conversion finds its own
	// customer (customers.lead_id is unique) and is not converted twice.
	w.setLeadStatus(second, db.LeadResponded)
	wantFulfilmentCounts(t, w.run(NewOnboardingCycle(w.store, w.env, DefaultCatalogue("usd"), OnboardingOptions{})),
		Counts{"converted": 0, "already_customer": 1})
	if n := w.count("SELECT COUNT(*) FROM customers"); n != 2 {
		t.Errorf("customers = %d, want 2", n)
	}
}

func TestOnboardingLeadWithoutEmailIsDead(t *testing.T) {
	w := newFulfilmentWorld(t)
	l, err := w.store.CreateLead(w.ctx, nil, db.NewLead{Company: "Website Only", Website: "https://website-only.example", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	w.setLeadStatus(l, db.LeadResponded)
	counts := w.run(NewOnboardingCycle(w.store, w.env, DefaultCatalogue("usd"), OnboardingOptions{Plan: PlanGrowth}))
	wantFulfilmentCounts(t, counts, Counts{"converted": 0, "no_email": 1})
	if n := w.count("SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'dead'", l.ID); n != 1 {
		t.Error("the lead without e-mail is not dead")
	}
	if n := w.count("SELECT COUNT(*) FROM customers"); n != 0 {
		t.Errorf("customers = %d, want 0", n)
	}
}

func TestOnboardingGrowthPlanAndUnknownPlan(t *testing.T) {
	w := newFulfilmentWorld(t)
	w.lead(1, db.LeadResponded)
	_, err := NewOnboardingCycle(w.store, w.env, DefaultCatalogue("usd"), OnboardingOptions{Plan: "platinum"}).Run(w.ctx)
	if err == nil || !strings.Contains(err.Error(), "platinum") {
		t.Fatalf("unknown plan: err = %v", err)
	}
	if n := w.count("SELECT COUNT(*) FROM customers"); n != 0 {
		t.Fatalf("an unknown plan converted %d leads", n)
	}
	// The store keeps the catalogue it was first seeded with (usd here); a
	// store seeded in eur bills in eur.
	w = newFulfilmentWorld(t)
	w.lead(1, db.LeadResponded)
	w.run(NewOnboardingCycle(w.store, w.env, DefaultCatalogue("eur"), OnboardingOptions{Plan: PlanGrowth}))
	if n := w.count("SELECT COALESCE(SUM(reward_cents), 0) FROM tasks WHERE currency = 'eur'"); n != 15000+20000+9000+12000 {
		t.Errorf("growth plan rewards = %d", n)
	}
}

func TestOnboardingConcurrentRunsConvertEachLeadOnce(t *testing.T) {
	w := newFulfilmentWorld(t)
	for n := 1; n <= 12; n++ {
		w.clock.Advance(time.Second)
		w.lead(n, db.LeadResponded)
	}
	cycle := NewOnboardingCycle(w.store, w.env, DefaultCatalogue("usd"), OnboardingOptions{})
	var mu sync.Mutex
	converted := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			counts, err := cycle.Run(w.ctx)
			if err != nil {
				t.Errorf("concurrent Run: %v", err)
			}
			mu.Lock()
			converted += counts["converted"]
			mu.Unlock()
		})
	}
	wg.Wait()
	// Runs that picked the same leads skip the ones already converted; the
	// leftovers go on later cycles.
	for converted < 12 {
		n := w.run(cycle)["converted"]
		if n == 0 {
			t.Fatalf("converted %d of 12, then nothing", converted)
		}
		converted += n
	}
	if converted != 12 {
		t.Errorf("converted counts add to %d, want 12", converted)
	}
	if n := w.count("SELECT COUNT(*) FROM customers"); n != 12 {
		t.Errorf("customers = %d, want 12", n)
	}
	if n := w.count("SELECT COUNT(*) FROM tasks"); n != 24 {
		t.Errorf("tasks = %d, want 24", n)
	}
}
