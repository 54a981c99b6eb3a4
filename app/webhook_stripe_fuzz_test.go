package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/uptrace/bun"

	stripeadapter "github.com/hossagent/hossagent/agents/stripe"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// Signature modes of a fuzzed delivery.
const (
	fuzzSigned         = iota // signed with the secret at the server's time + offset
	fuzzUnsigned              // no Stripe-Signature header
	fuzzGarbled               // the header is the fuzzed raw bytes
	fuzzWrongSecret           // signed with another secret
	fuzzRawSigned             // the body is the fuzzed raw bytes, signed
	fuzzSignatureModes        // how many modes there are
)

// Placeholders a fuzzed field may hold, replaced by the input's own
// invoices, link, PaymentIntent and this install's id.
const (
	fuzzInvoiceLinked = "{linked}"
	fuzzInvoiceBare   = "{bare}"
	fuzzInvoicePaid   = "{paid}"
	fuzzLinkedLink    = "{linked_link}"
	fuzzOurInstall    = "{ours}"
	fuzzPaidIntent    = "{paid_pi}"
)

// webhookFuzz is one server over one SQLite file for a whole fuzzing run.
// Inputs share three invoices until one of them changes status, when the
// next input gets three fresh ones: every input starts from an open invoice
// with a link, an open one without and a paid one.
type webhookFuzz struct {
	store    *db.DB
	handler  http.Handler
	now      time.Time
	customer int64
	n        int           // invoice sets stored
	execs    int           // inputs run
	current  *fuzzInvoices // the set the next input uses; nil: store a new one
}

// fuzzInvoices are the invoices one input may touch: an open one with its
// own payment link, an open one without (issued while Stripe was down), and
// one paid through its link by PaymentIntent paidIntent.
type fuzzInvoices struct {
	linked, bare, paid     int64
	linkedLink, paidIntent string
}

func newWebhookFuzz(f *testing.F) *webhookFuzz {
	store, err := db.Open(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"), db.WithClock(func() time.Time { return testNow }))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	cfg, _, err := config.Load(func(k string) string { return map[string]string{"STRIPE_WEBHOOK_SECRET": stripeTestSecret}[k] })
	if err != nil {
		f.Fatal(err)
	}
	c, _, err := store.CreateCustomer(context.Background(), nil, db.NewCustomer{Company: "Acme Analytics", ContactEmail: "billing@acme.example", Plan: "starter"}, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	h := New(Deps{Config: cfg, Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return testNow }, StripeInstallID: rigInstall, PaymentEvents: stripeadapter.Webhook{}}).Handler()
	return &webhookFuzz{store: store, handler: h, now: testNow, customer: c.ID}
}

// invoices returns the input's three invoices, storing a new set when the
// last one changed.
func (w *webhookFuzz) invoices(t *testing.T) fuzzInvoices {
	t.Helper()
	if w.current == nil {
		inv := w.newInvoices(t)
		w.current = &inv
	}
	return *w.current
}

// settle keeps the invoice set for the next input only while it is as new.
func (w *webhookFuzz) settle(t *testing.T, inv fuzzInvoices) {
	t.Helper()
	if w.status(t, inv.linked) != db.InvoiceOpen || w.status(t, inv.bare) != db.InvoiceOpen || w.status(t, inv.paid) != db.InvoicePaid {
		w.current = nil
	}
}

// newInvoices stores three invoices, in one transaction.
func (w *webhookFuzz) newInvoices(t *testing.T) fuzzInvoices {
	t.Helper()
	w.n++
	var out fuzzInvoices
	err := w.store.RunInTx(context.Background(), func(ctx context.Context, tx bun.Tx) error {
		var err error
		out, err = w.insertInvoices(ctx, tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (w *webhookFuzz) insertInvoices(ctx context.Context, tx bun.Tx) (fuzzInvoices, error) {
	due := w.now.Add(14 * 24 * time.Hour)
	out := fuzzInvoices{linkedLink: fmt.Sprintf("plink_fz_%d", w.n), paidIntent: fmt.Sprintf("pi_fz_paid_%d", w.n)}
	for i, dst := range []*int64{&out.linked, &out.bare, &out.paid} {
		number := fmt.Sprintf("FZ-%d-%d", w.n, i)
		inv := &db.Invoice{CustomerID: w.customer, Number: &number, Currency: "usd", AmountCents: 15000, Status: db.InvoiceOpen,
			IssuedAt: &w.now, DueAt: &due, CreatedAt: w.now, UpdatedAt: w.now}
		switch i {
		case 0:
			inv.StripePaymentLinkID, inv.PaymentURL = out.linkedLink, "https://buy.stripe.com/"+out.linkedLink
		case 2:
			inv.StripePaymentLinkID, inv.PaymentURL = fmt.Sprintf("plink_fz_paid_%d", w.n), "https://buy.stripe.com/paid"
			inv.Status, inv.PaidAt, inv.PayerEmail, inv.PayerName = db.InvoicePaid, &w.now, "payer@acme.example", "Pat Payer"
		}
		if _, err := tx.NewInsert().Model(inv).Exec(ctx); err != nil {
			return out, err
		}
		*dst = inv.ID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO stripe_events (event_id, type, invoice_id, outcome, session_id, payment_intent_id, received_at)
		VALUES (?, 'checkout.session.completed', ?, ?, ?, ?, ?)`,
		fmt.Sprintf("evt_fz_paid_%d", w.n), out.paid, db.OutcomePaid, fmt.Sprintf("cs_fz_paid_%d", w.n), out.paidIntent, w.now)
	return out, err
}

// fuzzState is what a delivery may change.
type fuzzState struct {
	invoices string // status, flag, payer and paid_at of the three invoices
	events   int64  // rows in stripe_events
}

func (w *webhookFuzz) state(t *testing.T, inv fuzzInvoices) fuzzState {
	t.Helper()
	var s fuzzState
	var rows []db.Invoice
	if err := w.store.Bun().NewSelect().Model(&rows).Where("i.id IN (?, ?, ?)", inv.linked, inv.bare, inv.paid).Order("i.id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rows {
		paidAt := ""
		if r.PaidAt != nil {
			paidAt = r.PaidAt.UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(&b, "%d:%s:%q:%q:%q:%s;", r.ID, r.Status, r.Flag, r.PayerName, r.PayerEmail, paidAt)
	}
	s.invoices = b.String()
	n, err := w.store.Bun().NewSelect().Model((*db.StripeEvent)(nil)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.events = int64(n)
	return s
}

func (w *webhookFuzz) status(t *testing.T, id int64) string {
	t.Helper()
	var status string
	if err := w.store.Bun().NewRaw("SELECT status FROM invoices WHERE id = ?", id).Scan(context.Background(), &status); err != nil {
		t.Fatal(err)
	}
	return status
}

func (w *webhookFuzz) post(payload []byte, sig string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/stripe/webhook", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	rec := httptest.NewRecorder()
	w.handler.ServeHTTP(rec, req)
	return rec
}

// fuzzEventFacts is what a payload says, read with stripe-go as Stripe's
// own library reads it: what the properties judge a change against.
type fuzzEventFacts struct {
	typ, install, link, intent string
	invoiceID                  int64
	fullyRefunded              bool
}

func readFuzzEventFacts(payload []byte) fuzzEventFacts {
	var ev stripe.Event
	var facts fuzzEventFacts
	if json.Unmarshal(payload, &ev) != nil || ev.Data == nil {
		return facts
	}
	facts.typ = string(ev.Type)
	var obj struct {
		Metadata map[string]string `json:"metadata"`
	}
	_ = json.Unmarshal(ev.Data.Raw, &obj)
	facts.install = obj.Metadata["hossagent_install"]
	facts.invoiceID, _ = strconv.ParseInt(obj.Metadata["invoice_id"], 10, 64)
	switch ev.Type {
	case stripe.EventTypeChargeRefunded:
		var ch stripe.Charge
		if json.Unmarshal(ev.Data.Raw, &ch) == nil {
			facts.fullyRefunded = ch.Refunded
			if ch.PaymentIntent != nil {
				facts.intent = ch.PaymentIntent.ID
			}
		}
	default:
		var cs stripe.CheckoutSession
		if json.Unmarshal(ev.Data.Raw, &cs) == nil && cs.PaymentLink != nil {
			facts.link = cs.PaymentLink.ID
		}
	}
	return facts
}

// fillFuzzPlaceholders puts this input's invoices into s.
func fillFuzzPlaceholders(s string, inv fuzzInvoices) string {
	return strings.NewReplacer(fuzzInvoiceLinked, fmt.Sprint(inv.linked), fuzzInvoiceBare, fmt.Sprint(inv.bare),
		fuzzInvoicePaid, fmt.Sprint(inv.paid), fuzzOurInstall, rigInstall, fuzzPaidIntent, inv.paidIntent,
		fuzzLinkedLink, inv.linkedLink).Replace(s)
}

// FuzzStripeWebhook posts fuzzed Stripe deliveries to the real router over a
// real SQLite file: signed with the webhook secret at a fuzzed time, unsigned,
// with a garbled header or another secret, or a signed body of raw bytes.
// Properties:
//   - no answer is a 5xx (the store is never broken here) and nothing panics
//     (the router's recovery would answer 500);
//   - a delivery refused for its signature or its time (more than 300 s
//     from the server's clock) records nothing;
//   - an open invoice leaves open only for an event paid through its own link,
//     or naming this install and the invoice in its metadata;
//   - a paid invoice is refunded only by a full refund of the PaymentIntent
//     its paying event recorded;
//   - the same delivery again changes nothing.
func FuzzStripeWebhook(f *testing.F) {
	type seed struct {
		typ, eventID, install, invoice, link, intent string
		amount                                       int64
		currency, payer, paymentStatus               string
		refunded                                     bool
		mode                                         uint8
		offset                                       int64
		raw                                          []byte
	}
	paid := seed{"checkout.session.completed", "evt_paid", fuzzOurInstall, fuzzInvoiceBare, "", "pi_1", 15000, "usd", "Pat Payer", "paid", false, fuzzSigned, 0, nil}
	with := func(s seed, change func(*seed)) seed { change(&s); return s }
	seeds := []seed{
		// Normal deliveries.
		paid,
		with(paid, func(s *seed) { s.install, s.invoice, s.link = "", "", fuzzLinkedLink }),
		with(paid, func(s *seed) { s.install, s.invoice, s.link = fuzzOurInstall, fuzzInvoiceLinked, fuzzLinkedLink }),
		with(paid, func(s *seed) { s.typ = "checkout.session.async_payment_succeeded" }),
		with(paid, func(s *seed) { s.typ, s.paymentStatus = "checkout.session.async_payment_failed", "unpaid" }),
		with(paid, func(s *seed) { s.paymentStatus = "unpaid" }),
		with(paid, func(s *seed) { s.amount = 14999 }),
		with(paid, func(s *seed) { s.currency = "eur" }),
		with(paid, func(s *seed) { s.typ, s.intent, s.refunded = "charge.refunded", fuzzPaidIntent, true }),
		with(paid, func(s *seed) { s.typ, s.intent, s.refunded = "charge.refunded", fuzzPaidIntent, false }),
		with(paid, func(s *seed) { s.typ = "customer.created" }),
		// The hostile inputs: another install's session, one naming
		// no install, a NUL in the payer's name, a future timestamp, a
		// refund of another PaymentIntent naming our invoice.
		with(paid, func(s *seed) { s.install = "hoss-ffffffffffffffff" }),
		with(paid, func(s *seed) { s.install = "" }),
		with(paid, func(s *seed) { s.install, s.invoice = "hoss-ffffffffffffffff", fuzzInvoiceLinked }),
		with(paid, func(s *seed) { s.payer = "Pat\x00Payer" }),
		with(paid, func(s *seed) { s.payer = "Pat\xff\xfePayer" }),
		with(paid, func(s *seed) { s.eventID = "evt_\x00nul" }),
		with(paid, func(s *seed) { s.offset = 600 }),
		with(paid, func(s *seed) { s.offset = 365 * 24 * 3600 }),
		with(paid, func(s *seed) { s.offset = -301 }),
		with(paid, func(s *seed) { s.offset = 299 }),
		with(paid, func(s *seed) {
			s.typ, s.intent, s.refunded, s.invoice = "charge.refunded", "pi_someone_else", true, fuzzInvoicePaid
		}),
		with(paid, func(s *seed) { s.typ, s.intent, s.refunded, s.invoice = "charge.refunded", "", true, fuzzInvoicePaid }),
		with(paid, func(s *seed) { s.link = "plink_someone_else" }),
		with(paid, func(s *seed) { s.invoice = "{linked}; DROP TABLE invoices" }),
		with(paid, func(s *seed) { s.eventID = "" }),
		// Refused deliveries.
		with(paid, func(s *seed) { s.mode = fuzzUnsigned }),
		with(paid, func(s *seed) { s.mode, s.raw = fuzzGarbled, []byte("t=abc,v1=zz") }),
		with(paid, func(s *seed) { s.mode, s.raw = fuzzGarbled, []byte("t=1,t=2,v1=00,,=") }),
		with(paid, func(s *seed) { s.mode = fuzzWrongSecret }),
		with(paid, func(s *seed) {
			s.mode, s.raw = fuzzRawSigned, []byte(`{"id":"evt_raw","object":"event","api_version":"`+stripe.APIVersion+
				`","type":"checkout.session.completed","data":{"object":{"id":"cs_raw","object":"checkout.session","payment_status":"paid",`+
				`"amount_total":15000,"currency":"usd","metadata":{"invoice_id":"{bare}","hossagent_install":"{ours}"}}}}`)
		}),
		with(paid, func(s *seed) {
			s.mode, s.raw = fuzzRawSigned, []byte(`{"id":"evt_raw2","object":"event","api_version":"`+stripe.APIVersion+
				`","type":"checkout.session.completed","data":{"object":{"id":"cs_raw","amount_total":"lots","payment_link":{"id":fuzzLinkedLink}}}}`)
		}),
		with(paid, func(s *seed) {
			s.mode, s.raw = fuzzRawSigned, []byte(`{"id":"evt_raw3","api_version":"2020-08-27","type":"x"}`)
		}),
		with(paid, func(s *seed) { s.mode, s.raw = fuzzRawSigned, []byte("\x00\xff{") }),
	}
	for _, s := range seeds {
		f.Add(s.typ, s.eventID, s.install, s.invoice, s.link, s.intent, s.amount, s.currency, s.payer, s.paymentStatus, s.refunded, s.mode, s.offset, s.raw)
	}

	w := newWebhookFuzz(f)
	f.Fuzz(func(t *testing.T, typ, eventID, install, invoice, link, intent string, amount int64,
		currency, payer, paymentStatus string, refunded bool, mode uint8, offset int64, raw []byte) {
		inv := w.invoices(t)
		defer w.settle(t, inv)
		w.execs++
		if eventID != "" {
			eventID += "#" + strconv.Itoa(w.execs) // each input its own event
		}
		var object map[string]any
		switch typ {
		case "charge.refunded":
			object = map[string]any{"id": "ch_fz", "object": "charge", "amount": amount, "amount_refunded": amount, "refunded": refunded,
				"currency": currency, "payment_intent": fillFuzzPlaceholders(intent, inv),
				"metadata": map[string]string{"invoice_id": fillFuzzPlaceholders(invoice, inv), "hossagent_install": fillFuzzPlaceholders(install, inv)}}
		default:
			object = map[string]any{"id": "cs_fz", "object": "checkout.session", "mode": "payment", "status": "complete",
				"payment_status": paymentStatus, "amount_total": amount, "currency": currency, "payment_intent": fillFuzzPlaceholders(intent, inv),
				"customer_details": map[string]any{"email": payer, "name": payer}}
			md := map[string]string{}
			if invoice != "" {
				md["invoice_id"] = fillFuzzPlaceholders(invoice, inv)
			}
			if install != "" {
				md["hossagent_install"] = fillFuzzPlaceholders(install, inv)
			}
			object["metadata"] = md
			if link != "" {
				object["payment_link"] = fillFuzzPlaceholders(link, inv)
			}
		}
		payload, err := json.Marshal(map[string]any{"id": eventID, "object": "event", "api_version": stripe.APIVersion, "type": typ,
			"created": w.now.Unix(), "livemode": false, "pending_webhooks": 1, "data": map[string]any{"object": object}})
		if err != nil {
			t.Fatal(err)
		}
		mode %= fuzzSignatureModes
		if mode == fuzzRawSigned {
			payload = []byte(fillFuzzPlaceholders(string(raw), inv))
		}
		offset %= 2 * 365 * 24 * 3600
		var sig string
		switch mode {
		case fuzzSigned, fuzzRawSigned:
			sig = stripeSignature(payload, stripeTestSecret, w.now.Add(time.Duration(offset)*time.Second))
		case fuzzGarbled:
			sig = string(raw)
		case fuzzWrongSecret:
			sig = stripeSignature(payload, "whsec_someone_else", w.now)
		}
		verified := (mode == fuzzSigned || mode == fuzzRawSigned) && offset <= 300 && offset >= -300

		before := w.state(t, inv)
		rec := w.post(payload, sig)
		if rec.Code >= 500 {
			t.Fatalf("status %d %s for mode %d payload %q", rec.Code, rec.Body, mode, payload)
		}
		after := w.state(t, inv)
		if !verified {
			if rec.Code < 400 || after != before {
				t.Fatalf("an unverified delivery (mode %d, offset %d) answered %d and changed %+v to %+v", mode, offset, rec.Code, before, after)
			}
			return
		}

		facts := readFuzzEventFacts(payload)
		ours := facts.install == rigInstall
		if st := w.status(t, inv.linked); st != db.InvoiceOpen && facts.link != inv.linkedLink && (!ours || facts.invoiceID != inv.linked) {
			t.Fatalf("invoice with a link became %s from %+v: %s", st, facts, payload)
		}
		if st := w.status(t, inv.bare); st != db.InvoiceOpen && (!ours || facts.invoiceID != inv.bare) {
			t.Fatalf("invoice without a link became %s from %+v: %s", st, facts, payload)
		}
		if st := w.status(t, inv.paid); st != db.InvoicePaid &&
			(facts.typ != string(stripe.EventTypeChargeRefunded) || facts.intent != inv.paidIntent || !facts.fullyRefunded) {
			t.Fatalf("paid invoice became %s from %+v: %s", st, facts, payload)
		}

		// Stripe's redelivery of the same event changes nothing.
		again := w.post(payload, sig)
		if again.Code >= 500 {
			t.Fatalf("redelivery: status %d %s", again.Code, again.Body)
		}
		if twice := w.state(t, inv); twice != after {
			t.Fatalf("redelivery changed %+v to %+v: %s", after, twice, payload)
		}
	})
}
