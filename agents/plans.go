package agents

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/db/money"
)

// Task kinds of the default catalogue. The kind is the stable key stored on
// each task; what a customer reads is the kind's Name.
const (
	KindMarketResearch       = "market_research_brief"
	KindCompetitiveLandscape = "competitive_landscape_review"
	KindLeadEnrichment       = "lead_list_enrichment"
	KindOutreachCopy         = "outreach_copy_pack"
)

// Plans of the default catalogue.
const (
	PlanStarter = "starter"
	PlanGrowth  = "growth"
)

// TaskKind is one kind of work the business sells, at a fixed price.
type TaskKind struct {
	Kind string // stable key stored on tasks
	Name string // what the customer reads on the portal and the invoice
	// PriceCents is the price in minor units of the catalogue currency
	// (cents for usd), exact: the admin types "150.50" and the store keeps
	// 15050 (money.ParseCents), never a float.
	PriceCents int64
}

// RewardCents is the price in minor units, the reward of a task of this
// kind.
func (k TaskKind) RewardCents() int64 { return k.PriceCents }

// Plan is what a customer is on: the tasks opened on conversion, one of
// each kind listed (a kind may be listed twice), and again every calendar
// month on a monthly plan.
type Plan struct {
	Name  string // stable key stored on customers.plan
	Title string // what people read; Name when empty
	Kinds []string
	// Billing is db.BillingOnce (or "") or db.BillingMonthly.
	Billing string
	// Niches are the lead niches (db.NormalNiche) the plan is chosen for at
	// conversion; none: chosen only as the default.
	Niches []string
	// Inactive plans are not chosen for new customers; their customers keep
	// them.
	Inactive bool
}

// Monthly reports whether the plan opens its tasks again every month.
func (p Plan) Monthly() bool { return p.Billing == db.BillingMonthly }

// DisplayTitle is the plan's title, or its name when it has none.
func (p Plan) DisplayTitle() string {
	if p.Title != "" {
		return p.Title
	}
	return p.Name
}

// Catalogue is the price list: the task kinds with their prices in one
// currency, and the plans made of them, in position order. It is stored
// (db/plans.go): main seeds it from DefaultCatalogue once (SeedCatalogue),
// the admin edits it, and the cycles read it with LoadCatalogue.
type Catalogue struct {
	Currency string // ISO 4217, lower case
	Kinds    []TaskKind
	Plans    []Plan
}

// DefaultCatalogue is the prototype's price list in currency: four kinds of
// work, a "starter" plan (research brief and copy pack) and a "growth" plan
// (all four), both one-off.
func DefaultCatalogue(currency string) Catalogue {
	return Catalogue{
		Currency: currency,
		Kinds: []TaskKind{
			{Kind: KindMarketResearch, Name: "Market research brief", PriceCents: 150_00},
			{Kind: KindCompetitiveLandscape, Name: "Competitive landscape review", PriceCents: 200_00},
			{Kind: KindLeadEnrichment, Name: "Lead list enrichment", PriceCents: 90_00},
			{Kind: KindOutreachCopy, Name: "Outreach copy pack", PriceCents: 120_00},
		},
		Plans: []Plan{
			{Name: PlanStarter, Title: "Starter", Billing: db.BillingOnce, Kinds: []string{KindMarketResearch, KindOutreachCopy}},
			{Name: PlanGrowth, Title: "Growth", Billing: db.BillingOnce, Kinds: []string{KindMarketResearch, KindCompetitiveLandscape, KindLeadEnrichment, KindOutreachCopy}},
		},
	}
}

// Validate reports every problem of the catalogue at once: a currency that is
// not a lower-case three-letter code, a kind without a key, a duplicate kind
// or plan, a negative price or one over money.MaxPriceCents, a plan
// without tasks, naming an unknown kind or with an unknown billing, and a
// catalogue without an active plan.
func (c Catalogue) Validate() error {
	var errs []error
	if !isCatalogueCurrency(c.Currency) {
		errs = append(errs, fmt.Errorf("catalogue: currency %q is not a lower-case ISO 4217 code", c.Currency))
	}
	kinds := map[string]bool{}
	for _, k := range c.Kinds {
		switch {
		case k.Kind == "":
			errs = append(errs, errors.New("catalogue: a task kind has no key"))
		case kinds[k.Kind]:
			errs = append(errs, fmt.Errorf("catalogue: task kind %q is listed twice", k.Kind))
		case k.PriceCents < 0:
			errs = append(errs, fmt.Errorf("catalogue: task kind %q has a negative price (%d cents)", k.Kind, k.PriceCents))
		case k.PriceCents > money.MaxPriceCents:
			errs = append(errs, fmt.Errorf("catalogue: task kind %q price of %d cents is over the largest price (%d cents)", k.Kind, k.PriceCents, money.MaxPriceCents))
		}
		kinds[k.Kind] = true
	}
	plans := map[string]bool{}
	active := 0
	for _, p := range c.Plans {
		switch {
		case p.Name == "":
			errs = append(errs, errors.New("catalogue: a plan has no name"))
		case plans[p.Name]:
			errs = append(errs, fmt.Errorf("catalogue: plan %q is listed twice", p.Name))
		case len(p.Kinds) == 0:
			errs = append(errs, fmt.Errorf("catalogue: plan %q has no tasks", p.Name))
		case p.Billing != "" && p.Billing != db.BillingOnce && p.Billing != db.BillingMonthly:
			errs = append(errs, fmt.Errorf("catalogue: plan %q has billing %q (once or monthly)", p.Name, p.Billing))
		}
		plans[p.Name] = true
		if !p.Inactive {
			active++
		}
		for _, k := range p.Kinds {
			if !kinds[k] {
				errs = append(errs, fmt.Errorf("catalogue: plan %q names unknown task kind %q", p.Name, k))
			}
		}
	}
	if len(c.Plans) > 0 && active == 0 {
		errs = append(errs, errors.New("catalogue: no plan is active"))
	}
	return errors.Join(errs...)
}

func isCatalogueCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

// PlanTasks is the tasks a new customer of company on plan gets: one per kind
// of the plan, pending, at the catalogue's price.
func (c Catalogue) PlanTasks(plan, company string) ([]db.NewTask, error) {
	return c.planTasks(plan, func(title string) string { return title + " for " + company })
}

// PeriodTasks is the tasks of the monthly period of plan that begins at
// period, for company: PlanTasks with the month in each description
// ("Market research brief for Acme, March 2026").
func (c Catalogue) PeriodTasks(plan, company string, period time.Time) ([]db.NewTask, error) {
	month := period.UTC().Format("January 2006")
	return c.planTasks(plan, func(title string) string { return title + " for " + company + ", " + month })
}

func (c Catalogue) planTasks(plan string, describe func(title string) string) ([]db.NewTask, error) {
	p, ok := c.Plan(plan)
	if !ok {
		return nil, fmt.Errorf("catalogue: unknown plan %q", plan)
	}
	tasks := make([]db.NewTask, 0, len(p.Kinds))
	for _, kind := range p.Kinds {
		k, ok := c.Kind(kind)
		if !ok {
			return nil, fmt.Errorf("catalogue: plan %q names unknown task kind %q", plan, kind)
		}
		name := k.Name
		if name == "" {
			name = k.Kind
		}
		tasks = append(tasks, db.NewTask{
			Kind: k.Kind, Description: describe(name),
			Currency: c.Currency, RewardCents: k.RewardCents(),
		})
	}
	return tasks, nil
}

// PlanFor is the plan a new customer from a lead in niche gets: the first
// active plan (in position order) whose niches include the niche (compared
// as db.NormalNiche), else the default plan: fallback when it names an
// active plan, else the first active plan by position. false when no plan
// is active.
func (c Catalogue) PlanFor(niche, fallback string) (Plan, bool) {
	if n := db.NormalNiche(niche); n != "" {
		for _, p := range c.Plans {
			if !p.Inactive && containsNiche(p.Niches, n) {
				return p, true
			}
		}
	}
	if p, ok := c.Plan(fallback); ok && !p.Inactive {
		return p, true
	}
	for _, p := range c.Plans {
		if !p.Inactive {
			return p, true
		}
	}
	return Plan{}, false
}

func containsNiche(niches []string, n string) bool {
	for _, x := range niches {
		if db.NormalNiche(x) == n {
			return true
		}
	}
	return false
}

// ErrNoCatalogue: the store holds no catalogue yet (SeedCatalogue was not
// called).
var ErrNoCatalogue = errors.New("catalogue: the store holds no catalogue")

// Data is the catalogue as the store keeps it.
func (c Catalogue) Data() db.CatalogueData {
	var d db.CatalogueData
	for _, k := range c.Kinds {
		d.Kinds = append(d.Kinds, db.CatalogueKind{Kind: k.Kind, Title: k.Name, PriceCents: k.PriceCents, Currency: c.Currency})
	}
	for i, p := range c.Plans {
		billing := p.Billing
		if billing == "" {
			billing = db.BillingOnce
		}
		d.Plans = append(d.Plans, db.CataloguePlan{
			Name: p.Name, Title: p.DisplayTitle(), Currency: c.Currency, Billing: billing,
			Position: int64(i + 1), Active: !p.Inactive, Kinds: p.Kinds, Niches: p.Niches,
		})
	}
	return d
}

// CatalogueFromData is the stored catalogue as the cycles read it,
// validated. Every kind and plan must be in one currency.
func CatalogueFromData(d db.CatalogueData) (Catalogue, error) {
	if len(d.Kinds) == 0 && len(d.Plans) == 0 {
		return Catalogue{}, ErrNoCatalogue
	}
	var c Catalogue
	var errs []error
	currency := func(what, cur string) {
		if c.Currency == "" {
			c.Currency = cur
		} else if cur != c.Currency {
			errs = append(errs, fmt.Errorf("catalogue: %s is in %s, the catalogue in %s", what, cur, c.Currency))
		}
	}
	for _, k := range d.Kinds {
		currency(fmt.Sprintf("task kind %q", k.Kind), k.Currency)
		c.Kinds = append(c.Kinds, TaskKind{Kind: k.Kind, Name: k.Title, PriceCents: k.PriceCents})
	}
	for _, p := range d.Plans {
		currency(fmt.Sprintf("plan %q", p.Name), p.Currency)
		c.Plans = append(c.Plans, Plan{Name: p.Name, Title: p.Title, Kinds: p.Kinds, Billing: p.Billing, Niches: p.Niches, Inactive: !p.Active})
	}
	errs = append(errs, c.Validate())
	if err := errors.Join(errs...); err != nil {
		return Catalogue{}, err
	}
	return c, nil
}

// SeedCatalogue stores c (validated) when the store holds no catalogue, and
// reports whether it did; an existing catalogue is never touched. main
// calls it at start with DefaultCatalogue(STRIPE_DEFAULT_CURRENCY).
func SeedCatalogue(ctx context.Context, store *db.DB, c Catalogue) (bool, error) {
	if err := c.Validate(); err != nil {
		return false, err
	}
	return store.SeedCatalogue(ctx, c.Data())
}

// LoadCatalogue reads the stored catalogue, validated; ErrNoCatalogue when
// there is none.
func LoadCatalogue(ctx context.Context, store *db.DB) (Catalogue, error) {
	d, err := store.ReadCatalogue(ctx)
	if err != nil {
		return Catalogue{}, err
	}
	return CatalogueFromData(d)
}

// Catalogues is the stored catalogue as the process holds it for readers
// that cannot query the store each time (the kind titles of documents and
// pages): loaded at start, reloaded after each admin edit (Reload). Safe
// for concurrent use.
type Catalogues struct {
	store *db.DB
	mu    sync.RWMutex
	cur   Catalogue
}

// NewCatalogues loads the stored catalogue (seeded first, see
// SeedCatalogue) into a holder.
func NewCatalogues(ctx context.Context, store *db.DB) (*Catalogues, error) {
	h := &Catalogues{store: store}
	if err := h.Reload(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// Reload reads the stored catalogue again; on an error the holder keeps
// what it had.
func (h *Catalogues) Reload(ctx context.Context) error {
	c, err := LoadCatalogue(ctx, h.store)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.cur = c
	h.mu.Unlock()
	return nil
}

// Current is the catalogue as last loaded.
func (h *Catalogues) Current() Catalogue {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cur
}

// Titles names kinds by the catalogue as it is when called (each call reads
// the holder), so a title edited in the admin shows once Reload ran.
func (h *Catalogues) Titles() KindTitles {
	return func(kind string) string { return h.Current().Titles()(kind) }
}

// Kind returns the task kind with key kind.
func (c Catalogue) Kind(kind string) (TaskKind, bool) {
	for _, k := range c.Kinds {
		if k.Kind == kind {
			return k, true
		}
	}
	return TaskKind{}, false
}

// Plan returns the plan called name.
func (c Catalogue) Plan(name string) (Plan, bool) {
	for _, p := range c.Plans {
		if p.Name == name {
			return p, true
		}
	}
	return Plan{}, false
}

// ActivePlans is the plans new customers may be put on, in position order.
func (c Catalogue) ActivePlans() []Plan {
	var out []Plan
	for _, p := range c.Plans {
		if !p.Inactive {
			out = append(out, p)
		}
	}
	return out
}

// Plans looks plans up by name in the catalogue as it is when called, for
// the welcome e-mail's "your plan".
func (h *Catalogues) Plans() func(name string) (Plan, bool) {
	return func(name string) (Plan, bool) { return h.Current().Plan(name) }
}
