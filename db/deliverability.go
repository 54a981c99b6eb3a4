package db

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"
)

// The deliverability guard: outreach pauses itself (the circuit breaker of
// outreach_pause.go, with a reason) when too many of its recent messages
// bounced or when a recipient complained, and an optional warm-up ramp
// lowers the daily cap of a new sender. A bounce or a complaint is judged in
// the transaction that records it, so no message is claimed after the one
// that tips the balance; the pause holds until an admin resumes outreach.

// Guard configures the deliverability guard (the EMAIL_BOUNCE_* and
// EMAIL_WARMUP_* settings). The zero value turns both rules off; a store
// opened without WithGuard uses DefaultGuard.
type Guard struct {
	// BounceRateBasisPoints is the bounce rate, in hundredths of a percent
	// (500 is 5%), above which outreach pauses; 0 never pauses for bounces.
	BounceRateBasisPoints int
	// BounceWindow is how many of the newest real sends the rate is taken
	// over.
	BounceWindow int
	// BounceMinSends is the fewest sends in the window before the rate can
	// pause outreach (at most BounceWindow), so that one early bounce does
	// not stop a new sender.
	BounceMinSends int
	// WarmupStart is the daily cap on the first day of the warm-up ramp; 0
	// is no ramp. The cap rises linearly to the stored daily cap, reached
	// on day WarmupDays, counted in 24-hour days from the first message a
	// provider accepted with the ramp on.
	WarmupStart int
	WarmupDays  int
}

// DefaultGuard pauses outreach when more than 5% of the last 50 sends
// bounced, once 20 were sent; no warm-up ramp.
func DefaultGuard() Guard {
	return Guard{BounceRateBasisPoints: 500, BounceWindow: 50, BounceMinSends: 20, WarmupDays: 14}
}

// WithGuard sets the deliverability guard's configuration.
func WithGuard(g Guard) Option {
	return func(d *DB) { d.guard = g }
}

// minSends is the smallest window the rate is judged on: at least one
// send, at most the window.
func (g Guard) minSends() int {
	return max(1, min(g.BounceMinSends, g.BounceWindow))
}

// SettingWarmupStartedAt is when the warm-up ramp began (RFC 3339): the
// first message a provider accepted while the ramp was on.
const SettingWarmupStartedAt = "outreach.warmup_started_at"

// bounceWindowSQL counts the newest real sends after a time (?0), at most
// ?1 of them, and those whose address bounced since: a walk of the covering
// partial index messages_sent_window (migration 0019) in sent_at order,
// stopped at the LIMIT, with one search of the suppressions' UNIQUE (kind,
// value) index per message. A bounce suppression older than the send cannot
// be about it (the claim refuses a suppressed address), so it is not
// counted. Each recipient counts once: a lead sent two steps of a sequence
// whose address then bounced is one bounce among the window's recipients,
// not two among its sends.
const bounceWindowSQL = `SELECT COUNT(DISTINCT w.to_addr) AS sends,
	COUNT(DISTINCT CASE WHEN EXISTS (SELECT 1 FROM suppressions AS s WHERE s.kind = 'address' AND s.value = w.to_addr
		AND s.reason = 'bounced' AND s.created_at >= w.sent_at) THEN w.to_addr END) AS bounced
	FROM (SELECT to_addr, sent_at FROM messages INDEXED BY messages_sent_window
		WHERE status = 'sent' AND sent_at > ?0 ORDER BY sent_at DESC LIMIT ?1) AS w`

// BounceWindow is the bounce rate's figures: the newest real sends counted
// (at most the window, only those after the last resume) and how many of
// them bounced.
type BounceWindow struct {
	Sends, Bounced int
	// Window, MinSends and RateBasisPoints are the guard's settings the
	// figures were taken with.
	Window, MinSends, RateBasisPoints int
}

// Over reports whether the window trips the guard: enough sends, and a
// bounce rate strictly above the threshold.
func (w BounceWindow) Over() bool {
	return w.RateBasisPoints > 0 && w.Sends >= w.MinSends && w.Bounced*10_000 > w.RateBasisPoints*w.Sends
}

// RateBasisPointsSeen is the window's bounce rate in hundredths of a
// percent, rounded up (so a rate just above the threshold never reads as
// equal to it); 0 without sends.
func (w BounceWindow) RateBasisPointsSeen() int {
	if w.Sends == 0 {
		return 0
	}
	return (w.Bounced*10_000 + w.Sends - 1) / w.Sends
}

// String is the window in words: "6 of the last 50 recipients bounced (12%
// > 5%)".
func (w BounceWindow) String() string {
	cmp := "≤"
	if w.Bounced*10_000 > w.RateBasisPoints*w.Sends {
		cmp = ">"
	}
	return fmt.Sprintf("%d of the last %d %s bounced (%s %s %s)", w.Bounced, w.Sends, pluralWord(w.Sends, "recipient", "recipients"),
		PercentText(w.RateBasisPointsSeen()), cmp, PercentText(w.RateBasisPoints))
}

// PercentText writes basis points as a percentage: 500 "5%", 250 "2.5%",
// 1234 "12.34%".
func PercentText(bp int) string {
	s := strconv.Itoa(bp / 100)
	if frac := bp % 100; frac != 0 {
		f := fmt.Sprintf("%02d", frac)
		if f[1] == '0' {
			f = f[:1]
		}
		s += "." + f
	}
	return s + "%"
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// bounceWindowIn reads the bounce window after the last resume.
func (d *DB) bounceWindowIn(ctx context.Context, idb bun.IDB, resumedAt time.Time) (BounceWindow, error) {
	g := d.guard
	w := BounceWindow{Window: g.BounceWindow, MinSends: g.minSends(), RateBasisPoints: g.BounceRateBasisPoints}
	if g.BounceWindow <= 0 {
		return w, nil
	}
	if resumedAt.IsZero() {
		resumedAt = time.Unix(0, 0)
	}
	err := idb.NewRaw(pinned(idb, bounceWindowSQL), resumedAt.UTC(), g.BounceWindow).Scan(ctx, &w.Sends, &w.Bounced)
	return w, err
}

// BounceWindow reads the bounce rate's figures for the e-mail panel. It
// only reads.
func (d *DB) BounceWindow(ctx context.Context) (BounceWindow, error) {
	p, err := outreachPauseIn(ctx, d.bun)
	if err != nil {
		return BounceWindow{}, fmt.Errorf("store: unable to read the outreach pause: %w", err)
	}
	w, err := d.bounceWindowIn(ctx, d.bun, p.ResumedAt)
	if err != nil {
		return BounceWindow{}, fmt.Errorf("store: unable to read the bounce window: %w", err)
	}
	return w, nil
}

// guardSuppression is the guard's part of a new suppression of addr, in its
// transaction: a complaint pauses outreach, and a bounce pauses it when the
// bounce window is over the threshold. It reports whether it paused
// outreach.
func (d *DB) guardSuppression(ctx context.Context, tx bun.Tx, addr, reason, source string, now time.Time) (bool, error) {
	switch reason {
	case SuppressComplaint:
		detail := "a complaint from " + addr
		if source != "" {
			detail += " (" + clipRunes(source, 60) + ")"
		}
		return pauseOutreachIn(ctx, tx, PauseComplaint, detail, now)
	case SuppressBounced:
		if d.guard.BounceRateBasisPoints <= 0 || d.guard.BounceWindow <= 0 {
			return false, nil
		}
		p, err := outreachPauseIn(ctx, tx)
		if err != nil || p.Paused {
			return false, err
		}
		w, err := d.bounceWindowIn(ctx, tx, p.ResumedAt)
		if err != nil || !w.Over() {
			return false, err
		}
		return pauseOutreachIn(ctx, tx, PauseBounceRate, w.String(), now)
	}
	return false, nil
}

// Warmup is the warm-up ramp on a given day.
type Warmup struct {
	// On: a ramp is configured (Guard.WarmupStart > 0).
	On bool
	// Started: the first real send happened, at StartedAt. Before it the
	// ramp is on day 1.
	Started   bool
	StartedAt time.Time
	// Day counts from 1; the ramp is over once Day > Days.
	Day, Days int
	// Cap is today's daily cap; Max the stored daily cap it rises to.
	Cap, Max int
}

// Done reports whether the ramp has reached its last day's end.
func (w Warmup) Done() bool { return w.On && w.Day > w.Days }

// String is the ramp in words: "warm-up day 3 of 14: cap 40 today (max
// 200)".
func (w Warmup) String() string {
	switch {
	case !w.On:
		return "no warm-up"
	case w.Done():
		return fmt.Sprintf("warm-up done after %d days: cap %d", w.Days, w.Cap)
	case !w.Started:
		return fmt.Sprintf("warm-up day 1 of %d from the first real send: cap %d today (max %d)", w.Days, w.Cap, w.Max)
	}
	return fmt.Sprintf("warm-up day %d of %d: cap %d today (max %d)", w.Day, w.Days, w.Cap, w.Max)
}

// warmup is the ramp of g at now, started at startedAt (zero: not yet),
// rising to maxPerDay: start on day 1, maxPerDay on day Days and after,
// linear (rounded down) in between.
func (g Guard) warmup(maxPerDay int, startedAt, now time.Time) Warmup {
	w := Warmup{On: g.WarmupStart > 0, Days: max(g.WarmupDays, 1), Cap: maxPerDay, Max: maxPerDay, Day: 1}
	if !w.On {
		return w
	}
	if !startedAt.IsZero() {
		w.Started, w.StartedAt = true, startedAt
		if elapsed := now.Sub(startedAt); elapsed > 0 {
			w.Day = int(elapsed/(24*time.Hour)) + 1
		}
	}
	if w.Day >= w.Days || g.WarmupStart >= maxPerDay {
		return w
	}
	w.Cap = g.WarmupStart + (maxPerDay-g.WarmupStart)*(w.Day-1)/(w.Days-1)
	return w
}

// warmupIn reads the ramp at now for a daily cap of maxPerDay.
func (d *DB) warmupIn(ctx context.Context, idb bun.IDB, maxPerDay int, now time.Time) (Warmup, error) {
	if d.guard.WarmupStart <= 0 {
		return d.guard.warmup(maxPerDay, time.Time{}, now), nil
	}
	v, _, err := settingIn(ctx, idb, SettingWarmupStartedAt)
	if err != nil {
		return Warmup{}, err
	}
	var startedAt time.Time
	if v != "" {
		if startedAt, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return Warmup{}, fmt.Errorf("setting %s=%q is malformed: %w", SettingWarmupStartedAt, v, err)
		}
	}
	return d.guard.warmup(maxPerDay, startedAt, now), nil
}

// Warmup reads the warm-up ramp today for a daily cap of maxPerDay, for the
// e-mail panel. It only reads.
func (d *DB) Warmup(ctx context.Context, maxPerDay int) (Warmup, error) {
	w, err := d.warmupIn(ctx, d.bun, maxPerDay, d.Now())
	if err != nil {
		return Warmup{}, fmt.Errorf("store: unable to read the warm-up ramp: %w", err)
	}
	return w, nil
}

// startWarmupIn records the ramp's first day at the first real send, when
// a ramp is configured and none started yet.
func (d *DB) startWarmupIn(ctx context.Context, tx bun.Tx, now time.Time) error {
	if d.guard.WarmupStart <= 0 {
		return nil
	}
	_, err := tx.NewInsert().Model(&Setting{Key: SettingWarmupStartedAt, Value: now.Format(time.RFC3339Nano), UpdatedAt: now}).
		On("CONFLICT (key) DO NOTHING").Exec(ctx)
	return err
}
