package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// funcExecutor is an executor made of a function.
type funcExecutor func(ctx context.Context, in TaskInput) (TaskOutput, error)

func (funcExecutor) Name() string { return "fake" }

func (f funcExecutor) Execute(ctx context.Context, in TaskInput) (TaskOutput, error) {
	return f(ctx, in)
}

// pendingTasks stores n pending tasks of one customer, a minute apart.
func (w *fulfilmentWorld) pendingTasks(n int, reward int64) []*db.Task {
	w.t.Helper()
	c := w.customer(900 + w.count("SELECT COUNT(*) FROM customers"))
	var tasks []*db.Task
	for range n {
		w.clock.Advance(time.Minute)
		tasks = append(tasks, w.task(c.ID, db.TaskPending, reward, 0))
	}
	return tasks
}

func TestOpsWithNothingToDo(t *testing.T) {
	w := newFulfilmentWorld(t)
	exec := funcExecutor(func(context.Context, TaskInput) (TaskOutput, error) {
		t.Error("executor called with nothing to do")
		return TaskOutput{}, nil
	})
	counts := w.run(NewOpsCycle(w.store, w.env, exec, OpsOptions{}))
	wantFulfilmentCounts(t, counts, Counts{"claimed": 0, "done": 0, "failed": 0, "retried": 0, "recovered": 0})
	if k := w.events.kinds(); len(k) != 0 {
		t.Errorf("an idle cycle published %v", k)
	}
}

func TestOpsRunsOldestTenWithBoundedConcurrency(t *testing.T) {
	w := newFulfilmentWorld(t)
	tasks := w.pendingTasks(12, 5000)
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	executed := map[int64]bool{}
	started, release := make(chan int64, 20), make(chan struct{})
	// Every attempt blocks until the test releases it, so the attempts the
	// cycle starts pile up: a cycle that ignored Concurrency would have all
	// ten in flight before the first release.
	exec := funcExecutor(func(ctx context.Context, in TaskInput) (TaskOutput, error) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		executed[in.TaskID] = true
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		started <- in.TaskID
		select {
		case <-release:
		case <-ctx.Done():
			return TaskOutput{}, ctx.Err()
		}
		return TaskOutput{Result: "ok", CostCents: 700}, nil
	})
	type outcome struct {
		counts Counts
		err    error
	}
	ran := make(chan outcome, 1)
	go func() {
		counts, err := NewOpsCycle(w.store, w.env, exec, OpsOptions{Concurrency: 3, TaskTimeout: time.Minute}).Run(w.ctx)
		ran <- outcome{counts, err}
	}()
	// Three start; from then on each release lets exactly one more start.
	for range 3 {
		<-started
	}
	// While the three are held, all ten claimed tasks are running (leased)
	// and no fourth attempt has started.
	if n := w.count("SELECT COUNT(*) FROM tasks WHERE status = 'running'"); n != 10 {
		t.Errorf("running tasks = %d, want the 10 claimed", n)
	}
	if len(started) != 0 {
		t.Errorf("%d more attempts started while three were in flight", len(started))
	}
	for range 7 {
		release <- struct{}{}
		<-started
	}
	for range 3 {
		release <- struct{}{}
	}
	r := <-ran
	if r.err != nil {
		t.Fatal(r.err)
	}
	wantFulfilmentCounts(t, r.counts, Counts{"claimed": 10, "done": 10, "failed": 0, "retried": 0, "recovered": 0})
	if maxInFlight != 3 {
		t.Errorf("max in flight = %d, want 3", maxInFlight)
	}
	for i, task := range tasks {
		if executed[task.ID] != (i < 10) {
			t.Errorf("task %d (created #%d) executed = %v", task.ID, i+1, executed[task.ID])
		}
	}
	if n := w.count("SELECT COUNT(*) FROM tasks WHERE status = 'done' AND profit_cents = 4300 AND lease_expires_at IS NULL"); n != 10 {
		t.Errorf("done tasks with profit 43.00 = %d, want 10", n)
	}
	if k := w.events.kinds(); k[EventMoneyChanged] != 1 || k[EventDataChanged] != 1 {
		t.Errorf("events = %v", k)
	}
}

func TestOpsKeepsNegativeProfitAndTheResult(t *testing.T) {
	w := newFulfilmentWorld(t)
	task := w.pendingTasks(1, 9000)[0]
	exec := funcExecutor(func(_ context.Context, in TaskInput) (TaskOutput, error) {
		w.clock.Advance(90 * time.Second) // the work takes a while
		return TaskOutput{Result: "the brief for " + in.Company, CostCents: 12500}, nil
	})
	start := w.clock.Now()
	w.run(NewOpsCycle(w.store, w.env, exec, OpsOptions{}))
	got := w.loadTask(task.ID)
	if got.Status != db.TaskDone || got.CostCents != 12500 || got.ProfitCents != -3500 || got.Attempts != 1 {
		t.Errorf("task = %s cost %d profit %d attempts %d; want done, 12500, -3500, 1", got.Status, got.CostCents, got.ProfitCents, got.Attempts)
	}
	if !strings.HasPrefix(got.Result, "the brief for Customer") || got.LeaseExpiresAt != nil {
		t.Errorf("result %q, lease %v", got.Result, got.LeaseExpiresAt)
	}
	if got.StartedAt == nil || !got.StartedAt.Equal(start) || got.CompletedAt == nil || !got.CompletedAt.Equal(start.Add(90*time.Second)) {
		t.Errorf("started %v completed %v", got.StartedAt, got.CompletedAt)
	}
}

func TestOpsExecutorErrorIsRetriedThenFailsAfterThreeAttempts(t *testing.T) {
	w := newFulfilmentWorld(t)
	task := w.pendingTasks(1, 9000)[0]
	calls := 0
	exec := funcExecutor(func(context.Context, TaskInput) (TaskOutput, error) {
		calls++
		if calls == 2 {
			panic("executor bug")
		}
		return TaskOutput{}, fmt.Errorf("upstream said no (call %d)", calls)
	})
	cycle := NewOpsCycle(w.store, w.env, exec, OpsOptions{})
	wantFulfilmentCounts(t, w.run(cycle), Counts{"claimed": 1, "retried": 1, "failed": 0})
	if got := w.loadTask(task.ID); got.Status != db.TaskPending || got.Attempts != 1 || !strings.Contains(got.LastError, "call 1") {
		t.Fatalf("after attempt 1: %s, %d attempts, %q", got.Status, got.Attempts, got.LastError)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"claimed": 1, "retried": 1, "failed": 0})
	if got := w.loadTask(task.ID); got.Status != db.TaskPending || !strings.Contains(got.LastError, "panicked: executor bug") {
		t.Fatalf("after the panic: %s, %q", got.Status, got.LastError)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"claimed": 1, "retried": 0, "failed": 1})
	got := w.loadTask(task.ID)
	if got.Status != db.TaskFailed || got.Attempts != 3 || !strings.Contains(got.LastError, "call 3") || got.LeaseExpiresAt != nil {
		t.Fatalf("after attempt 3: %s, %d attempts, %q", got.Status, got.Attempts, got.LastError)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"claimed": 0})
	if calls != 3 {
		t.Errorf("executor called %d times, want 3", calls)
	}
}

func TestOpsExpiredLeaseGoesBackToPendingAndFailsAfterThreeAttempts(t *testing.T) {
	w := newFulfilmentWorld(t)
	task := w.pendingTasks(1, 9000)[0]
	cycle := NewOpsCycle(w.store, w.env, BuiltinExecutor{}, OpsOptions{LeaseTimeout: 10 * time.Minute})
	for attempt := 1; attempt <= 3; attempt++ {
		// An agent claims the task and crashes: the task stays running.
		claimed, err := w.store.ClaimTasks(w.ctx, w.clock.Now(), 10, 10*time.Minute)
		if err != nil || len(claimed) != 1 || claimed[0].Attempts != attempt {
			t.Fatalf("claim %d: %+v, %v", attempt, claimed, err)
		}
		w.clock.Advance(9 * time.Minute)
		if rec, failed, err := cycle.RecoverLeases(w.ctx); err != nil || rec+failed != 0 {
			t.Fatalf("a live lease was recovered: %d, %d, %v", rec, failed, err)
		}
		w.clock.Advance(time.Minute + time.Second)
		results, err := w.store.CheckInvariants(w.ctx, w.clock.Now())
		if err != nil || results[5].Count != 1 {
			t.Fatalf("invariant 6 should see the expired lease: %+v, %v", results[5], err)
		}
		rec, failed, err := cycle.RecoverLeases(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := w.loadTask(task.ID)
		if got.LastError != db.LeaseExpiredError || got.LeaseExpiresAt != nil || got.Attempts != attempt {
			t.Errorf("attempt %d: %+v", attempt, got)
		}
		if attempt < 3 && (rec != 1 || failed != 0 || got.Status != db.TaskPending) {
			t.Errorf("attempt %d: recovered %d failed %d, status %s; want back to pending", attempt, rec, failed, got.Status)
		}
		if attempt == 3 && (rec != 0 || failed != 1 || got.Status != db.TaskFailed) {
			t.Errorf("attempt 3: recovered %d failed %d, status %s; want failed", rec, failed, got.Status)
		}
	}
}

func TestOpsRunRecoversACrashedTaskAndFinishesIt(t *testing.T) {
	w := newFulfilmentWorld(t)
	task := w.pendingTasks(1, 15000)[0]
	if _, err := w.store.ClaimTasks(w.ctx, w.clock.Now(), 10, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(11 * time.Minute)
	counts := w.run(NewOpsCycle(w.store, w.env, BuiltinExecutor{CostCents: 250}, OpsOptions{}))
	wantFulfilmentCounts(t, counts, Counts{"recovered": 1, "claimed": 1, "done": 1})
	got := w.loadTask(task.ID)
	if got.Status != db.TaskDone || got.Attempts != 2 || got.ProfitCents != 14750 || !strings.HasPrefix(got.Result, BuiltinLabel) {
		t.Errorf("task = %s, %d attempts, profit %d, result %.60q", got.Status, got.Attempts, got.ProfitCents, got.Result)
	}
}

func TestOpsLateFinisherAfterLeaseRecoveryChangesNothing(t *testing.T) {
	w := newFulfilmentWorld(t)
	task := w.pendingTasks(1, 9000)[0]
	started, release := make(chan struct{}), make(chan struct{})
	slow := funcExecutor(func(context.Context, TaskInput) (TaskOutput, error) {
		close(started)
		<-release
		return TaskOutput{Result: "late", CostCents: 1}, nil
	})
	type outcome struct {
		counts Counts
		err    error
	}
	first := make(chan outcome, 1)
	go func() {
		c, err := NewOpsCycle(w.store, w.env, slow, OpsOptions{}).Run(w.ctx)
		first <- outcome{c, err}
	}()
	<-started
	w.clock.Advance(11 * time.Minute) // the first agent looks dead
	fast := funcExecutor(func(context.Context, TaskInput) (TaskOutput, error) {
		return TaskOutput{Result: "on time", CostCents: 2}, nil
	})
	wantFulfilmentCounts(t, w.run(NewOpsCycle(w.store, w.env, fast, OpsOptions{})), Counts{"recovered": 1, "claimed": 1, "done": 1})
	close(release)
	late := <-first
	if late.err != nil {
		t.Fatal(late.err)
	}
	wantFulfilmentCounts(t, late.counts, Counts{"claimed": 1, "done": 0, "stale": 1})
	if got := w.loadTask(task.ID); got.Result != "on time" || got.CostCents != 2 || got.Attempts != 2 {
		t.Errorf("task = %q cost %d attempts %d", got.Result, got.CostCents, got.Attempts)
	}
}

func TestOpsTimeoutFailsTheAttemptEvenIfTheExecutorIgnoresIt(t *testing.T) {
	w := newFulfilmentWorld(t)
	task := w.pendingTasks(1, 9000)[0]
	stuck := make(chan struct{})
	defer close(stuck)
	exec := funcExecutor(func(context.Context, TaskInput) (TaskOutput, error) {
		<-stuck // ignores its context
		return TaskOutput{}, nil
	})
	counts := w.run(NewOpsCycle(w.store, w.env, exec, OpsOptions{TaskTimeout: 20 * time.Millisecond}))
	wantFulfilmentCounts(t, counts, Counts{"claimed": 1, "retried": 1})
	if got := w.loadTask(task.ID); got.Status != db.TaskPending || !strings.Contains(got.LastError, "timed out after 20ms") {
		t.Errorf("task = %s, %q", got.Status, got.LastError)
	}
}

func TestOpsConcurrentCyclesNeverExecuteATaskTwice(t *testing.T) {
	w := newFulfilmentWorld(t)
	tasks := w.pendingTasks(40, 9000)
	var mu sync.Mutex
	runs := map[int64]int{}
	exec := funcExecutor(func(_ context.Context, in TaskInput) (TaskOutput, error) {
		mu.Lock()
		runs[in.TaskID]++
		mu.Unlock()
		return TaskOutput{Result: "done", CostCents: 100}, nil
	})
	var wg sync.WaitGroup
	for range 5 {
		cycle := NewOpsCycle(w.store, w.env, exec, OpsOptions{MaxPerCycle: 4, Concurrency: 2})
		wg.Go(func() {
			for {
				counts, err := cycle.Run(w.ctx)
				if err != nil {
					t.Errorf("Run: %v", err)
					return
				}
				if counts["claimed"] == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, task := range tasks {
		if runs[task.ID] != 1 {
			t.Errorf("task %d executed %d times", task.ID, runs[task.ID])
		}
	}
	if n := w.count("SELECT COUNT(*) FROM tasks WHERE status = 'done' AND attempts = 1"); n != 40 {
		t.Errorf("done after one attempt = %d, want 40", n)
	}
}

func TestBuiltinExecutorWritesALabelledDeliverablePerKind(t *testing.T) {
	exec := BuiltinExecutor{CostCents: 35}
	in := TaskInput{TaskID: 7, Company: "Bright Smiles", ContactName: "Dana Reyes", Niche: "dental clinics", Website: "https://bright.example"}
	for _, kind := range []string{KindMarketResearch, KindCompetitiveLandscape, KindLeadEnrichment, KindOutreachCopy, "custom_audit"} {
		in.Kind, in.Description = kind, kind+" for Bright Smiles"
		out, err := exec.Execute(context.Background(), in)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		first, _, _ := strings.Cut(out.Result, "\n")
		if first != BuiltinLabel || out.CostCents != 35 {
			t.Errorf("%s: first line %q, cost %d", kind, first, out.CostCents)
		}
		for _, want := range []string{"Bright Smiles", "dental clinics", "## ", "#7"} {
			if !strings.Contains(out.Result, want) {
				t.Errorf("%s: deliverable lacks %q:\n%s", kind, want, out.Result)
			}
		}
	}
	in.Kind = KindOutreachCopy
	out, _ := exec.Execute(context.Background(), in)
	if !strings.Contains(out.Result, "Hi Dana,") {
		t.Errorf("copy pack is not addressed to the contact:\n%s", out.Result)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := exec.Execute(ctx, in); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Execute: %v", err)
	}
}

// What a failed attempt still cost (an LLM call that answered unusably) is
// part of the task's cost: profit is reward minus every attempt's cost.
func TestOpsCountsTheCostOfFailedAttempts(t *testing.T) {
	w := newFulfilmentWorld(t)
	task := w.pendingTasks(1, 15000)[0]
	calls := 0
	exec := funcExecutor(func(context.Context, TaskInput) (TaskOutput, error) {
		calls++
		if calls == 1 {
			return TaskOutput{CostCents: 45}, errors.New("the model returned no content")
		}
		return TaskOutput{Result: "brief", CostCents: 120}, nil
	})
	ops := NewOpsCycle(w.store, w.env, exec, OpsOptions{})
	w.run(ops)
	w.clock.Advance(time.Minute)
	w.run(ops)
	var got db.Task
	if err := w.store.Bun().NewSelect().Model(&got).Where("id = ?", task.ID).Scan(w.ctx); err != nil {
		t.Fatal(err)
	}
	if got.Status != db.TaskDone || got.CostCents != 165 || got.ProfitCents != 15000-165 || got.Attempts != 2 {
		t.Errorf("task = status %s cost %d profit %d attempts %d; want done, 165, %d, 2", got.Status, got.CostCents, got.ProfitCents, 15000-165, got.Attempts)
	}
	assertInvariants(t, w.store, w.clock.Now(), "after a failed and a good attempt")
}
