package db

import (
	"context"
	"slices"
	"testing"
	"time"
)

// requireAllInvariants fails the test unless every invariant holds at now.
func requireAllInvariants(t *testing.T, d *DB, now time.Time) {
	t.Helper()
	for _, r := range mustCheck(t, d, now) {
		if !r.OK() {
			t.Errorf("invariant %d (%s) broken: %q", r.Number, r.Name, r.Violations)
		}
	}
}

func loadFulfilmentTask(t *testing.T, d *DB, id int64) *Task {
	t.Helper()
	task := new(Task)
	if err := d.Bun().NewSelect().Model(task).Where("t.id = ?", id).Scan(context.Background()); err != nil {
		t.Fatalf("load task %d: %v", id, err)
	}
	return task
}

func TestClaimTasksOldestFirstNeverTwice(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	var got []int64
	for _, want := range []int{5, 5, 2, 0} {
		claimed, err := d.ClaimTasks(ctx, fixedNow, 5, 10*time.Minute)
		if err != nil || len(claimed) != want {
			t.Fatalf("claim: %d tasks, %v; want %d", len(claimed), err, want)
		}
		for _, c := range claimed {
			if c.Status != TaskRunning || c.Attempts != 1 || !c.LeaseExpiresAt.Equal(fixedNow.Add(10*time.Minute)) ||
				!c.StartedAt.Equal(fixedNow) || c.Company == "" || c.ContactEmail == "" {
				t.Errorf("claimed task = %+v", c)
			}
			got = append(got, c.ID)
		}
	}
	var want []int64
	for _, p := range f.pending {
		want = append(want, p.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("claimed %v, want the pending tasks oldest first %v", got, want)
	}
	requireAllInvariants(t, d, fixedNow)
}

func TestClaimedTaskCarriesTheLeadsData(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	// Customer 0 came from lead 24.
	mustExec(t, d.Bun(), "UPDATE tasks SET status = 'failed' WHERE status = 'pending'")
	task := newTask(100, f.customers[0].ID, TaskPending, "usd", 100, 0)
	insert(t, d.Bun(), task)
	claimed, err := d.ClaimTasks(ctx, fixedNow, 10, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %+v, %v", claimed, err)
	}
	c, l := claimed[0], f.leads[23]
	if c.Company != "Customer 00" || c.ContactName != l.Name || c.Niche != l.Niche || c.Website != l.Website {
		t.Errorf("claimed = %+v, lead %+v", c, l)
	}
}

func TestFinishingAnAttemptIsGuardedByItsNumber(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	claimed, err := d.ClaimTasks(ctx, fixedNow, 3, 10*time.Minute)
	if err != nil || len(claimed) != 3 {
		t.Fatal(err)
	}
	done, retried, released := claimed[0], claimed[1], claimed[2]

	if ok, err := d.CompleteTask(ctx, done.ID, 2, "x", 1, fixedNow); ok || err != nil {
		t.Errorf("completing another attempt: %v, %v", ok, err)
	}
	if ok, err := d.CompleteTask(ctx, done.ID, 1, "report", 9000, fixedNow); !ok || err != nil {
		t.Fatalf("CompleteTask: %v, %v", ok, err)
	}
	if ok, _ := d.CompleteTask(ctx, done.ID, 1, "again", 1, fixedNow); ok {
		t.Error("a done task was completed twice")
	}
	got := loadFulfilmentTask(t, d, done.ID)
	if got.Status != TaskDone || got.CostCents != 9000 || got.ProfitCents != f.pending[0].RewardCents-9000 || got.Result != "report" {
		t.Errorf("done task = %+v", got)
	}

	if s, err := d.FailTaskAttempt(ctx, retried.ID, 1, 3, "boom", 0, fixedNow); s != TaskPending || err != nil {
		t.Errorf("FailTaskAttempt = %q, %v", s, err)
	}
	if s, _ := d.FailTaskAttempt(ctx, retried.ID, 1, 3, "boom", 0, fixedNow); s != "" {
		t.Errorf("failing a finished attempt = %q", s)
	}
	if s, _ := d.FailTaskAttempt(ctx, released.ID, 1, 1, "boom", 0, fixedNow); s != TaskFailed {
		t.Errorf("failing the last attempt = %q", s)
	}
	mustExec(t, d.Bun(), "UPDATE tasks SET status = 'running', lease_expires_at = ?, last_error = '' WHERE id = ?", fixedNow.Add(time.Minute), released.ID)
	if ok, err := d.ReleaseTask(ctx, released.ID, 1, fixedNow); !ok || err != nil {
		t.Errorf("ReleaseTask: %v, %v", ok, err)
	}
	if got := loadFulfilmentTask(t, d, released.ID); got.Status != TaskPending || got.Attempts != 0 || got.LeaseExpiresAt != nil {
		t.Errorf("released task = %+v", got)
	}
	requireAllInvariants(t, d, fixedNow)
}

func TestRecoverExpiredLeases(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	// The fixture's six running tasks (one attempt each) are leased until fixedNow+10m.
	if rec, failed, err := d.RecoverExpiredLeases(ctx, fixedNow.Add(10*time.Minute), 3); rec+failed != 0 || err != nil {
		t.Fatalf("recovered live leases: %d %d %v", rec, failed, err)
	}
	mustExec(t, d.Bun(), "UPDATE tasks SET attempts = 3 WHERE id = ?", f.running[0].ID)
	later := fixedNow.Add(11 * time.Minute)
	rec, failed, err := d.RecoverExpiredLeases(ctx, later, 3)
	if rec != 5 || failed != 1 || err != nil {
		t.Fatalf("RecoverExpiredLeases = %d, %d, %v; want 5, 1", rec, failed, err)
	}
	if got := loadFulfilmentTask(t, d, f.running[0].ID); got.Status != TaskFailed || got.LastError != LeaseExpiredError {
		t.Errorf("exhausted task = %+v", got)
	}
	if got := loadFulfilmentTask(t, d, f.running[1].ID); got.Status != TaskPending || got.LeaseExpiresAt != nil {
		t.Errorf("recovered task = %+v", got)
	}
	requireAllInvariants(t, d, later)
}
