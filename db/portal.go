package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// PortalTokenBytes is the entropy of a portal token: 256 bits, well over the
// 128 the spec asks for.
const PortalTokenBytes = 32

// NewToken draws a fresh URL-safe token from random and returns it with its
// hash. Only the hash is ever stored; the token lives in the link alone.
func NewToken(random io.Reader) (token, hash string, err error) {
	b := make([]byte, PortalTokenBytes)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", "", fmt.Errorf("store: unable to draw a token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is the stored form of a portal or session token: hex SHA-256.
// A fast hash is right here: the tokens are random 256-bit values, not
// passwords, so there is nothing to brute-force.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CustomerByPortalToken finds the customer whose live (not revoked) portal
// token is token. An unknown or revoked token is ErrNotFound.
func (d *DB) CustomerByPortalToken(ctx context.Context, token string) (*Customer, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNotFound
	}
	c := new(Customer)
	err := d.bun.NewSelect().Model(c).
		Where("c.portal_token_hash = ?", HashToken(token)).
		Where("c.token_revoked_at IS NULL").
		Scan(ctx)
	if err != nil {
		if err = notFound(err); err == ErrNotFound {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to find portal customer: %w", err)
	}
	return c, nil
}

// AccountSummary is a customer's money at a glance, for the portal.
type AccountSummary struct {
	Invoiced    Totals // open + paid (+ refunded) invoices
	Paid        Totals
	Outstanding Totals
	Overdue     Totals
	OpenCount   int64
	// EarliestDue is the earliest due date of the open invoices (by when
	// the money is due, or since when it is overdue); nil when none is open
	// or none has a due date.
	EarliestDue *time.Time
}

// CustomerSummary sums a customer's invoices in SQL.
func (d *DB) CustomerSummary(ctx context.Context, customerID int64) (AccountSummary, error) {
	var s AccountSummary
	var err error
	base := "SELECT currency, SUM(amount_cents) FROM invoices WHERE customer_id = ? AND "
	group := " GROUP BY currency ORDER BY currency"
	if s.Invoiced, err = d.totals(ctx, base+"status IN ('open','paid','refunded')"+group, customerID); err != nil {
		return s, err
	}
	if s.Paid, err = d.totals(ctx, base+"status = 'paid'"+group, customerID); err != nil {
		return s, err
	}
	if s.Outstanding, err = d.totals(ctx, base+"status = 'open'"+group, customerID); err != nil {
		return s, err
	}
	if s.Overdue, err = d.totals(ctx, base+"status = 'open' AND due_at < ?"+group, customerID, d.Now()); err != nil {
		return s, err
	}
	err = d.bun.NewRaw("SELECT COUNT(*) FROM invoices WHERE customer_id = ? AND status = 'open'", customerID).Scan(ctx, &s.OpenCount)
	if err != nil {
		return s, fmt.Errorf("store: unable to count open invoices: %w", err)
	}
	var due []time.Time
	err = d.bun.NewRaw(`SELECT due_at FROM invoices WHERE customer_id = ? AND status = 'open' AND due_at IS NOT NULL
		ORDER BY due_at LIMIT 1`, customerID).Scan(ctx, &due)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("store: unable to read the earliest due date: %w", err)
	}
	if len(due) == 1 {
		t := due[0].UTC()
		s.EarliestDue = &t
	}
	return s, nil
}

// CheckoutPayment is what the store knows of a Stripe Checkout Session a
// payer comes back from (/paid): whether any event of it arrived, and the
// invoice it names.
type CheckoutPayment struct {
	Outcome string   // the latest event's outcome (OutcomePaid, …)
	Invoice *Invoice // nil when no event of the session names an invoice
}

// CheckoutSessionPayment reads the payment of Checkout Session sessionID
// from the ledger (stripe_events_session, migration 0012): the latest event
// naming an invoice, else the latest event. No event is ErrNotFound.
func (d *DB) CheckoutSessionPayment(ctx context.Context, sessionID string) (*CheckoutPayment, error) {
	if sessionID == "" {
		return nil, ErrNotFound
	}
	var rows []struct {
		Outcome   string `bun:"outcome"`
		InvoiceID *int64 `bun:"invoice_id"`
	}
	err := d.bun.NewRaw(d.pin(`SELECT outcome, invoice_id FROM stripe_events INDEXED BY stripe_events_session
		WHERE session_id = ? AND session_id <> '' ORDER BY invoice_id IS NULL, id DESC LIMIT 1`), sessionID).Scan(ctx, &rows)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to read a Checkout Session's payment: %w", err)
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	p := &CheckoutPayment{Outcome: rows[0].Outcome}
	if rows[0].InvoiceID != nil {
		inv := new(Invoice)
		if err := d.one(ctx, inv, "i.id = ?", *rows[0].InvoiceID); err != nil {
			return nil, fmt.Errorf("store: unable to read the invoice of a Checkout Session: %w", err)
		}
		p.Invoice = inv
	}
	return p, nil
}

// maxBatch bounds the values of one IN (...) list (SQLite allows 32,766
// parameters; a smaller batch keeps each query short).
const maxBatch = 500

// CustomerByID reads one customer; an unknown id is ErrNotFound.
func (d *DB) CustomerByID(ctx context.Context, id int64) (*Customer, error) {
	c := new(Customer)
	if err := d.bun.NewSelect().Model(c).Where("c.id = ?", id).Scan(ctx); err != nil {
		if err = notFound(err); err == ErrNotFound {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to read customer %d: %w", id, err)
	}
	return c, nil
}
