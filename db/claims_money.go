package db

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// The money claims and how each stays correct when several instances share
// one PostgreSQL database (on SQLite one writer at a time makes each of them
// act alone). The comment at each query says why:
//
//   - invoice numbers: a row lock on the counters row (nextInvoiceNumber);
//   - billing: UNIQUE invoice_lines.task_id and SERIALIZABLE (BillCustomer);
//   - task leases: FOR UPDATE SKIP LOCKED, so claimers take different tasks
//     (ClaimTasks); finishing an attempt is guarded by its number;
//   - Stripe webhook deliveries: UNIQUE stripe_events.event_id and
//     SERIALIZABLE (ApplyPayment);
//   - collection jobs: FOR UPDATE SKIP LOCKED on the job, and the outbox's
//     UNIQUE dedupe key (CompleteCollectionJob);
//   - monthly periods: a guarded UPDATE of next_period_at (OpenPeriod).

// pinJoins is DB.pin for a template that also fixes its join order with
// CROSS JOIN … ON: SQLite's planner keeps the left table of a CROSS JOIN
// the outer loop. PostgreSQL takes no ON after CROSS JOIN and orders joins
// by its statistics, so there the join is a plain JOIN. Templates only,
// as for pin.
func (d *DB) pinJoins(sqlText string) string {
	sqlText = d.pin(sqlText)
	if d.Postgres() {
		return strings.ReplaceAll(sqlText, "CROSS JOIN", "JOIN")
	}
	return sqlText
}

// uniqueViolationOn reports whether err is a duplicate refused by the
// unique key on table.column. SQLite names the key in its message ("UNIQUE
// constraint failed: invoice_lines.task_id"); PostgreSQL gives the
// constraint's name, which for a column's UNIQUE is table_column_key
// (the PostgreSQL migrations leave those names to the default).
func uniqueViolationOn(err error, table, column string) bool {
	if !IsUniqueViolation(err) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName == table+"_"+column+"_key"
	}
	return strings.Contains(err.Error(), table+"."+column)
}
