package openai

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

// The ops cycle's tests with this executor run on a real SQLite store, like
// the agents package's fulfilment tests, through the agents API only.

// fulfilmentWorld is the shared fulfilment world with the ops tests' own
// builders.
type fulfilmentWorld struct{ *agentstest.World }

func newFulfilmentWorld(t *testing.T) *fulfilmentWorld {
	return &fulfilmentWorld{agentstest.NewWorld(t)}
}

// convertedLead stores lead n as converted.
func (w *fulfilmentWorld) convertedLead(n int) *db.Lead {
	w.T.Helper()
	l, err := w.Store.CreateLead(w.Ctx, nil, db.NewLead{
		Name: fmt.Sprintf("Pat Contact%03d", n), Email: fmt.Sprintf("pat@lead%03d.example", n),
		Company: fmt.Sprintf("Lead %03d Ltd", n), DomainKey: fmt.Sprintf("lead%03d.example", n),
		Website: fmt.Sprintf("https://lead%03d.example", n), Niche: "dental clinics", Source: "test",
	})
	if err != nil {
		w.T.Fatalf("CreateLead: %v", err)
	}
	l.Status = db.LeadConverted
	if _, err := w.Store.Bun().NewUpdate().Model(l).Column("status").WherePK().Exec(w.Ctx); err != nil {
		w.T.Fatalf("set lead status: %v", err)
	}
	return l
}

// customerFromLead stores a converted lead and its customer, so claimed
// tasks carry the lead's contact, niche and website.
func (w *fulfilmentWorld) customerFromLead(n int) *db.Customer {
	w.T.Helper()
	l := w.convertedLead(n)
	return w.newCustomer(db.NewCustomer{Company: l.Company, ContactEmail: *l.Email, Plan: agents.PlanStarter, LeadID: &l.ID})
}

func (w *fulfilmentWorld) newCustomer(nc db.NewCustomer) *db.Customer {
	w.T.Helper()
	c, _, err := w.Store.CreateCustomer(w.Ctx, nil, nc, w.Env.Random)
	if err != nil {
		w.T.Fatalf("CreateCustomer: %v", err)
	}
	return c
}

// task stores a pending task of customer.
func (w *fulfilmentWorld) task(customerID int64, reward int64) *db.Task {
	w.T.Helper()
	now := w.Clock.Now()
	t := &db.Task{
		CustomerID: customerID, Kind: agents.KindMarketResearch, Description: "Market research brief",
		Status: db.TaskPending, Currency: "usd", RewardCents: reward, ProfitCents: reward,
		CreatedAt: now, UpdatedAt: now,
	}
	if _, err := w.Store.Bun().NewInsert().Model(t).Exec(w.Ctx); err != nil {
		w.T.Fatalf("insert task: %v", err)
	}
	return t
}

// pendingTasks stores n pending tasks of one new customer, a minute apart.
func (w *fulfilmentWorld) pendingTasks(n int, reward int64) []*db.Task {
	w.T.Helper()
	c := w.newCustomer(db.NewCustomer{Company: "Customer 900", ContactEmail: "billing@customer900.example", Plan: agents.PlanStarter})
	var tasks []*db.Task
	for range n {
		w.Clock.Advance(time.Minute)
		tasks = append(tasks, w.task(c.ID, reward))
	}
	return tasks
}

func TestOpsWithOpenAIExecutorRecordsResultCostAndProfit(t *testing.T) {
	w := newFulfilmentWorld(t)
	f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, completionJSON("## Positioning line\nLead 001 Ltd helps dental clinics fill their chairs.", 12_345_678, 3_456_789))
	})
	exec := f.executor(func(o *Options) { o.InputCentsPerMTok, o.OutputCentsPerMTok = 250, 1000 })
	c := w.customerFromLead(1)
	task := w.task(c.ID, 12_000)

	counts := w.Run(agents.NewOpsCycle(w.Store, w.Env, exec, agents.OpsOptions{}))
	agentstest.WantCounts(t, counts, agents.Counts{"claimed": 1, "done": 1, "failed": 0, "retried": 0})
	got := w.LoadTask(task.ID)
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
	cycle := agents.NewOpsCycle(w.Store, w.Env, f.executor(nil), agents.OpsOptions{})
	task := w.pendingTasks(1, 9000)[0]
	for attempt, want := range []agents.Counts{{"claimed": 1, "retried": 1}, {"claimed": 1, "retried": 1}, {"claimed": 1, "failed": 1}} {
		counts, err := cycle.Run(w.Ctx)
		if err != nil {
			t.Fatalf("attempt %d: the ops cycle failed: %v", attempt+1, err)
		}
		agentstest.WantCounts(t, counts, want)
	}
	got := w.LoadTask(task.ID)
	wantErr := "executor openai: openai: server error (503 Service Unavailable) after 3 attempts: The engine is currently overloaded"
	if got.Status != db.TaskFailed || got.Attempts != 3 || !strings.HasPrefix(got.LastError, wantErr) || got.CostCents != 0 {
		t.Errorf("task = %s, %d attempts, cost %d, last error %q; want failed, 3, 0, %q", got.Status, got.Attempts, got.CostCents, got.LastError, wantErr)
	}
	if n := len(f.seen()); n != 9 {
		t.Errorf("%d requests, want 9 (three attempts of three requests)", n)
	}
	agentstest.WantCounts(t, w.Run(cycle), agents.Counts{"claimed": 0})
}
