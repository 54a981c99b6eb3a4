package views

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
)

const evil = "<script>alert(1)</script>"

var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func meta() Meta {
	return Meta{Title: "Test", AssetVersion: "abc", Now: now, Currency: "usd"}
}

// render renders c and parses it, returning the document and the raw HTML.
func render(t *testing.T, c templ.Component) (*goquery.Document, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	raw := buf.String()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc, raw
}

func noRawScript(t *testing.T, raw string) {
	t.Helper()
	if strings.Contains(raw, "<script>alert") {
		t.Errorf("untrusted text rendered as markup:\n%s", raw)
	}
}

func text(s *goquery.Selection) string { return strings.TrimSpace(s.Text()) }

func ptr[T any](v T) *T { return &v }

func TestLayoutHead(t *testing.T) {
	doc, raw := render(t, Error(ErrorPage{Meta: meta(), Status: 404, Heading: "Not found"}))
	if got := text(doc.Find("title")); got != "Test · HossAgent" {
		t.Errorf("title = %q", got)
	}
	if got, _ := doc.Find(`meta[name="referrer"]`).Attr("content"); got != "no-referrer" {
		t.Errorf("referrer = %q", got)
	}
	if got, _ := doc.Find(`link[rel="stylesheet"]`).Attr("href"); got != "/assets/css/noir.css?v=abc" {
		t.Errorf("css href = %q", got)
	}
	scripts := doc.Find("script")
	if scripts.Length() != 4 {
		t.Fatalf("scripts = %d, want 4", scripts.Length())
	}
	// Our own script (js/hoss.js) only enhances, so it may defer.
	if own := scripts.Eq(2); own.AttrOr("src", "") != "/assets/js/hoss.js?v=abc" || own.AttrOr("defer", "x") == "x" || text(own) != "" {
		t.Errorf("our script = %q (defer %v)", own.AttrOr("src", ""), own.AttrOr("defer", "x") != "x")
	}
	if got := doc.Find(`link[rel="icon"]`).AttrOr("href", ""); got != "/assets/favicon.svg?v=abc" {
		t.Errorf("favicon = %q", got)
	}
	if skip := doc.Find("body > a.skip-link").First(); skip.AttrOr("href", "") != "#main" || doc.Find("main#main").Length() != 1 {
		t.Errorf("skip link %q to a page whose main is #main (%d)", skip.AttrOr("href", ""), doc.Find("main#main").Length())
	}
	scripts.Slice(0, 2).Each(func(i int, s *goquery.Selection) {
		// Blocking, in this order: the SSE extension must be registered
		// before htmx initialises (see Layout), and the pages' own script
		// listens to both from the start.
		if _, ok := s.Attr("defer"); ok {
			t.Errorf("script %d is deferred", i)
		}
		want := []string{"/assets/vendor/htmx.min.js?", "/assets/vendor/hx-sse.min.js?", "/assets/js/live.js?"}[i]
		if src, _ := s.Attr("src"); !strings.HasPrefix(src, want) {
			t.Errorf("script %d is %q, want %s…", i, src, want)
		}
		if text(s) != "" {
			t.Errorf("inline script: %q", text(s))
		}
	})
	if strings.Contains(raw, "style=") {
		t.Errorf("inline style in page")
	}
	if got := text(doc.Find(".error-page h1")); got != "404" {
		t.Errorf("status = %q", got)
	}
}

func TestDashboard(t *testing.T) {
	p := DashboardPage{
		Meta: meta(),
		Stats: Stats{
			Money: MoneyFigures{
				Collected:       Totals{{Cents: 1234, Currency: "usd"}},
				CollectedProfit: Totals{{Cents: -500, Currency: "eur"}, {Cents: 700, Currency: "usd"}},
			},
			TasksByStatus: map[string]int64{TaskDone: 3},
			LeadsByStatus: map[string]int64{LeadNew: 7},
		},
		Leads:     []Lead{{Company: evil, Niche: "SaaS", Status: LeadNew}},
		LeadsPage: Page{Number: 1, Pages: 3, Total: 60, HasNext: true, Next: "2-o40"},
	}
	doc, raw := render(t, Dashboard(p))
	noRawScript(t, raw)

	if got := text(doc.Find("#dash-cards .card").First().Find(".value")); got != "$12.34" {
		t.Errorf("collected card = %q, want $12.34", got)
	}
	if got := text(doc.Find("#dash-cards .card").Eq(2).Find(".value")); got != "$0.00" {
		t.Errorf("empty outstanding = %q, want $0.00", got)
	}
	// A total in two currencies stacks, one line per currency.
	profit := doc.Find("#dash-cards .card").Eq(1)
	if got := profit.Find(".value").Length(); got != 2 {
		t.Errorf("profit on collected work shows %d lines, want one per currency", got)
	}
	if got := text(profit.Find(".bad")); got != "-€5.00" {
		t.Errorf("negative profit part = %q", got)
	}
	if got := text(profit.Find(".money")); got != "$7.00" {
		t.Errorf("positive profit part = %q", got)
	}
	if got := text(doc.Find("#dash-leads tbody td").First()); got != evil {
		t.Errorf("company = %q, want it escaped as text", got)
	}
	for _, id := range []string{"dash-cards", "dash-pipeline", "dash-work", "dash-invoices", "dash-leads"} {
		if doc.Find("#"+id).Length() != 1 {
			t.Errorf("region #%s missing", id)
		}
	}
	for _, id := range []string{"dash-work", "dash-invoices"} {
		if doc.Find("#"+id+" tbody tr.empty").Length() != 1 {
			t.Errorf("#%s has no empty row", id)
		}
	}
	if got, _ := doc.Find("#dash-leads .pager a[rel=next]").Attr("href"); got != "/?page=2-o40" {
		t.Errorf("next page = %q", got)
	}
	if doc.Find(`a[href="/admin"]`).Length() != 0 {
		t.Errorf("admin link shown without ShowAdmin")
	}
}

func TestDashboardRows(t *testing.T) {
	p := DashboardPage{
		Meta:      meta(),
		ShowAdmin: true,
		RecentWork: []TaskRow{{
			Task:    Task{Kind: "report", Description: "weekly", Status: TaskDone, Currency: "usd", Profit: Money{Cents: 250, Currency: "usd"}, CompletedAt: ptr(now)},
			Company: "Acme",
		}},
		Invoices: []InvoiceRow{{Invoice: Invoice{Label: "DRAFT", Currency: "usd", Amount: Money{Cents: 9900, Currency: "usd"}, Status: InvoiceDraft, CreatedAt: now}, Company: "Acme"}},
	}
	doc, _ := render(t, Dashboard(p))
	cells := doc.Find("#dash-work tbody tr").First().Find("td")
	if got := text(cells.First()); got != "2026-03-14 15:09 UTC" {
		t.Errorf("completed = %q", got)
	}
	if got := text(cells.Last()); got != "$2.50" {
		t.Errorf("profit = %q", got)
	}
	if got := text(doc.Find("#dash-invoices tbody td").First()); got != "DRAFT" {
		t.Errorf("number = %q", got)
	}
	if doc.Find(`a[href="/admin"]`).Length() != 1 {
		t.Errorf("admin link missing with ShowAdmin")
	}
	if doc.Find("#dash-leads tbody tr.empty").Length() != 1 {
		t.Errorf("leads has no empty row")
	}
}

func TestAdmin(t *testing.T) {
	search := "foo & <bar>"
	p := AdminPage{
		Meta:              meta(),
		AutopilotEnabled:  true,
		AutopilotInterval: 5 * time.Minute,
		EmailMode:         "DRY_RUN",
		Stats:             Stats{Money: MoneyFigures{Collected: Totals{{Cents: 1234, Currency: "usd"}}}},
		Agents: []AgentCard{{
			Name: "bizdev", Title: "BizDev", State: "crashed", Failures: 2,
			LastError: evil, Stack: "goroutine 1 [running]:\n" + evil,
			LastRun: &AgentRun{Agent: "bizdev", StartedAt: now, Outcome: "panicked"},
		}},
		Runs:      []AgentRun{{Agent: "ops", Trigger: "autopilot", StartedAt: now, FinishedAt: ptr(now.Add(1500 * time.Millisecond)), Outcome: "ok", Message: evil}},
		Customers: []CustomerRow{{Company: evil, Status: CustomerActive, Billed: Totals{{Cents: 1234, Currency: "usd"}}, Paid: Totals{{Cents: 1000, Currency: "usd"}}}},
		CustomersPage: Page{Number: 2, Pages: 4, Total: 80, HasPrev: true, HasNext: true,
			At: "2-o55", Next: "3-o30", Prev: "1-n54"},
		LeadsPage: Page{Number: 1, Pages: 2, Total: 30, HasNext: true, Next: "2-o10"},
		Search:    search,
	}
	doc, raw := render(t, Admin(p))
	noRawScript(t, raw)

	if got := text(doc.Find("#admin-customers tbody td").First()); got != evil {
		t.Errorf("customer company = %q", got)
	}
	if got := text(doc.Find("#admin-customers tbody td").Eq(5)); got != "$12.34" {
		t.Errorf("billed = %q", got)
	}
	var found bool
	doc.Find("#admin-cards .value").Each(func(_ int, s *goquery.Selection) { found = found || text(s) == "$12.34" })
	if !found {
		t.Errorf("revenue card missing $12.34")
	}
	if got := text(doc.Find("#agent-bizdev pre")); !strings.HasSuffix(got, evil) {
		t.Errorf("stack = %q", got)
	}
	if got, _ := doc.Find("#admin-runs tbody .badge").Attr("class"); got != "badge done" {
		t.Errorf("ok outcome class = %q", got)
	}
	if got := text(doc.Find("#admin-runs tbody td").Eq(5)); got != "1.5s" {
		t.Errorf("duration = %q", got)
	}
	if got, _ := doc.Find(`#admin-search input[name="q"]`).Attr("value"); got != search {
		t.Errorf("search value = %q", got)
	}
	if got := text(doc.Find("#admin-status .warn").First()); got != "DRY_RUN" {
		t.Errorf("outbound = %q", got)
	}

	checkLink := func(sel, param, want string) {
		t.Helper()
		href, ok := doc.Find(sel).Attr("href")
		if !ok {
			t.Fatalf("%s: no link", sel)
		}
		u, err := url.Parse(href)
		if err != nil || u.Path != "/admin" {
			t.Fatalf("%s: bad link %q", sel, href)
		}
		if got := u.Query().Get("q"); got != search {
			t.Errorf("%s: q = %q, want %q (href %q)", sel, got, search, href)
		}
		if got := u.Query().Get(param); got != want {
			t.Errorf("%s: %s = %q, want %q", sel, param, got, want)
		}
	}
	checkLink("#admin-leads .pager a[rel=next]", "lp", "2-o10")
	checkLink("#admin-customers .pager a[rel=next]", "cp", "3-o30")
	checkLink("#admin-customers .pager a[rel=prev]", "cp", "1-n54")
	// Paging leads keeps the customers table where it is.
	checkLink("#admin-leads .pager a[rel=next]", "cp", "2-o55")

	for _, id := range []string{"admin-leads", "admin-tasks", "admin-invoices", "admin-audit"} {
		row := doc.Find("#" + id + " tbody tr.empty")
		if row.Length() != 1 {
			t.Errorf("#%s has no empty row", id)
		}
	}
	if doc.Find("#admin-tasks .pager").Length() != 0 {
		t.Errorf("pager shown for an empty list")
	}
}

func TestHelpers(t *testing.T) {
	if got := fmtTime(time.Date(2026, 1, 2, 3, 4, 0, 0, time.FixedZone("X", 3600))); got != "2026-01-02 02:04 UTC" {
		t.Errorf("fmtTime = %q", got)
	}
	if got := fmtTimePtr(nil); got != "—" {
		t.Errorf("fmtTimePtr(nil) = %q", got)
	}
	if got := truncate("héllo wörld", 5); got != "héll…" {
		t.Errorf("truncate = %q", got)
	}
	for u, want := range map[string]bool{
		"https://buy.stripe.com/x": true,
		"https://":                 false,
		"https://u:p@evil.com/":    false,
		"HTTPS://buy.stripe.com/x": false,
		"http://buy.stripe.com/x":  false,
		"//buy.stripe.com/x":       false,
	} {
		if got := isPayURL(u); got != want {
			t.Errorf("isPayURL(%q) = %v", u, got)
		}
	}
	for in, want := range map[string]string{"paid": "badge paid", "ok": "badge done", "panicked": "badge failed", "x y": "badge", "": "badge"} {
		if got := statusClass(in); got != want {
			t.Errorf("statusClass(%q) = %q, want %q", in, got, want)
		}
	}
	if got := fmtCount(1234567); got != "1,234,567" {
		t.Errorf("fmtCount = %q", got)
	}
	if got := fmtDuration(5 * time.Minute); got != "5m" {
		t.Errorf("fmtDuration = %q", got)
	}
	if got := pageURL("/admin", url.Values{"q": {"a b&c"}}, "lp", "2-o40"); got != "/admin?lp=2-o40&q=a+b%26c" {
		t.Errorf("pageURL = %q", got)
	}
}
