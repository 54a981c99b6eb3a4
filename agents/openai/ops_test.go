package openai

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/db"
)

// The ops cycle's tests with this executor run on a real SQLite store, like
// the agents package's fulfilment tests, through the agents API only.

// opsRandom makes a seeded ChaCha8 stream safe to share between goroutines.
type opsRandom struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (l *opsRandom) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func (l *opsRandom) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return rand.New(l.r).IntN(n)
}

func (l *opsRandom) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return rand.New(l.r).Float64()
}

// opsEvents is a publisher that drops every event.
type opsEvents struct{}

func (opsEvents) Publish(agents.Event) {}

// fulfilmentWorld is a real SQLite store on a temporary file and the Env the
// cycles run with, sharing one fake clock.
type fulfilmentWorld struct {
	t     *testing.T
	ctx   context.Context
	store *db.DB
	clock *clocktest.Clock
	env   agents.Env
}

func newFulfilmentWorld(t *testing.T) *fulfilmentWorld {
	t.Helper()
	clock := clocktest.New(time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), db.FileName), db.WithClock(clock.Now))
	if err != nil {
		t.Fatalf("db.Open: %v", err)
	}
	w := &fulfilmentWorld{t: t, ctx: ctx, store: store, clock: clock}
	random := &opsRandom{r: rand.NewChaCha8([32]byte{'h', 'o', 's', 's'})}
	w.env = agents.Env{Now: clock.Now, Random: random, Rand: random, Events: opsEvents{}}
	t.Cleanup(func() {
		w.requireInvariants()
		_ = store.Close()
	})
	return w
}

// requireInvariants fails the test unless all nine invariants hold now.
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

// convertedLead stores lead n as converted.
func (w *fulfilmentWorld) convertedLead(n int) *db.Lead {
	w.t.Helper()
	l, err := w.store.CreateLead(w.ctx, nil, db.NewLead{
		Name: fmt.Sprintf("Pat Contact%03d", n), Email: fmt.Sprintf("pat@lead%03d.example", n),
		Company: fmt.Sprintf("Lead %03d Ltd", n), DomainKey: fmt.Sprintf("lead%03d.example", n),
		Website: fmt.Sprintf("https://lead%03d.example", n), Niche: "dental clinics", Source: "test",
	})
	if err != nil {
		w.t.Fatalf("CreateLead: %v", err)
	}
	l.Status = db.LeadConverted
	if _, err := w.store.Bun().NewUpdate().Model(l).Column("status").WherePK().Exec(w.ctx); err != nil {
		w.t.Fatalf("set lead status: %v", err)
	}
	return l
}

// customerFromLead stores a converted lead and its customer, so claimed
// tasks carry the lead's contact, niche and website.
func (w *fulfilmentWorld) customerFromLead(n int) *db.Customer {
	w.t.Helper()
	l := w.convertedLead(n)
	return w.newCustomer(db.NewCustomer{Company: l.Company, ContactEmail: *l.Email, Plan: agents.PlanStarter, LeadID: &l.ID})
}

func (w *fulfilmentWorld) newCustomer(nc db.NewCustomer) *db.Customer {
	w.t.Helper()
	c, _, err := w.store.CreateCustomer(w.ctx, nil, nc, w.env.Random)
	if err != nil {
		w.t.Fatalf("CreateCustomer: %v", err)
	}
	return c
}

// task stores a pending task of customer.
func (w *fulfilmentWorld) task(customerID int64, reward int64) *db.Task {
	w.t.Helper()
	now := w.clock.Now()
	t := &db.Task{
		CustomerID: customerID, Kind: agents.KindMarketResearch, Description: "Market research brief",
		Status: db.TaskPending, Currency: "usd", RewardCents: reward, ProfitCents: reward,
		CreatedAt: now, UpdatedAt: now,
	}
	if _, err := w.store.Bun().NewInsert().Model(t).Exec(w.ctx); err != nil {
		w.t.Fatalf("insert task: %v", err)
	}
	return t
}

// pendingTasks stores n pending tasks of one new customer, a minute apart.
func (w *fulfilmentWorld) pendingTasks(n int, reward int64) []*db.Task {
	w.t.Helper()
	c := w.newCustomer(db.NewCustomer{Company: "Customer 900", ContactEmail: "billing@customer900.example", Plan: agents.PlanStarter})
	var tasks []*db.Task
	for range n {
		w.clock.Advance(time.Minute)
		tasks = append(tasks, w.task(c.ID, reward))
	}
	return tasks
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

// run runs a cycle and fails the test on error.
func (w *fulfilmentWorld) run(c agents.Cycle) agents.Counts {
	w.t.Helper()
	counts, err := c.Run(w.ctx)
	if err != nil {
		w.t.Fatalf("Run: %v (counts %v)", err, counts)
	}
	return counts
}

// wantFulfilmentCounts checks the named counts and nothing else.
func wantFulfilmentCounts(t *testing.T, got, want agents.Counts) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("count %q = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

func TestOpsWithOpenAIExecutorRecordsResultCostAndProfit(t *testing.T) {
	w := newFulfilmentWorld(t)
	f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, completionJSON("## Positioning line\nLead 001 Ltd helps dental clinics fill their chairs.", 12_345_678, 3_456_789))
	})
	exec := f.executor(func(o *Options) { o.InputCentsPerMTok, o.OutputCentsPerMTok = 250, 1000 })
	c := w.customerFromLead(1)
	task := w.task(c.ID, 12_000)

	counts := w.run(agents.NewOpsCycle(w.store, w.env, exec, agents.OpsOptions{}))
	wantFulfilmentCounts(t, counts, agents.Counts{"claimed": 1, "done": 1, "failed": 0, "retried": 0})
	got := w.loadTask(task.ID)
	if got.Status != db.TaskDone || got.Attempts != 1 || got.CostCents != 6544 || got.ProfitCents != 12_000-6544 {
		t.Errorf("task = %s, %d attempts, cost %d, profit %d; want done, 1, 6544, %d", got.Status, got.Attempts, got.CostCents, got.ProfitCents, 12_000-6544)
	}
	wantResult := Label("gpt-4o-mini") + "\n\n## Positioning line\nLead 001 Ltd helps dental clinics fill their chairs.\n"
	if got.Result != wantResult {
		t.Errorf("result = %q, want %q", got.Result, wantResult)
	}
	reqs := f.seen()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	for _, s := range []string{"Company: Lead 001 Ltd", "Contact: Pat Contact001", "Market or niche: dental clinics", "Website: https://lead001.example"} {
		if !strings.Contains(reqs[0].Messages[1].Content, s) {
			t.Errorf("prompt lacks the lead's %q:\n%s", s, reqs[0].Messages[1].Content)
		}
	}
}

func TestOpsWithFailingOpenAIFailsTheTaskAfterThreeAttempts(t *testing.T) {
	w := newFulfilmentWorld(t)
	f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, apiErrorJSON("The engine is currently overloaded, please try again later.", "server_error", ""))
	})
	cycle := agents.NewOpsCycle(w.store, w.env, f.executor(nil), agents.OpsOptions{})
	task := w.pendingTasks(1, 9000)[0]
	for attempt, want := range []agents.Counts{{"claimed": 1, "retried": 1}, {"claimed": 1, "retried": 1}, {"claimed": 1, "failed": 1}} {
		counts, err := cycle.Run(w.ctx)
		if err != nil {
			t.Fatalf("attempt %d: the ops cycle failed: %v", attempt+1, err)
		}
		wantFulfilmentCounts(t, counts, want)
	}
	got := w.loadTask(task.ID)
	wantErr := "executor openai: openai: server error (503 Service Unavailable) after 3 attempts: The engine is currently overloaded"
	if got.Status != db.TaskFailed || got.Attempts != 3 || !strings.HasPrefix(got.LastError, wantErr) || got.CostCents != 0 {
		t.Errorf("task = %s, %d attempts, cost %d, last error %q; want failed, 3, 0, %q", got.Status, got.Attempts, got.CostCents, got.LastError, wantErr)
	}
	if n := len(f.seen()); n != 9 {
		t.Errorf("%d requests, want 9 (three attempts of three requests)", n)
	}
	wantFulfilmentCounts(t, w.run(cycle), agents.Counts{"claimed": 0})
}
