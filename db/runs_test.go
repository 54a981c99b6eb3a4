package db

import (
	"context"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/uptrace/bun/migrate"
)

// TestCloseInterruptedRuns: the runs a killed process left "running" are
// closed as interrupted, finished now, with a note; finished runs are left
// alone; the kept totals follow and every invariant holds; a second call
// finds nothing.
func TestCloseInterruptedRuns(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	for _, agent := range []string{"bizdev", "billing", "bizdev"} {
		if _, err := d.StartRun(ctx, agent, TriggerAutopilot); err != nil {
			t.Fatal(err)
		}
	}
	done, err := d.StartRun(ctx, "ops", TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.FinishRun(ctx, done, RunOK, "3 tasks", map[string]int{"tasks": 3}); err != nil {
		t.Fatal(err)
	}

	n, err := d.CloseInterruptedRuns(ctx)
	if err != nil || n != 3 {
		t.Fatalf("CloseInterruptedRuns = %d, %v; want 3", n, err)
	}
	runs, _, err := d.ListAgentRuns(ctx, ListQuery{PerPage: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.ID == done.ID {
			if r.Outcome != RunOK || r.Message != "3 tasks" {
				t.Errorf("a finished run was changed: %+v", r)
			}
			continue
		}
		if r.Outcome != RunInterrupted || r.FinishedAt == nil || !r.FinishedAt.Equal(fixedNow) || !strings.Contains(r.Message, "before this run finished") {
			t.Errorf("cut-off run %d = %+v, want interrupted at %s with a note", r.ID, r, fixedNow)
		}
	}
	if _, pg, _ := d.ListAgentRuns(ctx, ListQuery{Status: RunInterrupted}); pg.Total != 3 {
		t.Errorf("interrupted runs counted %d, want 3", pg.Total)
	}
	if _, pg, _ := d.ListAgentRuns(ctx, ListQuery{Status: RunRunning}); pg.Total != 0 {
		t.Errorf("running runs counted %d, want 0", pg.Total)
	}
	sums, err := d.AgentRunSummaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sums["bizdev"].Runs != 2 || sums["bizdev"].Last == nil || sums["bizdev"].Last.Outcome != RunInterrupted {
		t.Errorf("bizdev card = %+v", sums["bizdev"])
	}
	for _, r := range mustCheck(t, d, fixedNow) {
		if !r.OK() {
			t.Errorf("invariant %d broken: %q", r.Number, r.Violations)
		}
	}
	if n, err := d.CloseInterruptedRuns(ctx); err != nil || n != 0 {
		t.Errorf("second CloseInterruptedRuns = %d, %v; want 0", n, err)
	}
}

// The closing UPDATE reads one range of the outcome index, never the log.
func TestCloseInterruptedRunsPlan(t *testing.T) {
	d := mustOpen(t)
	const closing = "UPDATE agent_runs SET outcome = 'interrupted', finished_at = ?, message = '' WHERE outcome = ?"
	if d.Postgres() {
		// PostgreSQL plans by statistics, so it is shown a log of 20,000
		// finished runs and a few running ones.
		mustExec(t, d.Bun(), `INSERT INTO agent_runs (agent, trigger, started_at, finished_at, outcome)
			SELECT 'ops', 'autopilot', timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second',
			       CASE WHEN i % 5000 = 0 THEN NULL ELSE timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' END,
			       CASE WHEN i % 5000 = 0 THEN 'running' ELSE 'ok' END
			  FROM generate_series(1, 20000) AS i`)
		mustExec(t, d.Bun(), "VACUUM ANALYZE agent_runs")
		plan := pgPlanOf(t, d, d.Bun().NewRaw(closing, fixedNow, RunRunning).String())
		if len(plan.seqScans("agent_runs")) > 0 || !plan.uses("agent_runs_outcome_started") {
			t.Errorf("plan = %s, want a search of agent_runs_outcome_started", plan)
		}
		return
	}
	plan := planOf(t, d, closing, fixedNow, RunRunning)
	if len(plan) != 1 || !strings.Contains(plan[0], "INDEX agent_runs_outcome_started (outcome=?)") {
		t.Errorf("plan = %q, want a search of agent_runs_outcome_started", plan)
	}
}

// migrationsBefore is the embedded migrations numbered below n.
func migrationsBefore(t *testing.T, n string) fs.FS {
	return migrationsWhere(t, func(name string) bool { return name < n })
}

// migrationsWhere is the embedded migrations whose file names keep takes.
func migrationsWhere(t *testing.T, keep func(name string) bool) fs.FS {
	t.Helper()
	files, err := fs.Glob(migrationFiles, "migrations/*.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	out := fstest.MapFS{}
	for _, f := range files {
		if !keep(path.Base(f)) {
			continue
		}
		b, err := fs.ReadFile(migrationFiles, f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = &fstest.MapFile{Data: b}
	}
	return out
}

// TestMigration0008KeepsTheCycleLog: a file at the schema before 0008,
// with runs of every outcome, keeps every row and kept total through the
// rebuild of agent_runs; afterwards the CHECK accepts interrupted (and
// nothing unknown), the indexes are back and the triggers still count.
func TestMigration0008KeepsTheCycleLog(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), FileName)
	d, err := openFile(p, WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ms := migrate.NewMigrations()
	if err := ms.Discover(migrationsBefore(t, "0008")); err != nil {
		t.Fatal(err)
	}
	m := migrate.NewMigrator(d.bun, ms, migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.bun.ExecContext(ctx, `INSERT INTO agent_runs (agent, trigger, started_at, outcome) VALUES ('ops', 'manual', '2025-01-01 00:00:00+00:00', 'interrupted')`); err == nil {
		t.Fatal("before 0008 the CHECK already accepted interrupted: the migration tests nothing")
	}
	for i, outcome := range []string{RunRunning, RunOK, RunFailed, RunPanicked, RunSkipped, RunOK} {
		mustExec(t, d.Bun(), `INSERT INTO agent_runs (agent, trigger, started_at, finished_at, outcome, message, counts)
			VALUES (?, 'autopilot', ?, ?, ?, ?, '{"n":1}')`,
			[]string{"bizdev", "ops"}[i%2], fixedNow.Add(time.Duration(i)*time.Minute), fixedNow.Add(time.Duration(i)*time.Minute+time.Second), outcome, "run "+outcome)
	}
	type row struct {
		ID                                               int64
		Agent, Trigger, StartedAt, Outcome, Message, Cnt string
		FinishedAt                                       *string
	}
	read := func() (rows []row, kept []keptTotal) {
		if err := d.bun.NewRaw(`SELECT id, agent, trigger, CAST(started_at AS TEXT) AS started_at, outcome, message, counts AS cnt,
			CAST(finished_at AS TEXT) AS finished_at FROM agent_runs ORDER BY id`).Scan(ctx, &rows); err != nil {
			t.Fatal(err)
		}
		if err := d.bun.NewRaw(`SELECT metric, label, n FROM kept_totals WHERE metric LIKE 'agent_runs:%' ORDER BY metric, label`).Scan(ctx, &kept); err != nil {
			t.Fatal(err)
		}
		return rows, kept
	}
	rowsBefore, keptBefore := read()

	if err := d.Migrate(ctx); err != nil {
		t.Fatalf("0008: %v", err)
	}
	rowsAfter, keptAfter := read()
	if len(rowsAfter) != 6 || len(keptAfter) != len(keptBefore) {
		t.Fatalf("after 0008: %d rows, %d totals; before %d, %d", len(rowsAfter), len(keptAfter), len(rowsBefore), len(keptBefore))
	}
	for i := range rowsBefore {
		b, a := rowsBefore[i], rowsAfter[i]
		if b.ID != a.ID || b.Agent != a.Agent || b.StartedAt != a.StartedAt || b.Outcome != a.Outcome || b.Message != a.Message || b.Cnt != a.Cnt ||
			(b.FinishedAt == nil) != (a.FinishedAt == nil) || (b.FinishedAt != nil && *b.FinishedAt != *a.FinishedAt) {
			t.Errorf("row %d changed: %+v -> %+v", i, b, a)
		}
	}
	for i := range keptBefore {
		if keptBefore[i] != keptAfter[i] {
			t.Errorf("kept total changed: %+v -> %+v", keptBefore[i], keptAfter[i])
		}
	}
	if n := countRows(t, d, `SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = 'agent_runs' AND name IN
		('agent_runs_started', 'agent_runs_agent', 'agent_runs_outcome_started', 'agent_runs_kept_insert', 'agent_runs_kept_update', 'agent_runs_kept_delete')`); n != 6 {
		t.Errorf("%d of the 3 indexes and 3 triggers of agent_runs are back", n)
	}
	if n := countRows(t, d, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'agent_runs_0008'`); n != 0 {
		t.Error("the scratch copy was left behind")
	}
	if n, err := d.CloseInterruptedRuns(ctx); err != nil || n != 1 {
		t.Fatalf("CloseInterruptedRuns after 0008 = %d, %v; want 1", n, err)
	}
	if _, err := d.StartRun(ctx, "billing", TriggerManual); err != nil {
		t.Fatal(err)
	}
	if _, err := d.bun.ExecContext(ctx, `UPDATE agent_runs SET outcome = 'exploded' WHERE id = 1`); err == nil {
		t.Error("the new CHECK accepts an unknown outcome")
	}
	for _, r := range mustCheck(t, d, fixedNow) {
		if !r.OK() {
			t.Errorf("invariant %d broken after 0008: %q", r.Number, r.Violations)
		}
	}
}
