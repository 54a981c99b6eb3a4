package app

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// portalClient is a browser that opened the operator's link token: it
// holds the portal session cookie the exchange set.
func (f *fixture) portalClient(t *testing.T, token string) *http.Client {
	t.Helper()
	c := newClient(t)
	resp, _ := f.do(t, c, http.MethodGet, "/portal/"+token, nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal" {
		t.Fatalf("opening the portal link = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return c
}

// addPortalLink stores an e-mailed link of customer id that expires at
// expires, as the Collections sender does, and returns its token.
func (f *fixture) addPortalLink(t *testing.T, customerID int64, expires time.Time) string {
	t.Helper()
	token, hash, err := db.NewToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Bun().NewRaw("INSERT INTO portal_links (token_hash, customer_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		hash, customerID, testNow.Add(-time.Hour), expires).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return token
}

// portalCookieOf is the portal cookie an answer set, or nil.
func portalCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == portalCookieName {
			return c
		}
	}
	return nil
}

// portalPage GETs path with c and returns the status and the page.
func (f *fixture) portalPage(t *testing.T, c *http.Client, path string) (int, string) {
	t.Helper()
	resp, body := f.do(t, c, http.MethodGet, path, nil, nil)
	return resp.StatusCode, string(body)
}

func TestPortalOperatorLinkExchangedForASession(t *testing.T) {
	f := newFixture(t, map[string]string{"COMPANY_NAME": "Hoss Works", "COMPANY_POSTAL_ADDRESS": "1 Main St\nSpringfield", "BILLING_EMAIL": "billing@hoss.example"})
	f.seed(t)
	c := newClient(t)
	resp, body := f.do(t, c, http.MethodGet, "/portal/"+f.token, nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal" || strings.Contains(string(body), f.token) {
		t.Fatalf("operator link = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("exchange headers: Cache-Control %q, Referrer-Policy %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Referrer-Policy"))
	}
	ck := portalCookieOf(resp)
	raw := resp.Header.Get("Set-Cookie")
	if ck == nil || ck.Value == f.token || len(ck.Value) != 43 || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
		t.Fatalf("session cookie = %q", raw)
	}
	if ck.MaxAge != int(db.PortalSessionMaxLife.Seconds()) {
		t.Errorf("operator link's session lasts %d s, want %v", ck.MaxAge, db.PortalSessionMaxLife)
	}
	var stored int
	if err := f.store.Bun().NewRaw("SELECT COUNT(*) FROM portal_sessions WHERE token_hash = ?", db.HashToken(ck.Value)).Scan(context.Background(), &stored); err != nil || stored != 1 {
		t.Errorf("sessions stored by hash = %d, %v", stored, err)
	}

	// The portal itself, at /portal.
	resp, doc, page := f.getWith(t, c, "/portal")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("portal = %d (%q)", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if strings.Contains(page, "<script>alert") || !strings.Contains(text(doc.Find("h1")), evil) {
		t.Errorf("company name not escaped as text: %q", text(doc.Find("h1")))
	}
	pay := doc.Find("#portal-outstanding a.pay-now")
	if href, _ := pay.Attr("href"); pay.Length() != 1 || href != "https://buy.stripe.com/test_abc" {
		t.Errorf("PAY NOW links = %d href %q", pay.Length(), href)
	}
	if got := text(doc.Find("#portal-history")); !strings.Contains(got, "INV-000002") || !strings.Contains(got, "$99.00") || !strings.Contains(got, "Receipt") {
		t.Errorf("payment history = %q", got)
	}
	head := strings.Join(doc.Find("#portal-summary .portal-headline p").Map(func(_ int, s *goquery.Selection) string { return text(s) }), " | ")
	if head != "Amount due | $150.00 | due by 11 Dec 2026" {
		t.Errorf("headline = %q", head)
	}
	summary := text(doc.Find("#portal-summary"))
	for _, want := range []string{"$249.00", "$99.00", "$150.00"} { // invoiced, paid, outstanding
		if !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %s", summary, want)
		}
	}
	contact := text(doc.Find("#portal-contact"))
	for _, want := range []string{"Hoss Works", "1 Main St", "Springfield", "billing@hoss.example"} {
		if !strings.Contains(contact, want) {
			t.Errorf("contact %q lacks %q", contact, want)
		}
	}
	if got := doc.Find("#portal-work .work-item").Length(); got < 2 {
		t.Errorf("work items = %d", got)
	}
	if _, ok := doc.Find(`#live[hx-sse\:connect="/events/portal"]`).Attr("hidden"); !ok {
		t.Errorf("the portal does not connect to its stream")
	}
	if strings.Contains(f.logs.String(), f.token) || strings.Contains(f.logs.String(), ck.Value) {
		t.Errorf("a token was written to the request log")
	}

	// Over https, the cookie is Secure.
	fs := newFixture(t, map[string]string{"BASE_URL": "https://hoss.example.com"})
	fs.seed(t)
	resp, _ = fs.do(t, newClient(t), http.MethodGet, "/portal/"+fs.token, nil, nil)
	if ck := portalCookieOf(resp); ck == nil || !ck.Secure {
		t.Errorf("cookie over https = %q, want Secure", resp.Header.Get("Set-Cookie"))
	}
}

// getWith GETs path through c and parses the page.
func (f *fixture) getWith(t *testing.T, c *http.Client, path string) (*http.Response, *goquery.Document, string) {
	t.Helper()
	resp, body := f.do(t, c, http.MethodGet, path, nil, nil)
	return resp, parseHTML(t, body), string(body)
}

func TestPortalEmailedLinks(t *testing.T) {
	f := newFixture(t, map[string]string{"PORTAL_LINK_TTL": "720h"})
	f.seed(t)
	ctx := context.Background()

	// A valid link: a session that ends with the link, and no token in the
	// address the browser lands on.
	expires := testNow.Add(10 * 24 * time.Hour)
	link := f.addPortalLink(t, 1, expires)
	c := newClient(t)
	resp, _ := f.do(t, c, http.MethodGet, "/portal/link/"+link, nil, nil)
	ck := portalCookieOf(resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal" || ck == nil || ck.Value == link {
		t.Fatalf("valid link = %d to %q, cookie %v", resp.StatusCode, resp.Header.Get("Location"), ck)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("exchange headers: %v", resp.Header)
	}
	if ck.MaxAge != int((10*24*time.Hour).Seconds()) || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
		t.Errorf("cookie = %q, want the link's remaining 10 days", resp.Header.Get("Set-Cookie"))
	}
	if status, page := f.portalPage(t, c, "/portal"); status != http.StatusOK || !strings.Contains(page, "INV-000001") {
		t.Errorf("portal after the link = %d", status)
	}
	// Opening another link in the same browser replaces its session.
	again := f.addPortalLink(t, 1, expires)
	if resp, _ := f.do(t, c, http.MethodGet, "/portal/link/"+again, nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second link = %d", resp.StatusCode)
	}
	if _, err := f.store.CustomerByPortalSession(ctx, ck.Value); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("the replaced session still works: %v", err)
	}

	// Expired: 410, says how long links last and offers the form.
	expired := f.addPortalLink(t, 1, testNow.Add(-time.Minute))
	resp, doc, _ := f.getWith(t, newClient(t), "/portal/link/"+expired)
	if resp.StatusCode != http.StatusGone || text(doc.Find("h1")) != "This link has expired" ||
		!strings.Contains(text(doc.Find("main")), "30 days") || doc.Find(`form[action="/portal/link"] input[name="email"]`).Length() != 1 {
		t.Errorf("expired link = %d %q", resp.StatusCode, text(doc.Find("main")))
	}
	if portalCookieOf(resp) != nil && portalCookieOf(resp).Value != "" {
		t.Errorf("an expired link set a session")
	}

	// Revoked (the message failed, or the operator revoked): 410 withdrawn.
	revoked := f.addPortalLink(t, 1, expires)
	if _, err := f.store.Bun().NewRaw("UPDATE portal_links SET revoked_at = ? WHERE token_hash = ?", testNow, db.HashToken(revoked)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	resp, doc, _ = f.getWith(t, newClient(t), "/portal/link/"+revoked)
	if resp.StatusCode != http.StatusGone || text(doc.Find("h1")) != "This link was withdrawn" || doc.Find(`form[action="/portal/link"]`).Length() != 1 {
		t.Errorf("revoked link = %d %q", resp.StatusCode, text(doc.Find("h1")))
	}

	// Unknown: 404 with the same form; the operator's token is no e-mailed
	// link, and the e-mailed token is no operator link.
	for _, path := range []string{"/portal/link/not-a-token", "/portal/link/" + f.token, "/portal/" + link, "/portal/link/" + strings.Repeat("a", 300)} {
		resp, doc, raw := f.getWith(t, newClient(t), path)
		if resp.StatusCode != http.StatusNotFound || text(doc.Find("h1")) != "This link is not valid" ||
			doc.Find(`form[action="/portal/link"]`).Length() != 1 || strings.Contains(raw, "INV-000001") {
			t.Errorf("GET %.40s = %d %q", path, resp.StatusCode, text(doc.Find("h1")))
		}
	}
}

func TestPortalWithoutASessionIsTheSignInPage(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	for _, cookie := range []string{"", "forged", f.token, strings.Repeat("x", 200)} {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/portal", nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: portalCookieName, Value: cookie})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		doc := parseHTMLResp(t, resp)
		form := doc.Find(`form[method="post"][action="/portal/link"]`)
		if resp.StatusCode != http.StatusOK || form.Find(`input[type="email"][name="email"]`).Length() != 1 ||
			!strings.Contains(text(form), "Enter the e-mail address we write to you at and we'll send you a new link") ||
			strings.Contains(text(doc.Find("body")), "INV-000001") {
			t.Errorf("/portal with cookie %q = %d %q", cookie, resp.StatusCode, text(doc.Find("main")))
		}
		if cookie == "forged" {
			if ck := portalCookieOf(resp); ck == nil || ck.MaxAge >= 0 {
				t.Errorf("a dead cookie is not deleted: %q", resp.Header.Get("Set-Cookie"))
			}
		}
	}
	// Invoice pages and documents send a browser without a session to sign in.
	for _, path := range []string{"/portal/invoices/1", "/portal/invoices/1/invoice.pdf", "/portal/invoices/1/receipt.pdf"} {
		if resp, _ := f.do(t, newClient(t), http.MethodGet, path, nil, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal" {
			t.Errorf("anonymous GET %s = %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// fakeLinkRequester records the addresses it was asked to mail.
type fakeLinkRequester struct {
	mu    sync.Mutex
	asked []string
	err   error
}

func (r *fakeLinkRequester) RequestPortalLink(_ context.Context, email string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, email)
	return r.err
}

func TestPortalLinkRequestAnswersTheSameForAnyAddress(t *testing.T) {
	links := &fakeLinkRequester{}
	f := newFixture(t, nil, func(d *Deps) { d.PortalLinks, d.ClientIPHeader = links, testClientIPHeader })
	f.seed(t)
	ask := func(ip, email string) (*http.Response, string) {
		t.Helper()
		resp, body := f.do(t, f.client, http.MethodPost, "/portal/link", strings.NewReader(url.Values{"email": {email}}.Encode()),
			map[string]string{"Content-Type": formURLEncoded, "Origin": f.srv.URL, testClientIPHeader: ip})
		return resp, string(body)
	}
	known, knownPage := ask("198.51.100.1", " X@Evil.Example ")
	unknown, unknownPage := ask("198.51.100.2", "nobody@nowhere.example")
	f.server.Wait() // the links are queued after the answer
	if known.StatusCode != http.StatusOK || unknown.StatusCode != known.StatusCode || knownPage != unknownPage ||
		!strings.Contains(knownPage, "If that address is one of our clients', a new link is on its way") {
		t.Errorf("known %d, unknown %d; pages equal %v\n%s", known.StatusCode, unknown.StatusCode, knownPage == unknownPage, knownPage)
	}
	if strings.Join(links.asked, ",") != "x@evil.example,nobody@nowhere.example" {
		t.Errorf("asked for %v", links.asked)
	}
	// A failure to send answers the same (and is logged).
	links.err = errors.New("smtp down")
	resp, page := ask("198.51.100.3", "x@evil.example")
	f.server.Wait()
	if resp.StatusCode != http.StatusOK || page != knownPage || !strings.Contains(f.logs.String(), "portal link request failed") {
		t.Errorf("failed send = %d", resp.StatusCode)
	}
	links.err = nil

	// Not an address: 400 and nothing asked.
	before := len(links.asked)
	for _, bad := range []string{"", "not-an-address", "Pat <x@evil.example>", "x@localhost", strings.Repeat("a", 250) + "@example.com", "a@b.example\nBcc: c@d.example"} {
		resp, body := ask("198.51.100.4", bad)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Enter an e-mail address") {
			t.Errorf("address %.30q = %d", bad, resp.StatusCode)
		}
		f.clock.Advance(portalAskRefillEach)
	}
	f.server.Wait()
	if len(links.asked) != before {
		t.Errorf("invalid addresses were asked for: %v", links.asked[before:])
	}
	// A body over the limit is refused.
	resp, _ = f.do(t, f.client, http.MethodPost, "/portal/link", strings.NewReader("email="+strings.Repeat("a", 8<<10)),
		map[string]string{"Content-Type": formURLEncoded, "Origin": f.srv.URL, testClientIPHeader: "198.51.100.5"})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge form = %d, want 413", resp.StatusCode)
	}

	// Per address: portalAskBurst, then 429 with Retry-After; another
	// address is still served.
	for i := range portalAskBurst {
		if resp, _ := ask("203.0.113.77", "x@evil.example"); resp.StatusCode != http.StatusOK {
			t.Fatalf("ask %d = %d", i+1, resp.StatusCode)
		}
	}
	resp, body := ask("203.0.113.77", "x@evil.example")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "120" || !strings.Contains(body, "Too many requests") {
		t.Errorf("over the limit = %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, _ := ask("203.0.113.78", "x@evil.example"); resp.StatusCode != http.StatusOK {
		t.Errorf("another address = %d", resp.StatusCode)
	}
	f.clock.Advance(portalAskRefillEach)
	if resp, _ := ask("203.0.113.77", "x@evil.example"); resp.StatusCode != http.StatusOK {
		t.Errorf("after a refill = %d", resp.StatusCode)
	}

	// From another site: refused before anything is asked.
	f.server.Wait()
	before = len(links.asked)
	resp, _ = f.do(t, f.client, http.MethodPost, "/portal/link", strings.NewReader("email=x%40evil.example"),
		map[string]string{"Content-Type": formURLEncoded, "Origin": "https://evil.example", testClientIPHeader: "198.51.100.9"})
	f.server.Wait()
	if resp.StatusCode != http.StatusForbidden || len(links.asked) != before {
		t.Errorf("cross-site ask = %d", resp.StatusCode)
	}
}

func TestPortalLinkRequestWithoutAMailer(t *testing.T) {
	f := newFixture(t, map[string]string{"BILLING_EMAIL": "billing@hoss.example"})
	resp, body := f.do(t, f.client, http.MethodPost, "/portal/link", strings.NewReader("email=x%40evil.example"),
		map[string]string{"Content-Type": formURLEncoded, "Origin": f.srv.URL})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "Links cannot be mailed right now") ||
		!strings.Contains(string(body), "billing@hoss.example") {
		t.Errorf("without a requester = %d %s", resp.StatusCode, body)
	}
}

func TestPortalLogoutEndsTheSession(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	c := f.portalClient(t, f.token)
	u, _ := url.Parse(f.srv.URL)
	token := c.Jar.Cookies(u)[0].Value
	resp, _ := f.do(t, c, http.MethodPost, "/portal/logout", nil, map[string]string{"Origin": f.srv.URL})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal" {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	if ck := portalCookieOf(resp); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("logout cookie = %q", resp.Header.Get("Set-Cookie"))
	}
	if _, err := f.store.CustomerByPortalSession(context.Background(), token); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("session after logout: %v", err)
	}
	// Replaying the old cookie grants nothing.
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/portal", nil)
	req.AddCookie(&http.Cookie{Name: portalCookieName, Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if doc := parseHTMLResp(t, resp); doc.Find("#portal-signin").Length() != 1 {
		t.Errorf("the old cookie still opens the portal")
	}
}

// Revoking the link in the admin ends every session of the customer and
// withdraws its e-mailed links.
func TestAdminRevokeEndsPortalSessions(t *testing.T) {
	f := newFixture(t, map[string]string{"BASE_URL": "https://hoss.example.com"})
	f.seed(t)
	link := f.addPortalLink(t, 1, testNow.Add(24*time.Hour))
	c := newClient(t)
	if resp, _ := f.do(t, c, http.MethodGet, "/portal/link/"+link, nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("link = %d", resp.StatusCode)
	}
	f.signInAs(t, db.RoleAdmin)
	if resp, _ := f.post(t, f.client, "/admin/customers/1/portal/revoke", nil, f.withOrigin(nil)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke = %d", resp.StatusCode)
	}
	var sessions int
	if err := f.store.Bun().NewRaw("SELECT COUNT(*) FROM portal_sessions WHERE customer_id = 1").Scan(context.Background(), &sessions); err != nil || sessions != 0 {
		t.Errorf("sessions after revoke = %d, %v", sessions, err)
	}
	resp, doc, _ := f.getWith(t, newClient(t), "/portal/link/"+link)
	if resp.StatusCode != http.StatusGone || text(doc.Find("h1")) != "This link was withdrawn" {
		t.Errorf("e-mailed link after revoke = %d %q", resp.StatusCode, text(doc.Find("h1")))
	}
}

// recordingInvoiceFiles renders stand-in PDFs and records what it was asked.
type recordingInvoiceFiles struct {
	mu    sync.Mutex
	asked []string
}

func (f *recordingInvoiceFiles) InvoicePDF(_ context.Context, id int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, "invoice")
	return []byte("%PDF-1.4 invoice"), nil
}

func (f *recordingInvoiceFiles) ReceiptPDF(_ context.Context, id int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, "receipt")
	return []byte("%PDF-1.4 receipt"), nil
}

// seedOtherCustomer adds a second customer with an open invoice (id 3) and
// a draft (id 4).
func (f *fixture) seedOtherCustomer(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	c, _, err := f.store.CreateCustomer(ctx, nil, db.NewCustomer{Company: "Other Co", ContactEmail: "o@other.example", Plan: "starter"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n := "INV-000003"
	due := testNow.Add(24 * time.Hour)
	for _, inv := range []*db.Invoice{
		{CustomerID: c.ID, Number: &n, Currency: "usd", AmountCents: 777, Status: db.InvoiceOpen, IssuedAt: &testNow, DueAt: &due},
		{CustomerID: 1, Currency: "usd", AmountCents: 555, Status: db.InvoiceDraft},
	} {
		inv.CreatedAt, inv.UpdatedAt = testNow, testNow
		if _, err := f.store.Bun().NewInsert().Model(inv).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPortalInvoicePagesAndDocuments(t *testing.T) {
	files := &recordingInvoiceFiles{}
	f := newFixture(t, nil, func(d *Deps) {
		d.InvoiceFiles = files
		d.KindTitles = func(kind string) string { return "Title of " + kind }
	})
	f.seed(t)
	f.seedOtherCustomer(t)
	c := f.portalClient(t, f.token)

	// The open invoice: lines by title, PAY NOW, its PDF, no receipt.
	resp, doc, _ := f.getWith(t, c, "/portal/invoices/1")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("own invoice = %d", resp.StatusCode)
	}
	if got := text(doc.Find(".invoice-lines tbody td").First()); got != "Title of market_research" {
		t.Errorf("line title = %q", got)
	}
	if doc.Find("a.pay-now").Length() != 1 || doc.Find(`a[href="/portal/invoices/1/invoice.pdf"]`).Length() != 1 ||
		doc.Find(`a[href="/portal/invoices/1/receipt.pdf"]`).Length() != 0 {
		t.Errorf("open invoice's actions: %q", text(doc.Find(".invoice-actions")))
	}
	// The paid one: no PAY NOW, a receipt.
	_, doc, _ = f.getWith(t, c, "/portal/invoices/2")
	if doc.Find("a.pay-now").Length() != 0 || doc.Find(`a[href="/portal/invoices/2/receipt.pdf"]`).Length() != 1 {
		t.Errorf("paid invoice's actions: %q", text(doc.Find(".invoice-actions")))
	}
	// The portal's own titles too.
	if _, page := f.portalPage(t, c, "/portal"); !strings.Contains(page, "Title of copy_pack") {
		t.Errorf("the portal's work is not by title")
	}

	// Another customer's invoice, a draft, nothing: 404, and no document.
	for _, path := range []string{"/portal/invoices/3", "/portal/invoices/4", "/portal/invoices/99", "/portal/invoices/x", "/portal/invoices/01",
		"/portal/invoices/3/invoice.pdf", "/portal/invoices/3/receipt.pdf", "/portal/invoices/4/invoice.pdf", "/portal/invoices/99/invoice.pdf",
		"/portal/invoices/1/receipt.pdf"} {
		if status, page := f.portalPage(t, c, path); status != http.StatusNotFound || strings.Contains(page, "INV-000003") {
			t.Errorf("GET %s = %d, want 404", path, status)
		}
	}
	if len(files.asked) != 0 {
		t.Errorf("documents rendered for refused requests: %v", files.asked)
	}

	for path, want := range map[string]string{
		"/portal/invoices/1/invoice.pdf": "invoice-INV-000001.pdf",
		"/portal/invoices/2/invoice.pdf": "invoice-INV-000002.pdf",
		"/portal/invoices/2/receipt.pdf": "receipt-INV-000002.pdf",
	} {
		resp, body := f.do(t, c, http.MethodGet, path, nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" ||
			resp.Header.Get("Content-Disposition") != `attachment; filename="`+want+`"` ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(string(body), "%PDF-") {
			t.Errorf("GET %s = %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	asked := slices.Sorted(slices.Values(files.asked)) // the map above is read in no set order
	if strings.Join(asked, ",") != "invoice,invoice,receipt" {
		t.Errorf("documents asked = %v", files.asked)
	}

	// Without the renderer: 503.
	f2 := newFixture(t, nil)
	f2.seed(t)
	if status, _ := f2.portalPage(t, f2.portalClient(t, f2.token), "/portal/invoices/1/invoice.pdf"); status != http.StatusServiceUnavailable {
		t.Errorf("without InvoiceFiles = %d, want 503", status)
	}
}

func TestDocumentFilename(t *testing.T) {
	for number, want := range map[string]string{
		"INV-0001": "invoice-INV-0001.pdf", `a"b\r\n;c/../d`: "invoice-abrncd.pdf", "": "invoice-document.pdf", "Ünï": "invoice-n.pdf",
	} {
		if got := documentFilename("invoice", number); got != want {
			t.Errorf("documentFilename(%q) = %q, want %q", number, got, want)
		}
	}
}

// Deliverables are Markdown on the portal: structure kept, no raw HTML,
// no script URL.
func TestPortalDeliverablesAreSafeMarkdown(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	done := testNow.Add(-time.Minute)
	task := &db.Task{CustomerID: 1, Kind: agents.KindOutreachCopy, Description: "Copy", Status: db.TaskDone, Currency: "usd",
		RewardCents: 100, ProfitCents: 100, Result: "## Subject lines\n\n- One\n- Two\n\nBody paragraph.\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[go](javascript:alert(3))",
		CompletedAt: &done, CreatedAt: testNow, UpdatedAt: testNow}
	if _, err := f.store.Bun().NewInsert().Model(task).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, doc, raw := f.getWith(t, f.portalClient(t, f.token), "/portal")
	item := doc.Find("#portal-work .work-item").FilterFunction(func(_ int, s *goquery.Selection) bool {
		return text(s.Find("h3")) == "Outreach copy pack"
	})
	if item.Length() != 1 || item.Find(".deliverable h2").Length() != 1 || item.Find(".deliverable li").Length() != 2 || item.Find(".deliverable p").Length() < 1 {
		t.Errorf("deliverable not formatted: %q", text(item))
	}
	lower := strings.ToLower(raw)
	for _, bad := range []string{"<script>alert", "onerror", `href="javascript:`, "<img src=\"x\""} {
		if strings.Contains(lower, bad) {
			t.Errorf("the portal holds %q", bad)
		}
	}
}

// parseHTMLResp reads and parses an answer's page.
func parseHTMLResp(t *testing.T, resp *http.Response) *goquery.Document {
	t.Helper()
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestPaidPage(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	ctx := context.Background()
	get := func(query string) (*http.Response, string) {
		t.Helper()
		resp, body := f.do(t, newClient(t), http.MethodGet, "/paid"+query, nil, nil)
		return resp, string(body)
	}
	heading := func(body string) string {
		t.Helper()
		return text(parseHTML(t, []byte(body)).Find("#paid h2"))
	}
	// No id, or one that is not a Checkout Session's: the generic thanks,
	// no reload, the way back to the portal.
	for _, q := range []string{"", "?session_id=", "?session_id=pi_123", "?session_id=cs_", "?session_id=cs_a%27b", "?session_id=cs_" + strings.Repeat("a", 300),
		"?session_id=cs_%3Cscript%3E", "?session_id=cs_ab%2F..%2Fc"} {
		resp, body := get(q)
		if resp.StatusCode != http.StatusOK || heading(body) != "Your payment is with Stripe" || resp.Header.Get("Refresh") != "" ||
			parseHTML(t, []byte(body)).Find(`#paid a[href="/portal"]`).Length() != 1 {
			t.Errorf("/paid%.40s = %d %q refresh %q", q, resp.StatusCode, heading(body), resp.Header.Get("Refresh"))
		}
	}
	// Not landed yet: Stripe is confirming; the page reloads itself, a
	// bounded number of times.
	resp, body := get("?session_id=cs_test_notyet")
	if heading(body) != "Stripe is confirming your payment" || resp.Header.Get("Refresh") != "3; url=/paid?n=1&session_id=cs_test_notyet" {
		t.Errorf("not landed = %q refresh %q", heading(body), resp.Header.Get("Refresh"))
	}
	resp, body = get("?session_id=cs_test_notyet&n=" + strconv.Itoa(paidMaxRefreshes))
	if resp.Header.Get("Refresh") != "" || !strings.Contains(body, "taking longer than usual") {
		t.Errorf("after the last reload: refresh %q", resp.Header.Get("Refresh"))
	}
	// An event of the session names the invoice, not yet paid.
	if _, err := f.store.Bun().NewRaw(`INSERT INTO stripe_events (event_id, type, session_id, invoice_id, outcome, received_at)
		VALUES ('evt_wait', 'checkout.session.completed', 'cs_test_wait', 1, ?, ?)`, db.OutcomeAwaitingPayment, testNow).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	resp, body = get("?session_id=cs_test_wait")
	if heading(body) != "Stripe is confirming your payment of invoice INV-000001 ($150.00)" || resp.Header.Get("Refresh") == "" {
		t.Errorf("awaiting = %q refresh %q", heading(body), resp.Header.Get("Refresh"))
	}
	// Paid: which invoice, how much, when.
	if _, err := f.store.Bun().NewRaw(`INSERT INTO stripe_events (event_id, type, session_id, invoice_id, outcome, received_at)
		VALUES ('evt_paid', 'checkout.session.completed', 'cs_test_paid', 2, ?, ?)`, db.OutcomePaid, testNow).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	resp, body = get("?session_id=cs_test_paid")
	facts := strings.Join(parseHTML(t, []byte(body)).Find("#paid .paid-facts dt, #paid .paid-facts dd").Map(func(_ int, s *goquery.Selection) string { return text(s) }), " ")
	if heading(body) != "Payment received" || facts != "Invoice INV-000002 Amount $99.00 Paid 27 Nov 2026" || resp.Header.Get("Refresh") != "" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("paid = %q %q refresh %q", heading(body), facts, resp.Header.Get("Refresh"))
	}
}

// An overdue invoice is said plainly: how much and for how long.
func TestPortalHeadlineShowsOverdue(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	c := f.portalClient(t, f.token)
	f.clock.Advance(20 * 24 * time.Hour) // due in 14 days: 6 days overdue
	_, doc, _ := f.getWith(t, c, "/portal")
	head := strings.Join(doc.Find("#portal-summary .portal-headline p").Map(func(_ int, s *goquery.Selection) string { return text(s) }), " | ")
	if head != "Amount due | $150.00 | was due on 11 Dec 2026 | $150.00 overdue · 6 days past the due date" {
		t.Errorf("headline = %q", head)
	}
	if got := text(doc.Find(`#portal-outstanding td[data-label="Due"]`)); got != "11 Dec 2026 6 days overdue" {
		t.Errorf("due cell = %q", got)
	}
	// Once paid: nothing outstanding.
	f.payOpenInvoices(t)
	_, doc, _ = f.getWith(t, c, "/portal")
	if got := text(doc.Find("#portal-summary .headline-amount")); got != "Nothing outstanding" {
		t.Errorf("headline when paid = %q", got)
	}
}
