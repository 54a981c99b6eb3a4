package agents

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hossagent/hossagent/db"
)

// RecoverAfterCrash settles what a crashed process may have left in the
// store, before any agent runs. It relies on the caller owning the database
// alone (serve holds the data directory's lock), so that nothing found in
// flight belongs to a live process. In order:
//
//  1. tasks leased past their lease go back to pending, or fail after
//     DefaultMaxAttempts (invariant 6), judged at now;
//  2. every outbox message still "sending" (outreach's and the clients')
//     lost its sender (one process sends): it is flagged for review, never
//     resent;
//  3. every cycle-log run still "running" was cut off with its process: it
//     is closed as interrupted.
//
// Each step that changed something logs a warning. The first failure is
// logged as an error, with what could not be done, and returned: the
// caller stops the start and need not log it again.
func RecoverAfterCrash(ctx context.Context, store *db.DB, now time.Time, log *slog.Logger) error {
	fail := func(what string, err error) error {
		log.Error("cannot "+what, "err", err)
		return fmt.Errorf("start-up recovery: %s: %w", what, err)
	}
	recovered, failed, err := store.RecoverExpiredLeases(ctx, now, DefaultMaxAttempts)
	if err != nil {
		return fail("recover task leases", err)
	}
	if recovered+failed > 0 {
		log.Warn("tasks left running by a crash were recovered", "back_to_pending", recovered, "failed", failed)
	}
	flagged, err := store.FlagStaleSending(ctx, 0)
	if err != nil {
		return fail("check the outbox", err)
	}
	if flagged > 0 {
		log.Warn("messages whose delivery is unknown after a crash were flagged for review", "messages", flagged)
	}
	flagged, err = store.FlagStaleClientSending(ctx, 0)
	if err != nil {
		return fail("check the client outbox", err)
	}
	if flagged > 0 {
		log.Warn("client e-mails whose delivery is unknown after a crash were flagged for review", "messages", flagged)
	}
	closed, err := store.CloseInterruptedRuns(ctx)
	if err != nil {
		return fail("close the cycle log's interrupted runs", err)
	}
	if closed > 0 {
		log.Warn("cycle-log runs cut off by a crash were closed as interrupted", "runs", closed)
	}
	return nil
}
