package db

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// stateError asserts err is an *InvoiceStateError for reason and returns it.
func stateError(t *testing.T, err error, reason error) *InvoiceStateError {
	t.Helper()
	var e *InvoiceStateError
	if !errors.As(err, &e) || !errors.Is(err, reason) {
		t.Fatalf("err = %v, want an InvoiceStateError for %v", err, reason)
	}
	return e
}

func TestMarkInvoicePaidByHand(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9] // open, usd
	mustExec(t, d.Bun(), "UPDATE invoices SET stripe_payment_link_id = 'plink_9', payment_url = 'https://pay.example/9' WHERE id = ?", inv.ID)

	out, err := d.MarkInvoicePaidByHand(ctx, inv.ID, "ops@hossagent.test", "wire transfer received", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if out.InvoiceID != inv.ID || out.Number != *inv.Number || out.Amount != inv.Amount() || out.PaymentLinkID != "plink_9" {
		t.Fatalf("closed = %+v", out)
	}
	s := readPaymentState(t, d, inv.ID)
	if s.Status != InvoicePaid || s.PaidAt == nil || !s.PaidAt.Equal(fixedNow) || s.PayerName != "marked paid by ops@hossagent.test" ||
		s.Flag != "marked paid by hand by ops@hossagent.test: wire transfer received" || s.Session != "" {
		t.Fatalf("invoice = %+v", s)
	}

	// Once paid, it is neither paid again nor voided; nothing changes.
	_, err = d.MarkInvoicePaidByHand(ctx, inv.ID, "ops@hossagent.test", "again", fixedNow)
	if e := stateError(t, err, ErrInvoiceNotOpen); e.Status != InvoicePaid || e.Number != *inv.Number {
		t.Errorf("second mark = %+v", e)
	}
	_, err = d.VoidInvoice(ctx, inv.ID, "ops@hossagent.test", "changed my mind", fixedNow)
	stateError(t, err, ErrInvoiceNotOpen)
	if got := readPaymentState(t, d, inv.ID); got.Status != s.Status || got.Flag != s.Flag || got.PayerName != s.PayerName {
		t.Errorf("a refused action changed the invoice: %+v", got)
	}
	// Nor does anything take it back to open (invariant 7).
	if _, err := d.Bun().ExecContext(ctx, "UPDATE invoices SET status = 'open' WHERE id = ?", inv.ID); err == nil {
		t.Error("a hand-paid invoice went back to open")
	}
	allHold(t, d)
}

func TestMarkPaidKeepsAnExistingFlag(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[10]
	mustExec(t, d.Bun(), "UPDATE invoices SET flag = 'payment amount mismatch' WHERE id = ?", inv.ID)
	if _, err := d.MarkInvoicePaidByHand(context.Background(), inv.ID, "a@b.test", "difference paid by cheque", fixedNow); err != nil {
		t.Fatal(err)
	}
	if s := readPaymentState(t, d, inv.ID); s.Flag != "payment amount mismatch; marked paid by hand by a@b.test: difference paid by cheque" {
		t.Errorf("flag = %q", s.Flag)
	}
}

func TestVoidInvoiceWritesTheWorkOff(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[28] // open, two lines
	lines := countRows(t, d, "SELECT COUNT(*) FROM invoice_lines")

	out, err := d.VoidInvoice(ctx, inv.ID, "ops@hossagent.test", "customer went bust", fixedNow)
	if err != nil || out.InvoiceID != inv.ID || out.PaymentLinkID != "" {
		t.Fatalf("void = %+v, %v", out, err)
	}
	s := readPaymentState(t, d, inv.ID)
	if s.Status != InvoiceVoid || s.PaidAt != nil || s.PayerName != "" || s.Flag != "voided by ops@hossagent.test: customer went bust" {
		t.Fatalf("invoice = %+v", s)
	}
	// Its tasks stay on its lines: billed once, never again.
	if got := countRows(t, d, "SELECT COUNT(*) FROM invoice_lines"); got != lines {
		t.Errorf("lines %d → %d", lines, got)
	}
	if got := countRows(t, d, "SELECT COUNT(*) FROM invoice_lines WHERE invoice_id = ?", inv.ID); got != 2 {
		t.Errorf("voided invoice keeps %d lines, want 2", got)
	}
	_, err = d.MarkInvoicePaidByHand(ctx, inv.ID, "ops@hossagent.test", "paid after all", fixedNow)
	if e := stateError(t, err, ErrInvoiceNotOpen); e.Status != InvoiceVoid {
		t.Errorf("mark paid of a void invoice = %+v", e)
	}
	allHold(t, d)
}

func TestInvoiceActionsRefuseDraftsAndUnknownInvoices(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	_, err := d.VoidInvoice(ctx, f.invoices[0].ID, "a@b.test", "draft", fixedNow)
	if e := stateError(t, err, ErrInvoiceNotOpen); e.Status != InvoiceDraft || e.Number != "" {
		t.Errorf("void of a draft = %+v", e)
	}
	if _, err := d.MarkInvoicePaidByHand(ctx, 9999, "a@b.test", "nobody", fixedNow); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown invoice = %v", err)
	}
	if _, err := d.Invoice(ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Invoice(9999) = %v", err)
	}
	if got, err := d.Invoice(ctx, f.invoices[4].ID); err != nil || got.ID != f.invoices[4].ID || *got.Number != *f.invoices[4].Number {
		t.Errorf("Invoice = %+v, %v", got, err)
	}
}

func TestPaymentLinkCandidateFor(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	open, flagged, linked, paid := f.invoices[4], f.invoices[10], f.invoices[11], f.invoices[12]
	mustExec(t, d.Bun(), "UPDATE invoices SET flag = ? WHERE id = ?", FlagOverMaximum, flagged.ID)
	mustExec(t, d.Bun(), "UPDATE invoices SET payment_url = 'https://pay.example/12' WHERE id = ?", linked.ID)

	c, err := d.PaymentLinkCandidateFor(ctx, open.ID)
	if err != nil || c.InvoiceID != open.ID || c.Number != "INV-000001" || c.CustomerEmail != "billing@customer04.com" ||
		c.AmountCents != open.AmountCents || c.Currency != "usd" {
		t.Fatalf("candidate = %+v, %v", c, err)
	}
	_, err = d.PaymentLinkCandidateFor(ctx, flagged.ID)
	if e := stateError(t, err, ErrInvoiceFlagged); !strings.Contains(e.Flag, FlagOverMaximum) {
		t.Errorf("flagged = %+v", e)
	}
	_, err = d.PaymentLinkCandidateFor(ctx, linked.ID)
	stateError(t, err, ErrInvoiceHasLink)
	_, err = d.PaymentLinkCandidateFor(ctx, paid.ID)
	if e := stateError(t, err, ErrInvoiceNotOpen); e.Status != InvoicePaid {
		t.Errorf("paid = %+v", e)
	}
	if _, err := d.PaymentLinkCandidateFor(ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown = %v", err)
	}
}
