package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// fakeInvoiceFiles renders stand-in documents naming the invoice's number
// and status; the receipt of an unpaid invoice is not found, as
// agents.InvoiceFiles answers.
type fakeInvoiceFiles struct{ store *db.DB }

func (f fakeInvoiceFiles) InvoicePDF(ctx context.Context, id int64) ([]byte, error) {
	inv, err := f.store.Invoice(ctx, id)
	if err != nil {
		return nil, err
	}
	return []byte("%PDF-1.4 invoice " + inv.NumberOrDraft() + " " + inv.Status), nil
}

func (f fakeInvoiceFiles) ReceiptPDF(ctx context.Context, id int64) ([]byte, error) {
	inv, err := f.store.Invoice(ctx, id)
	if err != nil {
		return nil, err
	}
	if inv.Status != db.InvoicePaid && inv.Status != db.InvoiceRefunded {
		return nil, fmt.Errorf("invoice %d has no receipt: %w", id, db.ErrNotFound)
	}
	return []byte("%PDF-1.4 receipt " + inv.NumberOrDraft()), nil
}

// withInvoiceFiles gives the fixture's server the fake documents.
func withInvoiceFiles(d *Deps) { d.InvoiceFiles = fakeInvoiceFiles{store: d.Store} }

// hostile is a subject and body that would run script if a page printed it
// raw.
const hostileMail = `<script>alert("mail")</script>`

// fieldsOf reads the dt/dd pairs under sel.
func fieldsOf(sel *goquery.Selection) map[string]string {
	out := map[string]string{}
	sel.Find("dt").Each(func(_ int, dt *goquery.Selection) { out[text(dt)] = text(dt.NextFiltered("dd")) })
	return out
}

// completeJob writes the message of the collection job of kind (of invoice
// invoiceID, 0 for a welcome) through the store's composing path, as
// Collections does.
func (f *fixture) completeJob(t *testing.T, kind string, invoiceID int64, draft db.ClientDraft) *db.ClientMessage {
	t.Helper()
	ctx := context.Background()
	jobs, err := f.store.DueCollectionJobs(ctx, f.clock.Now().Add(365*24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.Kind != kind || (invoiceID == 0) != (j.InvoiceID == nil) || (j.InvoiceID != nil && *j.InvoiceID != invoiceID) {
			continue
		}
		draft.Kind = kind
		out, m, err := f.store.CompleteCollectionJob(ctx, j.ID, func(db.CollectionCase) (*db.ClientDraft, []db.NewCollectionJob, error) {
			return &draft, nil, nil
		})
		if err != nil || out != db.JobQueued {
			t.Fatalf("job %d: %s, %v", j.ID, out, err)
		}
		return m
	}
	t.Fatalf("no %s job of invoice %d", kind, invoiceID)
	return nil
}

// queueLinks queues n portal link e-mails to the seeded customer, through
// the store (one slot each), and returns their ids, oldest first.
func (f *fixture) queueLinks(t *testing.T, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for i := range n {
		f.clock.Advance(time.Second)
		ok, err := f.store.QueuePortalLinkMail(ctx, "x@evil.example", "slot-"+strconv.Itoa(i), func(db.Customer) (db.ClientDraft, error) {
			return db.ClientDraft{Subject: "Your portal link " + strconv.Itoa(i), Text: "Open " + agents.PortalLinkPlaceholder}, nil
		})
		if err != nil || !ok {
			t.Fatalf("link %d: %v %v", i, ok, err)
		}
	}
	msgs, err := f.store.ClientMessagesBefore(ctx, 0, 0, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		ids = append(ids, msgs[i].ID)
	}
	return ids
}

// send claims message id and records it as sent (dry: recorded in DRY_RUN).
func (f *fixture) send(t *testing.T, id int64, dry bool) {
	t.Helper()
	ctx := context.Background()
	if c, err := f.store.ClaimClientMessage(ctx, id, db.ClientCaps{PerHour: 1000, PerDay: 1000, LinksPerHour: 1000, LinksPerDay: 1000}, nil); err != nil || c != db.ClaimOK {
		t.Fatalf("claim %d: %s %v", id, c, err)
	}
	if err := f.store.MarkClientSent(ctx, id, "prov-"+strconv.FormatInt(id, 10), dry); err != nil {
		t.Fatal(err)
	}
}

func TestClientMailListPagesFiltersAndCounts(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	ctx := context.Background()
	invoice := f.completeJob(t, db.ClientInvoice, 1, db.ClientDraft{DedupeKey: "invoice:1", Subject: "Invoice INV-000001", Text: "Pay",
		Attachments: []db.ClientAttachment{{Filename: "INV-000001.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.4 x")}}})
	f.send(t, invoice.ID, true)
	ids := f.queueLinks(t, 60)
	f.send(t, ids[0], false)
	failed := ids[1]
	if c, err := f.store.ClaimClientMessage(ctx, failed, db.ClientCaps{PerHour: 1000, PerDay: 1000, LinksPerHour: 1000, LinksPerDay: 1000}, nil); err != nil || c != db.ClaimOK {
		t.Fatal(c, err)
	}
	if err := f.store.MarkClientFailed(ctx, failed, "smtp said no"); err != nil {
		t.Fatal(err)
	}
	review := ids[2]
	if _, err := f.store.ClaimClientMessage(ctx, review, db.ClientCaps{PerHour: 1000, PerDay: 1000, LinksPerHour: 1000, LinksPerDay: 1000}, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.store.FlagClientForReview(ctx, review, "answer lost"); err != nil {
		t.Fatal(err)
	}

	resp, doc, _ := f.get(t, "/admin/client-mail")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list = %d", resp.StatusCode)
	}
	rows := doc.Find("#client-mail-list tbody tr")
	if rows.Length() != 50 {
		t.Fatalf("first page has %d rows, want 50", rows.Length())
	}
	// Newest first: the last link queued leads.
	if href := rows.First().Find("a").AttrOr("href", ""); href != "/admin/client-mail/"+strconv.FormatInt(ids[59], 10) {
		t.Errorf("first row links to %q", href)
	}
	// 61 messages: 2 sent (one recorded), 1 failed (to retry), 1 sending
	// for review: 57 queued + 1 failed pending; 3 left in the hour (the
	// one sending counts, it may have left).
	counts := fieldsOf(doc.Find("#client-mail-counts"))
	if counts["Pending"] != "58" || counts["Sent last hour"] != "3" || counts["Sent last 24 h"] != "3" || !strings.Contains(counts["Mode"], "DRY_RUN") {
		t.Errorf("counts %v", counts)
	}
	next := doc.Find(`#client-mail-list a[rel="next"]`).AttrOr("href", "")
	if next != "/admin/client-mail?before="+strconv.FormatInt(ids[10], 10) {
		t.Fatalf("next page link = %q", next)
	}
	_, doc, _ = f.get(t, next)
	rows = doc.Find("#client-mail-list tbody tr")
	if rows.Length() != 11 {
		t.Fatalf("second page has %d rows, want 11", rows.Length())
	}
	if doc.Find(`#client-mail-list a[rel="next"]`).Length() != 0 {
		t.Error("the last page links to a next one")
	}
	if doc.Find(`#client-mail-list a[rel="first"]`).AttrOr("href", "") != "/admin/client-mail" {
		t.Error("the second page does not link back to the newest")
	}
	page2 := text(rows)
	assertContains(t, "second page", page2, "Invoice INV-000001", "recorded (DRY_RUN)", "sent", "failed", "needs review", "invoice", "portal_link", "x@evil.example")
	// The invoice e-mail, oldest, is the last row, with its one file.
	last := rows.Last()
	if got := text(last.Find("td.num")); got != "1" {
		t.Errorf("invoice e-mail's attachments = %q", got)
	}

	_, doc, _ = f.get(t, "/admin/client-mail?invoice=1")
	if n := doc.Find("#client-mail-list tbody tr").Length(); n != 1 || !strings.Contains(text(doc.Find("#client-mail-list")), "Invoice INV-000001") {
		t.Errorf("invoice filter: %d rows: %s", n, text(doc.Find("#client-mail-list")))
	}
	_, doc, _ = f.get(t, "/admin/client-mail?customer=1&before="+strconv.FormatInt(ids[1], 10))
	if n := doc.Find("#client-mail-list tbody tr").Length(); n != 2 {
		t.Errorf("customer filter before %d: %d rows, want 2", ids[1], n)
	}
	_, doc, _ = f.get(t, "/admin/client-mail?customer=2")
	if n := doc.Find("#client-mail-list tbody tr.empty").Length(); n != 1 {
		t.Errorf("another customer's list is not empty")
	}
	for _, q := range []string{"?before=abc", "?customer=-1", "?invoice=01", "?customer=1&invoice=1", "?before=99999999999999999999"} {
		if resp, _, _ := f.get(t, "/admin/client-mail"+q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("list%s = %d, want 400", q, resp.StatusCode)
		}
	}

	// The customer and invoice pages list their latest ten.
	_, doc, _ = f.get(t, "/admin/customers/1")
	if n := doc.Find("#record-client-mail tbody tr").Length(); n != 10 {
		t.Errorf("customer page lists %d client e-mails, want 10", n)
	}
	if href := doc.Find("#record-client-mail p a").AttrOr("href", ""); href != "/admin/client-mail?customer=1" {
		t.Errorf("customer page's list link = %q", href)
	}
	_, doc, _ = f.get(t, "/admin/invoices/1")
	if got := text(doc.Find("#record-client-mail tbody")); !strings.Contains(got, "Invoice INV-000001") || doc.Find("#record-client-mail tbody tr").Length() != 1 {
		t.Errorf("invoice page's client e-mail: %q", got)
	}
	if href := doc.Find("#record-client-mail p a").AttrOr("href", ""); href != "/admin/client-mail?invoice=1" {
		t.Errorf("invoice page's list link = %q", href)
	}

	// The control room's panel.
	_, doc, _ = f.get(t, "/admin")
	if c := fieldsOf(doc.Find("#admin-client-mail")); c["Pending"] != "58" || c["Sent last 24 h"] != "3 recorded (DRY_RUN)" {
		t.Errorf("control room panel %v", c)
	}
	if doc.Find(`#admin-client-mail a[href="/admin/client-mail"]`).Length() != 1 {
		t.Error("the control room does not link to the client mail list")
	}
}

func TestClientMessageShowsWhatTheClientSeesEscaped(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	pdf := []byte("%PDF-1.4\x00\xff binary")
	html := `<p>Hello ` + hostileMail + `</p><a href="` + agents.PortalLinkPlaceholder + `">Open your portal</a>`
	m := f.completeJob(t, db.ClientInvoice, 1, db.ClientDraft{DedupeKey: "invoice:1", Subject: "Invoice " + hostileMail,
		Text: "Line one " + hostileMail + "\nYour portal: " + agents.PortalLinkPlaceholder + "\n", HTML: html,
		Attachments: []db.ClientAttachment{
			{Filename: "INV-000001.pdf", ContentType: "application/pdf", Content: pdf},
			{Filename: `../"evil"; name=x.html`, ContentType: "text/html", Content: []byte("<script>x</script>")},
		}})
	resp, doc, raw := f.get(t, "/admin/client-mail/"+strconv.FormatInt(m.ID, 10))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("message page = %d", resp.StatusCode)
	}
	if strings.Contains(raw, hostileMail) {
		t.Error("the page prints the hostile subject or body raw")
	}
	if strings.Contains(raw, agents.PortalLinkPlaceholder) {
		t.Error("the page shows the placeholder")
	}
	assertContains(t, "envelope", text(doc.Find("#client-message-envelope")), "Invoice "+hostileMail, "x@evil.example", "queued", "invoice:1")
	pre := doc.Find("#client-message-text pre")
	if got := pre.Text(); got != "Line one "+hostileMail+"\nYour portal: "+views.PortalLinkShown+"\n" {
		t.Errorf("text part = %q", got)
	}
	frame := doc.Find("#client-message-html iframe")
	if frame.Length() != 1 {
		t.Fatal("no frame for the HTML part")
	}
	if sb, ok := frame.Attr("sandbox"); !ok || sb != "" {
		t.Errorf("frame sandbox = %q, %v: want an empty sandbox", sb, ok)
	}
	if frame.AttrOr("src", "") != "" {
		t.Error("the frame loads a src")
	}
	want := strings.ReplaceAll(html, agents.PortalLinkPlaceholder, views.PortalLinkShown)
	if got := frame.AttrOr("srcdoc", ""); got != want {
		t.Errorf("srcdoc = %q, want %q", got, want)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("message page CSP = %q", csp)
	}
	links := doc.Find("#client-message-attachments a")
	if links.Length() != 2 {
		t.Fatalf("%d attachment links", links.Length())
	}
	files, err := f.store.ClientAttachments(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if href := links.First().AttrOr("href", ""); href != fmt.Sprintf("/admin/client-mail/%d/attachments/%d", m.ID, files[0].ID) {
		t.Errorf("attachment link = %q", href)
	}

	// The PDF comes back byte for byte, to save, never to render.
	r, body := f.do(t, f.client, http.MethodGet, links.First().AttrOr("href", ""), nil, nil)
	if r.StatusCode != http.StatusOK || string(body) != string(pdf) {
		t.Fatalf("download = %d %q", r.StatusCode, body)
	}
	for h, want := range map[string]string{"Content-Type": "application/pdf", "Content-Disposition": `attachment; filename=INV-000001.pdf`,
		"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store", "Content-Length": strconv.Itoa(len(pdf))} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("download %s = %q, want %q", h, got, want)
		}
	}
	// A file of another type is opaque bytes under a tame name.
	r, body = f.do(t, f.client, http.MethodGet, links.Last().AttrOr("href", ""), nil, nil)
	if r.StatusCode != http.StatusOK || string(body) != "<script>x</script>" {
		t.Fatalf("second download = %d %q", r.StatusCode, body)
	}
	if ct, cd := r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"); ct != "application/octet-stream" || cd != "attachment; filename=__evil___name_x.html" {
		t.Errorf("second download: %q, %q", ct, cd)
	}

	// A file of another message is not found under this one.
	other := f.completeJob(t, db.ClientWelcome, 0, db.ClientDraft{DedupeKey: "welcome:1", Subject: "Welcome", Text: "Hi"})
	for _, p := range []string{
		fmt.Sprintf("/admin/client-mail/%d/attachments/%d", other.ID, files[0].ID),
		fmt.Sprintf("/admin/client-mail/%d/attachments/%d", m.ID, files[1].ID+100),
		fmt.Sprintf("/admin/client-mail/%d/attachments/0", m.ID),
		fmt.Sprintf("/admin/client-mail/%d", other.ID+100),
	} {
		if r, _ := f.do(t, f.client, http.MethodGet, p, nil, nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, r.StatusCode)
		}
	}
	_, doc, _ = f.get(t, "/admin/client-mail/"+strconv.FormatInt(other.ID, 10))
	if doc.Find("#client-message-html iframe").Length() != 0 || !strings.Contains(text(doc.Find("#client-message-html")), "No HTML part") {
		t.Error("a text-only e-mail shows a frame")
	}
}

func TestSafeFilename(t *testing.T) {
	for in, want := range map[string]string{
		"INV-000001.pdf": "INV-000001.pdf", "../../etc/passwd": "_.._etc_passwd", "": "attachment", "...": "attachment",
		"récu.pdf": "r_cu.pdf", "a\r\nb.pdf": "a__b.pdf", strings.Repeat("x", 300): strings.Repeat("x", 100),
	} {
		if got := safeFilename(in); got != want {
			t.Errorf("safeFilename(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAdminInvoiceDocuments(t *testing.T) {
	f := newFixture(t, nil, withInvoiceFiles)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	_, doc, _ := f.get(t, "/admin/invoices/1")
	if doc.Find(`#record-documents a[href="/admin/invoices/1/invoice.pdf"]`).Length() != 1 {
		t.Error("the open invoice's page does not link to its PDF")
	}
	if doc.Find(`#record-documents a[href="/admin/invoices/1/receipt.pdf"]`).Length() != 0 {
		t.Error("the open invoice's page links to a receipt")
	}
	_, doc, _ = f.get(t, "/admin/invoices/2")
	if doc.Find(`#record-documents a[href="/admin/invoices/2/receipt.pdf"]`).Length() != 1 {
		t.Error("the paid invoice's page does not link to its receipt")
	}
	for _, c := range []struct{ path, body, name string }{
		{"/admin/invoices/1/invoice.pdf", "%PDF-1.4 invoice INV-000001 open", "invoice-INV-000001.pdf"},
		{"/admin/invoices/2/invoice.pdf", "%PDF-1.4 invoice INV-000002 paid", "invoice-INV-000002.pdf"},
		{"/admin/invoices/2/receipt.pdf", "%PDF-1.4 receipt INV-000002", "receipt-INV-000002.pdf"},
	} {
		r, body := f.do(t, f.client, http.MethodGet, c.path, nil, nil)
		if r.StatusCode != http.StatusOK || string(body) != c.body {
			t.Errorf("GET %s = %d %q", c.path, r.StatusCode, body)
			continue
		}
		if cd := r.Header.Get("Content-Disposition"); cd != "attachment; filename="+c.name {
			t.Errorf("GET %s: Content-Disposition %q, want %q", c.path, cd, c.name)
		}
		if r.Header.Get("Content-Type") != "application/pdf" || r.Header.Get("Cache-Control") != "private, no-store" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s headers: %v", c.path, r.Header)
		}
	}
	for _, p := range []string{"/admin/invoices/1/receipt.pdf", "/admin/invoices/99/invoice.pdf", "/admin/invoices/99/receipt.pdf", "/admin/invoices/01/invoice.pdf"} {
		if r, _ := f.do(t, f.client, http.MethodGet, p, nil, nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, r.StatusCode)
		}
	}

	// Without documents wired, the downloads say so.
	g := newFixture(t, nil)
	g.signInAs(t, db.RoleAdmin)
	g.seed(t)
	if r, body := g.do(t, g.client, http.MethodGet, "/admin/invoices/1/invoice.pdf", nil, nil); r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no invoice documents") {
		t.Errorf("no InvoiceFiles: %d", r.StatusCode)
	}
}

func TestClearMailFlagIsAConfirmedAuditedAdminPost(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	ctx := context.Background()
	if ok, err := f.store.FlagCustomerMail(ctx, "x@evil.example", "hard bounce: "+hostileMail); err != nil || !ok {
		t.Fatal(ok, err)
	}
	_, doc, raw := f.get(t, "/admin/customers/1")
	if strings.Contains(raw, hostileMail) {
		t.Error("the flag's reason is printed raw")
	}
	assertContains(t, "flag panel", text(doc.Find("#mail-flag")), "hard bounce: "+hostileMail, "UTC")
	btn := doc.Find("#mail-flag button")
	if btn.AttrOr("hx-post", "") != "/admin/customers/1/mail-flag/clear" || !strings.Contains(btn.AttrOr("hx-confirm", ""), "Clear the flag?") {
		t.Errorf("clear button: hx-post %q, hx-confirm %q", btn.AttrOr("hx-post", ""), btn.AttrOr("hx-confirm", ""))
	}
	if doc.Find(`#mail-flag form[method="post"][action="/admin/customers/1/mail-flag/clear"]`).Length() != 1 {
		t.Error("no plain form for the clear button")
	}
	flagged := func() string {
		t.Helper()
		c, err := f.store.CustomerByID(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		return c.MailFlag
	}

	// Not a GET, not from another site, not by a viewer, not signed out.
	if r, _ := f.do(t, f.client, http.MethodGet, "/admin/customers/1/mail-flag/clear", nil, nil); r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET clear = %d", r.StatusCode)
	}
	if r, _ := f.post(t, f.client, "/admin/customers/1/mail-flag/clear", nil, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); r.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site clear = %d, want 403", r.StatusCode)
	}
	if r, _ := f.post(t, newClient(t), "/admin/customers/1/mail-flag/clear", nil, f.withOrigin(hxHeaders)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous clear = %d, want 401", r.StatusCode)
	}
	admin := f.client
	f.signInAs(t, db.RoleViewer)
	if r, _ := f.post(t, f.client, "/admin/customers/1/mail-flag/clear", nil, f.withOrigin(hxHeaders)); r.StatusCode != http.StatusForbidden {
		t.Errorf("viewer clear = %d, want 403", r.StatusCode)
	}
	for _, p := range []string{"/admin/client-mail", "/admin/client-mail/1", "/admin/client-mail/1/attachments/1", "/admin/invoices/1/invoice.pdf"} {
		if r, _ := f.do(t, f.client, http.MethodGet, p, nil, nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("viewer GET %s = %d, want 403", p, r.StatusCode)
		}
	}
	if r, _ := f.do(t, newClient(t), http.MethodGet, "/admin/client-mail", nil, nil); r.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous GET list = %d, want a redirect to sign in", r.StatusCode)
	}
	if flagged() == "" || f.auditCount(t, auditMailFlagCleared) != 0 {
		t.Fatal("a refused request cleared the flag")
	}

	// The admin clears it with htmx: the panel comes back, the audit log has it.
	f.client = admin
	resp, frag := f.htmxPost(t, "/admin/customers/1/mail-flag/clear", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(frag, "Flag cleared") || !strings.Contains(frag, `id="mail-flag"`) {
		t.Fatalf("clear = %d %s", resp.StatusCode, frag)
	}
	if flagged() != "" {
		t.Error("the flag is still set")
	}
	if n := f.auditCount(t, auditMailFlagCleared); n != 1 {
		t.Errorf("%d audit entries, want 1", n)
	}
	entries, _, err := f.store.ListAudit(ctx, db.ListQuery{PerPage: 1})
	if err != nil {
		t.Fatal(err)
	}
	if e := entries[0]; e.Actor != "admin@hossagent.test" || e.Target != "customer 1" || !strings.Contains(e.Detail, "hard bounce") {
		t.Errorf("audit entry %+v", e)
	}
	// Again: nothing to clear, nothing audited; a plain form gets a 303.
	resp, _ = f.post(t, f.client, "/admin/customers/1/mail-flag/clear", url.Values{}, f.withOrigin(nil))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/customers/1" {
		t.Errorf("plain clear = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := f.auditCount(t, auditMailFlagCleared); n != 1 {
		t.Errorf("%d audit entries after a clear of nothing, want 1", n)
	}
	if r, _ := f.htmxPost(t, "/admin/customers/99/mail-flag/clear", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("clear of no customer = %d, want 404", r.StatusCode)
	}
	_, doc, _ = f.get(t, "/admin/customers/1")
	if doc.Find("#mail-flag button").Length() != 0 || !strings.Contains(text(doc.Find("#mail-flag")), "Not flagged") {
		t.Error("the cleared customer still shows a flag")
	}
}
