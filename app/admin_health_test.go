package app

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// fakeSearchAPI stands in for *searchapi.Leads.
type fakeSearchAPI struct {
	err         string
	errAt, okAt time.Time
}

func (f fakeSearchAPI) Query() string                  { return "dentists in Ohio" }
func (f fakeSearchAPI) LastError() (string, time.Time) { return f.err, f.errAt }
func (f fakeSearchAPI) LastSuccess() time.Time         { return f.okAt }

const webhookSecret = "whsec_do_not_show_me"

// seedHealth adds to the common seed what the health panels report on:
// outbox messages, a suppression, a Stripe event, an open invoice without a
// link and a flagged one, and a lead from the search API.
func seedHealth(t *testing.T, f *actionFixture) {
	t.Helper()
	ctx := context.Background()
	f.seed(t)
	b := f.store.Bun()
	lead, err := f.store.CreateLead(ctx, nil, db.NewLead{Name: "Dr", Email: "dr@teeth.example", Company: "Teeth", Source: "search_api", DomainKey: "teeth.example"})
	if err != nil {
		t.Fatal(err)
	}
	at := func(ago time.Duration) *time.Time { v := testNow.Add(-ago); return &v }
	messages := []*db.Message{
		{Status: db.MessageSent, SentAt: at(10 * time.Minute)},
		{Status: db.MessageSending, SendingAt: at(5 * time.Minute), NeedsReview: true},
		{Status: db.MessageDryRun, SentAt: at(3 * time.Hour)},
		{Status: db.MessageQueued},
		{Status: db.MessageFailed, Error: "smtp: 550 " + evil, Attempts: 3},
	}
	for _, m := range messages {
		m.LeadID, m.ToAddr, m.Template, m.Subject, m.Body = lead.ID, "dr@teeth.example", "intro", "Hello", "Hi"
		m.CreatedAt, m.UpdatedAt = testNow.Add(-time.Hour), testNow.Add(-time.Hour)
		if _, err := b.NewInsert().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.AddSuppression(ctx, "address", "gone@example.com", "bounced", "test"); err != nil {
		t.Fatal(err)
	}
	ev := &db.StripeEvent{EventID: "evt_1", Type: "checkout.session.completed", Outcome: "paid", ReceivedAt: testNow.Add(-2 * time.Hour)}
	if _, err := b.NewInsert().Model(ev).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// A session of another install sharing the Stripe account, set aside.
	if _, err := b.ExecContext(ctx, `INSERT INTO stripe_events (event_id, type, outcome, detail, received_at)
		VALUES ('evt_foreign', 'checkout.session.completed', 'foreign_install', ?, ?)`,
		"session cs_x (no payment link) belongs to install hoss-"+evil, testNow.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var customerID int64
	if err := b.NewRaw("SELECT id FROM customers LIMIT 1").Scan(ctx, &customerID); err != nil {
		t.Fatal(err)
	}
	due := testNow.Add(14 * 24 * time.Hour)
	for i, flag := range []string{"", "amount mismatch: " + evil} {
		n := []string{"INV-000003", "INV-000004"}[i]
		inv := &db.Invoice{CustomerID: customerID, Number: &n, Currency: "usd", AmountCents: 70000, Status: db.InvoiceOpen,
			IssuedAt: &testNow, DueAt: &due, Flag: flag, CreatedAt: testNow, UpdatedAt: testNow}
		if _, err := b.NewInsert().Model(inv).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHealthPanelsShowTheFigures(t *testing.T) {
	env := map[string]string{
		"ENABLE_STRIPE": "true", "STRIPE_API_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": webhookSecret,
		"LEAD_SOURCE": "search_api", "LEAD_SEARCH_API_URL": "https://search.example/api", "LEAD_SEARCH_API_KEY": "k",
		"LEAD_NICHE": "dentists", "LEAD_GEOGRAPHY": "Ohio", "MAX_EMAILS_PER_HOUR": "40",
	}
	api := fakeSearchAPI{err: "search API: 503 Service Unavailable", errAt: testNow.Add(-time.Hour), okAt: testNow.Add(-2 * time.Hour)}
	f := newActionFixture(t, actionOptions{env: env, deps: func(d *Deps) { d.LeadSourceHealth = SearchAPIHealth(api) }})
	f.signInAs(t, db.RoleAdmin)
	seedHealth(t, f)
	resp, doc, raw := f.get(t, "/admin")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := map[string]string{
		"#email-sent-hour":      "2 of 40", // sent and in flight
		"#email-sent-day":       "3 of 200",
		"#email-cap-cycle":      "10",
		"#email-failed":         "1",
		"#email-review":         "1",
		"#email-suppressions":   "1",
		"#leads-created-source": "1",
		"#leads-created-all":    "4",
		"#stripe-enabled":       "ON",
		"#stripe-webhook":       "configured",
		"#stripe-missing-links": "1",
		"#stripe-flagged":       "1",
		"#stripe-set-aside":     "1 · foreign_install 1",
		"#stripe-last-event":    "checkout.session.completed · 2026-11-27 10:00 UTC · paid",
		"#leads-last-success":   "2026-11-27 10:00 UTC",
		"#leads-last-error":     "2026-11-27 11:00 UTC: search API: 503 Service Unavailable",
	}
	for sel, w := range want {
		if got := text(doc.Find(sel)); got != w {
			t.Errorf("%s = %q, want %q", sel, got, w)
		}
	}
	if got := text(doc.Find("#email-outbox")); !strings.Contains(got, "queued 1") || !strings.Contains(got, "sending 1") || !strings.Contains(got, "failed 1") {
		t.Errorf("outbox = %q", got)
	}
	if got := text(doc.Find("#email-failures")); !strings.Contains(got, "smtp: 550 "+evil) || strings.Contains(raw, "<script>alert") {
		t.Errorf("failures = %q (hostile text must be escaped)", got)
	}
	if doc.Find("#leads-last-error .bad").Length() != 1 {
		t.Errorf("an error newer than the last success must be red")
	}
	if got := text(doc.Find("#admin-leads-health")); !strings.Contains(got, "dentists in Ohio") || !strings.Contains(got, "search_api") {
		t.Errorf("lead source panel = %q", got)
	}
	if got := text(doc.Find("#admin-stripe-health .flagged")); !strings.Contains(got, "INV-000004") || !strings.Contains(got, "$700.00") || !strings.Contains(got, "amount mismatch") {
		t.Errorf("flagged invoices = %q", got)
	}
	if got := text(doc.Find("#stripe-set-aside-list")); !strings.Contains(got, "evt_foreign") || !strings.Contains(got, "foreign_install") ||
		!strings.Contains(got, "belongs to install hoss-"+evil) || !strings.Contains(got, "2026-11-27 09:00 UTC") {
		t.Errorf("set-aside events = %q", got)
	}
	if strings.Contains(raw, webhookSecret) || strings.Contains(raw, "sk_test_x") {
		t.Errorf("a Stripe secret is on the page")
	}
}

func TestHealthPanelsOnSyntheticWithoutStripe(t *testing.T) {
	f := newActionFixture(t, actionOptions{})
	f.signInAs(t, db.RoleAdmin)
	_, doc, _ := f.get(t, "/admin")
	want := map[string]string{
		"#email-sent-hour":      "0 of 50",
		"#leads-created-all":    "0",
		"#stripe-enabled":       "OFF",
		"#stripe-webhook":       "not configured",
		"#stripe-last-event":    "none received",
		"#stripe-missing-links": "0",
		"#stripe-set-aside":     "0",
	}
	for sel, w := range want {
		if got := text(doc.Find(sel)); got != w {
			t.Errorf("%s = %q, want %q", sel, got, w)
		}
	}
	if doc.Find("#leads-last-error, #leads-last-success, #email-failures, #stripe-set-aside-list").Length() != 0 {
		t.Errorf("search API rows or a failure table on an idle synthetic setup")
	}
}

func TestRequeueDryRunAction(t *testing.T) {
	f := newActionFixture(t, actionOptions{})
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	status, result, _ := f.act(t, "/admin/outreach/requeue-dry-run", nil)
	if status != http.StatusOK || !strings.Contains(result, "nothing to re-queue") {
		t.Errorf("requeue with no dry-run lead = %d %q", status, result)
	}
	ctx := context.Background()
	if _, err := f.store.Bun().NewRaw("UPDATE leads SET status = 'contacted', dry_run = TRUE, contacted_at = ? WHERE company <> 'Acme Analytics'", testNow).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	status, result, doc := f.act(t, "/admin/outreach/requeue-dry-run", nil)
	if status != http.StatusOK || !strings.Contains(result, "Re-queued 2 dry-run leads") || !strings.Contains(result, "still DRY_RUN") || doc.Find(".result.warn").Length() != 1 {
		t.Errorf("requeue = %d %q", status, result)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM leads WHERE status = 'new' AND NOT dry_run"); n != 3 {
		t.Errorf("new leads after the requeue = %d, want 3", n)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = 'outreach.requeue_dry_run' AND detail = '2 leads'"); n != 1 {
		t.Errorf("audit entries for the requeue = %d", n)
	}
}

func TestEmailCapsAction(t *testing.T) {
	f := newActionFixture(t, actionOptions{})
	f.signInAs(t, db.RoleAdmin)
	ctx := context.Background()
	defaults := db.EmailCaps{PerCycle: 10, PerHour: 50, PerDay: 200}

	status, result, _ := f.act(t, "/admin/outreach/caps", url.Values{"per_cycle": {"5"}, "per_hour": {" 20 "}, "per_day": {"100000"}})
	if status != http.StatusOK || !strings.Contains(result, "per cycle 5, per hour 20, per 24 h 100000") {
		t.Fatalf("caps = %d %q", status, result)
	}
	if caps, err := f.store.EmailCaps(ctx, defaults); err != nil || caps != (db.EmailCaps{PerCycle: 5, PerHour: 20, PerDay: 100000}) {
		t.Fatalf("stored caps = %+v, %v", caps, err)
	}
	_, doc, _ := f.get(t, "/admin")
	if got := text(doc.Find("#email-sent-hour")); got != "0 of 20" {
		t.Errorf("panel after the change = %q", got)
	}
	if in := doc.Find("#caps-per-hour"); in.AttrOr("value", "") != "20" || in.AttrOr("hx-preserve", "x") == "x" {
		t.Errorf("caps input value %q", in.AttrOr("value", ""))
	}

	for _, bad := range []url.Values{
		{"per_cycle": {"-1"}, "per_hour": {"1"}, "per_day": {"1"}},
		{"per_cycle": {"1"}, "per_hour": {"100001"}, "per_day": {"1"}},
		{"per_cycle": {"1"}, "per_hour": {"1"}, "per_day": {"lots"}},
		{"per_cycle": {"1.5"}, "per_hour": {"1"}},
		{},
	} {
		status, result, doc := f.act(t, "/admin/outreach/caps", bad)
		if status != http.StatusUnprocessableEntity || !strings.Contains(result, "from 0 to 100000") || !strings.Contains(result, "Nothing was saved") || doc.Find(".result.bad").Length() != 1 {
			t.Errorf("caps %v = %d %q", bad, status, result)
		}
	}
	if caps, _ := f.store.EmailCaps(ctx, defaults); caps != (db.EmailCaps{PerCycle: 5, PerHour: 20, PerDay: 100000}) {
		t.Errorf("invalid input changed the caps to %+v", caps)
	}
	if status, result, _ := f.act(t, "/admin/outreach/caps", url.Values{"per_cycle": {"0"}, "per_hour": {"0"}, "per_day": {"0"}}); status != http.StatusOK || !strings.Contains(result, "pauses outreach") {
		t.Errorf("zero caps = %d %q", status, result)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = 'outreach.caps'"); n != 2 {
		t.Errorf("audit entries for caps = %d, want 2", n)
	}
}

// TestLiveStreamCarriesHealthPanels reads the first message of the control
// room's stream: the health panels are among its regions.
func TestLiveStreamCarriesHealthPanels(t *testing.T) {
	f := newActionFixture(t, actionOptions{})
	f.signInAs(t, db.RoleAdmin)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/events/admin", nil)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msg strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<22)
	for sc.Scan() {
		line := sc.Text()
		if line == "" && strings.Contains(msg.String(), "data:") {
			break
		}
		msg.WriteString(line + "\n")
	}
	for _, id := range []string{"admin-email-health", "admin-leads-health", "admin-stripe-health", "admin-status", "admin-agents"} {
		if !strings.Contains(msg.String(), `hx-target="#`+id+`"`) {
			t.Errorf("the live stream lacks #%s", id)
		}
	}
}
