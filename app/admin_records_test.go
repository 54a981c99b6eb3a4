package app

import (
	"context"
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/db"
)

// chain is one lead's whole story: contacted, a simulated reply, converted,
// two tasks (one done, one failed), the done one billed on an invoice that
// Stripe reported paid, and an admin's note on the customer.
type chain struct {
	lead     *db.Lead
	customer *db.Customer
	token    string
	done     db.Task
	failed   db.Task
	invoice  db.Invoice
	event    *db.StripeEvent
}

// seedChain builds the chain through the store's own operations, a minute
// of the fixture's clock per step.
func (f *fixture) seedChain(t *testing.T) *chain {
	t.Helper()
	ctx := context.Background()
	step := func() time.Time { f.clock.Advance(time.Minute); return f.clock.Now() }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ch := &chain{}
	var err error
	ch.lead, err = f.store.CreateLead(ctx, nil, db.NewLead{Name: "Boss Person", Email: "boss@chain.example", Company: evil,
		Website: "https://chain.example", Niche: "agency", Source: "synthetic", DomainKey: "chain.example"})
	must(err)
	sent := step()
	_, err = f.store.Bun().NewInsert().Model(&db.Message{LeadID: ch.lead.ID, ToAddr: "boss@chain.example", Template: "agency",
		Subject: "Growth for " + evil, Body: "Hello", Status: db.MessageSent, ProviderID: "prov-1", Attempts: 1,
		CreatedAt: sent, SentAt: &sent, UpdatedAt: sent}).Exec(ctx)
	must(err)
	_, err = f.store.Bun().NewUpdate().Model((*db.Lead)(nil)).Set("status = ?, contacted_at = ?", db.LeadContacted, sent).
		Where("id = ?", ch.lead.ID).Exec(ctx)
	must(err)
	step()
	_, err = f.store.RecordReply(ctx, db.NewReply{LeadID: ch.lead.ID, FromAddr: "boss@chain.example", Subject: "Re: growth", Body: "Tell me more", Simulated: true})
	must(err)
	conv, err := f.store.ConvertLead(ctx, ch.lead.ID, "starter", []db.NewTask{
		{Kind: "market_research", Description: "Market research brief", Currency: "usd", RewardCents: 15000},
		{Kind: "copy_pack", Description: "Outreach copy pack", Currency: "usd", RewardCents: 9900},
	}, step(), rand.Reader)
	must(err)
	ch.customer, ch.token = conv.Customer, conv.PortalToken
	_, err = f.store.ClaimTasks(ctx, step(), 10, 10*time.Minute)
	must(err)
	now := step()
	_, err = f.store.CompleteTask(ctx, conv.Tasks[0].ID, 1, "Findings: "+evil, 1234, now)
	must(err)
	_, err = f.store.FailTaskAttempt(ctx, conv.Tasks[1].ID, 1, 1, "executor exploded", 0, now)
	must(err)
	b, err := f.store.BillCustomer(ctx, ch.customer.ID, step(), db.BillingRules{MinAmountCents: 100, MaxAmountCents: 1_000_000, DueAfter: 14 * 24 * time.Hour})
	must(err)
	if len(b.Invoices) != 1 {
		t.Fatalf("billing issued %d invoices", len(b.Invoices))
	}
	paid := step()
	_, err = f.store.Bun().NewUpdate().Model((*db.Invoice)(nil)).Set("status = ?, paid_at = ?, payer_email = ?", db.InvoicePaid, paid, "payer@chain.example").
		Where("id = ?", b.Invoices[0].ID).Exec(ctx)
	must(err)
	ch.event = &db.StripeEvent{EventID: "evt_chain_1", Type: "checkout.session.completed", InvoiceID: &b.Invoices[0].ID, Outcome: "paid", ReceivedAt: paid}
	_, err = f.store.Bun().NewInsert().Model(ch.event).Exec(ctx)
	must(err)
	must(f.store.RecordAudit(ctx, db.AuditEntry{Actor: "ops@hossagent.test", Action: "note", Target: "customer " + strconv.FormatInt(ch.customer.ID, 10),
		Detail: "called them", CreatedAt: step()}))
	must(f.store.Bun().NewSelect().Model(&ch.done).Where("t.id = ?", conv.Tasks[0].ID).Scan(ctx))
	must(f.store.Bun().NewSelect().Model(&ch.failed).Where("t.id = ?", conv.Tasks[1].ID).Scan(ctx))
	must(f.store.Bun().NewSelect().Model(&ch.invoice).Where("i.id = ?", b.Invoices[0].ID).Scan(ctx))
	return ch
}

func recPath(kind string, id int64) string { return "/admin/" + kind + "/" + strconv.FormatInt(id, 10) }

// timelineEvents is the event names of a record page's timeline, in order.
func timelineEvents(doc *goquery.Document) []string {
	var out []string
	doc.Find("#record-timeline li .event").Each(func(_ int, s *goquery.Selection) { out = append(out, text(s)) })
	return out
}

// assertContains checks that got holds every one of want.
func assertContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s %q lacks %q", what, got, w)
		}
	}
}

// assertTimeline checks that the timeline holds each event, newest first.
func assertTimeline(t *testing.T, doc *goquery.Document, want ...string) {
	t.Helper()
	got := strings.Join(timelineEvents(doc), " | ")
	assertContains(t, "timeline", got, want...)
	var prev time.Time
	doc.Find("#record-timeline li time").Each(func(i int, s *goquery.Selection) {
		at, err := time.Parse(time.RFC3339, s.AttrOr("datetime", ""))
		if err != nil {
			t.Errorf("timeline entry %d: %v", i, err)
		}
		if i > 0 && at.After(prev) {
			t.Errorf("timeline entry %d (%v) is newer than the one before (%v)", i, at, prev)
		}
		prev = at
	})
}

func TestRecordPagesShowFieldsRelatedRowsAndTimeline(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	ch := f.seedChain(t)

	_, doc, _ := f.get(t, recPath("leads", ch.lead.ID))
	assertContains(t, "lead fields", text(doc.Find("#record-fields")), "boss@chain.example", "chain.example", "agency", "synthetic", "converted", "UTC")
	if href := doc.Find("#record-customer a").AttrOr("href", ""); href != recPath("customers", ch.customer.ID) {
		t.Errorf("lead's customer link = %q", href)
	}
	assertContains(t, "messages", text(doc.Find("#record-messages")), "Growth for "+evil, "prov-1", "sent")
	assertContains(t, "replies", text(doc.Find("#record-replies")), "Re: growth", "simulated")
	assertTimeline(t, doc, "Lead created", "E-mail sent", "Contacted", "Reply received (simulated)", "Converted", "Customer created")

	_, doc, _ = f.get(t, recPath("customers", ch.customer.ID))
	assertContains(t, "customer fields", text(doc.Find("#record-fields")), "boss@chain.example", "starter", "active", "sha256 ")
	if href := doc.Find("#record-fields a").AttrOr("href", ""); href != recPath("leads", ch.lead.ID) {
		t.Errorf("customer's lead link = %q", href)
	}
	assertContains(t, "profit", text(doc.Find("#record-profit")), "$150.00", "$12.34", "$137.66")
	if n := doc.Find("#record-tasks tbody tr").Length(); n != 2 {
		t.Errorf("customer tasks = %d, want 2", n)
	}
	assertContains(t, "invoices", text(doc.Find("#record-invoices")), ch.invoice.NumberOrDraft(), "paid", "$150.00")
	if doc.Find("#portal-link button").Length() != 2 {
		t.Errorf("portal link controls missing")
	}
	assertTimeline(t, doc, "Admin: note", "Invoice paid", "Stripe event checkout.session.completed", "Invoice issued",
		"Task done", "Task failed", "Task claimed", "Task opened", "Customer created", "Reply received (simulated)", "Lead created")

	_, doc, _ = f.get(t, recPath("tasks", ch.done.ID))
	assertContains(t, "task fields", text(doc.Find("#record-fields")), "market_research", "Market research brief", "$150.00", "$12.34", "$137.66", "Findings: "+evil)
	if href := doc.Find("#record-invoice-line a").AttrOr("href", ""); href != recPath("invoices", ch.invoice.ID) {
		t.Errorf("task's invoice link = %q", href)
	}
	assertTimeline(t, doc, "Invoice paid", "Billed", "Task done", "Task claimed", "Task opened")
	_, doc, _ = f.get(t, recPath("tasks", ch.failed.ID))
	assertContains(t, "failed task", text(doc.Find("#record-fields")), "executor exploded", "failed")
	assertContains(t, "failed task line", text(doc.Find("#record-invoice-line")), "Not billed")

	_, doc, _ = f.get(t, recPath("invoices", ch.invoice.ID))
	assertContains(t, "invoice fields", text(doc.Find("#record-fields")), ch.invoice.NumberOrDraft(), "payer@chain.example", "$150.00", "paid")
	assertContains(t, "lines", text(doc.Find("#record-lines")), "market_research", "Market research brief", "$150.00")
	if href := doc.Find("#record-lines a").AttrOr("href", ""); href != recPath("tasks", ch.done.ID) {
		t.Errorf("line's task link = %q", href)
	}
	assertContains(t, "stripe events", text(doc.Find("#record-stripe-events")), "evt_chain_1", "checkout.session.completed")
	assertTimeline(t, doc, "Invoice paid", "Stripe event checkout.session.completed", "Invoice issued", "Invoice created")
}

func TestRecordPagesShowHostileTextAsText(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	ch := f.seedChain(t)
	for _, p := range []string{recPath("leads", ch.lead.ID), recPath("customers", ch.customer.ID), recPath("tasks", ch.done.ID), recPath("invoices", ch.invoice.ID)} {
		resp, doc, raw := f.get(t, p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", p, resp.StatusCode)
		}
		if strings.Contains(raw, "<script>alert") {
			t.Errorf("GET %s: the hostile company name reached the page as markup", p)
		}
		if !strings.Contains(text(doc.Find("main")), evil) {
			t.Errorf("GET %s: the hostile company name is not shown as text", p)
		}
		assertSecurityHeaders(t, resp)
	}
}

func TestRecordPagesNotFound(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	for _, p := range []string{
		"/admin/leads/999", "/admin/leads/abc", "/admin/leads/0", "/admin/leads/01", "/admin/leads/-1", "/admin/leads/1.5",
		"/admin/customers/999", "/admin/customers/1x", "/admin/tasks/99999999999999999999", "/admin/tasks/%2B1",
		"/admin/invoices/999", "/admin/invoices/",
	} {
		resp, doc, _ := f.get(t, p)
		if resp.StatusCode != http.StatusNotFound || doc.Find(".error-page").Length() != 1 {
			t.Errorf("GET %s = %d, want the plain 404 page", p, resp.StatusCode)
		}
	}
}

func TestRecordPagesAreForAdminsOnly(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	if resp, _, _ := f.get(t, "/admin/customers/1"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous = %d, want 303 to sign-in", resp.StatusCode)
	}
	f.signInAs(t, db.RoleViewer)
	for _, p := range []string{"/admin/customers/1", "/admin/activity", "/admin/export/leads.csv"} {
		if resp, _, _ := f.get(t, p); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer GET %s = %d, want 403", p, resp.StatusCode)
		}
	}
}

func TestCustomerPagePagesTasks(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	for range 30 {
		f.addDoneTask(t, 100)
	}
	_, doc, _ := f.get(t, "/admin/customers/1")
	if n := doc.Find("#record-tasks tbody tr").Length(); n != 25 {
		t.Errorf("first page = %d rows, want 25", n)
	}
	next := doc.Find("#record-tasks .pager a[rel=next]").AttrOr("href", "")
	if !strings.HasPrefix(next, "/admin/customers/1?tp=2-o") {
		t.Fatalf("next link = %q", next)
	}
	_, doc, _ = f.get(t, next)
	if n := doc.Find("#record-tasks tbody tr").Length(); n != 7 {
		t.Errorf("second page = %d rows, want 7", n)
	}
}

// cardValue is the value of the card labelled label inside sel.
func cardValue(doc *goquery.Document, sel, label string) string {
	value := "(no card)"
	doc.Find(sel + " .card").Each(func(_ int, s *goquery.Selection) {
		if text(s.Find(".label")) == label {
			value = text(s.Find(".value"))
		}
	})
	return value
}

func TestActivityCountsAnExactWindow(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	ctx := context.Background()
	b := f.store.Bun()
	now := testNow
	edge := now.Add(-2 * time.Hour)
	in, out, future := edge.Add(time.Second), edge.Add(-time.Second), now.Add(time.Second)
	insert := func(model any) {
		t.Helper()
		if _, err := b.NewInsert().Model(model).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Leads created just inside, at the very end, just outside and in the
	// future; two contacted inside, one responded and converted inside.
	for i, at := range []time.Time{in, now, out, future} {
		l := &db.Lead{Name: "n", Company: "Co " + strconv.Itoa(i), Website: "https://co" + strconv.Itoa(i) + ".test", Source: "test",
			Status: db.LeadNew, CreatedAt: at, UpdatedAt: at}
		switch i {
		case 0:
			l.ContactedAt, l.RespondedAt, l.ConvertedAt = &in, &in, &now
		case 1:
			l.ContactedAt, l.RespondedAt = &now, &out
		case 2:
			l.ContactedAt = &out
		}
		insert(l)
		for j, st := range []string{db.MessageSent, db.MessageDryRun, db.MessageFailed} {
			sent := []*time.Time{&in, &out, nil}[j]
			updated := []time.Time{in, out, []time.Time{in, now, out, future}[i]}[j]
			insert(&db.Message{LeadID: l.ID, ToAddr: "a@b.test", Template: "t", Subject: "s", Body: "b", Status: st,
				SentAt: sent, CreatedAt: out, UpdatedAt: updated})
		}
	}
	c, _, err := f.store.CreateCustomer(ctx, nil, db.NewCustomer{Company: "C", ContactEmail: "c@c.test", Plan: "p"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []struct {
		reward, cost int64
		done         time.Time
	}{{10000, 1234, in}, {5000, 0, now}, {7777, 0, out}, {8888, 0, future}} {
		insert(&db.Task{CustomerID: c.ID, Kind: "k", Status: db.TaskDone, Currency: "usd", RewardCents: tk.reward, CostCents: tk.cost,
			ProfitCents: tk.reward - tk.cost, CompletedAt: &tk.done, CreatedAt: out, UpdatedAt: tk.done})
	}
	for i, inv := range []struct {
		status       string
		cents        int64
		issued, paid *time.Time
	}{{db.InvoiceOpen, 1000, &in, nil}, {db.InvoicePaid, 2500, &out, &in}, {db.InvoicePaid, 4000, &in, &out}} {
		n := "INV-00000" + strconv.Itoa(i+1)
		insert(&db.Invoice{CustomerID: c.ID, Number: &n, Currency: "usd", AmountCents: inv.cents, Status: inv.status,
			IssuedAt: inv.issued, PaidAt: inv.paid, CreatedAt: out, UpdatedAt: out})
	}

	resp, doc, _ := f.get(t, "/admin/activity?hours=2")
	if resp.StatusCode != http.StatusOK || doc.Find("#activity-problem").Length() != 0 {
		t.Fatalf("status %d, problem %q", resp.StatusCode, text(doc.Find("#activity-problem")))
	}
	for label, want := range map[string]string{"Created": "2", "Contacted": "2", "Responded": "1", "Converted": "1"} {
		if got := cardValue(doc, "#activity-leads", label); got != want {
			t.Errorf("leads %s = %s, want %s", label, got, want)
		}
	}
	for label, want := range map[string]string{
		// Work done: the reward of the two tasks done inside (100.00 + 50.00)
		// at list price; it is not profit, and the page does not call it so.
		"Tasks done": "2", "Work done (list)": "$150.00", "Invoices issued": "2", "Invoiced": "$50.00",
		"Invoices paid": "1", "Collected": "$25.00",
	} {
		if got := cardValue(doc, "#activity-work", label); got != want {
			t.Errorf("%s = %s, want %s", label, got, want)
		}
	}
	emails := map[string]string{}
	doc.Find("#activity-emails tbody tr").Each(func(_ int, s *goquery.Selection) {
		emails[text(s.Find("td").First())] = text(s.Find("td").Last())
	})
	// sent: the four sent inside; failed: updated inside for leads 0 and 1.
	for status, want := range map[string]string{"sent": "4", "dry_run": "0", "failed": "2", "queued": "0", "All": "6"} {
		if emails[status] != want {
			t.Errorf("e-mails %s = %q, want %s (%v)", status, emails[status], want, emails)
		}
	}
	// Hour by hour: the window 10:00–12:00 is three hours (10, 11, 12);
	// the six e-mail outcomes and the two tasks are all in it, the SVG
	// named by its title and its figures in the text alternative.
	for id, total := range map[string]string{"#activity-emails-hourly": "6 in the window", "#activity-tasks-hourly": "2 in the window"} {
		chart := doc.Find(id)
		if chart.Find(`svg[role="img"] title`).Length() == 0 || chart.Find(".chart-alt tbody tr").Length() != 3 || !strings.Contains(text(chart.Find(".chart-sum")), total) {
			t.Errorf("%s: svg %d, rows %d, summary %q", id, chart.Find("svg").Length(), chart.Find(".chart-alt tbody tr").Length(), text(chart.Find(".chart-sum")))
		}
	}
	if got := text(doc.Find("#activity-range")); !strings.Contains(got, "2026-11-27 10:00:00 UTC") || !strings.Contains(got, "last 2 h") {
		t.Errorf("range = %q", got)
	}
	// The window moves with the clock: an hour later the row just inside
	// the first window has left it.
	f.clock.Advance(time.Hour)
	_, doc, _ = f.get(t, "/admin/activity?hours=2")
	if got := cardValue(doc, "#activity-leads", "Created"); got != "2" { // now and future are inside, in is out
		t.Errorf("an hour later, leads created = %s, want 2", got)
	}

	for _, bad := range []string{"0", "169", "abc", "-1", "2.5", "99999999999999999999"} {
		_, doc, _ := f.get(t, "/admin/activity?hours="+bad)
		if !strings.Contains(text(doc.Find("#activity-problem")), "1 to 168") || !strings.Contains(text(doc.Find("#activity-range")), "last 24 h") {
			t.Errorf("hours=%s: problem %q, range %q", bad, text(doc.Find("#activity-problem")), text(doc.Find("#activity-range")))
		}
	}
	if _, doc, _ := f.get(t, "/admin/activity"); doc.Find("#activity-problem").Length() != 0 || !strings.Contains(text(doc.Find("#activity-range")), "last 24 h") {
		t.Errorf("default window not 24 h without complaint")
	}
}
