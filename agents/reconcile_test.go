package agents

import (
	"context"
	"errors"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// linkedInvoice bills one done task of a new customer and gives the invoice
// the payment link linkID.
func (w *fulfilmentWorld) linkedInvoice(n int, reward int64, linkID string) db.Invoice {
	w.t.Helper()
	c := w.customer(n)
	w.task(c.ID, db.TaskDone, reward, 0)
	b, err := w.store.BillCustomer(w.ctx, c.ID, w.clock.Now(), db.BillingRules{MinAmountCents: 1, MaxAmountCents: 1 << 40})
	if err != nil || len(b.Invoices) != 1 {
		w.t.Fatalf("BillCustomer: %v %+v", err, b)
	}
	inv := b.Invoices[0]
	if linkID != "" {
		if _, err := w.store.SetInvoicePaymentLink(w.ctx, inv.ID, "price_"+linkID, linkID, "https://buy.stripe.com/"+linkID, w.clock.Now()); err != nil {
			w.t.Fatal(err)
		}
	}
	return inv
}

func (w *fulfilmentWorld) invoice(id int64) db.Invoice {
	w.t.Helper()
	var inv db.Invoice
	if err := w.store.Bun().NewSelect().Model(&inv).Where("i.id = ?", id).Scan(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	return inv
}

func (w *fulfilmentWorld) ledger(links LinkDeactivator) *PaymentLedger {
	return &PaymentLedger{Store: w.store, Links: links, Events: w.events, Now: w.clock.Now}
}

// failingLinks refuses every deactivation.
type failingLinks struct{ calls int }

func (f *failingLinks) DeactivateLink(context.Context, string) error {
	f.calls++
	return errors.New("stripe unreachable")
}

func TestLedgerKeepsThePaymentWhenDeactivationFails(t *testing.T) {
	w := newFulfilmentWorld(t)
	inv := w.linkedInvoice(1, 15000, "plink_x")
	links := &failingLinks{}
	out, err := w.ledger(links).Apply(w.ctx, db.PaymentEvent{EventID: "evt_1", Type: "checkout.session.completed",
		Kind: db.PaymentSucceeded, InvoiceID: inv.ID, PaymentLinkID: "plink_x", SessionID: "cs_1", AmountCents: 15000, Currency: "usd"})
	if err != nil || !out.Paid || links.calls != 1 {
		t.Fatalf("outcome %+v, err %v, deactivations %d", out, err, links.calls)
	}
	if got := w.invoice(inv.ID); got.Status != db.InvoicePaid {
		t.Fatalf("invoice = %+v", got)
	}
}

// The ledger passes its install id to the store: a session of an invoice
// without a link (issued while Stripe was down) applies only when its
// metadata names this install; a signed event the ledger cannot read is
// recorded as unprocessable, not returned as an error.
func TestLedgerAppliesOnlyThisInstallsSessions(t *testing.T) {
	w := newFulfilmentWorld(t)
	inv := w.linkedInvoice(1, 15000, "")
	session := func(id, install string) db.PaymentEvent {
		return db.PaymentEvent{EventID: id, Type: "checkout.session.completed", Kind: db.PaymentSucceeded, InvoiceID: inv.ID,
			Install: install, SessionID: "cs_" + id, AmountCents: 15000, Currency: "usd"}
	}
	unknown := w.ledger(nil) // Stripe off: no install id
	if out, err := unknown.Apply(w.ctx, session("evt_0", "hoss-ours")); err != nil || out.Outcome != db.OutcomeInstallUnverified {
		t.Fatalf("without an install id: %+v, %v", out, err)
	}
	ledger := w.ledger(nil)
	ledger.InstallID = "hoss-ours"
	for id, install := range map[string]string{"evt_1": "hoss-theirs", "evt_2": ""} {
		out, err := ledger.Apply(w.ctx, session(id, install))
		if err != nil || out.Paid || !out.SetAside() {
			t.Fatalf("%s (install %q): %+v, %v", id, install, out, err)
		}
	}
	if got := w.invoice(inv.ID); got.Status != db.InvoiceOpen {
		t.Fatalf("invoice = %+v", got)
	}
	if out, err := ledger.Apply(w.ctx, session("evt_3", "hoss-ours")); err != nil || !out.Paid {
		t.Fatalf("our session: %+v, %v", out, err)
	}
	out, err := ledger.Unreadable(w.ctx, "evt_4", "checkout.session.completed", errors.New("stripe: unable to read the object"))
	if err != nil || out.Outcome != db.OutcomeUnprocessable || out.Detail != "stripe: unable to read the object" {
		t.Fatalf("unreadable: %+v, %v", out, err)
	}
	if n := w.count("SELECT COUNT(*) FROM stripe_events WHERE event_id = 'evt_4' AND outcome = 'unprocessable'"); n != 1 {
		t.Fatalf("unreadable rows = %d", n)
	}
}
