package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// This file holds tasks: the ones onboarding opens, leasing and finishing
// them (ops), and the task lists. Every method that writes does so in one
// transaction, and every time it records comes from the caller's clock.

// NewTask is one task onboarding opens for a customer's plan.
type NewTask struct {
	Kind, Description, Currency string
	RewardCents                 int64
}

func openTasks(ctx context.Context, tx bun.Tx, customerID int64, in []NewTask, now time.Time) ([]Task, error) {
	if len(in) == 0 {
		return nil, nil
	}
	tasks := make([]Task, len(in))
	for i, nt := range in {
		tasks[i] = Task{
			CustomerID: customerID, Kind: nt.Kind, Description: nt.Description, Status: TaskPending,
			Currency: nt.Currency, RewardCents: nt.RewardCents, ProfitCents: nt.RewardCents,
			CreatedAt: now, UpdatedAt: now,
		}
	}
	if _, err := tx.NewInsert().Model(&tasks).Exec(ctx); err != nil {
		return nil, err
	}
	return tasks, nil
}

// LeaseExpiredError is the last_error of a task whose lease ran out.
const LeaseExpiredError = "lease expired (agent crashed or timed out)"

// maxErrorLen bounds a stored task error.
const maxErrorLen = 2000

// expireLeasesSQL (completed by an attempts comparison) ends the expired
// leases: a search of tasks_status_created for the running tasks, a set as
// small as the work in flight.
const expireLeasesSQL = `UPDATE tasks SET status = ?, last_error = ?, lease_expires_at = NULL, updated_at = ?
	WHERE status = 'running' AND lease_expires_at < ? AND attempts `

// RecoverExpiredLeases puts running tasks whose lease ended before now back
// to pending, or to failed once they have had maxAttempts attempts, in one
// transaction.
func (d *DB) RecoverExpiredLeases(ctx context.Context, now time.Time, maxAttempts int) (recovered, failed int, err error) {
	now = now.UTC()
	err = d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.ExecContext(ctx, expireLeasesSQL+">= ?", TaskFailed, LeaseExpiredError, now, now, maxAttempts)
		if err != nil {
			return err
		}
		failed = affected(res)
		res, err = tx.ExecContext(ctx, expireLeasesSQL+"< ?", TaskPending, LeaseExpiredError, now, now, maxAttempts)
		if err != nil {
			return err
		}
		recovered = affected(res)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: unable to recover expired task leases: %w", err)
	}
	return recovered, failed, nil
}

// ClaimedTask is a task leased to one executor, with what the executor needs
// to know about its customer and the lead it came from.
type ClaimedTask struct {
	Task `bun:",extend"`

	Company      string `bun:"company"`
	ContactEmail string `bun:"contact_email"`
	ContactName  string `bun:"contact_name"`
	Niche        string `bun:"niche"`
	Website      string `bun:"website"`
}

// claimTasksSQL leases the oldest pending tasks: the first rows of
// tasks_status_created (status, created_at, id) for 'pending', in order,
// stopped at the limit; the update finds each by primary key. On SQLite the
// statement runs under the write lock, so no other claimer reads the same
// pending rows meanwhile.
const claimTasksSQL = `UPDATE tasks
	SET status = 'running', attempts = attempts + 1, started_at = ?, lease_expires_at = ?, updated_at = ?
	WHERE status = 'pending' AND id IN (
		SELECT id FROM tasks WHERE status = 'pending' ORDER BY created_at, id LIMIT ?)
	RETURNING id`

// claimTasksPostgresSQL is claimTasksSQL for PostgreSQL, where several
// instances claim at once. FOR UPDATE SKIP LOCKED locks the oldest pending
// rows no other claimer holds and passes over the ones another holds, so
// concurrent claimers take different tasks instead of queueing behind one
// another; a row another claimer took and committed meanwhile is read
// again under its lock and dropped, being pending no more (READ COMMITTED,
// see ClaimTasks). The WITH keeps the locking SELECT one step run once,
// before the UPDATE (a locking CTE is never folded into the outer query).
// Its arguments come in another order: limit, started, lease, updated.
const claimTasksPostgresSQL = `WITH picked AS (
		SELECT id FROM tasks WHERE status = 'pending' ORDER BY created_at, id LIMIT ?
		FOR UPDATE SKIP LOCKED)
	UPDATE tasks AS t
	SET status = 'running', attempts = t.attempts + 1, started_at = ?, lease_expires_at = ?, updated_at = ?
	FROM picked WHERE t.id = picked.id
	RETURNING t.id`

// ClaimTasks leases up to limit pending tasks, oldest first, until now+lease:
// each becomes running with one more attempt. The claim is one transaction
// and only takes rows still pending, so two concurrent claimers never get the
// same task. The claimed attempt is ClaimedTask.Attempts.
//
// On PostgreSQL the claim runs at READ COMMITTED rather than the store's
// SERIALIZABLE: its only write is claimTasksPostgresSQL, whose row locks
// and the recheck of status = 'pending' under them are what keep two
// instances off one task. Under SERIALIZABLE a claimer reaching a row
// another had just claimed would abort (40001) and start over, and busy
// claimers would mostly abort each other; at READ COMMITTED it skips the
// row and takes the next.
func (d *DB) ClaimTasks(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]ClaimedTask, error) {
	now = now.UTC()
	var claimed []ClaimedTask
	claim := func(ctx context.Context, tx bun.Tx) error {
		claimed = nil
		var ids []int64
		q := tx.NewRaw(claimTasksSQL, now, now.Add(lease), now, limit)
		if d.Postgres() {
			q = tx.NewRaw(claimTasksPostgresSQL, limit, now, now.Add(lease), now)
		}
		if err := q.Scan(ctx, &ids); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		return tx.NewSelect().Model(&claimed).
			ColumnExpr("t.*").
			ColumnExpr("c.company AS company, c.contact_email AS contact_email").
			ColumnExpr("COALESCE(NULLIF(c.contact_name, ''), l.name, '') AS contact_name, COALESCE(l.niche, '') AS niche, COALESCE(l.website, '') AS website").
			Join("JOIN customers AS c ON c.id = t.customer_id").
			Join("LEFT JOIN leads AS l ON l.id = c.lead_id").
			Where("t.id IN (?)", bun.List(ids)).
			OrderExpr("t.created_at, t.id").
			Scan(ctx)
	}
	var err error
	if d.Postgres() {
		err = d.runInTxPostgres(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}, claim)
	} else {
		err = d.RunInTx(ctx, claim)
	}
	if err != nil {
		return nil, fmt.Errorf("store: unable to claim tasks: %w", err)
	}
	return claimed, nil
}

// CompleteTask records a successful attempt: done, its result, what it cost
// (added to what earlier, failed attempts cost) and its profit (reward -
// cost, negative when the work cost more than it earns). It only applies while the task is still running the claimed
// attempt; a late finisher whose lease was recovered changes nothing and
// gets false.
//
// Like every guarded write of an attempt below, it runs in RunInTx though
// it is one statement: on PostgreSQL, when another instance recovers the
// lease at the same moment, SERIALIZABLE aborts the later of the two
// (40001) instead of letting it overwrite the other's change; run again,
// it finds the attempt no longer current and reports false.
func (d *DB) CompleteTask(ctx context.Context, taskID int64, attempt int, result string, costCents int64, now time.Time) (bool, error) {
	now = now.UTC()
	var done bool
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tasks
		SET status = 'done', result = ?, cost_cents = cost_cents + ?, profit_cents = reward_cents - (cost_cents + ?), last_error = '',
		    completed_at = ?, lease_expires_at = NULL, updated_at = ?
		WHERE id = ? AND status = 'running' AND attempts = ?`,
			result, costCents, costCents, now, now, taskID, attempt)
		done = err == nil && affected(res) == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: unable to complete task %d: %w", taskID, err)
	}
	return done, nil
}

// FailTaskAttempt records a failed attempt: the task goes back to pending
// for a later cycle, or to failed once it has had maxAttempts attempts, with
// the error kept. What the failed attempt cost the executor (an LLM call
// that answered unusably still spent tokens) is added to the task's cost.
// It returns the task's new status, or "" when the attempt was no longer the
// task's current one (its lease was recovered).
func (d *DB) FailTaskAttempt(ctx context.Context, taskID int64, attempt, maxAttempts int, cause string, costCents int64, now time.Time) (string, error) {
	now = now.UTC()
	if costCents < 0 {
		costCents = 0
	}
	var status []string
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		status = nil
		err := tx.NewRaw(`UPDATE tasks
		SET status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending' END,
		    cost_cents = cost_cents + ?, profit_cents = reward_cents - (cost_cents + ?),
		    last_error = ?, lease_expires_at = NULL, updated_at = ?
		WHERE id = ? AND status = 'running' AND attempts = ?
		RETURNING status`, maxAttempts, costCents, costCents, truncate(cause, maxErrorLen), now, taskID, attempt).Scan(ctx, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store: unable to record failed attempt of task %d: %w", taskID, err)
	}
	if len(status) == 0 {
		return "", nil
	}
	return status[0], nil
}

// ReleaseTask hands a claimed task that was never started back to pending
// and gives its attempt back (the cycle was stopped before running it).
func (d *DB) ReleaseTask(ctx context.Context, taskID int64, attempt int, now time.Time) (bool, error) {
	var released bool
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tasks
		SET status = 'pending', attempts = attempts - 1, lease_expires_at = NULL, updated_at = ?
		WHERE id = ? AND status = 'running' AND attempts = ?`, now.UTC(), taskID, attempt)
		released = err == nil && affected(res) == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: unable to release task %d: %w", taskID, err)
	}
	return released, nil
}

// TaskRow is a task with its customer's company name.
type TaskRow struct {
	Task `bun:",extend"`

	Company string `bun:"company"`
}

// ListTasks returns a page of tasks, newest first; with Status "done" they
// are ordered by completion time instead.
func (d *DB) ListTasks(ctx context.Context, q ListQuery) ([]TaskRow, Page, error) {
	return d.listTasks(ctx, q, 0)
}

// ListCustomerTasks is ListTasks for one customer.
func (d *DB) ListCustomerTasks(ctx context.Context, customerID int64, q ListQuery) ([]TaskRow, Page, error) {
	return d.listTasks(ctx, q, customerID)
}

func (d *DB) listTasks(ctx context.Context, q ListQuery, customerID int64) ([]TaskRow, Page, error) {
	q = q.normal()
	var rows []TaskRow
	filter := func(sq *bun.SelectQuery) *bun.SelectQuery {
		if q.Status != "" {
			sq = sq.Where("t.status = ?", q.Status)
		}
		if customerID != 0 {
			sq = sq.Where("t.customer_id = ?", customerID)
		}
		return searchIndexed(sq, q.Search,
			ftsSource{idCol: "t.id", fts: "tasks_fts", likeCols: []string{"t.kind", "t.description"}},
			customerSearch("t.customer_id"))
	}
	l := list[TaskRow]{table: "tasks", alias: "t", sortCol: "created_at",
		query: func() *bun.SelectQuery {
			return d.bun.NewSelect().Model(&rows).ColumnExpr("t.*").ColumnExpr("c.company AS company").
				Join("JOIN customers AS c ON c.id = t.customer_id")
		},
		filter: filter,
		count:  d.kept("tasks", q.statuses()),
		id:     func(t *TaskRow) int64 { return t.ID },
	}
	if q.Status == TaskDone {
		l.sortCol = "completed_at"
	}
	if customerID != 0 {
		l.count = d.indexedCount("tasks", "t", filter)
	}
	pg, err := l.fetch(ctx, d, q, &rows)
	return rows, pg, err
}
