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

// The control room's health panels read these aggregates on every live
// update, so each is a handful of indexed queries and none writes.

// EmailHealth is the outreach side of the control room: what left the outbox
// recently, what is stuck, and what failed.
type EmailHealth struct {
	SentLastHour int // sent or dry-run (or in flight) in the rolling hour
	SentLastDay  int // the same over the rolling 24 hours
	Outbox       map[string]int64
	NeedsReview  int64 // messages whose fate is unknown after a crash
	Suppressions int64
	Failures     []Message // the newest failed messages, newest first
}

// EmailHealth computes the e-mail health figures at now, with the newest
// failures (at most failures of them).
func (d *DB) EmailHealth(ctx context.Context, now time.Time, failures int) (EmailHealth, error) {
	var h EmailHealth
	var err error
	if h.SentLastHour, h.SentLastDay, err = sendsInWindows(ctx, d.bun, now); err != nil {
		return h, fmt.Errorf("store: unable to count sent messages: %w", err)
	}
	// Outbox, review and suppression counts are kept totals (migration 0004).
	counts, err := d.keptCounts(ctx, "messages", "messages_review", "suppressions")
	if err != nil {
		return h, err
	}
	h.Outbox = counts["messages"]
	h.NeedsReview, h.Suppressions = sum(counts["messages_review"]), sum(counts["suppressions"])
	if failures <= 0 {
		return h, nil
	}
	err = d.bun.NewSelect().Model(&h.Failures).
		Where("m.status = ?", MessageFailed).
		OrderExpr("m.updated_at DESC, m.id DESC").Limit(int64(failures)).Scan(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("store: unable to list failed messages: %w", err)
	}
	return h, nil
}

// EmailCapsInEffect reads the caps the mailer applies, falling back to
// defaults for any never stored. Unlike EmailCaps it stores nothing: a page
// view must not take the database's write lock.
func (d *DB) EmailCapsInEffect(ctx context.Context, defaults EmailCaps) (EmailCaps, error) {
	var settings []Setting
	caps := EmailCaps{}
	fields := caps.fields(defaults)
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	err := d.bun.NewSelect().Model(&settings).Where("key IN (?)", bun.List(keys)).Scan(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return EmailCaps{}, fmt.Errorf("store: unable to read e-mail caps: %w", err)
	}
	stored := map[string]string{}
	for _, s := range settings {
		stored[s.Key] = s.Value
	}
	for _, f := range fields {
		v, ok := stored[f.key]
		if !ok {
			*f.dst = max(f.def, 0)
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return EmailCaps{}, fmt.Errorf("store: unable to read e-mail caps: setting %s=%q is not a whole number ≥ 0", f.key, v)
		}
		*f.dst = n
	}
	return caps, nil
}

// LeadsCreatedSince counts the leads created after t, by source.
func (d *DB) LeadsCreatedSince(ctx context.Context, t time.Time) (map[string]int64, error) {
	rows, err := d.bun.QueryContext(ctx, "SELECT source, COUNT(*) FROM leads WHERE created_at > ? GROUP BY source", t.UTC())
	if err != nil {
		return nil, fmt.Errorf("store: unable to count new leads: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var source string
		var n int64
		if err := rows.Scan(&source, &n); err != nil {
			return nil, fmt.Errorf("store: unable to read new lead counts: %w", err)
		}
		out[source] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: unable to count new leads: %w", err)
	}
	return out, nil
}

// StripeHealth is the payments side of the control room: the last webhook
// event, the events set aside, and the invoices an operator must look at.
type StripeHealth struct {
	LastEvent *StripeEvent // nil when no event ever arrived
	// MissingLinks counts open, unflagged invoices still without a payment
	// link: the billing cycle retries them, "regenerate links" forces it.
	MissingLinks int64
	Flagged      int64        // open invoices carrying a flag
	FlaggedList  []InvoiceRow // the newest flagged open invoices
	// SetAside counts, by outcome, the events of the last SetAsideWindow
	// recorded without being applied: another install's, none proven ours,
	// unprocessable (PaymentOutcome.SetAside).
	SetAside     map[string]int64
	SetAsideList []SetAsideEvent // the newest of them, whenever they came
	// LastLinkError is the newest payment-link error of an invoice still
	// without its link (nil when none failed).
	LastLinkError *InvoiceLinkError
}

// SetAsideTotal is how many events were set aside in the window.
func (h StripeHealth) SetAsideTotal() int64 { return sum(h.SetAside) }

// SetAsideEvent is a Stripe event recorded without being applied, and why.
type SetAsideEvent struct {
	EventID    string    `bun:"event_id"`
	Type       string    `bun:"type"`
	Outcome    string    `bun:"outcome"`
	Detail     string    `bun:"detail"`
	ReceivedAt time.Time `bun:"received_at"`
}

// SetAsideWindow is how far back the Stripe panel counts set-aside events.
const SetAsideWindow = 7 * 24 * time.Hour

// StripeHealth reads the Stripe health figures, with at most list of the
// newest flagged invoices and of the newest set-aside events.
func (d *DB) StripeHealth(ctx context.Context, list int) (StripeHealth, error) {
	var h StripeHealth
	var last StripeEvent
	err := d.bun.NewSelect().Model(&last).OrderExpr("received_at DESC, id DESC").Limit(1).Scan(ctx)
	switch {
	case err == nil:
		h.LastEvent = &last
	case !errors.Is(err, sql.ErrNoRows):
		return h, fmt.Errorf("store: unable to read the last Stripe event: %w", err)
	}
	// Each count reads a partial index holding only the invoices that need
	// attention (invoices_need_link, invoices_open_attention), not every
	// open invoice; the planner, seeing many open invoices, would otherwise
	// pick invoices_status_created and read them all. (On SQLite; d.pin
	// drops INDEXED BY on PostgreSQL, whose planner matches the partial
	// indexes by their predicates.)
	err = d.bun.NewRaw(d.pin(`SELECT
			(SELECT COUNT(*) FROM invoices INDEXED BY invoices_need_link WHERE status = 'open' AND payment_url = '' AND flag = ''),
			(SELECT COUNT(*) FROM invoices INDEXED BY invoices_open_attention WHERE status = 'open' AND flag <> '')`)).Scan(ctx, &h.MissingLinks, &h.Flagged)
	if err != nil {
		return h, fmt.Errorf("store: unable to count invoices needing attention: %w", err)
	}
	if err := d.setAsideEvents(ctx, &h, list); err != nil {
		return h, err
	}
	if h.MissingLinks > 0 {
		if h.LastLinkError, err = d.LatestLinkError(ctx); err != nil {
			return h, err
		}
	}
	if h.Flagged == 0 || list <= 0 {
		return h, nil
	}
	err = d.bun.NewSelect().Model(&h.FlaggedList).
		ColumnExpr("i.*").ColumnExpr("c.company AS company").
		Join("JOIN customers AS c ON c.id = i.customer_id").
		Where("i.status = ? AND i.flag <> ''", InvoiceOpen).
		OrderExpr("i.updated_at DESC, i.id DESC").Limit(int64(list)).Scan(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("store: unable to list flagged invoices: %w", err)
	}
	return h, nil
}

// setAsideEvents counts the set-aside events of the window and lists the
// newest, both from the partial index stripe_events_set_aside (migration
// 0006), which holds only them: events of another install sharing the Stripe
// account can outnumber ours, and none of them is read.
func (d *DB) setAsideEvents(ctx context.Context, h *StripeHealth, list int) error {
	rows, err := d.bun.QueryContext(ctx, d.pin(`SELECT outcome, COUNT(*) FROM stripe_events INDEXED BY stripe_events_set_aside
		WHERE outcome IN (?) AND received_at > ? GROUP BY outcome`),
		bun.List(setAsideOutcomes), d.now().UTC().Add(-SetAsideWindow))
	if err != nil {
		return fmt.Errorf("store: unable to count set-aside Stripe events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var outcome string
		var n int64
		if err := rows.Scan(&outcome, &n); err != nil {
			return fmt.Errorf("store: unable to count set-aside Stripe events: %w", err)
		}
		if h.SetAside == nil {
			h.SetAside = map[string]int64{}
		}
		h.SetAside[outcome] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: unable to count set-aside Stripe events: %w", err)
	}
	if list <= 0 {
		return nil
	}
	err = d.bun.NewRaw(d.pin(`SELECT event_id, type, outcome, detail, received_at FROM stripe_events INDEXED BY stripe_events_set_aside
		WHERE outcome IN (?) ORDER BY received_at DESC, id DESC LIMIT ?`), bun.List(setAsideOutcomes), list).Scan(ctx, &h.SetAsideList)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: unable to list set-aside Stripe events: %w", err)
	}
	return nil
}
