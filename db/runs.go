package db

import (
	"context"
	"encoding/json"
	"fmt"
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
)

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
// failure counts and its latest run.
func (d *DB) AgentRunSummaries(ctx context.Context) (map[string]RunSummary, error) {
	rows, err := d.bun.QueryContext(ctx, `SELECT agent, COUNT(*), SUM(outcome IN ('failed','panicked')), MAX(id)
		FROM agent_runs GROUP BY agent`)
	if err != nil {
		return nil, fmt.Errorf("store: unable to summarise agent runs: %w", err)
	}
	out := map[string]RunSummary{}
	var lastIDs []int64
	for rows.Next() {
		var agent string
		var s RunSummary
		var last int64
		if err := rows.Scan(&agent, &s.Runs, &s.Failures, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: unable to read agent run summary: %w", err)
		}
		out[agent] = s
		lastIDs = append(lastIDs, last)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: unable to summarise agent runs: %w", err)
	}
	if len(lastIDs) == 0 {
		return out, nil
	}
	var last []AgentRun
	if err := d.bun.NewSelect().Model(&last).Where("r.id IN (?)", bun.List(lastIDs)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read latest agent runs: %w", err)
	}
	for i := range last {
		s := out[last[i].Agent]
		s.Last = &last[i]
		out[last[i].Agent] = s
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
