package agents

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hossagent/hossagent/db"
)

// OpsOptions configure the ops cycle. Zero values take the defaults.
type OpsOptions struct {
	MaxPerCycle  int           // tasks claimed per cycle; default 10
	Concurrency  int           // tasks executed at once; default 3
	LeaseTimeout time.Duration // how long a claim holds; default 10m
	MaxAttempts  int           // attempts before a task fails; default 3
	// TaskTimeout bounds one attempt. It defaults to LeaseTimeout and never
	// exceeds it, so an attempt gives up before its lease can be recovered
	// and handed to someone else.
	TaskTimeout time.Duration
}

func (o OpsOptions) withDefaults() OpsOptions {
	if o.MaxPerCycle <= 0 {
		o.MaxPerCycle = 10
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 3
	}
	if o.LeaseTimeout <= 0 {
		o.LeaseTimeout = 10 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.TaskTimeout <= 0 || o.TaskTimeout > o.LeaseTimeout {
		o.TaskTimeout = o.LeaseTimeout
	}
	return o
}

// DefaultMaxAttempts is how many attempts a task gets before it fails.
const DefaultMaxAttempts = 3

// OpsCycle executes pending tasks: it leases them, runs them on the executor
// with bounded concurrency, and records result, cost and profit.
type OpsCycle struct {
	store *db.DB
	env   Env
	exec  Executor
	opts  OpsOptions
}

// NewOpsCycle builds the ops cycle around an executor.
func NewOpsCycle(store *db.DB, env Env, exec Executor, opts OpsOptions) *OpsCycle {
	return &OpsCycle{store: store, env: env, exec: exec, opts: opts.withDefaults()}
}

// Outcomes of one claimed task.
const (
	taskDone     = "done"
	taskRetried  = "retried"
	taskFailed   = "failed"
	taskStale    = "stale"    // finished after its lease was recovered: ignored
	taskReleased = "released" // never started: the cycle was stopped
)

// Run recovers expired leases, claims up to MaxPerCycle pending tasks (oldest
// first) and executes them, Concurrency at a time, each attempt with its own
// deadline. A failed attempt goes back to pending, or fails the task after
// MaxAttempts with its last error; an executor's error or panic fails the
// attempt, never the cycle.
func (c *OpsCycle) Run(ctx context.Context) (Counts, error) {
	counts := Counts{"claimed": 0, "done": 0, "failed": 0, "retried": 0, "recovered": 0}
	recovered, failed, err := c.RecoverLeases(ctx)
	counts["recovered"], counts["failed"] = recovered, failed
	if err != nil {
		return counts, fmt.Errorf("ops: %w", err)
	}
	claimed, err := c.store.ClaimTasks(ctx, c.env.Now(), c.opts.MaxPerCycle, c.opts.LeaseTimeout)
	if err != nil {
		announceChanges(c.env, Ops, counts, recovered+failed > 0, false)
		return counts, fmt.Errorf("ops: %w", err)
	}
	counts["claimed"] = len(claimed)
	var errs []error
	for _, r := range c.executeAll(ctx, claimed) {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		counts[r.outcome]++
	}
	announceChanges(c.env, Ops, counts, recovered+failed+len(claimed) > 0, counts[taskDone] > 0)
	if err := errors.Join(errs...); err != nil {
		return counts, fmt.Errorf("ops: %w", err)
	}
	return counts, nil
}

// RecoverLeases puts tasks whose lease expired (their agent crashed or hung)
// back to pending, or fails those that used all their attempts. Run does it
// first; it can also be called on its own.
func (c *OpsCycle) RecoverLeases(ctx context.Context) (recovered, failed int, err error) {
	return c.store.RecoverExpiredLeases(ctx, c.env.Now(), c.opts.MaxAttempts)
}

type taskResult struct {
	outcome string
	err     error // recording the outcome failed; the lease will recover the task
}

// executeAll runs the claimed tasks on at most Concurrency goroutines and
// waits for all of them.
func (c *OpsCycle) executeAll(ctx context.Context, tasks []db.ClaimedTask) []taskResult {
	results := make([]taskResult, len(tasks))
	slots := make(chan struct{}, c.opts.Concurrency)
	var wg sync.WaitGroup
	for i := range tasks {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			results[i] = c.execute(ctx, &tasks[i])
		}()
	}
	wg.Wait()
	return results
}

// execute runs one claimed attempt and records its outcome. The outcome is
// written even when ctx was cancelled meanwhile (shutdown), so the task does
// not sit leased until its lease expires.
func (c *OpsCycle) execute(ctx context.Context, t *db.ClaimedTask) taskResult {
	record := context.WithoutCancel(ctx)
	if ctx.Err() != nil {
		if _, err := c.store.ReleaseTask(record, t.ID, t.Attempts, c.env.Now()); err != nil {
			return taskResult{err: err}
		}
		return taskResult{outcome: taskReleased}
	}
	out, err := c.attempt(ctx, t)
	if err != nil && ctx.Err() != nil {
		// The cycle was stopped (shutdown, Stop, Restart), not the task timed
		// out: hand the task back without spending one of its attempts.
		if _, rerr := c.store.ReleaseTask(record, t.ID, t.Attempts, c.env.Now()); rerr != nil {
			return taskResult{err: rerr}
		}
		return taskResult{outcome: taskReleased}
	}
	if err == nil && out.CostCents < 0 {
		err = fmt.Errorf("executor %s reported a negative cost (%d)", c.exec.Name(), out.CostCents)
	}
	if err == nil {
		ok, err := c.store.CompleteTask(record, t.ID, t.Attempts, out.Result, out.CostCents, c.env.Now())
		switch {
		case err != nil:
			return taskResult{err: err}
		case !ok:
			return taskResult{outcome: taskStale}
		}
		return taskResult{outcome: taskDone}
	}
	status, rerr := c.store.FailTaskAttempt(record, t.ID, t.Attempts, c.opts.MaxAttempts, err.Error(), out.CostCents, c.env.Now())
	switch {
	case rerr != nil:
		return taskResult{err: rerr}
	case status == db.TaskPending:
		return taskResult{outcome: taskRetried}
	case status == db.TaskFailed:
		return taskResult{outcome: taskFailed}
	}
	return taskResult{outcome: taskStale}
}

// attempt calls the executor on its own goroutine with the attempt's
// deadline, so that an executor that ignores its context cannot hold the
// cycle past TaskTimeout, and turns a panic into the attempt's error.
func (c *OpsCycle) attempt(ctx context.Context, t *db.ClaimedTask) (TaskOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.TaskTimeout)
	defer cancel()
	type answer struct {
		out TaskOutput
		err error
	}
	done := make(chan answer, 1) // buffered: an abandoned executor never blocks on it
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- answer{err: fmt.Errorf("executor %s panicked: %v", c.exec.Name(), r)}
			}
		}()
		out, err := c.exec.Execute(ctx, TaskInput{
			TaskID: t.ID, Kind: t.Kind, Description: t.Description, Company: t.Company,
			ContactName: t.ContactName, Niche: t.Niche, Website: t.Website,
		})
		done <- answer{out, err}
	}()
	select {
	case a := <-done:
		if a.err != nil {
			// Out carries what a failed call still cost (tokens spent).
			return a.out, fmt.Errorf("executor %s: %w", c.exec.Name(), a.err)
		}
		return a.out, nil
	case <-ctx.Done():
		select {
		case a := <-done: // finished just as the deadline passed: keep the work
			if a.err == nil {
				return a.out, nil
			}
		default:
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return TaskOutput{}, fmt.Errorf("executor %s: task timed out after %s", c.exec.Name(), c.opts.TaskTimeout)
		}
		return TaskOutput{}, fmt.Errorf("executor %s: interrupted: %w", c.exec.Name(), ctx.Err())
	}
}
