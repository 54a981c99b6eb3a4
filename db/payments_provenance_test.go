package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// eventDetail is the detail recorded for an event.
func eventDetail(t *testing.T, d *DB, eventID string) string {
	t.Helper()
	var detail string
	if err := d.Bun().QueryRowContext(context.Background(), "SELECT detail FROM stripe_events WHERE event_id = ?", eventID).Scan(&detail); err != nil {
		t.Fatalf("detail of %s: %v", eventID, err)
	}
	return detail
}

// An invoice issued while Stripe was down has no payment link; a signed
// session naming its invoice_id is ours only when it also names this
// install. Before, metadata.invoice_id alone paid it.
func TestApplySessionAppliesOnlyWhenItNamesThisInstall(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9] // open, no link

	for _, c := range []struct {
		name, install, ours, outcome, detail string
	}{
		{"another install", "hoss-ffffffffffffffff", testInstall, OutcomeForeignInstall, "belongs to install hoss-ffffffffffffffff"},
		{"no install", "", testInstall, OutcomeNoInstallMetadata, "carries no hossagent_install metadata"},
		{"our id unknown here", testInstall, "", OutcomeInstallUnverified, "ENABLE_STRIPE is off"},
	} {
		e := paidSession("evt_"+strings.ReplaceAll(c.name, " ", "_"), inv)
		e.Install = c.install
		out, err := d.ApplyPaymentEvent(context.Background(), e, c.ours, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		if out.Outcome != c.outcome || out.Paid || out.Changed || out.InvoiceID != 0 || !out.SetAside() || !strings.Contains(out.Detail, c.detail) {
			t.Errorf("%s: outcome = %+v", c.name, out)
		}
		if s := readPaymentState(t, d, inv.ID); s.Status != InvoiceOpen || s.Flag != "" || s.PayerName != "" {
			t.Errorf("%s: invoice = %+v", c.name, s)
		}
		if outcome, id, n := eventOutcome(t, d, e.EventID); n != 1 || outcome != c.outcome || id != nil {
			t.Errorf("%s: event row %d %q %v", c.name, n, outcome, id)
		}
		if got := eventDetail(t, d, e.EventID); !strings.Contains(got, c.detail) {
			t.Errorf("%s: detail = %q", c.name, got)
		}
		// Stripe's redelivery of the same event is a duplicate.
		if out := apply(t, d, e); !out.Duplicate {
			t.Errorf("%s: redelivery = %+v", c.name, out)
		}
	}
	// A session of ours naming an invoice this database does not hold.
	missing := paidSession("evt_missing", inv)
	missing.InvoiceID = 99999
	if out := apply(t, d, missing); out.Outcome != OutcomeUnknownInvoice || !out.SetAside() {
		t.Errorf("missing invoice = %+v", out)
	}
	// Ours, and naming the invoice: paid.
	if out := apply(t, d, paidSession("evt_ours", inv)); out.Outcome != OutcomePaid || !out.Paid || out.Detail != "" {
		t.Fatalf("our session = %+v", out)
	}
	if got := eventDetail(t, d, "evt_ours"); got != "" {
		t.Errorf("applied event detail = %q", got)
	}
	allHold(t, d)
}

// A session paid through the invoice's own link applies whatever its
// metadata says; one that names our install and the invoice but was paid
// through another link is set aside.
func TestApplySessionByTheInvoicesOwnLink(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	inv, other := f.invoices[9], f.invoices[10]
	for i, x := range []*Invoice{inv, other} {
		if ok, err := d.SetInvoicePaymentLink(ctx, x.ID, fmt.Sprint("price_", i), fmt.Sprint("plink_", i), "https://buy.stripe.com/test", fixedNow); err != nil || !ok {
			t.Fatalf("SetInvoicePaymentLink: %v %v", ok, err)
		}
	}
	mismatch := paidSession("evt_mismatch", inv)
	mismatch.PaymentLinkID = "plink_unknown"
	if out := apply(t, d, mismatch); out.Outcome != OutcomeLinkMismatch || out.Paid {
		t.Fatalf("paid through another link = %+v", out)
	}
	if got := eventDetail(t, d, "evt_mismatch"); !strings.Contains(got, "plink_unknown") || !strings.Contains(got, "plink_0") {
		t.Errorf("detail = %q", got)
	}
	// Our own link, no install in the metadata and even another invoice's
	// id: the link is the proof, and it names the invoice.
	byLink := paidSession("evt_link", inv)
	byLink.Install, byLink.InvoiceID, byLink.PaymentLinkID = "", other.ID, "plink_0"
	if out := apply(t, d, byLink); out.Outcome != OutcomePaid || out.InvoiceID != inv.ID || out.PaymentLinkID != "plink_0" {
		t.Fatalf("by link = %+v", out)
	}
	if s := readPaymentState(t, d, other.ID); s.Status != InvoiceOpen {
		t.Errorf("the invoice the metadata named = %+v", s)
	}
	// Even for another install's id, when one of our links was paid (a
	// link's metadata is ours; nothing else can pay through it).
	foreign := paidSession("evt_foreign_link", other)
	foreign.Install, foreign.PaymentLinkID = "hoss-ffffffffffffffff", "plink_1"
	if out := apply(t, d, foreign); out.Outcome != OutcomePaid || out.InvoiceID != other.ID {
		t.Fatalf("our link, foreign metadata = %+v", out)
	}
	allHold(t, d)
}

// A refund applies only to the invoice whose paying event recorded the
// charge's PaymentIntent; metadata.invoice_id on a charge selects nothing.
// Before, a refund of another PaymentIntent naming our invoice refunded it.
func TestApplyRefundOnlyOfTheRecordedPaymentIntent(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	paid := paidSession("evt_paid", inv)
	apply(t, d, paid)

	for _, c := range []struct {
		name, intent string
		full         bool
		outcome      string
	}{
		{"another PaymentIntent, partial", "pi_someone_else", false, OutcomeUnknownPayment},
		{"another PaymentIntent, full", "pi_someone_else_full", true, OutcomeRefundBeforePayment},
		{"no PaymentIntent", "", true, OutcomeUnknownPayment},
	} {
		refund := PaymentEvent{EventID: "evt_" + strings.ReplaceAll(c.name, " ", "_"), Type: "charge.refunded", Kind: PaymentRefunded,
			InvoiceID: inv.ID, ChargeID: "ch_" + c.intent, PaymentIntentID: c.intent, Currency: "usd", RefundedCents: inv.AmountCents, FullyRefunded: c.full}
		out := apply(t, d, refund)
		if out.Outcome != c.outcome || out.Changed || out.InvoiceID != 0 {
			t.Errorf("%s: outcome = %+v", c.name, out)
		}
		if s := readPaymentState(t, d, inv.ID); s.Status != InvoicePaid || s.Flag != "" {
			t.Errorf("%s: invoice = %+v", c.name, s)
		}
	}
	var charge string
	if err := d.Bun().QueryRowContext(context.Background(), "SELECT charge_id FROM stripe_events WHERE event_id = 'evt_another_PaymentIntent,_partial'").Scan(&charge); err != nil || charge != "ch_pi_someone_else" {
		t.Errorf("recorded charge = %q, %v", charge, err)
	}
	if got := eventDetail(t, d, "evt_another_PaymentIntent,_partial"); !strings.Contains(got, "pi_someone_else") {
		t.Errorf("detail = %q", got)
	}
	// The recorded PaymentIntent, without any metadata: refunded.
	refund := PaymentEvent{EventID: "evt_ours", Type: "charge.refunded", Kind: PaymentRefunded, ChargeID: "ch_ours",
		PaymentIntentID: paid.PaymentIntentID, Currency: "usd", RefundedCents: inv.AmountCents, FullyRefunded: true}
	if out := apply(t, d, refund); out.Outcome != OutcomeRefunded || out.InvoiceID != inv.ID {
		t.Fatalf("our refund = %+v", out)
	}
	allHold(t, d)
}

// A signed event can carry any text a payer typed. Before, a NUL byte made
// every delivery fail (bun inlines arguments, and SQLite's tokenizer stops
// at the NUL), so the payment never applied.
func TestApplyPaymentCleansText(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	e := paidSession("evt_nul\x00id", inv)
	e.PayerName = "Pat\x00 Payer\xff\xfe" + strings.Repeat("é", 300)
	e.PayerEmail = "payer\x00@client.example"
	e.SessionID = "cs_\x00"
	out := apply(t, d, e)
	if out.Outcome != OutcomePaid || !out.Paid {
		t.Fatalf("outcome = %+v", out)
	}
	s := readPaymentState(t, d, inv.ID)
	if !strings.HasPrefix(s.PayerName, "Pat Payer\uFFFD") || len(s.PayerName) > 200 || !utf8.ValidString(s.PayerName) ||
		strings.ContainsRune(s.PayerName, 0) || s.PayerEmail != "payer@client.example" {
		t.Errorf("payer = %q <%q>", s.PayerName, s.PayerEmail)
	}
	if !strings.HasPrefix(s.Session, "sha256:") {
		t.Errorf("session = %q", s.Session)
	}
	// The same odd event id maps to the same row: a redelivery is a
	// duplicate, another odd id is not.
	if out := apply(t, d, e); !out.Duplicate {
		t.Errorf("redelivery = %+v", out)
	}
	other := paidSession("evt_nul\x00other", inv)
	if out := apply(t, d, other); out.Duplicate || out.Outcome != OutcomePaidTwice {
		t.Errorf("another odd id = %+v", out)
	}
	allHold(t, d)
}

// An error that retrying cannot mend is recorded as unprocessable and
// reported as an outcome, not an error (the webhook answers 2xx); the same
// event id delivered again after the cause is fixed applies.
func TestApplyPaymentRecordsWhatCannotBeApplied(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	refusePayments(t, d)
	e := paidSession("evt_refused", inv)
	out := apply(t, d, e)
	if out.Outcome != OutcomeUnprocessable || out.Paid || !out.SetAside() || !strings.Contains(out.Detail, "disk on fire") {
		t.Fatalf("outcome = %+v", out)
	}
	if outcome, id, n := eventOutcome(t, d, e.EventID); n != 1 || outcome != OutcomeUnprocessable || id != nil {
		t.Fatalf("event row %d %q %v", n, outcome, id)
	}
	if s := readPaymentState(t, d, inv.ID); s.Status != InvoiceOpen {
		t.Fatalf("invoice = %+v", s)
	}
	// Still broken: the same outcome, still one row.
	if out := apply(t, d, e); out.Outcome != OutcomeUnprocessable {
		t.Fatalf("second delivery = %+v", out)
	}
	if testOnPostgres() {
		mustExec(t, d.Bun(), "DROP TRIGGER refuse_payments ON invoices")
	} else {
		mustExec(t, d.Bun(), "DROP TRIGGER refuse_payments")
	}
	if out := apply(t, d, e); out.Outcome != OutcomePaid || !out.Paid || out.Duplicate {
		t.Fatalf("delivery after the fix = %+v", out)
	}
	if outcome, _, n := eventOutcome(t, d, e.EventID); n != 1 || outcome != OutcomePaid || eventDetail(t, d, e.EventID) != "" {
		t.Fatalf("event row %d %q", n, outcome)
	}
	// Now applied: a later delivery is a duplicate, and so is recording it
	// unprocessable.
	if out := apply(t, d, e); !out.Duplicate {
		t.Errorf("delivery after it applied = %+v", out)
	}
	if out, err := d.RecordUnprocessablePaymentEvent(context.Background(), e, "late", fixedNow); err != nil || !out.Duplicate {
		t.Errorf("RecordUnprocessablePaymentEvent of an applied event = %+v, %v", out, err)
	}
	allHold(t, d)
}

// refusePayments adds a trigger that fails every change of an invoice's
// status with "disk on fire", an error retrying cannot mend: SQLite's
// RAISE(ABORT), PostgreSQL's RAISE EXCEPTION (SQLSTATE P0001).
func refusePayments(t *testing.T, d *DB) {
	t.Helper()
	if testOnPostgres() {
		mustExec(t, d.Bun(), `CREATE FUNCTION refuse_payments() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'disk on fire'; END $$`)
		mustExec(t, d.Bun(), `CREATE TRIGGER refuse_payments BEFORE UPDATE OF status ON invoices
			FOR EACH ROW EXECUTE FUNCTION refuse_payments()`)
		return
	}
	mustExec(t, d.Bun(), `CREATE TRIGGER refuse_payments BEFORE UPDATE OF status ON invoices
		BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
}

// A transient failure records nothing and is returned, so the sender
// retries.
func TestApplyPaymentReturnsTransientErrors(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.ApplyPaymentEvent(ctx, paidSession("evt_canceled", inv), testInstall, fixedNow); err == nil || !IsTransient(err) {
		t.Fatalf("canceled: %v", err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM stripe_events WHERE event_id = 'evt_canceled'"); n != 0 {
		t.Fatalf("a canceled event was recorded")
	}
	closed := mustOpen(t)
	closed.Close()
	if _, err := closed.ApplyPaymentEvent(context.Background(), paidSession("evt_closed", inv), testInstall, fixedNow); err == nil || !IsTransient(err) {
		t.Fatalf("closed: %v", err)
	}
}

func TestIsTransient(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	_, constraint := d.Bun().ExecContext(ctx, "INSERT INTO stripe_events (event_id, type, received_at) VALUES ('', 'x', ?)", fixedNow)
	_, syntax := d.Bun().ExecContext(ctx, "SELEC 1")
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"canceled", fmt.Errorf("wrapped: %w", context.Canceled), true},
		{"deadline", context.DeadlineExceeded, true},
		{"connection done", sql.ErrConnDone, true},
		{"database closed", errors.New("sql: database is closed"), true},
		{"constraint", constraint, false},
		{"syntax", syntax, false},
		{"a rule's error", errors.New("unknown payment event kind"), false},
		// PostgreSQL's by SQLSTATE, as the server reports them.
		{"serialization failure", fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40001"}), true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"read-only standby", &pgconn.PgError{Code: "25006"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"a trigger's exception", &pgconn.PgError{Code: "P0001"}, false},
		{"bad text", &pgconn.PgError{Code: "22021"}, false},
	} {
		if c.name == "constraint" || c.name == "syntax" {
			if testOnPostgres() {
				var pe *pgconn.PgError
				if !errors.As(c.err, &pe) {
					t.Fatalf("%s: not a PostgreSQL error: %v", c.name, c.err)
				}
			} else {
				var se *sqlite.Error
				if !errors.As(c.err, &se) {
					t.Fatalf("%s: not a SQLite error: %v", c.name, c.err)
				}
			}
		}
		if got := IsTransient(c.err); got != c.want {
			t.Errorf("%s (%v): IsTransient = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	// SQLITE_BUSY from a writer holding the lock past busy_timeout is
	// recognised by its primary code, whatever the extended one.
	if sqlite3.SQLITE_BUSY&0xff != sqlite3.SQLITE_BUSY || (sqlite3.SQLITE_IOERR_WRITE&0xff) != sqlite3.SQLITE_IOERR {
		t.Fatal("primary result codes are the low byte")
	}
}

func TestCleanID(t *testing.T) {
	for _, id := range []string{"evt_1MqLs3", "reconcile:cs_test_a1", "hoss-0123456789abcdef"} {
		if got := cleanID(id); got != id {
			t.Errorf("cleanID(%q) = %q", id, got)
		}
	}
	odd := []string{"evt\x00", "evt\x00 ", "evt \x00", "évt", strings.Repeat("x", 256), "a b"}
	seen := map[string]string{}
	for _, id := range odd {
		got := cleanID(id)
		if !strings.HasPrefix(got, "sha256:") || len(got) != len("sha256:")+64 {
			t.Errorf("cleanID(%q) = %q", id, got)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("%q and %q map to the same id", prev, id)
		}
		seen[got] = id
	}
	if cleanID("") != "" {
		t.Error("an empty id became something")
	}
}

// The Stripe panel counts and lists the set-aside events from their partial
// index, and no other event.
func TestStripeHealthShowsSetAsideEvents(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	inv := f.invoices[9]
	foreign := paidSession("evt_foreign", inv)
	foreign.Install = "hoss-ffffffffffffffff"
	apply(t, d, foreign)
	bare := paidSession("evt_bare", inv)
	bare.Install = ""
	apply(t, d, bare)
	if _, err := d.RecordUnprocessablePaymentEvent(context.Background(), PaymentEvent{EventID: "evt_unreadable", Type: "checkout.session.completed"},
		"stripe: unable to read the object", fixedNow.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// An old one counts in the list, not in the window.
	mustExec(t, d.Bun(), `INSERT INTO stripe_events (event_id, type, outcome, detail, received_at) VALUES ('evt_old', 'charge.refunded', 'unknown_payment', 'old', ?)`,
		fixedNow.Add(-SetAsideWindow-time.Hour))
	apply(t, d, paidSession("evt_paid", inv))

	h, err := d.StripeHealth(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{OutcomeForeignInstall: 1, OutcomeNoInstallMetadata: 1, OutcomeUnprocessable: 1}
	if len(h.SetAside) != len(want) || h.SetAsideTotal() != 3 {
		t.Errorf("set aside = %v", h.SetAside)
	}
	for k, n := range want {
		if h.SetAside[k] != n {
			t.Errorf("set aside[%s] = %d, want %d", k, h.SetAside[k], n)
		}
	}
	if len(h.SetAsideList) != 3 || h.SetAsideList[0].EventID != "evt_unreadable" || h.SetAsideList[0].Detail != "stripe: unable to read the object" ||
		h.SetAsideList[2].EventID != "evt_foreign" || !strings.Contains(h.SetAsideList[2].Detail, "hoss-ffffffffffffffff") {
		t.Errorf("set aside list = %+v", h.SetAsideList)
	}
	// Both queries read the partial index only.
	for _, q := range []string{
		`SELECT outcome, COUNT(*) FROM stripe_events INDEXED BY stripe_events_set_aside WHERE outcome IN (?) AND received_at > ? GROUP BY outcome`,
		`SELECT event_id, type, outcome, detail, received_at FROM stripe_events INDEXED BY stripe_events_set_aside WHERE outcome IN (?) ORDER BY received_at DESC, id DESC LIMIT 5`,
	} {
		plan := explain(t, d, q, setAsideOutcomes, fixedNow)
		if !strings.Contains(plan, "stripe_events_set_aside") || strings.Contains(plan, "SCAN stripe_events\n") || strings.Contains(plan, "Seq Scan") {
			t.Errorf("plan of %s:\n%s", q, plan)
		}
	}
}

// explain is the query plan of q, one step a line; on PostgreSQL the plan
// without sequential scans (pgPlanSteps).
func explain(t *testing.T, d *DB, q string, outcomes []string, at time.Time) string {
	t.Helper()
	q = strings.Replace(q, "IN (?)", "IN ('"+strings.Join(outcomes, "','")+"')", 1)
	if d.Postgres() {
		return pgPlanSteps(t, d, d.pin(q), at)
	}
	rows, err := d.Bun().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, at)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	return b.String()
}
