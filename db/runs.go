package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Run outcomes in the cycle log.
const (
	RunRunning  = "running"
	RunOK       = "ok"
	RunFailed   = "failed"
	RunPanicked = "panicked"
	RunSkipped  = "skipped"
	// RunInterrupted is a run its process never finished: it was killed or
	// crashed mid-run, and the next start closed the row (0008).
	RunInterrupted = "interrupted"
)

// interruptedNote is the message of a run closed as interrupted.
const interruptedNote = "interrupted: the process stopped (killed, crashed or lost power) before this run finished; closed at the next start"

// Run triggers.
const (
	TriggerAutopilot = "autopilot"
	TriggerManual    = "manual"
	TriggerRestart   = "restart"
)

// RunSummary is one agent's history from the cycle log.
type RunSummary struct {
	Runs     int64
	Failures int64
	Last     *AgentRun
}

// AgentRunSummaries reads, for every agent that ever ran, its run and
// failure counts and its latest run. The counts are kept totals
// (agent_runs:NAME, one row per outcome); each latest run is one probe of
// the agent_runs_agent index. Nothing here grows with the cycle log.
func (d *DB) AgentRunSummaries(ctx context.Context) (map[string]RunSummary, error) {
	var kept []keptTotal
	err := d.bun.NewRaw(`SELECT metric, label, n FROM kept_totals
		WHERE metric >= 'agent_runs:' AND metric < 'agent_runs;' AND n <> 0`).Scan(ctx, &kept)
	if err != nil {
		return nil, fmt.Errorf("store: unable to summarise agent runs: %w", err)
	}
	out := map[string]RunSummary{}
	for _, k := range kept {
		agent := strings.TrimPrefix(k.Metric, "agent_runs:")
		s := out[agent]
		s.Runs += k.N
		if k.Label == RunFailed || k.Label == RunPanicked {
			s.Failures += k.N
		}
		out[agent] = s
	}
	for agent, s := range out {
		var last AgentRun
		err := d.bun.NewSelect().Model(&last).Where("r.agent = ?", agent).
			OrderExpr("r.started_at DESC, r.id DESC").Limit(1).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			continue // the kept count drifted (check reports it): no card breaks
		}
		if err != nil {
			return nil, fmt.Errorf("store: unable to read the latest run of %s: %w", agent, err)
		}
		s.Last = &last
		out[agent] = s
	}
	return out, nil
}

// StartRun writes a run in the "running" state and returns it.
func (d *DB) StartRun(ctx context.Context, agent, trigger string) (*AgentRun, error) {
	r := &AgentRun{Agent: agent, Trigger: trigger, StartedAt: d.Now(), Outcome: RunRunning, Counts: "{}"}
	if _, err := d.bun.NewInsert().Model(r).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to record %s run: %w", agent, err)
	}
	return r, nil
}

// FinishRun records a run's outcome, message and counts.
func (d *DB) FinishRun(ctx context.Context, r *AgentRun, outcome, message string, counts map[string]int) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return fmt.Errorf("store: unable to encode run counts: %w", err)
	}
	now := d.Now()
	r.FinishedAt, r.Outcome, r.Message, r.Counts = &now, outcome, truncate(message, 2000), string(b)
	_, err = d.bun.NewUpdate().Model(r).Column("finished_at", "outcome", "message", "counts").WherePK().Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to finish %s run %d: %w", r.Agent, r.ID, err)
	}
	return nil
}

// CloseInterruptedRuns closes every run still "running" as interrupted,
// finished now, with a note saying why, and returns how many it closed.
// Call it at start, before any agent runs: only then is every running row
// a leftover of a process that died (the data directory's lock proves no
// other process runs). One range of the agent_runs_outcome_started index;
// the kept totals move from running to interrupted by their trigger.
func (d *DB) CloseInterruptedRuns(ctx context.Context) (int64, error) {
	res, err := d.bun.NewUpdate().Table("agent_runs").
		Set("outcome = ?", RunInterrupted).Set("finished_at = ?", d.Now()).Set("message = ?", interruptedNote).
		Where("outcome = ?", RunRunning).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: unable to close interrupted runs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: unable to close interrupted runs: %w", err)
	}
	return n, nil
}

// Duration is how long a finished run took (zero while running).
func (r *AgentRun) Duration() time.Duration {
	if r.FinishedAt == nil {
		return 0
	}
	return r.FinishedAt.Sub(r.StartedAt)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// RunOutcomeFilters are the outcomes the cycle log can be filtered by,
// one at a time: each is one range of agent_runs_outcome_started (or, with
// an agent, of agent_runs_agent_outcome) walked in order, where a filter of
// two outcomes would sort every match.
var RunOutcomeFilters = []string{RunOK, RunFailed, RunPanicked, RunRunning, RunInterrupted, RunSkipped}

// ListAgentRuns returns a page of the cycle log, newest first. Status (or
// Statuses) filters by outcome and Agent by agent; each combination walks
// an index in (started_at, id) order from the page's cursor
// (agent_runs_started, agent_runs_agent, agent_runs_outcome_started,
// agent_runs_agent_outcome of 0021), and is counted from the kept totals.
// A search reads the log (it has no full-text index; its count is
// bounded).
func (d *DB) ListAgentRuns(ctx context.Context, q ListQuery) ([]AgentRun, Page, error) {
	q = q.normal()
	var runs []AgentRun
	statuses := q.statuses()
	l := list[AgentRun]{table: "agent_runs", alias: "r", sortCol: "started_at",
		query: func() *bun.SelectQuery { return d.bun.NewSelect().Model(&runs) },
		filter: func(sq *bun.SelectQuery) *bun.SelectQuery {
			if q.Agent != "" {
				sq = sq.Where("r.agent = ?", q.Agent)
			}
			switch len(statuses) {
			case 0:
			case 1:
				sq = sq.Where("r.outcome = ?", statuses[0])
			default:
				sq = sq.Where("r.outcome IN (?)", bun.List(statuses))
			}
			return searchWhere(sq, q.Search, "r.agent", "r.message")
		},
		// The agent_runs:NAME metrics form one range of the primary key.
		count: func(ctx context.Context) (int, error) {
			if q.Agent != "" {
				n, err := d.keptCount(ctx, statuses, "metric = ?", "agent_runs:"+q.Agent)
				return int(n), err
			}
			n, err := d.keptCount(ctx, statuses, "metric >= 'agent_runs:' AND metric < 'agent_runs;'")
			return int(n), err
		},
		id: func(r *AgentRun) int64 { return r.ID },
	}
	pg, err := l.fetch(ctx, d, q, &runs)
	return runs, pg, err
}
