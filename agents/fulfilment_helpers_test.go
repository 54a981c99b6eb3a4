package agents

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// fulfilmentRandom makes a seeded ChaCha8 stream safe to share between
// goroutines.
type fulfilmentRandom struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (l *fulfilmentRandom) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func (l *fulfilmentRandom) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return rand.New(l.r).IntN(n)
}

func (l *fulfilmentRandom) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return rand.New(l.r).Float64()
}

// fulfilmentSeed seeds every random stream of these tests.
var fulfilmentSeed = [32]byte{'h', 'o', 's', 's'}

// fulfilmentEvents is a publisher that keeps every event.
type fulfilmentEvents struct {
	mu     sync.Mutex
	events []Event
}

func (r *fulfilmentEvents) Publish(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// kinds counts the events by kind.
func (r *fulfilmentEvents) kinds() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, e := range r.events {
		out[e.Kind]++
	}
	return out
}

// fulfilmentWorld is a real SQLite store on a temporary file and the Env the
// cycles run with, sharing one fake clock.
type fulfilmentWorld struct {
	t      *testing.T
	ctx    context.Context
	store  *db.DB
	clock  *fakeClock
	env    Env
	events *fulfilmentEvents
}

func newFulfilmentWorld(t *testing.T) *fulfilmentWorld {
	t.Helper()
	clock := newFakeClock()
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), db.FileName), db.WithClock(clock.Now))
	if err != nil {
		t.Fatalf("db.Open: %v", err)
	}
	w := &fulfilmentWorld{t: t, ctx: ctx, store: store, clock: clock, events: &fulfilmentEvents{}}
	random := &fulfilmentRandom{r: rand.NewChaCha8(fulfilmentSeed)}
	w.env = Env{Now: clock.Now, Random: random, Rand: random, Events: w.events}
	t.Cleanup(func() {
		w.requireInvariants()
		_ = store.Close()
	})
	return w
}

// requireInvariants fails the test unless all eight invariants hold now.
func (w *fulfilmentWorld) requireInvariants() {
	w.t.Helper()
	results, err := w.store.CheckInvariants(w.ctx, w.clock.Now())
	if err != nil {
		w.t.Fatalf("CheckInvariants: %v", err)
	}
	if len(results) != 9 {
		w.t.Fatalf("CheckInvariants returned %d results, want 9", len(results))
	}
	for _, r := range results {
		if !r.OK() {
			w.t.Errorf("invariant %d (%s) broken: %q", r.Number, r.Name, r.Violations)
		}
	}
}

// lead stores a lead with status, answered (for responded leads) at the
// current time.
func (w *fulfilmentWorld) lead(n int, status string) *db.Lead {
	w.t.Helper()
	l, err := w.store.CreateLead(w.ctx, nil, db.NewLead{
		Name: fmt.Sprintf("Pat Contact%03d", n), Email: fmt.Sprintf("pat@lead%03d.example", n),
		Company: fmt.Sprintf("Lead %03d Ltd", n), DomainKey: fmt.Sprintf("lead%03d.example", n),
		Website: fmt.Sprintf("https://lead%03d.example", n), Niche: "dental clinics", Source: "test",
	})
	if err != nil {
		w.t.Fatalf("CreateLead: %v", err)
	}
	w.setLeadStatus(l, status)
	return l
}

func (w *fulfilmentWorld) setLeadStatus(l *db.Lead, status string) {
	w.t.Helper()
	now := w.clock.Now()
	l.Status = status
	if status == db.LeadResponded {
		l.RespondedAt = &now
	}
	if _, err := w.store.Bun().NewUpdate().Model(l).Column("status", "responded_at").WherePK().Exec(w.ctx); err != nil {
		w.t.Fatalf("set lead status: %v", err)
	}
}

// customer stores a customer directly (not through onboarding).
func (w *fulfilmentWorld) customer(n int) *db.Customer {
	w.t.Helper()
	c, _, err := w.store.CreateCustomer(w.ctx, nil, db.NewCustomer{
		Company: fmt.Sprintf("Customer %03d", n), ContactEmail: fmt.Sprintf("billing@customer%03d.example", n), Plan: PlanStarter,
	}, w.env.Random)
	if err != nil {
		w.t.Fatalf("CreateCustomer: %v", err)
	}
	return c
}

// task stores a task of customer with status; a done task is complete with
// cost.
func (w *fulfilmentWorld) task(customerID int64, status string, reward, cost int64) *db.Task {
	w.t.Helper()
	now := w.clock.Now()
	t := &db.Task{
		CustomerID: customerID, Kind: KindMarketResearch, Description: "Market research brief",
		Status: status, Currency: "usd", RewardCents: reward, CostCents: cost, ProfitCents: reward - cost,
		CreatedAt: now, UpdatedAt: now,
	}
	if status == db.TaskDone {
		t.Attempts, t.StartedAt, t.CompletedAt, t.Result = 1, &now, &now, "delivered"
	}
	if _, err := w.store.Bun().NewInsert().Model(t).Exec(w.ctx); err != nil {
		w.t.Fatalf("insert task: %v", err)
	}
	return t
}

// loadTask reads a task as stored.
func (w *fulfilmentWorld) loadTask(id int64) *db.Task {
	w.t.Helper()
	t := new(db.Task)
	if err := w.store.Bun().NewSelect().Model(t).Where("t.id = ?", id).Scan(w.ctx); err != nil {
		w.t.Fatalf("load task %d: %v", id, err)
	}
	return t
}

// count runs a COUNT query.
func (w *fulfilmentWorld) count(query string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.store.Bun().NewRaw(query, args...).Scan(w.ctx, &n); err != nil {
		w.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// run runs a cycle and fails the test on error.
func (w *fulfilmentWorld) run(c Cycle) Counts {
	w.t.Helper()
	counts, err := c.Run(w.ctx)
	if err != nil {
		w.t.Fatalf("Run: %v (counts %v)", err, counts)
	}
	return counts
}

// wantFulfilmentCounts checks the named counts and nothing else.
func wantFulfilmentCounts(t *testing.T, got Counts, want Counts) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("count %q = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
