package db

import (
	"context"
	"strings"
	"testing"
	"time"
)

// paymentState is an invoice as the payment rules leave it.
type paymentState struct {
	Status, Flag, Session, Intent, PayerEmail, PayerName string
	PaidAt                                               *time.Time
}

func readPaymentState(t *testing.T, d *DB, invoiceID int64) paymentState {
	t.Helper()
	var s paymentState
	err := d.Bun().QueryRowContext(context.Background(), `SELECT status, flag, payer_email, payer_name, paid_at,
			COALESCE((SELECT session_id FROM stripe_events WHERE invoice_id = i.id AND outcome IN ('paid', 'paid_refunded_earlier')), ''),
			COALESCE((SELECT payment_intent_id FROM stripe_events WHERE invoice_id = i.id AND outcome IN ('paid', 'paid_refunded_earlier')), '')
		FROM invoices AS i WHERE id = ?`, invoiceID).
		Scan(&s.Status, &s.Flag, &s.PayerEmail, &s.PayerName, &s.PaidAt, &s.Session, &s.Intent)
	if err != nil {
		t.Fatalf("read invoice %d: %v", invoiceID, err)
	}
	return s
}

// testInstall is this install's id in the payment tests.
const testInstall = "hoss-0123456789abcdef"

// apply applies e for testInstall and fails the test on error.
func apply(t *testing.T, d *DB, e PaymentEvent) PaymentOutcome {
	t.Helper()
	out, err := d.ApplyPaymentEvent(context.Background(), e, testInstall, fixedNow)
	if err != nil {
		t.Fatalf("ApplyPaymentEvent(%s): %v", e.EventID, err)
	}
	return out
}

// allHold fails the test unless every invariant holds.
func allHold(t *testing.T, d *DB) {
	t.Helper()
	for _, r := range mustCheck(t, d, fixedNow) {
		if !r.OK() {
			t.Errorf("invariant %d (%s) broken: %q", r.Number, r.Name, r.Violations)
		}
	}
}

func eventOutcome(t *testing.T, d *DB, eventID string) (outcome string, invoiceID *int64, n int) {
	t.Helper()
	n = countRows(t, d, "SELECT COUNT(*) FROM stripe_events WHERE event_id = '"+eventID+"'")
	if n == 1 {
		err := d.Bun().QueryRowContext(context.Background(), "SELECT outcome, invoice_id FROM stripe_events WHERE event_id = ?", eventID).Scan(&outcome, &invoiceID)
		if err != nil {
			t.Fatal(err)
		}
	}
	return outcome, invoiceID, n
}

// paidSession is a payment of invoice inv in full, whose metadata names this
// install and the invoice.
func paidSession(eventID string, inv *Invoice) PaymentEvent {
	return PaymentEvent{
		EventID: eventID, Type: "checkout.session.completed", Kind: PaymentSucceeded, InvoiceID: inv.ID, Install: testInstall,
		SessionID: "cs_" + eventID, PaymentIntentID: "pi_" + eventID, AmountCents: inv.AmountCents, Currency: strings.ToUpper(inv.Currency),
		PayerEmail: "payer@client.example", PayerName: "Pat Payer",
	}
}

func TestApplyPaymentMarksPaidOnceAndRecordsTheEvent(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9] // open, usd
	e := paidSession("evt_pay", inv)

	out := apply(t, d, e)
	if out.Duplicate || out.Outcome != OutcomePaid || !out.Paid || !out.Changed || out.InvoiceID != inv.ID || out.Number != *inv.Number {
		t.Fatalf("outcome = %+v", out)
	}
	s := readPaymentState(t, d, inv.ID)
	if s.Status != InvoicePaid || s.PaidAt == nil || !s.PaidAt.Equal(fixedNow) || s.Session != "cs_evt_pay" || s.Intent != "pi_evt_pay" ||
		s.PayerEmail != "payer@client.example" || s.PayerName != "Pat Payer" || s.Flag != "" {
		t.Fatalf("invoice = %+v", s)
	}
	if outcome, id, n := eventOutcome(t, d, "evt_pay"); n != 1 || outcome != OutcomePaid || id == nil || *id != inv.ID {
		t.Fatalf("event row: %d rows, outcome %q, invoice %v", n, outcome, id)
	}

	// The same event again changes nothing, even with other contents.
	e.PayerName = "Someone Else"
	if out := apply(t, d, e); !out.Duplicate || out.Changed || out.Paid {
		t.Fatalf("duplicate outcome = %+v", out)
	}
	if s := readPaymentState(t, d, inv.ID); s.PayerName != "Pat Payer" {
		t.Fatalf("duplicate changed the invoice: %+v", s)
	}
	if _, _, n := eventOutcome(t, d, "evt_pay"); n != 1 {
		t.Fatalf("event rows = %d", n)
	}
	allHold(t, d)
}

func TestApplyPaymentRefusesMismatchedMoney(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	short := paidSession("evt_short", inv)
	short.AmountCents--
	euros := paidSession("evt_eur", inv)
	euros.Currency = "eur"

	for _, c := range []struct {
		e       PaymentEvent
		outcome string
		flag    string
	}{
		{short, OutcomeAmountMismatch, "payment amount mismatch: Stripe session cs_evt_short paid $14.99, the invoice is $15.00"},
		{euros, OutcomeCurrencyMismatch, "payment currency mismatch: Stripe session cs_evt_eur paid €15.00, the invoice is $15.00"},
	} {
		out := apply(t, d, c.e)
		if out.Outcome != c.outcome || out.Paid || !out.Changed {
			t.Errorf("%s: outcome = %+v", c.e.EventID, out)
		}
		s := readPaymentState(t, d, inv.ID)
		if s.Status != InvoiceOpen || s.PaidAt != nil || !strings.Contains(s.Flag, c.flag) {
			t.Errorf("%s: invoice = %+v, want open and flagged %q", c.e.EventID, s, c.flag)
		}
		if outcome, _, n := eventOutcome(t, d, c.e.EventID); n != 1 || outcome != c.outcome {
			t.Errorf("%s: event %d rows, outcome %q", c.e.EventID, n, outcome)
		}
	}
	// Both reasons are kept; the same reason twice is kept once.
	short.EventID = "evt_short_again"
	apply(t, d, short)
	if flag := readPaymentState(t, d, inv.ID).Flag; strings.Count(flag, "amount mismatch") != 1 || !strings.Contains(flag, "currency mismatch") {
		t.Errorf("flag = %q", flag)
	}
	allHold(t, d)
}

func TestApplyPaymentOutOfOrder(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[10]
	paid := paidSession("evt_paid", inv)
	pending := paid
	pending.EventID, pending.Kind = "evt_pending", PaymentPending
	failed := paid
	failed.EventID, failed.Type, failed.Kind = "evt_failed", "checkout.session.async_payment_failed", PaymentFailed

	// A complete session whose payment has not cleared waits.
	if out := apply(t, d, pending); out.Outcome != OutcomeAwaitingPayment || out.Changed {
		t.Fatalf("pending = %+v", out)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoiceOpen || s.Flag != "" {
		t.Fatalf("after pending: %+v", s)
	}
	apply(t, d, paid)
	// A failure reported after the payment changes nothing.
	if out := apply(t, d, failed); out.Outcome != OutcomeAlreadyPaid || out.Changed {
		t.Fatalf("late failure = %+v", out)
	}
	// So does a late "completed, unpaid" for the same session.
	pending.EventID = "evt_pending_late"
	if out := apply(t, d, pending); out.Outcome != OutcomeAlreadyPaid || out.Changed {
		t.Fatalf("late pending = %+v", out)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoicePaid || s.Flag != "" {
		t.Fatalf("after late events: %+v", s)
	}
	// Another session paying the same invoice is flagged, not applied.
	twice := paidSession("evt_twice", inv)
	if out := apply(t, d, twice); out.Outcome != OutcomePaidTwice || out.Paid {
		t.Fatalf("second payment = %+v", out)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoicePaid || s.Session != "cs_evt_paid" || !strings.Contains(s.Flag, "paid twice") {
		t.Fatalf("after second payment: %+v", s)
	}
	allHold(t, d)
}

func TestApplyPaymentFailureFlagsAnOpenInvoice(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[11]
	failed := paidSession("evt_failed", inv)
	failed.Kind = PaymentFailed
	if out := apply(t, d, failed); out.Outcome != OutcomePaymentFailed || !out.Changed {
		t.Fatalf("failed = %+v", out)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoiceOpen || !strings.Contains(s.Flag, "payment failed") {
		t.Fatalf("after failure: %+v", s)
	}
	// The payment can still land afterwards.
	if out := apply(t, d, paidSession("evt_later", inv)); out.Outcome != OutcomePaid {
		t.Fatalf("later payment = %+v", out)
	}
	allHold(t, d)
}

func TestApplyRefunds(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	paid := paidSession("evt_paid", inv)
	refund := PaymentEvent{EventID: "evt_refund", Type: "charge.refunded", Kind: PaymentRefunded,
		PaymentIntentID: paid.PaymentIntentID, Currency: "usd", RefundedCents: 500}

	// A partial refund of a payment the store has never heard of is set
	// aside.
	if out := apply(t, d, refund); out.Outcome != OutcomeUnknownPayment || out.Changed || !out.SetAside() {
		t.Fatalf("partial refund of unknown payment = %+v", out)
	}
	apply(t, d, paid)
	refund.EventID = "evt_partial"
	if out := apply(t, d, refund); out.Outcome != OutcomePartialRefund || !out.Changed {
		t.Fatalf("partial refund = %+v", out)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoicePaid || !strings.Contains(s.Flag, "partially refunded: $5.00 of $15.00") {
		t.Fatalf("after partial refund: %+v", s)
	}
	refund.EventID, refund.FullyRefunded, refund.RefundedCents = "evt_full", true, inv.AmountCents
	if out := apply(t, d, refund); out.Outcome != OutcomeRefunded || !out.Changed || out.InvoiceID != inv.ID {
		t.Fatalf("full refund = %+v", out)
	}
	s := readPaymentState(t, d, inv.ID)
	if s.Status != InvoiceRefunded || s.PaidAt == nil || s.Intent != paid.PaymentIntentID {
		t.Fatalf("after full refund: %+v", s)
	}
	refund.EventID = "evt_full_again"
	if out := apply(t, d, refund); out.Outcome != OutcomeAlreadyRefunded || out.Changed {
		t.Fatalf("second refund = %+v", out)
	}
	// A payment reported after the refund never moves the invoice back.
	paid.EventID = "evt_paid_late"
	if out := apply(t, d, paid); out.Outcome != OutcomeAlreadyPaid || out.Changed {
		t.Fatalf("late payment = %+v", out)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoiceRefunded {
		t.Fatalf("after late payment: %+v", s)
	}
	allHold(t, d)
}

func TestApplyRefundThatArrivesBeforeItsPayment(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	paid := paidSession("evt_paid", inv)
	refund := PaymentEvent{EventID: "evt_refund", Type: "charge.refunded", Kind: PaymentRefunded,
		PaymentIntentID: paid.PaymentIntentID, Currency: "usd", RefundedCents: inv.AmountCents, FullyRefunded: true}

	if out := apply(t, d, refund); out.Outcome != OutcomeRefundBeforePayment || out.Changed {
		t.Fatalf("early refund = %+v", out)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoiceOpen {
		t.Fatalf("after early refund: %+v", s)
	}
	out := apply(t, d, paid)
	if out.Outcome != OutcomePaidRefundedEarlier || !out.Paid {
		t.Fatalf("payment after its refund = %+v", out)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoiceRefunded || s.PaidAt == nil || s.Intent != paid.PaymentIntentID {
		t.Fatalf("after payment: %+v", s)
	}
	allHold(t, d)
}

func TestApplyPaymentFindsTheInvoiceAndIgnoresTheRest(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	inv, void := f.invoices[9], f.invoices[20]
	if ok, err := d.SetInvoicePaymentLink(ctx, inv.ID, "price_1", "plink_1", "https://buy.stripe.com/test_1", fixedNow); err != nil || !ok {
		t.Fatalf("SetInvoicePaymentLink: %v %v", ok, err)
	}

	// Without metadata the payment link finds the invoice.
	byLink := paidSession("evt_link", inv)
	byLink.InvoiceID, byLink.PaymentLinkID = 0, "plink_1"
	if out := apply(t, d, byLink); out.Outcome != OutcomePaid || out.InvoiceID != inv.ID || out.PaymentLinkID != "plink_1" {
		t.Fatalf("by link = %+v", out)
	}
	// A payment on a void invoice is flagged, never applied.
	if out := apply(t, d, paidSession("evt_void", void)); out.Outcome != OutcomeNotOpen || out.Paid {
		t.Fatalf("void = %+v", out)
	}
	if s := readPaymentState(t, d, void.ID); s.Status != InvoiceVoid || !strings.Contains(s.Flag, "void invoice") {
		t.Fatalf("void invoice = %+v", s)
	}
	// An invoice paid outside Stripe (by hand) that Stripe reports paid was
	// paid twice.
	byHand := f.invoices[15]
	if out := apply(t, d, paidSession("evt_hand", byHand)); out.Outcome != OutcomePaidTwice || out.Paid {
		t.Fatalf("paid by hand = %+v", out)
	}
	if s := readPaymentState(t, d, byHand.ID); s.Status != InvoicePaid || !strings.Contains(s.Flag, "paid twice") {
		t.Fatalf("invoice paid by hand = %+v", s)
	}
	unknown := paidSession("evt_unknown", inv)
	unknown.InvoiceID, unknown.PaymentLinkID, unknown.PaymentIntentID = 99999, "plink_elsewhere", ""
	if out := apply(t, d, unknown); out.Outcome != OutcomeUnknownInvoice || out.InvoiceID != 0 {
		t.Fatalf("unknown = %+v", out)
	}
	other := PaymentEvent{EventID: "evt_other", Type: "customer.created", Kind: PaymentOther}
	if out := apply(t, d, other); out.Outcome != OutcomeIgnored || out.Changed {
		t.Fatalf("other = %+v", out)
	}
	if outcome, id, n := eventOutcome(t, d, "evt_other"); n != 1 || outcome != OutcomeIgnored || id != nil {
		t.Fatalf("other event row: %d %q %v", n, outcome, id)
	}
	if _, err := d.ApplyPaymentEvent(ctx, PaymentEvent{Kind: PaymentOther}, testInstall, fixedNow); err == nil {
		t.Fatal("an event without an id was accepted")
	}
	allHold(t, d)
}

func TestOpenInvoicesWithPaymentLinkPages(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	var want []int64
	for _, i := range []int{5, 9, 11, 27} { // open invoices
		inv := f.invoices[i]
		if _, err := d.SetInvoicePaymentLink(ctx, inv.ID, "price", "plink_"+*inv.Number, "https://buy.stripe.com/x", fixedNow); err != nil {
			t.Fatal(err)
		}
		want = append(want, inv.ID)
	}
	var got []int64
	var after int64
	for {
		page, err := d.OpenInvoicesWithPaymentLink(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, li := range page {
			if li.PaymentLinkID != "plink_"+li.Number || li.AmountCents == 0 || li.Currency == "" {
				t.Errorf("row = %+v", li)
			}
			got = append(got, li.InvoiceID)
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].InvoiceID
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// The same delivery reaching several instances at once (on PostgreSQL each
// delivery goes through a store of its own: mustOpenInstances) is applied
// once; the others are duplicates.
func TestApplyPaymentConcurrentDeliveriesApplyOnce(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	e := paidSession("evt_race", inv)
	const deliveries = 8
	outs := make(chan PaymentOutcome, deliveries)
	errs := make(chan error, deliveries)
	race(mustOpenInstances(t, d, deliveries), func(_ int, s *DB) {
		out, err := s.ApplyPaymentEvent(context.Background(), e, testInstall, fixedNow)
		outs <- out
		errs <- err
	})
	close(outs)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ApplyPaymentEvent: %v", err)
		}
	}
	paid, duplicates := 0, 0
	for out := range outs {
		if out.Paid {
			paid++
		}
		if out.Duplicate {
			duplicates++
		}
	}
	if paid != 1 || duplicates != deliveries-1 {
		t.Fatalf("paid %d times, %d duplicates", paid, duplicates)
	}
	if _, _, n := eventOutcome(t, d, "evt_race"); n != 1 {
		t.Fatalf("event rows = %d", n)
	}
	allHold(t, d)
}
