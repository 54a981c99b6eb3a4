package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/uptrace/bun"
)

// Setting keys of the outreach circuit breaker: consecutive provider errors,
// a bounce rate over its threshold (deliverability.go) or a complaint pause
// outreach until an admin resumes it. They live in settings so that a pause
// survives a restart.
const (
	// SettingOutreachErrors counts the provider errors since the last
	// message a provider accepted.
	SettingOutreachErrors = "outreach.consecutive_errors"
	// SettingOutreachPausedAt is when outreach was paused (RFC 3339), empty
	// or absent while it runs.
	SettingOutreachPausedAt = "outreach.paused_at"
	// SettingOutreachPausedAfter is the error count that tripped the pause.
	SettingOutreachPausedAfter = "outreach.paused_after"
	// SettingOutreachPauseReason is why outreach is paused: one of the
	// Pause* reasons; empty for a pause recorded before reasons existed,
	// which was a provider-error pause.
	SettingOutreachPauseReason = "outreach.pause_reason"
	// SettingOutreachPauseDetail says why in words, written when the pause
	// tripped ("6 of the last 50 sends bounced (12% > 5%)").
	SettingOutreachPauseDetail = "outreach.pause_detail"
	// SettingOutreachResumedAt is when an admin last resumed outreach
	// (RFC 3339): the bounce window counts only messages sent after it, so
	// the bounces that tripped a pause cannot trip it again.
	SettingOutreachResumedAt = "outreach.resumed_at"
)

// Pause reasons (SettingOutreachPauseReason).
const (
	PauseProviderErrors = "provider_errors"
	PauseBounceRate     = "bounce_rate"
	PauseComplaint      = "complaint"
)

// maxPauseDetail bounds the words kept about a pause, in runes.
const maxPauseDetail = 300

// OutreachPause is the state of the outreach circuit breaker.
type OutreachPause struct {
	// Errors counts the consecutive provider errors, reset by every message
	// a provider accepts.
	Errors      int
	Paused      bool
	PausedAt    time.Time
	PausedAfter int // the consecutive errors that paused outreach
	// Reason is one of the Pause* reasons while paused, "" while running.
	Reason string
	// Detail says why in words, for the admin.
	Detail string
	// ResumedAt is when an admin last resumed outreach; zero if never.
	ResumedAt time.Time
}

// Why is the pause's reason in words: the detail written when it tripped,
// or, for a pause recorded without one, its error count.
func (p OutreachPause) Why() string {
	if !p.Paused {
		return ""
	}
	if p.Detail != "" {
		return p.Detail
	}
	return providerErrorsDetail(p.PausedAfter)
}

func providerErrorsDetail(n int) string {
	if n == 1 {
		return "1 provider error"
	}
	return strconv.Itoa(n) + " consecutive provider errors"
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
	keys := []string{SettingOutreachErrors, SettingOutreachPausedAt, SettingOutreachPausedAfter,
		SettingOutreachPauseReason, SettingOutreachPauseDetail, SettingOutreachResumedAt}
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
		case SettingOutreachResumedAt:
			p.ResumedAt, err = time.Parse(time.RFC3339Nano, v)
		case SettingOutreachPauseReason:
			p.Reason = v
		case SettingOutreachPauseDetail:
			p.Detail = v
		}
		if err != nil {
			return OutreachPause{}, fmt.Errorf("setting %s=%q is malformed: %w", s.Key, v, err)
		}
	}
	switch {
	case !p.Paused:
		p.Reason, p.Detail = "", ""
	case p.Reason == "":
		p.Reason = PauseProviderErrors
	}
	return p, nil
}

// pauseOutreachIn pauses outreach for reason, with detail in words, unless
// it is paused already: the first reason stays until an admin resumes. It
// reports whether this call paused it.
func pauseOutreachIn(ctx context.Context, tx bun.Tx, reason, detail string, now time.Time) (bool, error) {
	pausedAt, _, err := settingIn(ctx, tx, SettingOutreachPausedAt)
	if err != nil || pausedAt != "" {
		return false, err
	}
	for _, kv := range [][2]string{
		{SettingOutreachPauseReason, reason},
		{SettingOutreachPauseDetail, clipRunes(detail, maxPauseDetail)},
		{SettingOutreachPausedAt, now.Format(time.RFC3339Nano)},
	} {
		if err := putSetting(ctx, tx, kv[0], kv[1], now); err != nil {
			return false, err
		}
	}
	return true, nil
}

// clipRunes is s on one line, without control characters, at most n runes.
func clipRunes(s string, n int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}

// RecordSendError records a provider error for message id like MarkFailed
// and, in the same transaction, counts it: the pauseAfter-th consecutive
// error (0: never) pauses outreach.
func (d *DB) RecordSendError(ctx context.Context, id int64, reason string, pauseAfter int) (SendFailure, error) {
	var out SendFailure
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		out = SendFailure{}
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
		_, err = pauseOutreachIn(ctx, tx, PauseProviderErrors, providerErrorsDetail(out.Errors), now)
		return err
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

// ResumeOutreach lifts a pause, clears its reason and zeroes the error
// count, in one transaction; after a pause, the bounce window restarts empty
// (only messages sent from now on count). It returns the state it found, so
// the caller can tell whether outreach was paused at all.
func (d *DB) ResumeOutreach(ctx context.Context) (OutreachPause, error) {
	var was OutreachPause
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if was, err = outreachPauseIn(ctx, tx); err != nil || (!was.Paused && was.Errors == 0) {
			return err
		}
		now := d.Now()
		values := map[string]string{SettingOutreachErrors: "0", SettingOutreachPausedAt: "", SettingOutreachPausedAfter: "",
			SettingOutreachPauseReason: "", SettingOutreachPauseDetail: ""}
		if was.Paused {
			values[SettingOutreachResumedAt] = now.Format(time.RFC3339Nano)
		}
		for key, value := range values {
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
