// Package agents runs HossAgent's business: one long-lived actor per agent
// of the Registry (lead source, BizDev, Onboarding, Ops, Billing) under a
// suture supervisor tree, a coordinator that sequences them on the
// autopilot, and the cycles each one runs against the store. It defines the
// ports those cycles drive (Mailer, LeadProvider, Executor, PaymentLinks,
// PaymentEvents) with their dependency-free implementations; the vendor
// adapters live in the sub-packages smtp, sendgrid, searchapi, stripe and
// openai, which only main imports.
//
// agents imports db and never app.
package agents

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// Agent names, as the cycle log, the routes and the events know them.
const (
	LeadSource  = "lead_source"
	BizDev      = "bizdev"
	Onboarding  = "onboarding"
	Ops         = "ops"
	Billing     = "billing"
	Collections = "collections"
	Replies     = "replies"
)

// Agent is one entry of the Registry.
type Agent struct {
	Name  string // as the cycle log, the routes and the events know it
	Title string // as the control room's cards and buttons show it
}

// Registry is every agent, in autopilot order: the one list the engine (one
// actor each, refusing an agent without a cycle), the coordinator (the order
// of the stages), the control room's cards and its run buttons read. A new
// agent is one line here and its cycle in the engine's Cycles.
var Registry = []Agent{
	{LeadSource, "Lead source"},
	{BizDev, "BizDev"},
	{Replies, "Replies"},
	{Onboarding, "Onboarding"},
	{Ops, "Ops"},
	{Billing, "Billing"},
	{Collections, "Collections"},
}

// Pipeline is the Registry's names: the autopilot's order of stages.
var Pipeline = agentNames(Registry)

// Lookup finds the agent of the Registry named name.
func Lookup(name string) (Agent, bool) {
	for _, a := range Registry {
		if a.Name == name {
			return a, true
		}
	}
	return Agent{}, false
}

func agentNames(list []Agent) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Name
	}
	return out
}

// Counts is what a cycle did, by name ("created": 3, "duplicates": 1).
type Counts map[string]int

// Cycle is one agent's unit of work. A cycle is safe to run again at any
// time and concurrently with itself: its state lives in the database, each
// step is one transaction, and selection is ordered and bounded.
type Cycle interface {
	// Run does one bounded pass of work and reports what it did. An error
	// means the pass failed as a whole; work already committed stays.
	Run(ctx context.Context) (Counts, error)
}

// CycleFunc adapts a function to Cycle.
type CycleFunc func(ctx context.Context) (Counts, error)

// Run calls f.
func (f CycleFunc) Run(ctx context.Context) (Counts, error) { return f(ctx) }

// Env is what every cycle is built with: the clock, the random source and
// the event publisher. Tests inject a fixed clock, a seeded random source and
// a bus they listen to.
type Env struct {
	Now    func() time.Time
	Random io.Reader // crypto-quality randomness (tokens); tests may seed it
	Rand   RandSource
	Events Publisher
}

// RandSource is the small part of math/rand/v2 the cycles use, so tests can
// seed it and production can use a locked global source.
type RandSource interface {
	IntN(n int) int
	Float64() float64
}

// Publisher takes events for the in-process bus. Publish never blocks.
type Publisher interface {
	Publish(e Event)
}

// Sequence runs cycles one after another as one cycle, merging their counts.
// Onboarding uses it in development to let the prospect simulator answer
// before leads are converted. The first error stops the sequence.
func Sequence(cycles ...Cycle) Cycle {
	return CycleFunc(func(ctx context.Context) (Counts, error) {
		all := Counts{}
		for _, c := range cycles {
			counts, err := c.Run(ctx)
			for k, v := range counts {
				all[k] += v
			}
			if err != nil {
				return all, err
			}
		}
		return all, nil
	})
}

// LockedRand makes a math/rand/v2 generator safe for the agents' goroutines.
type LockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

// NewLockedRand wraps r.
func NewLockedRand(r *rand.Rand) *LockedRand { return &LockedRand{r: r} }

// IntN returns a number in [0, n).
func (l *LockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// Float64 returns a number in [0, 1).
func (l *LockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}
