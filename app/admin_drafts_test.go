package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/db"
)

// draftFor stores a new lead and its first-step draft, as BizDev does with
// the review switch on.
func draftFor(t *testing.T, store *db.DB, name string) (*db.Lead, *db.OutreachDraft) {
	t.Helper()
	ctx := context.Background()
	key := strings.ToLower(name) + ".example"
	l, err := store.CreateLead(ctx, nil, db.NewLead{Name: name, Email: strings.ToLower(name) + "@" + key, Company: name + " Co",
		Niche: "B2B SaaS", Source: "test", DomainKey: key})
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.DraftFirstStep(ctx, l.ID, func(l *db.Lead) (db.DraftText, error) {
		return db.DraftText{Template: "saas/1", Subject: "A note for " + l.Company, Body: "Hi " + l.Name + ",\nshall we talk?"}, nil
	})
	if err != nil || d == nil {
		t.Fatalf("DraftFirstStep = %v, %v", d, err)
	}
	return l, d
}

func draftStatus(t *testing.T, store *db.DB, id int64) db.OutreachDraft {
	t.Helper()
	d, err := store.Draft(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return *d
}

// shownRefs are the draft refs the page's "Approve all shown" form holds.
func shownRefs(doc *goquery.Document) []string {
	var refs []string
	doc.Find(`#drafts-approve-all input[type=hidden][name=draft]`).Each(func(_ int, s *goquery.Selection) {
		refs = append(refs, s.AttrOr("value", ""))
	})
	return refs
}

// The review queue: the e-mail panel counts the waiting drafts and links
// to them; the lead reads "draft waiting for review"; every decision needs
// a same-origin admin; "Approve all shown" approves exactly the drafts the
// page listed (one that arrived since keeps waiting); an edit is checked
// and makes a new revision, after which the old one cannot be approved;
// a rejection ends the lead's sequence; each decision is audited.
func TestDraftReviewActions(t *testing.T) {
	f := newActionFixture(t, actionOptions{env: map[string]string{"OUTREACH_REVIEW": "true"}})
	f.signInAs(t, db.RoleAdmin)
	ana, d1 := draftFor(t, f.store, "Ana")
	_, d2 := draftFor(t, f.store, "Bo")
	cy, d3 := draftFor(t, f.store, "Cy")

	_, admin, _ := f.get(t, "/admin")
	if got := text(admin.Find("#email-drafts")); got != "3 waiting for review · review on" {
		t.Errorf("e-mail panel drafts row = %q", got)
	}
	if href := admin.Find("#email-drafts a").AttrOr("href", ""); href != "/admin/outreach/drafts" {
		t.Errorf("drafts link = %q", href)
	}
	_, lead, _ := f.get(t, fmt.Sprintf("/admin/leads/%d", ana.ID))
	if got := text(lead.Find("#lead-sequence")); !strings.Contains(got, "step 1 draft waiting for review") || strings.Contains(got, "finished") {
		t.Errorf("lead page sequence = %q", got)
	}

	resp, page, _ := f.get(t, "/admin/outreach/drafts")
	if resp.StatusCode != http.StatusOK || page.Find("article.draft").Length() != 3 {
		t.Fatalf("drafts page = %d with %d drafts", resp.StatusCode, page.Find("article.draft").Length())
	}
	refs := shownRefs(page)
	if want := []string{fmt.Sprintf("%d:1", d1.ID), fmt.Sprintf("%d:1", d2.ID), fmt.Sprintf("%d:1", d3.ID)}; strings.Join(refs, " ") != strings.Join(want, " ") {
		t.Fatalf("approve-all refs = %v, want %v", refs, want)
	}
	if v := page.Find(fmt.Sprintf("#draft-%d-subject", d1.ID)).AttrOr("value", ""); v != "A note for Ana Co" {
		t.Errorf("subject field = %q", v)
	}

	// Refused without a same-origin admin: nothing is decided.
	form := url.Values{"draft": refs}
	if resp, _ := f.post(t, f.client, "/admin/outreach/drafts/approve", form, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin approve-all = %d, want 403", resp.StatusCode)
	}
	rev := url.Values{"revision": {"1"}}
	for _, path := range []string{fmt.Sprintf("/admin/outreach/drafts/%d/approve", d1.ID), fmt.Sprintf("/admin/outreach/drafts/%d/reject", d1.ID)} {
		if resp, _ := f.post(t, f.client, path, rev, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin %s = %d, want 403", path, resp.StatusCode)
		}
		if resp, _ := f.post(t, newClient(t), path, rev, map[string]string{"Origin": f.srv.URL}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous %s = %d, want 401", path, resp.StatusCode)
		}
	}
	if resp, _ := f.post(t, newClient(t), "/admin/outreach/drafts/approve", form, map[string]string{"Origin": f.srv.URL}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous approve-all = %d, want 401", resp.StatusCode)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM messages"); n != 0 {
		t.Fatalf("a refused request queued %d messages", n)
	}

	// A draft that arrives after the page was shown, and one shown but
	// withdrawn since (Cy unsubscribed).
	_, late := draftFor(t, f.store, "Dee")
	if _, err := f.store.ApplyReply(context.Background(), db.SortedReply{LeadID: cy.ID, FromAddr: cy.EmailAddr(), Subject: "stop", Body: "remove me",
		InboundID: "u1@cy.example", Class: db.ReplyUnsubscribe, Reason: "test", By: "rules"}); err != nil {
		t.Fatal(err)
	}
	status, result, doc := f.act(t, "/admin/outreach/drafts/approve", form)
	if status != http.StatusOK || !strings.Contains(result, "Approved 2 of the 3 drafts shown") || !strings.Contains(result, fmt.Sprintf("draft %d was withdrawn", d3.ID)) {
		t.Fatalf("approve-all = %d %q", status, result)
	}
	for _, d := range []*db.OutreachDraft{d1, d2} {
		if got := draftStatus(t, f.store, d.ID); got.Status != db.DraftApproved || got.MessageID == nil || got.DecidedBy != "admin@hossagent.test" {
			t.Errorf("draft %d after approve-all: %+v", d.ID, got)
		}
	}
	if got := draftStatus(t, f.store, late.ID); got.Status != db.DraftWaiting {
		t.Errorf("the draft that arrived after the page was approved: %s", got.Status)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM messages WHERE status = 'queued' AND step = 1"); n != 2 {
		t.Errorf("%d queued messages, want 2", n)
	}
	if refs := shownRefs(doc); len(refs) != 1 || refs[0] != fmt.Sprintf("%d:1", late.ID) {
		t.Errorf("queue after approve-all shows %v", refs)
	}
	// Approving the same page again approves nothing twice.
	if status, result, _ := f.act(t, "/admin/outreach/drafts/approve", form); status != http.StatusOK || !strings.Contains(result, "Approved 0 of the 3") {
		t.Errorf("approve-all again = %d %q", status, result)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM messages"); n != 2 {
		t.Errorf("%d messages after a second approve-all, want 2", n)
	}
	if status, result, _ := f.act(t, "/admin/outreach/drafts/approve", url.Values{"draft": {"12x"}}); status != http.StatusBadRequest || !strings.Contains(result, "Nothing was approved") {
		t.Errorf("approve-all with a bad ref = %d %q", status, result)
	}

	// Edits: checked, revisioned; the old revision is not approved.
	editPath := fmt.Sprintf("/admin/outreach/drafts/%d/edit", late.ID)
	if status, result, _ := f.act(t, editPath, url.Values{"revision": {"1"}, "subject": {""}, "body": {"x"}}); status != http.StatusUnprocessableEntity || !strings.Contains(result, "the subject is empty") {
		t.Errorf("edit with no subject = %d %q", status, result)
	}
	if status, result, _ := f.act(t, editPath, url.Values{"revision": {"1"}, "subject": {"Hi"}, "body": {strings.Repeat("a", db.MaxDraftBodyChars+1)}}); status != http.StatusUnprocessableEntity || !strings.Contains(result, "longer than") {
		t.Errorf("edit with a long body = %d %q", status, result)
	}
	status, result, _ = f.act(t, editPath, url.Values{"revision": {"1"}, "subject": {"  Better subject "}, "body": {"Better\r\nbody"}})
	if status != http.StatusOK || !strings.Contains(result, "revision 2") {
		t.Fatalf("edit = %d %q", status, result)
	}
	if got := draftStatus(t, f.store, late.ID); got.Subject != "Better subject" || got.Body != "Better\nbody" || got.Revision != 2 || got.Status != db.DraftWaiting {
		t.Errorf("draft after the edit: %+v", got)
	}
	if status, result, _ := f.act(t, editPath, url.Values{"revision": {"1"}, "subject": {"Stale"}, "body": {"Stale"}}); status != http.StatusConflict || !strings.Contains(result, "edited since") {
		t.Errorf("edit of a stale revision = %d %q", status, result)
	}
	approvePath := fmt.Sprintf("/admin/outreach/drafts/%d/approve", late.ID)
	if status, result, _ := f.act(t, approvePath, rev); status != http.StatusConflict || !strings.Contains(result, "edited since") {
		t.Errorf("approval of the old revision = %d %q", status, result)
	}
	if status, result, _ := f.act(t, "/admin/outreach/drafts/approve", url.Values{"draft": {fmt.Sprintf("%d:1", late.ID)}}); status != http.StatusOK || !strings.Contains(result, "Approved 0 of the 1") {
		t.Errorf("approve-all of the old revision = %d %q", status, result)
	}

	// Rejection.
	if status, result, _ := f.act(t, fmt.Sprintf("/admin/outreach/drafts/%d/reject", late.ID), url.Values{"revision": {"2"}}); status != http.StatusOK || !strings.Contains(result, "rejected") {
		t.Fatalf("reject = %d %q", status, result)
	}
	if got := draftStatus(t, f.store, late.ID); got.Status != db.DraftRejected {
		t.Errorf("draft after rejection: %s", got.Status)
	}
	if status, _, _ := f.act(t, approvePath, url.Values{"revision": {"2"}}); status != http.StatusConflict {
		t.Errorf("approval after rejection = %d, want 409", status)
	}
	if status, _, _ := f.act(t, "/admin/outreach/drafts/99999/approve", rev); status != http.StatusNotFound {
		t.Errorf("approval of no draft = %d, want 404", status)
	}
	_, admin, _ = f.get(t, "/admin")
	if got := text(admin.Find("#email-drafts")); got != "0 waiting for review · review on" {
		t.Errorf("e-mail panel drafts row after the decisions = %q", got)
	}

	for action, want := range map[string]int{auditDraftApproved: 2, auditDraftEdited: 1, auditDraftRejected: 1} {
		if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = ? AND actor = 'admin@hossagent.test'", action); n != want {
			t.Errorf("%d audit entries %q, want %d", n, action, want)
		}
	}
}
