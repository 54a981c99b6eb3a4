package db

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DayTotal is money on one UTC calendar day ("2026-03-14").
type DayTotal struct {
	Day   string `bun:"day"`
	Cents int64  `bun:"cents"`
}

// revenueByDaySQL sums the paid invoices of one currency (?0) by the UTC
// day they were paid, from ?1 to before ?2: one range of the covering
// partial index invoices_paid_at (0023), as long as the days asked for.
// Refunded invoices are not revenue (as in Stats). INDEXED BY pins the plan
// (the app never runs ANALYZE).
//
// The day is the first ten characters of SQLite's stored UTC time text; on
// PostgreSQL, whose paid_at is a TIMESTAMPTZ, it is written from the time
// in UTC (revenueByDayPostgres), the same "2026-03-14".
const revenueByDaySQL = `SELECT substr(paid_at, 1, 10) AS day, SUM(amount_cents) AS cents
	FROM invoices INDEXED BY invoices_paid_at
	WHERE status = 'paid' AND paid_at >= ?1 AND paid_at < ?2 AND currency = ?0
	GROUP BY day ORDER BY day`

const revenueByDayPostgres = `SELECT to_char(paid_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, SUM(amount_cents) AS cents
	FROM invoices
	WHERE status = 'paid' AND paid_at >= ?1 AND paid_at < ?2 AND currency = ?0
	GROUP BY day ORDER BY day`

// RevenueByDay is the money collected in currency on each UTC day from
// from to before to; days with none are left out.
func (d *DB) RevenueByDay(ctx context.Context, currency string, from, to time.Time) ([]DayTotal, error) {
	var out []DayTotal
	query := revenueByDaySQL
	if d.Postgres() {
		query = revenueByDayPostgres
	}
	if err := d.bun.NewRaw(query, currency, from.UTC(), to.UTC()).Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("store: unable to sum revenue by day: %w", err)
	}
	return out, nil
}

// openByDueDaySQL is the open money of one currency (?0) by its due day,
// from day ?1 to before day ?2: a range of kept_totals' primary key (the
// kept open_due totals, 0004), whatever the number of invoices.
const openByDueDaySQL = `SELECT label AS day, SUM(cents) AS cents FROM kept_totals
	WHERE metric = 'open_due' AND label >= ?1 AND label < ?2 AND currency = ?0 AND n <> 0
	GROUP BY label ORDER BY label`

// OpenByDueDay is the money still open in currency by the UTC day it falls
// (or fell) due, from the day of from to before the day of to.
func (d *DB) OpenByDueDay(ctx context.Context, currency string, from, to time.Time) ([]DayTotal, error) {
	var out []DayTotal
	err := d.bun.NewRaw(openByDueDaySQL, currency, from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly)).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("store: unable to sum open money by due day: %w", err)
	}
	return out, nil
}

// RunPoint is one run on an agent's sparkline.
type RunPoint struct {
	Agent      string     `bun:"agent"`
	StartedAt  time.Time  `bun:"started_at"`
	FinishedAt *time.Time `bun:"finished_at"`
	Outcome    string     `bun:"outcome"`
}

// recentRunsSQL is the latest n (?0) runs of one agent, newest first: a
// probe of agent_runs_agent read backwards and stopped at the LIMIT; %d is
// the agent's argument and the subquery's alias (PostgreSQL requires one).
const recentRunsSQL = `SELECT * FROM (SELECT agent, started_at, finished_at, outcome FROM agent_runs
	INDEXED BY agent_runs_agent WHERE agent = ?%d ORDER BY started_at DESC, id DESC LIMIT ?0) AS r%d`

// recentRunsPostgresSQL is the same probe for PostgreSQL, ordered by
// agent_runs_agent's own columns only: with ", id DESC" as well the planner
// prefers walking agent_runs_started backwards and filtering by agent,
// which reads the whole log for an agent that seldom runs. Runs of one
// agent that started in the same microsecond may then come in either
// order; a sparkline cannot tell.
const recentRunsPostgresSQL = `SELECT * FROM (SELECT agent, started_at, finished_at, outcome FROM agent_runs
	WHERE agent = ?%d ORDER BY started_at DESC LIMIT ?0) AS r%d`

// RecentRuns reads the latest n runs of each of agents, oldest first, in
// one query: a UNION ALL of one bounded index probe per agent, so it reads
// n rows per agent however long the cycle log is.
func (d *DB) RecentRuns(ctx context.Context, agents []string, n int) (map[string][]RunPoint, error) {
	out := make(map[string][]RunPoint, len(agents))
	if len(agents) == 0 || n <= 0 {
		return out, nil
	}
	parts := make([]string, len(agents))
	args := []any{n}
	probe := recentRunsSQL
	if d.Postgres() {
		probe = recentRunsPostgresSQL
	}
	for i, a := range agents {
		parts[i] = fmt.Sprintf(probe, i+1, i+1)
		args = append(args, a)
	}
	var rows []RunPoint
	if err := d.bun.NewRaw(d.pin(strings.Join(parts, " UNION ALL ")), args...).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: unable to read recent runs: %w", err)
	}
	for _, r := range rows {
		out[r.Agent] = append(out[r.Agent], r)
	}
	// Oldest first. Sorted here: neither dialect promises that UNION ALL
	// keeps each probe's order.
	for _, rs := range out {
		slices.SortStableFunc(rs, func(a, b RunPoint) int { return b.StartedAt.Compare(a.StartedAt) })
		slices.Reverse(rs)
	}
	return out, nil
}
