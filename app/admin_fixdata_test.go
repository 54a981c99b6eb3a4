package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// newFixFixture is the seeded fixture with a live hub (so the test sees
// each action refresh the live views), signed in as an admin.
func newFixFixture(t *testing.T) *fixture {
	t.Helper()
	bus := agents.NewBus()
	t.Cleanup(bus.Close)
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	return f
}

// hx posts an htmx action from this origin and returns status and body.
func (f *fixture) hx(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	resp, body := f.htmxPost(t, path, form)
	return resp.StatusCode, body
}

func (f *fixture) leadStatus(t *testing.T, id int64) string {
	t.Helper()
	var status string
	if err := f.store.Bun().NewSelect().Model((*db.Lead)(nil)).Column("status").Where("id = ?", id).Scan(context.Background(), &status); err != nil {
		t.Fatal(err)
	}
	return status
}

func (f *fixture) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := f.store.Bun().ExecContext(context.Background(), query, args...); err != nil {
		t.Fatal(err)
	}
}

// liveChanges is how often the live views were refreshed.
func (f *fixture) liveChanges() uint64 { return f.server.hub.changes.Load() }

func TestBulkMarkLeadsActsOnlyOnTheSubmittedIDs(t *testing.T) {
	f := newFixFixture(t)
	f.exec(t, "UPDATE leads SET status = 'converted' WHERE id = 3")
	before := f.liveChanges()
	code, body := f.hx(t, "/admin/leads/mark-dead", url.Values{"lead": {"1", "3", "1"}, "note": {"asked  to stop\tby phone"}})
	if code != http.StatusOK || !strings.Contains(body, "Marked dead: 1 of the 2 leads selected") || !strings.Contains(body, "#3") || !strings.Contains(body, "converted") || !strings.Contains(body, `class="result dismissable warn"`) {
		t.Fatalf("bulk mark: %d %s", code, body)
	}
	for id, want := range map[int64]string{1: db.LeadDead, 2: db.LeadNew, 3: db.LeadConverted} {
		if got := f.leadStatus(t, id); got != want {
			t.Errorf("lead %d is %s, want %s", id, got, want)
		}
	}
	if n := f.auditCount(t, db.AuditLeadMarked); n != 1 {
		t.Fatalf("%d audit entries, want 1", n)
	}
	var e db.AuditEntry
	if err := f.store.Bun().NewSelect().Model(&e).Where("action = ?", db.AuditLeadMarked).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.Actor != "admin@hossagent.test" || e.Target != "lead 1" || e.Detail != "new → dead; note: asked to stop by phone" || e.RemoteAddr == "" {
		t.Errorf("audit entry %+v", e)
	}
	if f.liveChanges() == before {
		t.Error("the live views were not refreshed")
	}

	// Only refusals: a 409, nothing audited.
	code, body = f.hx(t, "/admin/leads/mark-dead", url.Values{"lead": {"3"}})
	if code != http.StatusConflict || !strings.Contains(body, "Not marked") {
		t.Errorf("a converted lead alone: %d %s", code, body)
	}
	// The same again: nothing changes.
	code, body = f.hx(t, "/admin/leads/mark-dead", url.Values{"lead": {"1"}})
	if code != http.StatusOK || !strings.Contains(body, "Already dead: #1") {
		t.Errorf("again: %d %s", code, body)
	}
	if n := f.auditCount(t, db.AuditLeadMarked); n != 1 {
		t.Errorf("%d audit entries after refusals and a repeat", n)
	}

	// Forms that name no lead, a bad id, or too many, change nothing.
	many := url.Values{}
	for i := range db.MaxBulk + 1 {
		many.Add("lead", strconv.Itoa(i+1))
	}
	for name, form := range map[string]url.Values{
		"none": {}, "bad id": {"lead": {"2", "2x"}}, "zero": {"lead": {"0"}}, "too many": many,
		"bad note": {"lead": {"2"}, "note": {strings.Repeat("n", maxNote+1)}},
	} {
		if code, body := f.hx(t, "/admin/leads/mark-responded", form); code != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if got := f.leadStatus(t, 2); got != db.LeadNew {
		t.Errorf("lead 2 is %s after refused forms", got)
	}

	// A plain form is asked for a confirmation first, then acts.
	resp, doc := f.post(t, f.client, "/admin/leads/mark-responded", url.Values{"lead": {"2"}}, f.withOrigin(nil))
	if resp.StatusCode != http.StatusOK || doc.Find(`#confirm form[action="/admin/leads/mark-responded"] input[name="lead"][value="2"]`).Length() != 1 ||
		doc.Find(`#confirm input[name="confirm"][value="yes"]`).Length() != 1 {
		t.Fatalf("plain form without confirmation: %d %s", resp.StatusCode, text(doc.Find("main")))
	}
	if got := f.leadStatus(t, 2); got != db.LeadNew {
		t.Fatalf("lead 2 is %s before the confirmation", got)
	}
	resp, _ = f.post(t, f.client, "/admin/leads/mark-responded", url.Values{"lead": {"2"}, "confirm": {"yes"}}, f.withOrigin(nil))
	if resp.StatusCode != http.StatusSeeOther || f.leadStatus(t, 2) != db.LeadResponded {
		t.Errorf("confirmed plain form: %d, lead 2 %s", resp.StatusCode, f.leadStatus(t, 2))
	}

	// A viewer may not, nor may another site.
	viewer := f.createUser(t, "viewer@hossagent.test", db.RoleViewer)
	vc := f.signIn(t, viewer.Email)
	resp, _ = f.post(t, vc, "/admin/leads/mark-dead", url.Values{"lead": {"2"}}, f.withOrigin(hxHeaders))
	if resp.StatusCode < 400 || f.leadStatus(t, 2) != db.LeadResponded {
		t.Errorf("viewer: %d, lead 2 %s", resp.StatusCode, f.leadStatus(t, 2))
	}
	resp, _ = f.post(t, f.client, "/admin/leads/mark-dead", url.Values{"lead": {"2"}}, map[string]string{"Origin": "https://evil.example", "HX-Request": "true"})
	if resp.StatusCode != http.StatusForbidden || f.leadStatus(t, 2) != db.LeadResponded {
		t.Errorf("cross-origin: %d, lead 2 %s", resp.StatusCode, f.leadStatus(t, 2))
	}
}

func TestLeadPageMarksTheLead(t *testing.T) {
	f := newFixFixture(t)
	_, doc, _ := f.get(t, "/admin/leads/1")
	if doc.Find("#lead-actions #lead-mark-dead[hx-confirm]").Length() != 1 || doc.Find("#lead-actions #lead-mark-responded[hx-confirm]").Length() != 1 {
		t.Fatal("the lead page has no confirmed mark controls")
	}
	code, body := f.hx(t, "/admin/leads/1/mark-responded", url.Values{"note": {"called us"}})
	if code != http.StatusOK || !strings.Contains(body, `id="lead-actions"`) || !strings.Contains(body, "Lead #1 marked responded") {
		t.Fatalf("mark responded: %d %s", code, body)
	}
	doc = parseHTML(t, []byte(body))
	if got := text(doc.Find(`hx-partial[hx-target="#record-fields"] #record-fields`)); !strings.Contains(got, "responded") {
		t.Errorf("the answer's lead fields: %q", got)
	}
	// A converted lead: the page says so, the action refuses.
	f.exec(t, "UPDATE leads SET status = 'converted' WHERE id = 2")
	_, doc, _ = f.get(t, "/admin/leads/2")
	if doc.Find("#lead-mark-dead").Length() != 0 || !strings.Contains(text(doc.Find("#lead-actions")), "converted") {
		t.Errorf("converted lead page: %q", text(doc.Find("#lead-actions")))
	}
	code, body = f.hx(t, "/admin/leads/2/mark-dead", nil)
	if code != http.StatusConflict || !strings.Contains(body, "was not marked dead: it is converted") {
		t.Errorf("mark a converted lead dead: %d %s", code, body)
	}
	if code, _ := f.hx(t, "/admin/leads/999/mark-dead", nil); code != http.StatusNotFound {
		t.Errorf("no such lead: %d", code)
	}
	if n := f.auditCount(t, db.AuditLeadMarked); n != 1 {
		t.Errorf("%d audit entries", n)
	}
}

// failedTask stores a failed task for the seeded customer; billed puts it
// on a line of the open invoice.
func (f *fixture) failedTask(t *testing.T, billed bool) int64 {
	t.Helper()
	task := &db.Task{CustomerID: 1, Kind: "copy_pack", Description: "Copy", Status: db.TaskFailed, Currency: "usd",
		RewardCents: 500, CostCents: 70, ProfitCents: 430, Attempts: 3, LastError: "LLM unavailable", CreatedAt: testNow, UpdatedAt: testNow}
	if _, err := f.store.Bun().NewInsert().Model(task).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if billed {
		f.exec(t, "INSERT INTO invoice_lines (invoice_id, task_id, amount_cents, created_at) VALUES (1, ?, 0, ?)", task.ID, testNow)
	}
	return task.ID
}

func (f *fixture) taskStatus(t *testing.T, id int64) (string, int) {
	t.Helper()
	var task db.Task
	if err := f.store.Bun().NewSelect().Model(&task).Where("t.id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return task.Status, task.Attempts
}

func TestRetryTasksNeverBillTwice(t *testing.T) {
	f := newFixFixture(t)
	a, b, billed := f.failedTask(t, false), f.failedTask(t, false), f.failedTask(t, true)
	_, doc, _ := f.get(t, fmt.Sprintf("/admin/tasks/%d", a))
	if doc.Find("#task-actions #task-retry[hx-confirm]").Length() != 1 {
		t.Fatal("the failed task's page has no retry control")
	}
	_, doc, _ = f.get(t, fmt.Sprintf("/admin/tasks/%d", billed))
	if doc.Find("#task-retry").Length() != 0 || !strings.Contains(text(doc.Find("#task-actions")), "billed") {
		t.Errorf("billed task page: %q", text(doc.Find("#task-actions")))
	}
	code, body := f.hx(t, fmt.Sprintf("/admin/tasks/%d/retry", a), nil)
	if code != http.StatusOK || !strings.Contains(body, "pending again") || !strings.Contains(body, `hx-target="#record-fields"`) {
		t.Fatalf("retry: %d %s", code, body)
	}
	if s, n := f.taskStatus(t, a); s != db.TaskPending || n != 0 {
		t.Errorf("retried task: %s, %d attempts", s, n)
	}
	code, body = f.hx(t, fmt.Sprintf("/admin/tasks/%d/retry", billed), nil)
	if code != http.StatusConflict || !strings.Contains(body, "billed already") {
		t.Errorf("billed: %d %s", code, body)
	}
	// The tasks table offers the failed rows it shows, and the bulk form
	// acts on the ids it names only.
	_, doc, _ = f.get(t, "/admin")
	var shown []string
	doc.Find(`#admin-tasks form[action="/admin/tasks/retry"] input[name="task"]`).Each(func(_ int, s *goquery.Selection) { shown = append(shown, s.AttrOr("value", "")) })
	if want := []string{strconv.FormatInt(billed, 10), strconv.FormatInt(b, 10)}; strings.Join(shown, ",") != strings.Join(want, ",") {
		t.Errorf("retry all failed shown names %v, want %v", shown, want)
	}
	c := f.failedTask(t, false)
	code, body = f.hx(t, "/admin/tasks/retry", url.Values{"task": {strconv.FormatInt(b, 10), strconv.FormatInt(billed, 10), "1"}})
	if code != http.StatusOK || !strings.Contains(body, "1 of the 3 tasks are pending again") || !strings.Contains(body, "billed already") || !strings.Contains(body, "#1: it is done") {
		t.Errorf("bulk retry: %d %s", code, body)
	}
	if s, _ := f.taskStatus(t, c); s != db.TaskFailed {
		t.Errorf("a task the form did not name is %s", s)
	}
	if s, _ := f.taskStatus(t, billed); s != db.TaskFailed {
		t.Errorf("the billed task is %s", s)
	}
	if n := f.auditCount(t, db.AuditTaskRetried); n != 2 {
		t.Errorf("%d audit entries, want 2", n)
	}
}

func TestRetryMessageOfUnknownFateNeedsTheOperatorsWord(t *testing.T) {
	f := newFixFixture(t)
	ctx := context.Background()
	m := &db.Message{LeadID: 1, ToAddr: "a@acme.example", Template: "agency", Subject: "Hi", Body: "Hello", Status: db.MessageSending,
		NeedsReview: true, Error: "the provider's answer was lost", SendingAt: &testNow, CreatedAt: testNow, UpdatedAt: testNow}
	if _, err := f.store.Bun().NewInsert().Model(m).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/admin/messages/%d/retry", m.ID)
	_, doc, _ := f.get(t, "/admin/leads/1")
	if doc.Find(fmt.Sprintf(`#record-messages #message-retry-%d[hx-confirm]`, m.ID)).Length() != 1 || doc.Find(`#record-messages input[name="not_sent"]`).Length() != 1 {
		t.Fatal("the lead page has no retry control with the not-sent confirmation")
	}
	code, body := f.hx(t, path, nil)
	if code != http.StatusConflict || !strings.Contains(body, "nobody knows whether it left") || !strings.Contains(body, `id="record-messages"`) {
		t.Fatalf("retry without the operator's word: %d %s", code, body)
	}
	code, body = f.hx(t, path, url.Values{"not_sent": {"yes"}})
	if code != http.StatusOK || !strings.Contains(body, "queued again") {
		t.Fatalf("confirmed retry: %d %s", code, body)
	}
	var got db.Message
	if err := f.store.Bun().NewSelect().Model(&got).Where("m.id = ?", m.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if got.Status != db.MessageQueued || got.NeedsReview {
		t.Errorf("message after the retry: %s review=%v", got.Status, got.NeedsReview)
	}
	// Queued now: a second retry is refused.
	if code, body := f.hx(t, path, url.Values{"not_sent": {"yes"}}); code != http.StatusConflict {
		t.Errorf("second retry: %d %s", code, body)
	}
	if n := f.auditCount(t, db.AuditMessageRetried); n != 1 {
		t.Errorf("%d audit entries", n)
	}
	if code, _ := f.hx(t, "/admin/messages/999/retry", nil); code != http.StatusNotFound {
		t.Errorf("no such message: %d", code)
	}
}

func TestEditCustomerValidatesAndKeepsAddressesUnique(t *testing.T) {
	f := newFixFixture(t)
	if _, _, err := f.store.CreateCustomer(context.Background(), nil, db.NewCustomer{Company: "Other", ContactEmail: "other@other.example", Plan: "starter"}, rand.Reader); err != nil {
		t.Fatal(err)
	}
	_, doc, _ := f.get(t, "/admin/customers/1")
	if doc.Find(`#customer-edit input[name="contact_email"][value="x@evil.example"]`).Length() != 1 || doc.Find("#customer-save[hx-confirm]").Length() != 1 {
		t.Fatal("the customer page has no edit form")
	}
	for name, c := range map[string]struct {
		form url.Values
		code int
		want string
	}{
		"bad address":   {url.Values{"company": {"Acme"}, "contact_email": {"not an address"}}, http.StatusUnprocessableEntity, "one plain address"},
		"named address": {url.Values{"company": {"Acme"}, "contact_email": {"Ann <ann@acme.example>"}}, http.StatusUnprocessableEntity, "one plain address"},
		"no company":    {url.Values{"company": {"  "}, "contact_email": {"ann@acme.example"}}, http.StatusUnprocessableEntity, "company"},
		"long name":     {url.Values{"company": {"Acme"}, "contact_name": {strings.Repeat("n", maxContactName+1)}, "contact_email": {"ann@acme.example"}}, http.StatusUnprocessableEntity, "too long"},
		"taken":         {url.Values{"company": {"Acme"}, "contact_email": {"Other@Other.example"}}, http.StatusConflict, "Another customer"},
	} {
		code, body := f.hx(t, "/admin/customers/1/edit", c.form)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if n := f.auditCount(t, db.AuditCustomerEdited); n != 0 {
		t.Fatalf("%d audit entries after refusals", n)
	}
	code, body := f.hx(t, "/admin/customers/1/edit", url.Values{"company": {"Acme  Renamed"}, "contact_name": {"Ann Smith"}, "contact_email": {" Ann@Acme.example "}})
	if code != http.StatusOK || !strings.Contains(body, "Customer saved") {
		t.Fatalf("edit: %d %s", code, body)
	}
	doc = parseHTML(t, []byte(body))
	if got := text(doc.Find(`hx-partial[hx-target="#record-fields"] #record-fields`)); !strings.Contains(got, "Acme Renamed") || !strings.Contains(got, "ann@acme.example") || !strings.Contains(got, "Ann Smith") {
		t.Errorf("the answer's fields: %q", got)
	}
	c, err := f.store.CustomerByID(context.Background(), 1)
	if err != nil || c.Company != "Acme Renamed" || c.ContactEmail != "ann@acme.example" || c.ContactName != "Ann Smith" {
		t.Errorf("stored: %+v %v", c, err)
	}
	if n := f.auditCount(t, db.AuditCustomerEdited); n != 1 {
		t.Errorf("%d audit entries", n)
	}
}

func TestSuppressionListAddRemove(t *testing.T) {
	f := newFixFixture(t)
	ctx := context.Background()
	resp, doc, _ := f.get(t, "/admin/suppressions")
	if resp.StatusCode != http.StatusOK || doc.Find("#suppressions #suppression-add[hx-confirm]").Length() != 1 {
		t.Fatalf("list page: %d", resp.StatusCode)
	}
	for name, form := range map[string]url.Values{
		"bad kind":       {"kind": {"ip"}, "value": {"1.2.3.4"}},
		"bad address":    {"kind": {"address"}, "value": {"nobody"}},
		"domain with @":  {"kind": {"domain"}, "value": {"a@b.example"}},
		"domain, 1 word": {"kind": {"domain"}, "value": {"localhost"}},
		"domain path":    {"kind": {"domain"}, "value": {"example.com/x"}},
		"numeric tld":    {"kind": {"domain"}, "value": {"10.0.0.1"}},
	} {
		if code, body := f.hx(t, "/admin/suppressions", form); code != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	code, body := f.hx(t, "/admin/suppressions", url.Values{"kind": {"domain"}, "value": {" Acme.Example "}})
	if code != http.StatusOK || !strings.Contains(body, "Suppressed the domain acme.example") || !strings.Contains(body, `id="suppressions"`) {
		t.Fatalf("add: %d %s", code, body)
	}
	if sup, err := f.store.IsSuppressed(ctx, "a@acme.example"); err != nil || !sup {
		t.Fatalf("a@acme.example not suppressed: %v %v", sup, err)
	}
	if code, body := f.hx(t, "/admin/suppressions", url.Values{"kind": {"domain"}, "value": {"acme.example"}}); code != http.StatusOK || !strings.Contains(body, "suppressed already") {
		t.Errorf("add again: %d %s", code, body)
	}
	if n := f.auditCount(t, db.AuditSuppressionAdded); n != 1 {
		t.Errorf("%d add entries", n)
	}
	_, doc, _ = f.get(t, "/admin/suppressions?q=acme")
	row := doc.Find("#suppressions tbody tr")
	if row.Length() != 1 || !strings.Contains(text(row), "acme.example") || !strings.Contains(text(row), "manual") || !strings.Contains(text(row), "operator") {
		t.Fatalf("search acme: %q", text(doc.Find("#suppressions tbody")))
	}
	if _, doc, _ = f.get(t, "/admin/suppressions?q=zzz"); doc.Find("#suppressions tbody tr.empty").Length() != 1 {
		t.Errorf("search zzz shows rows")
	}
	id := strings.TrimPrefix(row.AttrOr("id", ""), "suppression-")
	pending, err := f.store.PendingOutbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, body = f.hx(t, "/admin/suppressions/"+id+"/remove", url.Values{"q": {"acme"}})
	if code != http.StatusOK || !strings.Contains(body, "Removed the suppression of acme.example") || strings.Contains(body, `id="suppression-`+id+`"`) {
		t.Fatalf("remove: %d %s", code, body)
	}
	if sup, _ := f.store.IsSuppressed(ctx, "a@acme.example"); sup {
		t.Error("still suppressed")
	}
	if after, _ := f.store.PendingOutbox(ctx); after != pending {
		t.Errorf("removing queued mail: outbox %d → %d", pending, after)
	}
	if code, _ := f.hx(t, "/admin/suppressions/"+id+"/remove", nil); code != http.StatusNotFound {
		t.Errorf("second removal: %d", code)
	}
	if n := f.auditCount(t, db.AuditSuppressionRemoved); n != 1 {
		t.Errorf("%d remove entries", n)
	}
}

// The fixing-data forms are read whole up to their own limit, not the
// edge's default 4 KiB: a 480-character note in a three-byte script marks
// the lead (and stays within the handler's 500 characters).
func TestFixFormsTakeLongNonASCIINotes(t *testing.T) {
	f := newFixFixture(t)
	note := strings.Repeat("電", 480) // 1,440 bytes, 4 KiB once URL-encoded
	code, body := f.hx(t, "/admin/leads/1/mark-dead", url.Values{"note": {note}})
	if code != http.StatusOK || f.leadStatus(t, 1) != db.LeadDead {
		t.Fatalf("mark dead with a long note: %d %.200s (lead %s)", code, body, f.leadStatus(t, 1))
	}
}
