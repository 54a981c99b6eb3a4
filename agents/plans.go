package agents

import (
	"errors"
	"fmt"
	"math"

	"github.com/hossagent/hossagent/db"
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
	// Price is in whole units of the catalogue currency (dollars for usd):
	// the business sells at round prices, and whole units convert to cents
	// exactly.
	Price int64
}

// RewardCents is the price in minor units: Price × 100, exactly.
func (k TaskKind) RewardCents() int64 { return k.Price * 100 }

// Plan is what a new customer signs up for: the tasks opened on conversion,
// one of each kind listed.
type Plan struct {
	Name  string
	Kinds []string
}

// Catalogue is the price list: the task kinds with their prices in one
// currency, and the plans made of them. main builds it (DefaultCatalogue or
// the operator's own) and hands it to onboarding.
type Catalogue struct {
	Currency string // ISO 4217, lower case
	Kinds    []TaskKind
	Plans    []Plan
}

// DefaultCatalogue is the prototype's price list in currency: four kinds of
// work, a "starter" plan (research brief and copy pack) and a "growth" plan
// (all four).
func DefaultCatalogue(currency string) Catalogue {
	return Catalogue{
		Currency: currency,
		Kinds: []TaskKind{
			{Kind: KindMarketResearch, Name: "Market research brief", Price: 150},
			{Kind: KindCompetitiveLandscape, Name: "Competitive landscape review", Price: 200},
			{Kind: KindLeadEnrichment, Name: "Lead list enrichment", Price: 90},
			{Kind: KindOutreachCopy, Name: "Outreach copy pack", Price: 120},
		},
		Plans: []Plan{
			{Name: PlanStarter, Kinds: []string{KindMarketResearch, KindOutreachCopy}},
			{Name: PlanGrowth, Kinds: []string{KindMarketResearch, KindCompetitiveLandscape, KindLeadEnrichment, KindOutreachCopy}},
		},
	}
}

// Validate reports every problem of the catalogue at once: a currency that is
// not a lower-case three-letter code, a kind without a key, a duplicate kind
// or plan, a negative price or one too large to hold in cents, a plan
// without tasks or naming an unknown kind.
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
		case k.Price < 0:
			errs = append(errs, fmt.Errorf("catalogue: task kind %q has a negative price (%d)", k.Kind, k.Price))
		case k.Price > math.MaxInt64/100:
			errs = append(errs, fmt.Errorf("catalogue: task kind %q price %d does not fit in cents", k.Kind, k.Price))
		}
		kinds[k.Kind] = true
	}
	plans := map[string]bool{}
	for _, p := range c.Plans {
		switch {
		case p.Name == "":
			errs = append(errs, errors.New("catalogue: a plan has no name"))
		case plans[p.Name]:
			errs = append(errs, fmt.Errorf("catalogue: plan %q is listed twice", p.Name))
		case len(p.Kinds) == 0:
			errs = append(errs, fmt.Errorf("catalogue: plan %q has no tasks", p.Name))
		}
		plans[p.Name] = true
		for _, k := range p.Kinds {
			if !kinds[k] {
				errs = append(errs, fmt.Errorf("catalogue: plan %q names unknown task kind %q", p.Name, k))
			}
		}
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

// PlanTasks is the tasks a new customer of company on plan gets: one per kind
// of the plan, pending, at the catalogue's price.
func (c Catalogue) PlanTasks(plan, company string) ([]db.NewTask, error) {
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
			Kind: k.Kind, Description: name + " for " + company,
			Currency: c.Currency, RewardCents: k.RewardCents(),
		})
	}
	return tasks, nil
}
