package agents

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/hossagent/hossagent/db"
)

// OnboardingOptions configure the onboarding cycle. Zero values take the
// defaults.
type OnboardingOptions struct {
	MaxPerCycle int // leads converted per cycle; default 5
	// Plan names the default plan, the one a lead whose niche no active
	// plan lists gets, when it is active; "" (the default) takes the first
	// active plan by position. A name the catalogue lacks is an error.
	Plan string
	// MaxPeriodsPerCycle bounds the monthly periods opened per cycle;
	// default 20. A customer behind by several periods (the engine was
	// down) has one opened per cycle.
	MaxPeriodsPerCycle int

	// Welcome, when set, is called after each new customer is committed with
	// its plain portal token, the only moment the token exists outside the
	// link (the store keeps its hash). It is where a welcome e-mail carrying
	// the portal link is sent from. It must not block for long.
	Welcome func(ctx context.Context, c db.Customer, portalToken string)
}

func (o OnboardingOptions) withDefaults() OnboardingOptions {
	if o.MaxPerCycle <= 0 {
		o.MaxPerCycle = 5
	}
	if o.MaxPeriodsPerCycle <= 0 {
		o.MaxPeriodsPerCycle = 20
	}
	return o
}

// OnboardingCycle turns leads that answered into customers: each gets a
// portal token, is linked to its lead, is put on the plan its niche picks
// (Catalogue.PlanFor) and has the plan's tasks opened. It also opens the
// next period of every customer on a monthly plan whose period is due.
//
// The catalogue is the stored one, read at the start of every run, so an
// admin's edit applies from the next cycle on; a store without a catalogue
// is first seeded with the one the cycle was built with.
type OnboardingCycle struct {
	store *db.DB
	env   Env
	seed  Catalogue
	opts  OnboardingOptions
}

// NewOnboardingCycle builds the onboarding cycle; seed is the catalogue the
// store is given when it holds none (DefaultCatalogue).
func NewOnboardingCycle(store *db.DB, env Env, seed Catalogue, opts OnboardingOptions) *OnboardingCycle {
	return &OnboardingCycle{store: store, env: env, seed: seed, opts: opts.withDefaults()}
}

// Run converts up to MaxPerCycle responded leads, the ones that answered
// first first, each in its own transaction, then opens up to
// MaxPeriodsPerCycle due monthly periods, one transaction per customer.
// Only responded leads are ever converted (the prototype converted any
// contacted lead). A lead whose e-mail already belongs to a customer is
// marked converted without a second customer (the prototype deadlocked
// there); a lead without an e-mail is marked dead. A lead or period that
// fails does not stop the others.
func (c *OnboardingCycle) Run(ctx context.Context) (Counts, error) {
	counts := Counts{"converted": 0, "already_customer": 0, "no_email": 0, "periods_opened": 0}
	cat, err := c.catalogue(ctx)
	if err != nil {
		return counts, fmt.Errorf("onboarding: %w", err)
	}
	if c.opts.Plan != "" {
		if _, ok := cat.Plan(c.opts.Plan); !ok {
			return counts, fmt.Errorf("onboarding: plan %q is not in the catalogue", c.opts.Plan)
		}
	}
	leads, err := c.store.RespondedLeads(ctx, c.opts.MaxPerCycle)
	if err != nil {
		return counts, fmt.Errorf("onboarding: %w", err)
	}
	var errs []error
	for _, lead := range leads {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if err := c.convert(ctx, cat, lead, counts); err != nil {
			counts["failed"]++
			errs = append(errs, err)
		}
	}
	if ctx.Err() == nil {
		errs = append(errs, c.openPeriods(ctx, cat, counts))
	}
	changed := counts["converted"] + counts["already_customer"] + counts["no_email"] + counts["periods_opened"] + counts["periods_stopped"]
	announceChanges(c.env, Onboarding, counts, changed > 0, false)
	if err := errors.Join(errs...); err != nil {
		return counts, fmt.Errorf("onboarding: %w", err)
	}
	return counts, nil
}

// catalogue reads the stored catalogue, seeding the store first when it
// holds none.
func (c *OnboardingCycle) catalogue(ctx context.Context) (Catalogue, error) {
	cat, err := LoadCatalogue(ctx, c.store)
	if !errors.Is(err, ErrNoCatalogue) {
		return cat, err
	}
	if _, err := SeedCatalogue(ctx, c.store, c.seed); err != nil {
		return Catalogue{}, err
	}
	return LoadCatalogue(ctx, c.store)
}

func (c *OnboardingCycle) convert(ctx context.Context, cat Catalogue, lead db.Lead, counts Counts) error {
	plan, ok := cat.PlanFor(lead.Niche, c.opts.Plan)
	if !ok {
		return errors.New("catalogue: no plan is active")
	}
	tasks, err := cat.PlanTasks(plan.Name, lead.Company)
	if err != nil {
		return err
	}
	conv, err := c.store.ConvertLeadOnPlan(ctx, lead.ID, db.PlanChoice{Plan: plan.Name, Tasks: tasks, Monthly: plan.Monthly()}, c.env.Now(), c.env.Random)
	if err != nil {
		return err
	}
	switch conv.Outcome {
	case db.ConversionCreated:
		counts["converted"]++
		if c.opts.Welcome != nil {
			c.opts.Welcome(ctx, *conv.Customer, conv.PortalToken)
		}
	case db.ConversionAlreadyCustomer:
		counts["already_customer"]++
	case db.ConversionNoEmail:
		counts["no_email"]++
	}
	return nil
}

// openPeriods opens the due monthly periods: for each customer whose
// next_period_at has come (at most MaxPeriodsPerCycle, the most overdue
// first), its plan's tasks at today's prices, and next_period_at one
// calendar month on, in one transaction (db.OpenPeriod), which opens
// nothing when the period was opened already. A paused customer's period
// passes without tasks; a closed customer's periods, and those of a plan
// no longer monthly or no longer in the catalogue, stop.
func (c *OnboardingCycle) openPeriods(ctx context.Context, cat Catalogue, counts Counts) error {
	now := c.env.Now()
	due, err := c.store.DuePeriods(ctx, now, c.opts.MaxPeriodsPerCycle)
	if err != nil {
		return err
	}
	var errs []error
	for _, cu := range due {
		if ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
		period := *cu.NextPeriodAt
		p := db.PeriodOpening{CustomerID: cu.ID, Plan: cu.Plan, Due: period}
		plan, ok := cat.Plan(cu.Plan)
		stop := !ok || !plan.Monthly() || cu.Status == db.CustomerClosed
		if !stop {
			next := db.AddMonth(period)
			p.Next = &next
			if cu.Status == db.CustomerActive {
				if p.Tasks, err = cat.PeriodTasks(cu.Plan, cu.Company, period); err != nil {
					errs = append(errs, err)
					continue
				}
			}
		}
		opened, _, err := c.store.OpenPeriod(ctx, p, now)
		switch {
		case err != nil:
			counts["failed"]++
			errs = append(errs, err)
		case opened && stop:
			counts["periods_stopped"]++
		case opened && len(p.Tasks) > 0:
			counts["periods_opened"]++
		case opened:
			counts["periods_skipped"]++
		}
	}
	return errors.Join(errs...)
}

// announceChanges tells the bus what a fulfilment cycle changed: data (rows
// the views show) and money (profit or invoices). Nothing is published for a
// cycle that changed nothing, so idle cycles cause no page refreshes.
func announceChanges(env Env, agent string, counts Counts, data, money bool) {
	if env.Events == nil || (!data && !money) {
		return
	}
	at := env.Now()
	if money {
		env.Events.Publish(Event{Kind: EventMoneyChanged, Agent: agent, At: at, Counts: maps.Clone(counts)})
	}
	env.Events.Publish(Event{Kind: EventDataChanged, Agent: agent, At: at, Counts: maps.Clone(counts)})
}
