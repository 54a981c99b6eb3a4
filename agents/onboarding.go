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
	MaxPerCycle int    // leads converted per cycle; default 5
	Plan        string // the plan new customers get; default "starter"

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
	if o.Plan == "" {
		o.Plan = PlanStarter
	}
	return o
}

// OnboardingCycle turns leads that answered into customers: each gets a
// portal token, is linked to its lead, and has its plan's tasks opened.
type OnboardingCycle struct {
	store     *db.DB
	env       Env
	catalogue Catalogue
	opts      OnboardingOptions
}

// NewOnboardingCycle builds the onboarding cycle.
func NewOnboardingCycle(store *db.DB, env Env, catalogue Catalogue, opts OnboardingOptions) *OnboardingCycle {
	return &OnboardingCycle{store: store, env: env, catalogue: catalogue, opts: opts.withDefaults()}
}

// Run converts up to MaxPerCycle responded leads, the ones that answered
// first first, each in its own transaction. Only responded leads are ever
// converted (the prototype converted any contacted lead). A lead whose
// e-mail already belongs to a customer is marked converted without a second
// customer (the prototype deadlocked there); a lead without an e-mail is
// marked dead. A lead that fails to convert does not stop the others.
func (c *OnboardingCycle) Run(ctx context.Context) (Counts, error) {
	counts := Counts{"converted": 0, "already_customer": 0, "no_email": 0}
	if err := c.catalogue.Validate(); err != nil {
		return counts, fmt.Errorf("onboarding: %w", err)
	}
	if _, ok := c.catalogue.Plan(c.opts.Plan); !ok {
		return counts, fmt.Errorf("onboarding: plan %q is not in the catalogue", c.opts.Plan)
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
		if err := c.convert(ctx, lead, counts); err != nil {
			counts["failed"]++
			errs = append(errs, err)
		}
	}
	changed := counts["converted"] + counts["already_customer"] + counts["no_email"]
	announceChanges(c.env, Onboarding, counts, changed > 0, false)
	if err := errors.Join(errs...); err != nil {
		return counts, fmt.Errorf("onboarding: %w", err)
	}
	return counts, nil
}

func (c *OnboardingCycle) convert(ctx context.Context, lead db.Lead, counts Counts) error {
	tasks, err := c.catalogue.PlanTasks(c.opts.Plan, lead.Company)
	if err != nil {
		return err
	}
	conv, err := c.store.ConvertLead(ctx, lead.ID, c.opts.Plan, tasks, c.env.Now(), c.env.Random)
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
