package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// InvoiceLinkError is the last failure to create an invoice's payment link
// (0021): what the provider answered, never what was sent.
type InvoiceLinkError struct {
	bun.BaseModel `bun:"table:invoice_link_errors,alias:le"`

	InvoiceID int64     `bun:"invoice_id,pk"`
	Kind      string    `bun:"kind,notnull"` // the provider's error type ("api_error", "card_error"…, or "connection")
	Code      string    `bun:"code,notnull"` // its code, when it gave one
	Message   string    `bun:"message,notnull"`
	Failures  int64     `bun:"failures,notnull"` // failures in a row since the last success
	At        time.Time `bun:"at,notnull"`
	// Number is the invoice's number (read with LatestLinkError only).
	Number string `bun:"number,scanonly"`
}

// Text is the error in one line: "api_error/rate_limit: Too many requests".
func (e *InvoiceLinkError) Text() string {
	var kind string
	switch {
	case e.Kind != "" && e.Code != "":
		kind = e.Kind + "/" + e.Code + ": "
	case e.Kind != "":
		kind = e.Kind + ": "
	case e.Code != "":
		kind = e.Code + ": "
	}
	return kind + e.Message
}

// maxLinkErrorText bounds each stored field (the message's CHECK allows 500).
const maxLinkErrorText = 400

// clipText cuts s to at most n bytes on a rune boundary, on one line.
func clipText(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// RecordLinkError stores the last payment-link failure of an invoice,
// counting the failures in a row.
func (d *DB) RecordLinkError(ctx context.Context, invoiceID int64, kind, code, message string) error {
	message = clipText(message, maxLinkErrorText)
	if message == "" {
		message = "unknown error"
	}
	// The count names its table: on PostgreSQL a bare "failures" in DO
	// UPDATE could be the row's or excluded's. In RunInTx, though one
	// statement: two instances recording an error of one invoice at once
	// conflict under SERIALIZABLE, and the one run again counts on top of
	// the other's.
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO invoice_link_errors (invoice_id, kind, code, message, failures, at)
		VALUES (?, ?, ?, ?, 1, ?)
		ON CONFLICT (invoice_id) DO UPDATE SET kind = excluded.kind, code = excluded.code,
			message = excluded.message, failures = invoice_link_errors.failures + 1, at = excluded.at`,
			invoiceID, clipText(kind, 60), clipText(code, 60), message, d.now().UTC())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: unable to record the payment-link error of invoice %d: %w", invoiceID, err)
	}
	return nil
}

// LinkError is invoice id's last payment-link error, or nil.
func (d *DB) LinkError(ctx context.Context, invoiceID int64) (*InvoiceLinkError, error) {
	var e InvoiceLinkError
	err := d.bun.NewSelect().Model(&e).Where("le.invoice_id = ?", invoiceID).Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("store: unable to read the payment-link error of invoice %d: %w", invoiceID, err)
	}
	return &e, nil
}

// latestLinkErrorSQL walks invoice_link_errors_at newest first and stops
// at the first invoice that still needs its link (one paid or voided
// since keeps its row, which no longer matters). CROSS JOIN keeps the
// errors outside: the planner would otherwise read every open invoice.
const latestLinkErrorSQL = `SELECT le.invoice_id, le.kind, le.code, le.message, le.failures, le.at, coalesce(i.number, '') AS number
	FROM invoice_link_errors AS le INDEXED BY invoice_link_errors_at CROSS JOIN invoices AS i ON i.id = le.invoice_id
	WHERE i.status = 'open' AND i.payment_url = ''
	ORDER BY le.at DESC, le.invoice_id DESC LIMIT 1`

// LatestLinkError is the newest payment-link error of an invoice still
// without a link, or nil.
func (d *DB) LatestLinkError(ctx context.Context) (*InvoiceLinkError, error) {
	var e InvoiceLinkError
	err := d.bun.NewRaw(d.pinJoins(latestLinkErrorSQL)).Scan(ctx, &e)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("store: unable to read the latest payment-link error: %w", err)
	}
	return &e, nil
}

// clearLinkError forgets an invoice's payment-link error (it has its link).
func (d *DB) clearLinkError(ctx context.Context, db bun.IDB, invoiceID int64) error {
	if _, err := db.NewDelete().TableExpr("invoice_link_errors").Where("invoice_id = ?", invoiceID).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to clear the payment-link error of invoice %d: %w", invoiceID, err)
	}
	return nil
}
