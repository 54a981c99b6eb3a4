package db

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

// addPortalLink stores an e-mailed link of customer id expiring at expires.
func addPortalLink(t *testing.T, d *DB, customerID int64, expires time.Time) string {
	t.Helper()
	token, hash, err := NewToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.bun.NewRaw("INSERT INTO portal_links (token_hash, customer_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		hash, customerID, fixedNow.Add(-24*time.Hour), expires).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return token
}

func TestOpenPortalLinkAndSessions(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	c := f.customers[3]

	// A link with ten days left opens a session that ends with it.
	live := addPortalLink(t, d, c.ID, fixedNow.Add(10*24*time.Hour))
	ps, err := d.OpenPortalLink(ctx, live, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if ps.Customer.ID != c.ID || !ps.ExpiresAt.Equal(fixedNow.Add(10*24*time.Hour)) || len(ps.Token) != 43 || ps.Token == live {
		t.Errorf("session = %+v", ps)
	}
	// A link of 90 days opens a session of at most PortalSessionMaxLife.
	long := addPortalLink(t, d, c.ID, fixedNow.Add(90*24*time.Hour))
	ps2, err := d.OpenPortalLink(ctx, long, rand.Reader)
	if err != nil || !ps2.ExpiresAt.Equal(fixedNow.Add(PortalSessionMaxLife)) {
		t.Errorf("long link's session = %+v, %v", ps2, err)
	}
	// Only the session's hash is stored.
	var stored int
	if err := d.bun.NewRaw("SELECT COUNT(*) FROM portal_sessions WHERE token_hash = ? OR token_hash = ?", ps.Token, HashToken(ps.Token)).Scan(ctx, &stored); err != nil || stored != 1 {
		t.Errorf("stored sessions by hash or plain = %d, %v", stored, err)
	}
	got, err := d.CustomerByPortalSession(ctx, ps.Token)
	if err != nil || got.ID != c.ID {
		t.Errorf("customer by session = %+v, %v", got, err)
	}
	if _, err := d.CustomerByPortalSession(ctx, HashToken(ps.Token)); !errors.Is(err, ErrNotFound) {
		t.Errorf("the hash as a token: %v", err)
	}
	livemap, err := d.LivePortalSessions(ctx, []string{HashToken(ps.Token), HashToken(ps2.Token), "nope"}, fixedNow)
	if err != nil || len(livemap) != 2 || livemap[HashToken(ps.Token)] != c.ID {
		t.Errorf("live sessions = %v, %v", livemap, err)
	}
	// Past its end a session is dead for pages and streams alike.
	if later, _ := d.LivePortalSessions(ctx, []string{HashToken(ps.Token)}, fixedNow.Add(11*24*time.Hour)); len(later) != 0 {
		t.Errorf("expired session still live: %v", later)
	}

	expired := addPortalLink(t, d, c.ID, fixedNow.Add(-time.Minute))
	if _, err := d.OpenPortalLink(ctx, expired, rand.Reader); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("expired link: %v", err)
	}
	if _, err := d.OpenPortalLink(ctx, "no-such-token", rand.Reader); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown link: %v", err)
	}
	if _, err := d.OpenPortalLink(ctx, strings.Repeat("a", 500), rand.Reader); !errors.Is(err, ErrNotFound) {
		t.Errorf("huge link: %v", err)
	}

	// The operator's link opens a session too; a revoked customer's does not.
	op, err := d.OpenPortalToken(ctx, f.tokens[3], rand.Reader)
	if err != nil || op.Customer.ID != c.ID || !op.ExpiresAt.Equal(fixedNow.Add(PortalSessionMaxLife)) {
		t.Errorf("operator link session = %+v, %v", op, err)
	}
	if _, err := d.OpenPortalToken(ctx, f.tokens[24], rand.Reader); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoked customer's token: %v", err)
	}

	// Signing out ends one session.
	if err := d.DeletePortalSession(ctx, op.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CustomerByPortalSession(ctx, op.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("session after sign-out: %v", err)
	}

	// Another customer's link and session are left alone by what follows.
	other := f.customers[4]
	otherLink := addPortalLink(t, d, other.ID, fixedNow.Add(time.Hour))
	otherSession, err := d.OpenPortalLink(ctx, otherLink, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	// Revoking in the admin withdraws every e-mailed link and ends every
	// session of the customer.
	if err := d.RevokePortalToken(ctx, c.ID, rand.Reader); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{live, long} {
		if _, err := d.OpenPortalLink(ctx, tok, rand.Reader); !errors.Is(err, ErrLinkRevoked) {
			t.Errorf("e-mailed link after revoke: %v, want ErrLinkRevoked", err)
		}
	}
	// Revocation is said before expiry.
	if _, err := d.OpenPortalLink(ctx, expired, rand.Reader); !errors.Is(err, ErrLinkRevoked) {
		t.Errorf("expired and revoked link: %v", err)
	}
	for _, tok := range []string{ps.Token, ps2.Token} {
		if _, err := d.CustomerByPortalSession(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Errorf("session after revoke: %v", err)
		}
	}
	if _, err := d.CustomerByPortalSession(ctx, otherSession.Token); err != nil {
		t.Errorf("another customer's session after revoke: %v", err)
	}

	// Rotating does the same.
	fresh := addPortalLink(t, d, c.ID, fixedNow.Add(time.Hour))
	s3, err := d.OpenPortalLink(ctx, fresh, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.RotatePortalToken(ctx, c.ID, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, err := d.OpenPortalLink(ctx, fresh, rand.Reader); !errors.Is(err, ErrLinkRevoked) {
		t.Errorf("e-mailed link after rotate: %v", err)
	}
	if _, err := d.CustomerByPortalSession(ctx, s3.Token); !errors.Is(err, ErrNotFound) {
		t.Errorf("session after rotate: %v", err)
	}
	if _, err := d.OpenPortalLink(ctx, otherLink, rand.Reader); err != nil {
		t.Errorf("another customer's link after rotate: %v", err)
	}
}

// A failing step of a revoke changes nothing: the token, the links and the
// sessions are one transaction.
func TestRevokeIsOneTransaction(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	c := f.customers[3]
	link := addPortalLink(t, d, c.ID, fixedNow.Add(time.Hour))
	ps, err := d.OpenPortalLink(ctx, link, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A trigger makes ending the sessions fail.
	if testOnPostgres() {
		mustExec(t, d.bun, `CREATE FUNCTION test_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'refused by the test'; END $$`)
		mustExec(t, d.bun, `CREATE TRIGGER test_no_delete BEFORE DELETE ON portal_sessions
			FOR EACH ROW EXECUTE FUNCTION test_no_delete()`)
	} else if _, err := d.bun.ExecContext(ctx, `CREATE TRIGGER test_no_delete BEFORE DELETE ON portal_sessions
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	if err := d.RevokePortalToken(ctx, c.ID, rand.Reader); err == nil {
		t.Fatal("revoke succeeded although its last step failed")
	}
	if _, err := d.CustomerByPortalToken(ctx, f.tokens[3]); err != nil {
		t.Errorf("the operator's token changed although the revoke failed: %v", err)
	}
	var revoked int
	if err := d.bun.NewRaw("SELECT COUNT(*) FROM portal_links WHERE revoked_at IS NOT NULL").Scan(ctx, &revoked); err != nil || revoked != 0 {
		t.Errorf("links revoked by the failed revoke = %d, %v", revoked, err)
	}
	if _, err := d.CustomerByPortalSession(ctx, ps.Token); err != nil {
		t.Errorf("session ended by the failed revoke: %v", err)
	}
}

func TestCheckoutSessionPaymentAndEarliestDue(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	if _, err := d.CheckoutSessionPayment(ctx, "cs_test_none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown session: %v", err)
	}
	paid := f.invoices[12] // invoice 13: paid
	for i, e := range []struct {
		id      string
		invoice any
		outcome string
	}{{"evt_a", nil, OutcomeIgnored}, {"evt_b", paid.ID, OutcomePaid}, {"evt_c", nil, OutcomeIgnored}} {
		if _, err := d.bun.NewRaw(`INSERT INTO stripe_events (event_id, type, session_id, invoice_id, outcome, received_at)
			VALUES (?, 'checkout.session.completed', 'cs_test_paid', ?, ?, ?)`, e.id, e.invoice, e.outcome, fixedNow.Add(time.Duration(i)*time.Minute)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p, err := d.CheckoutSessionPayment(ctx, "cs_test_paid")
	if err != nil || p.Invoice == nil || p.Invoice.ID != paid.ID || p.Outcome != OutcomePaid {
		t.Errorf("paid session = %+v, %v", p, err)
	}
	plan := explainPlan(t, d, `SELECT outcome, invoice_id FROM stripe_events INDEXED BY stripe_events_session
		WHERE session_id = 'cs_x' AND session_id <> '' ORDER BY invoice_id IS NULL, id DESC LIMIT 1`)
	if !strings.Contains(plan, "stripe_events_session") {
		t.Errorf("plan = %s", plan)
	}

	// Customer 4 (index 4) owns invoice 5 (open, overdue): the earliest due
	// date of its open invoices.
	inv := f.invoices[4]
	s, err := d.CustomerSummary(ctx, inv.CustomerID)
	if err != nil || s.EarliestDue == nil || !s.EarliestDue.Equal(*inv.DueAt) {
		t.Errorf("earliest due = %v, want %v (%v)", s.EarliestDue, inv.DueAt, err)
	}
	if s, err := d.CustomerSummary(ctx, 9999); err != nil || s.EarliestDue != nil {
		t.Errorf("no invoices: %v, %v", s.EarliestDue, err)
	}
	// On PostgreSQL the times are whole timestamps ('2026' is none).
	year := "'2026'"
	if testOnPostgres() {
		year = "'2026-01-01 00:00:00+00'"
	}
	for _, q := range []string{
		"SELECT due_at FROM invoices WHERE customer_id = 1 AND status = 'open' AND due_at IS NOT NULL ORDER BY due_at LIMIT 1",
		"SELECT token_hash, customer_id FROM portal_sessions WHERE token_hash IN ('a','b') AND expires_at > " + year,
		"DELETE FROM portal_sessions WHERE expires_at <= " + year,
		"DELETE FROM portal_sessions WHERE customer_id = 1",
		"UPDATE portal_links SET revoked_at = " + year + " WHERE customer_id = 1 AND revoked_at IS NULL",
	} {
		if plan := explainPlan(t, d, q); strings.Contains(plan, "SCAN") || strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s: plan scans: %s", q, plan)
		}
	}
}

// explainPlan is q's query plan, its steps joined by "; "; on PostgreSQL
// the plan without sequential scans (pgPlanSteps), so that a Seq Scan
// left in it means no index serves q.
func explainPlan(t *testing.T, d *DB, q string) string {
	t.Helper()
	if d.Postgres() {
		return strings.ReplaceAll(pgPlanSteps(t, d, d.pin(q)), "\n", "; ")
	}
	rows, err := d.bun.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, detail)
	}
	return strings.Join(out, "; ")
}
