package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Setting keys of the outreach circuit breaker: consecutive provider errors
// pause outreach until an admin resumes it. They live in settings so that a
// pause survives a restart.
const (
	// SettingOutreachErrors counts the provider errors since the last
	// message a provider accepted.
	SettingOutreachErrors = "outreach.consecutive_errors"
	// SettingOutreachPausedAt is when outreach was paused (RFC 3339), empty
	// or absent while it runs.
	SettingOutreachPausedAt = "outreach.paused_at"
	// SettingOutreachPausedAfter is the error count that tripped the pause.
	SettingOutreachPausedAfter = "outreach.paused_after"
)

// OutreachPause is the state of the outreach circuit breaker.
type OutreachPause struct {
	// Errors counts the consecutive provider errors, reset by every message
	// a provider accepts.
	Errors      int
	Paused      bool
	PausedAt    time.Time
	PausedAfter int // the consecutive errors that paused outreach
}

// SendFailure is what RecordSendError decided about a failed send.
type SendFailure struct {
	LeadFailed bool // the message used its last attempt; its lead is failed
	Paused     bool // this error paused outreach
	Errors     int  // consecutive provider errors, this one included
}

// OutreachPause reads the circuit breaker. It only reads, so page views may
// call it.
func (d *DB) OutreachPause(ctx context.Context) (OutreachPause, error) {
	p, err := outreachPauseIn(ctx, d.bun)
	if err != nil {
		return OutreachPause{}, fmt.Errorf("store: unable to read the outreach pause: %w", err)
	}
	return p, nil
}

func outreachPauseIn(ctx context.Context, idb bun.IDB) (OutreachPause, error) {
	var p OutreachPause
	var settings []Setting
	keys := []string{SettingOutreachErrors, SettingOutreachPausedAt, SettingOutreachPausedAfter}
	err := idb.NewSelect().Model(&settings).Where("key IN (?)", bun.List(keys)).Scan(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return p, err
	}
	for _, s := range settings {
		v := strings.TrimSpace(s.Value)
		if v == "" {
			continue
		}
		switch s.Key {
		case SettingOutreachErrors:
			p.Errors, err = strconv.Atoi(v)
		case SettingOutreachPausedAfter:
			p.PausedAfter, err = strconv.Atoi(v)
		case SettingOutreachPausedAt:
			p.Paused = true
			p.PausedAt, err = time.Parse(time.RFC3339Nano, v)
		}
		if err != nil {
			return OutreachPause{}, fmt.Errorf("setting %s=%q is malformed: %w", s.Key, v, err)
		}
	}
	return p, nil
}

// RecordSendError records a provider error for message id like MarkFailed
// and, in the same transaction, counts it: the pauseAfter-th consecutive
// error (0: never) pauses outreach.
func (d *DB) RecordSendError(ctx context.Context, id int64, reason string, pauseAfter int) (SendFailure, error) {
	var out SendFailure
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := d.Now()
		var err error
		if out.LeadFailed, err = markFailed(ctx, tx, id, reason, now); err != nil {
			return err
		}
		p, err := outreachPauseIn(ctx, tx)
		if err != nil {
			return err
		}
		out.Errors = p.Errors + 1
		if err := putSetting(ctx, tx, SettingOutreachErrors, strconv.Itoa(out.Errors), now); err != nil {
			return err
		}
		if p.Paused || pauseAfter <= 0 || out.Errors < pauseAfter {
			return nil
		}
		out.Paused = true
		if err := putSetting(ctx, tx, SettingOutreachPausedAfter, strconv.Itoa(out.Errors), now); err != nil {
			return err
		}
		return putSetting(ctx, tx, SettingOutreachPausedAt, now.Format(time.RFC3339Nano), now)
	})
	if err != nil {
		return SendFailure{}, fmt.Errorf("store: unable to record the send error of message %d: %w", id, err)
	}
	return out, nil
}

// resetProviderErrors zeroes the consecutive error count, writing only when
// it is not zero already. A pause stays until an admin resumes.
func resetProviderErrors(ctx context.Context, idb bun.IDB, now time.Time) error {
	_, err := idb.NewUpdate().Model((*Setting)(nil)).Set("value = '0', updated_at = ?", now).
		Where("key = ? AND value <> '0'", SettingOutreachErrors).Exec(ctx)
	return err
}

// ResumeOutreach lifts a pause and zeroes the error count, in one
// transaction. It returns the state it found, so the caller can tell whether
// outreach was paused at all.
func (d *DB) ResumeOutreach(ctx context.Context) (OutreachPause, error) {
	var was OutreachPause
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if was, err = outreachPauseIn(ctx, tx); err != nil || (!was.Paused && was.Errors == 0) {
			return err
		}
		now := d.Now()
		for key, value := range map[string]string{SettingOutreachErrors: "0", SettingOutreachPausedAt: "", SettingOutreachPausedAfter: ""} {
			if err := putSetting(ctx, tx, key, value, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return OutreachPause{}, fmt.Errorf("store: unable to resume outreach: %w", err)
	}
	return was, nil
}
