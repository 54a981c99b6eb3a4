package agents

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// What a killed process leaves on a real SQLite file: two tasks leased past
// their lease (one with attempts to spare, one without), a message in
// "sending" and a cycle-log run still "running". Recovery settles each, in
// order, and logs each; a second pass finds nothing.
func TestRecoverAfterCrashSettlesAndLogsEachStep(t *testing.T) {
	w := newFulfilmentWorld(t)
	c := w.customer(1)
	retried := w.task(c.ID, db.TaskPending, 500, 0)
	spent := w.task(c.ID, db.TaskPending, 500, 0)
	if claimed, err := w.store.ClaimTasks(w.ctx, w.clock.Now(), 2, time.Minute); err != nil || len(claimed) != 2 {
		t.Fatalf("ClaimTasks = %v, %v", claimed, err)
	}
	if _, err := w.store.Bun().NewUpdate().Table("tasks").Set("attempts = ?", DefaultMaxAttempts).
		Where("id = ?", spent.ID).Exec(w.ctx); err != nil {
		t.Fatal(err)
	}
	lead := w.lead(1, db.LeadNew)
	msg, err := w.store.QueueMessage(w.ctx, lead.ID, func(*db.Lead, int64) (db.OutboxDraft, error) {
		return db.OutboxDraft{Template: "intro", Subject: "Hello", Body: "Hello there"}, nil
	})
	if err != nil || msg == nil {
		t.Fatalf("QueueMessage = %v, %v", msg, err)
	}
	if claim, err := w.store.ClaimMessage(w.ctx, msg.ID, db.EmailCaps{PerCycle: 10, PerHour: 10, PerDay: 10}); err != nil || claim != db.ClaimOK {
		t.Fatalf("ClaimMessage = %v, %v", claim, err)
	}
	if _, err := w.store.StartRun(w.ctx, Ops, db.TriggerAutopilot); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(2 * time.Minute) // the leases have expired

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if err := RecoverAfterCrash(w.ctx, w.store, w.clock.Now(), log); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{
		`level=WARN msg="tasks left running by a crash were recovered" back_to_pending=1 failed=1`,
		`level=WARN msg="messages whose delivery is unknown after a crash were flagged for review" messages=1`,
		`level=WARN msg="cycle-log runs cut off by a crash were closed as interrupted" runs=1`,
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, l := range lines {
		if !strings.Contains(l, want[i]) {
			t.Errorf("log line %d = %s\nwant it to contain %s", i+1, l, want[i])
		}
	}

	if got := w.loadTask(retried.ID); got.Status != db.TaskPending {
		t.Errorf("task with attempts to spare = %s, want pending", got.Status)
	}
	if got := w.loadTask(spent.ID); got.Status != db.TaskFailed {
		t.Errorf("task out of attempts = %s, want failed", got.Status)
	}
	if n := w.count("SELECT COUNT(*) FROM messages WHERE id = ? AND status = ? AND needs_review", msg.ID, db.MessageSending); n != 1 {
		t.Errorf("the message in sending is not flagged for review")
	}
	runs, _, err := w.store.ListAgentRuns(w.ctx, db.ListQuery{})
	if err != nil || len(runs) != 1 || runs[0].Outcome != db.RunInterrupted || runs[0].FinishedAt == nil {
		t.Errorf("cycle log = %+v, %v; want the run closed as interrupted", runs, err)
	}

	logs.Reset()
	if err := RecoverAfterCrash(w.ctx, w.store, w.clock.Now(), log); err != nil || logs.Len() != 0 {
		t.Errorf("second recovery = %v, logged %q; want nothing to do", err, logs.String())
	}
}

// A step that fails stops the recovery: the error is logged with what could
// not be done and returned, so that the start stops.
func TestRecoverAfterCrashStopsAtAFailure(t *testing.T) {
	w := newFulfilmentWorld(t)
	store := w.store
	if _, err := store.StartRun(w.ctx, Ops, db.TriggerAutopilot); err != nil {
		t.Fatal(err)
	}
	closed, err := db.Open(w.ctx, store.Path())
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	var logs bytes.Buffer
	err = RecoverAfterCrash(w.ctx, closed, w.clock.Now(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil {
		t.Fatal("recovery on a closed store succeeded")
	}
	if !strings.Contains(logs.String(), `level=ERROR msg="cannot recover task leases" err=`) || strings.Count(logs.String(), "\n") != 1 {
		t.Errorf("logged %q, want one error naming the failed step", logs.String())
	}
	if runs, _, err := store.ListAgentRuns(w.ctx, db.ListQuery{}); err != nil || len(runs) != 1 || runs[0].Outcome != db.RunRunning {
		t.Errorf("cycle log = %+v, %v; want the later steps not run", runs, err)
	}
}
