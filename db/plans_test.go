package db

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCatalogue is the default catalogue's shape (agents.DefaultCatalogue,
// which the store's tests cannot import).
func testCatalogue() CatalogueData {
	return CatalogueData{
		Kinds: []CatalogueKind{
			{Kind: "market_research_brief", Title: "Market research brief", PriceCents: 15000, Currency: "usd"},
			{Kind: "outreach_copy_pack", Title: "Outreach copy pack", PriceCents: 12000, Currency: "usd"},
		},
		Plans: []CataloguePlan{
			{Name: "starter", Title: "Starter", Currency: "usd", Billing: BillingOnce, Active: true, Kinds: []string{"market_research_brief", "outreach_copy_pack"}},
			{Name: "retainer", Title: "Retainer", Currency: "usd", Billing: BillingMonthly, Active: true,
				Kinds: []string{"outreach_copy_pack"}, Niches: []string{"  Dental  Clinics ", "saas"}},
		},
	}
}

func seededCatalogue(t *testing.T) *DB {
	t.Helper()
	d := mustOpen(t)
	if ok, err := d.SeedCatalogue(context.Background(), testCatalogue()); err != nil || !ok {
		t.Fatalf("SeedCatalogue = %v, %v", ok, err)
	}
	return d
}

func TestSeedCatalogueOnceAndReadBack(t *testing.T) {
	d := seededCatalogue(t)
	ctx := context.Background()
	got, err := d.ReadCatalogue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kinds) != 2 || got.Kinds[0].Kind != "market_research_brief" || got.Kinds[1].PriceCents != 12000 {
		t.Fatalf("kinds = %+v", got.Kinds)
	}
	if len(got.Plans) != 2 || got.Plans[0].Name != "starter" || got.Plans[0].Position != 1 || got.Plans[1].Position != 2 ||
		!slices.Equal(got.Plans[0].Kinds, []string{"market_research_brief", "outreach_copy_pack"}) ||
		!slices.Equal(got.Plans[1].Niches, []string{"dental clinics", "saas"}) || !got.Plans[1].Active {
		t.Fatalf("plans = %+v", got.Plans)
	}
	// A second seed, even with another catalogue, changes nothing; nor does
	// one after an edit.
	other := testCatalogue()
	other.Kinds[0].PriceCents = 1
	if ok, err := d.SeedCatalogue(ctx, other); err != nil || ok {
		t.Fatalf("second SeedCatalogue = %v, %v", ok, err)
	}
	if _, err := d.UpdateTaskKind(ctx, "outreach_copy_pack", "Copy pack", 9950); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.SeedCatalogue(ctx, testCatalogue()); err != nil || ok {
		t.Fatalf("seed after an edit = %v, %v", ok, err)
	}
	again, _ := d.ReadCatalogue(ctx)
	if again.Kinds[0].PriceCents != 15000 || again.Kinds[1].PriceCents != 9950 || again.Kinds[1].Title != "Copy pack" {
		t.Errorf("after reseeding: %+v", again.Kinds)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM plan_items"); n != 3 {
		t.Errorf("plan items = %d, want 3", n)
	}
}

func TestCatalogueConstraintsInSQL(t *testing.T) {
	d := seededCatalogue(t)
	ctx := context.Background()
	// SQLite's CHECK (typeof(price_cents) = 'integer') refuses 1.5. On
	// PostgreSQL price_cents is BIGINT, and the assignment cast rounds a
	// numeric 1.5 to 2 before any CHECK sees it (the store writes int64
	// only); a fraction given as text is refused by the type itself.
	fraction := "1.5"
	if testOnPostgres() {
		fraction = "'1.5'"
	}
	for name, stmt := range map[string]string{
		"kind key in capitals":                 `INSERT INTO task_kinds VALUES ('Bad', 'T', 1, 'usd', '2026-01-01 00:00:00+00:00')`,
		"kind key with a space":                `INSERT INTO task_kinds VALUES ('a b', 'T', 1, 'usd', '2026-01-01 00:00:00+00:00')`,
		"kind key of digits":                   `INSERT INTO task_kinds VALUES ('42', 'T', 1, 'usd', '2026-01-01 00:00:00+00:00')`,
		"plan key from a digit":                `INSERT INTO plans VALUES ('1p', 'P', 'usd', 'once', 3, 1, '2026-01-01 00:00:00+00:00')`,
		"empty title":                          `INSERT INTO task_kinds VALUES ('k', '', 1, 'usd', '2026-01-01 00:00:00+00:00')`,
		"negative price":                       `INSERT INTO task_kinds VALUES ('k', 'T', -1, 'usd', '2026-01-01 00:00:00+00:00')`,
		"fractional price":                     `INSERT INTO task_kinds VALUES ('k', 'T', ` + fraction + `, 'usd', '2026-01-01 00:00:00+00:00')`,
		"price over Stripe's max":              `INSERT INTO task_kinds VALUES ('k', 'T', 100000000, 'usd', '2026-01-01 00:00:00+00:00')`,
		"upper-case currency":                  `INSERT INTO task_kinds VALUES ('k', 'T', 1, 'USD', '2026-01-01 00:00:00+00:00')`,
		"two-letter currency":                  `INSERT INTO task_kinds VALUES ('k', 'T', 1, 'us', '2026-01-01 00:00:00+00:00')`,
		"weekly billing":                       `INSERT INTO plans VALUES ('p', 'P', 'usd', 'weekly', 3, 1, '2026-01-01 00:00:00+00:00')`,
		"negative position":                    `INSERT INTO plans VALUES ('p', 'P', 'usd', 'once', -1, 1, '2026-01-01 00:00:00+00:00')`,
		"active is not a boolean":              `INSERT INTO plans VALUES ('p', 'P', 'usd', 'once', 3, 2, '2026-01-01 00:00:00+00:00')`,
		"item of an unknown kind":              `INSERT INTO plan_items VALUES ('starter', 9, 'astrology', 'usd')`,
		"item of an unknown plan":              `INSERT INTO plan_items VALUES ('platinum', 1, 'outreach_copy_pack', 'usd')`,
		"item in another currency of its plan": `INSERT INTO plan_items VALUES ('starter', 9, 'outreach_copy_pack', 'eur')`,
		"niche not lower-case":                 `INSERT INTO plan_niches VALUES ('starter', 'Dentists')`,
		"niche with spaces around":             `INSERT INTO plan_niches VALUES ('starter', ' dentists')`,
		"niche of an unknown plan":             `INSERT INTO plan_niches VALUES ('platinum', 'dentists')`,
		"a kind a plan uses, deleted":          `DELETE FROM task_kinds WHERE kind = 'outreach_copy_pack'`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := d.Bun().ExecContext(ctx, stmt); err == nil {
				t.Fatalf("accepted: %s", stmt)
			}
		})
	}
	// A kind in eur and a plan of it in eur are fine; mixing is not.
	if _, err := d.Bun().ExecContext(ctx, `INSERT INTO task_kinds VALUES ('euro_kind', 'T', 1, 'eur', '2026-01-01 00:00:00+00:00')`); err != nil {
		t.Fatal(err)
	}
	err := d.AddPlan(ctx, CataloguePlan{Name: "mixed", Title: "Mixed", Currency: "usd", Billing: BillingOnce, Kinds: []string{"euro_kind"}})
	if !errors.Is(err, ErrBadCatalogue) {
		t.Errorf("a usd plan of an eur kind: %v", err)
	}

	// A customer's plan changes only to a stored plan.
	c, _, err := d.CreateCustomer(ctx, nil, NewCustomer{Company: "Acme", ContactEmail: "a@acme.example", Plan: "legacy"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Bun().ExecContext(ctx, "UPDATE customers SET plan = 'platinum' WHERE id = ?", c.ID); err == nil ||
		!strings.Contains(err.Error(), "unknown plan") {
		t.Errorf("customer moved to an unknown plan: %v", err)
	}
	if _, err := d.Bun().ExecContext(ctx, "UPDATE customers SET plan = 'starter' WHERE id = ?", c.ID); err != nil {
		t.Errorf("customer moved to a stored plan: %v", err)
	}
}

func TestPlanEditsAndTheirErrors(t *testing.T) {
	d := seededCatalogue(t)
	ctx := context.Background()
	if _, err := d.UpdateTaskKind(ctx, "astrology", "Stars", 100); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
	if err := d.AddPlan(ctx, CataloguePlan{Name: "starter", Title: "Again", Currency: "usd", Billing: BillingOnce, Kinds: []string{"outreach_copy_pack"}}); !errors.Is(err, ErrPlanExists) {
		t.Errorf("duplicate plan: %v", err)
	}
	if err := d.AddPlan(ctx, CataloguePlan{Name: "empty", Title: "Empty", Currency: "usd", Billing: BillingOnce}); !errors.Is(err, ErrEmptyPlan) {
		t.Errorf("empty plan: %v", err)
	}
	if err := d.AddPlan(ctx, CataloguePlan{Name: "stars", Title: "Stars", Currency: "usd", Billing: BillingOnce, Kinds: []string{"astrology"}}); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("plan of an unknown kind: %v", err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM plans"); n != 2 {
		t.Fatalf("refused plans were stored: %d plans", n)
	}
	if err := d.AddPlan(ctx, CataloguePlan{Name: "duo", Title: "Duo", Currency: "usd", Billing: BillingOnce,
		Kinds: []string{"outreach_copy_pack", "outreach_copy_pack"}, Niches: []string{"Law firm", "law firm"}}); err != nil {
		t.Fatal(err)
	}
	cat, _ := d.ReadCatalogue(ctx)
	if p := cat.Plans[2]; p.Name != "duo" || p.Position != 3 || !p.Active || len(p.Kinds) != 2 || !slices.Equal(p.Niches, []string{"law firm"}) {
		t.Errorf("added plan = %+v", p)
	}
	// An update that fails changes nothing.
	if _, err := d.UpdatePlan(ctx, CataloguePlan{Name: "duo", Title: "Duo", Billing: BillingOnce}); !errors.Is(err, ErrEmptyPlan) {
		t.Errorf("emptied plan: %v", err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM plan_items WHERE plan = 'duo'"); n != 2 {
		t.Errorf("duo items after a refused update = %d", n)
	}
	if _, err := d.UpdatePlan(ctx, CataloguePlan{Name: "nope", Title: "N", Billing: BillingOnce, Kinds: []string{"outreach_copy_pack"}}); !errors.Is(err, ErrUnknownPlan) {
		t.Errorf("unknown plan: %v", err)
	}
	// The last active plan stays active.
	for _, name := range []string{"starter", "retainer"} {
		if err := d.SetPlanActive(ctx, name, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SetPlanActive(ctx, "duo", false); !errors.Is(err, ErrLastActivePlan) {
		t.Errorf("last active plan deactivated: %v", err)
	}
	if err := d.SetPlanActive(ctx, "starter", true); err != nil {
		t.Fatal(err)
	}
}

func TestAddMonthKeepsTheDayOrTakesTheMonthsLast(t *testing.T) {
	for in, want := range map[string]string{
		"2026-01-15T09:30:00Z": "2026-02-15T09:30:00Z",
		"2026-01-31T09:30:00Z": "2026-02-28T09:30:00Z",
		"2028-01-31T00:00:00Z": "2028-02-29T00:00:00Z",
		"2026-12-31T23:59:59Z": "2027-01-31T23:59:59Z",
		"2026-03-31T12:00:00Z": "2026-04-30T12:00:00Z",
	} {
		at, _ := time.Parse(time.RFC3339, in)
		if got := AddMonth(at.Add(400 * time.Millisecond)).Format(time.RFC3339Nano); got != want {
			t.Errorf("AddMonth(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCustomerPlanChangeAndPeriods(t *testing.T) {
	d := seededCatalogue(t)
	ctx := context.Background()
	now := fixedNow.Truncate(time.Second)
	c, _, err := d.CreateCustomer(ctx, nil, NewCustomer{Company: "Acme", ContactEmail: "a@acme.example", Plan: "starter"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.SetCustomerPlan(ctx, c.ID, "platinum", now); !errors.Is(err, ErrUnknownPlan) {
		t.Errorf("unknown plan: %v", err)
	}
	if _, err := d.SetCustomerPlan(ctx, 999, "starter", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown customer: %v", err)
	}
	// To monthly: the first period is due at once.
	ch, err := d.SetCustomerPlan(ctx, c.ID, "retainer", now)
	if err != nil || ch.Old != "starter" || ch.New != "retainer" || ch.NextPeriodAt == nil || !ch.NextPeriodAt.Equal(now) {
		t.Fatalf("to retainer = %+v, %v", ch, err)
	}
	due, err := d.DuePeriods(ctx, now, 10)
	if err != nil || len(due) != 1 || due[0].ID != c.ID {
		t.Fatalf("DuePeriods = %+v, %v", due, err)
	}
	if early, _ := d.DuePeriods(ctx, now.Add(-time.Second), 10); len(early) != 0 {
		t.Errorf("due before its time: %+v", early)
	}
	next := AddMonth(now)
	open := PeriodOpening{CustomerID: c.ID, Plan: "retainer", Due: *due[0].NextPeriodAt, Next: &next,
		Tasks: []NewTask{{Kind: "outreach_copy_pack", Description: "Copy", Currency: "usd", RewardCents: 12000}}}
	opened, tasks, err := d.OpenPeriod(ctx, open, now)
	if err != nil || !opened || len(tasks) != 1 {
		t.Fatalf("OpenPeriod = %v, %d tasks, %v", opened, len(tasks), err)
	}
	// The same period again (a second run, a concurrent one): nothing.
	if opened, _, err := d.OpenPeriod(ctx, open, now); err != nil || opened {
		t.Errorf("second OpenPeriod = %v, %v", opened, err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM tasks WHERE customer_id = ?", c.ID); n != 1 {
		t.Errorf("tasks = %d, want 1", n)
	}
	// Plan changed between reading and opening: nothing.
	stale := open
	stale.Due, stale.Plan = next, "starter"
	if opened, _, _ := d.OpenPeriod(ctx, stale, now); opened {
		t.Error("a period of a plan the customer left was opened")
	}
	// Monthly to monthly keeps the period; to once stops it.
	if err := d.AddPlan(ctx, CataloguePlan{Name: "retainer_plus", Title: "Retainer+", Currency: "usd", Billing: BillingMonthly, Kinds: []string{"market_research_brief"}}); err != nil {
		t.Fatal(err)
	}
	ch, err = d.SetCustomerPlan(ctx, c.ID, "retainer_plus", now)
	if err != nil || ch.NextPeriodAt == nil || !ch.NextPeriodAt.Equal(next) {
		t.Errorf("to retainer_plus = %+v, %v", ch, err)
	}
	if ch, err = d.SetCustomerPlan(ctx, c.ID, "starter", now); err != nil || ch.NextPeriodAt != nil {
		t.Errorf("to starter = %+v, %v", ch, err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM customers WHERE next_period_at IS NOT NULL"); n != 0 {
		t.Errorf("periods left after the move to a one-off plan: %d", n)
	}
	// Only an active plan may be chosen.
	if err := d.SetPlanActive(ctx, "retainer", false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SetCustomerPlan(ctx, c.ID, "retainer", now); !errors.Is(err, ErrPlanInactive) {
		t.Errorf("inactive plan chosen: %v", err)
	}
	// Turning a plan monthly starts its active customers' periods a month on.
	if _, err := d.UpdatePlan(ctx, CataloguePlan{Name: "starter", Title: "Starter", Billing: BillingMonthly, Kinds: []string{"market_research_brief"}}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM customers WHERE id = ? AND next_period_at = ?", c.ID, AddMonth(fixedNow)); n != 1 {
		t.Error("the customers of a plan turned monthly have no period")
	}
}

func TestConvertLeadOnMonthlyPlanSetsTheNextPeriod(t *testing.T) {
	d := seededCatalogue(t)
	ctx := context.Background()
	l, err := d.CreateLead(ctx, nil, NewLead{Email: "pat@dental.example", Company: "Dental", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Bun().ExecContext(ctx, "UPDATE leads SET status = 'responded', responded_at = ? WHERE id = ?", fixedNow, l.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	conv, err := d.ConvertLeadOnPlan(ctx, l.ID, PlanChoice{Plan: "retainer", Monthly: true,
		Tasks: []NewTask{{Kind: "outreach_copy_pack", Currency: "usd", RewardCents: 12000}}}, now, rand.Reader)
	if err != nil || conv.Outcome != ConversionCreated {
		t.Fatalf("ConvertLeadOnPlan = %+v, %v", conv, err)
	}
	var c Customer
	if err := d.Bun().NewSelect().Model(&c).Where("c.id = ?", conv.Customer.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Plan != "retainer" || c.NextPeriodAt == nil || !c.NextPeriodAt.Equal(time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("customer = plan %s, next period %v", c.Plan, c.NextPeriodAt)
	}
}
