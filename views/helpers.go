package views

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"
)

// timeLayout shows every time in UTC with the zone spelled out, so an
// operator in another zone never misreads a timestamp.
const timeLayout = "2006-01-02 15:04 UTC"

// dash stands in for a missing value.
const dash = "—"

// fmtTime formats t in UTC; the zero time is shown as a dash.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return dash
	}
	return t.UTC().Format(timeLayout)
}

// fmtTimePtr is fmtTime for optional times; nil is shown as a dash.
func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return dash
	}
	return fmtTime(*t)
}

// fmtDate formats an optional time as a UTC calendar date.
func fmtDate(t *time.Time) string {
	if t == nil || t.IsZero() {
		return dash
	}
	return t.UTC().Format("2006-01-02")
}

// fmtCount formats a count with thousands separators, as Money does.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fmtDuration shows a span of time compactly: "850ms", "12.3s", "4m5s", "2h".
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	s := d.Round(time.Second).String()
	// "5m0s" reads better as "5m", "2h0m0s" as "2h".
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// badgeAliases maps statuses that have no badge style of their own to the
// style that means the same thing (the CSS styles the lead, task and invoice
// statuses and the agent states).
var badgeAliases = map[string]string{
	// cycle log outcomes
	"ok":       TaskDone,
	"panicked": TaskFailed,
	"skipped":  TaskPending,
	// a run its process never finished (killed, crashed): it did not succeed
	RunInterrupted: TaskFailed,
	// customers
	CustomerActive: TaskDone,
	CustomerPaused: TaskPending,
	CustomerClosed: "stopped",
	// outbox
	MessageQueued:     TaskPending,
	MessageSending:    TaskRunning,
	MessageSent:       TaskDone,
	MessageSuppressed: LeadUnsubscribed,
	// overdue is computed, never stored, but shown as a badge
	"overdue": TaskFailed,
}

// statusClass is the class list of a status badge: "badge paid". A status
// that is not a plain lower-case word gets the neutral badge only, so a
// stray value can never inject class names.
func statusClass(status string) string {
	s := strings.ToLower(strings.TrimSpace(status))
	if alias, ok := badgeAliases[s]; ok {
		s = alias
	}
	if s == "" || strings.TrimLeft(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return "badge"
	}
	return "badge " + s
}

// statusText is the label shown in a badge.
func statusText(status string) string {
	if status == "" {
		return dash
	}
	return status
}

// truncate shortens s to at most n runes, ending with an ellipsis when cut.
func truncate(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return strings.TrimRight(string(runes[:n-1]), " \t\n") + "…"
}

// isPayURL reports whether u is safe to offer a client as a payment link:
// an absolute https URL with a host and no embedded credentials. Anything
// else (a half-created link, a typo, a javascript: URL) is not shown.
func isPayURL(u string) bool {
	if !strings.HasPrefix(u, "https://") {
		return false
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	return parsed.Scheme == "https" && parsed.Host != "" && parsed.User == nil
}

// payURL is the payment link as a URL templ may emit unchanged; callers
// check isPayURL first.
func payURL(u string) templ.SafeURL {
	if !isPayURL(u) {
		return templ.FailedSanitizationURL
	}
	return templ.SafeURL(u)
}

// assetURL is the cache-busted URL of a file under /assets/.
func assetURL(path, version string) templ.SafeURL {
	u := "/assets/" + path
	if version != "" {
		u += "?" + url.Values{"v": {version}}.Encode()
	}
	return templ.URL(u)
}

// pageURL is the link to the page of a list on path that cursor leads to,
// keeping the other query parameters in q and setting param to the cursor.
// The first page ("" cursor) drops the parameter.
func pageURL(path string, q url.Values, param string, cursor string) templ.SafeURL {
	v := url.Values{}
	for k, vals := range q {
		if k != param && len(vals) > 0 && vals[0] != "" {
			v.Set(k, vals[0])
		}
	}
	if cursor != "" {
		v.Set(param, cursor)
	}
	if len(v) == 0 {
		return templ.URL(path)
	}
	return templ.URL(path + "?" + v.Encode())
}

// dashboardPageURL links to a page of the dashboard's leads.
func dashboardPageURL(cursor string) templ.SafeURL {
	return pageURL("/", nil, "page", cursor)
}

// Query parameters of the control room: the shared search and one page
// cursor per table, so paging one table leaves the others where they are.
const (
	paramSearch        = "q"
	paramLeadsPage     = "lp"
	paramCustomersPage = "cp"
	paramTasksPage     = "tp"
	paramInvoicesPage  = "ip"
)

// adminQuery is the control room's current query: the search and every
// table's page.
func adminQuery(p AdminPage) url.Values {
	v := url.Values{}
	if p.Search != "" {
		v.Set(paramSearch, p.Search)
	}
	pages := map[string]Page{
		paramLeadsPage:     p.LeadsPage,
		paramCustomersPage: p.CustomersPage,
		paramTasksPage:     p.TasksPage,
		paramInvoicesPage:  p.InvoicesPage,
	}
	for param, pg := range pages {
		if c := pg.At; c != "" {
			v.Set(param, c)
		}
	}
	return v
}

// adminPageURL returns a func linking to a page of one control-room table.
func adminPageURL(p AdminPage, param string) func(string) templ.SafeURL {
	q := adminQuery(p)
	return func(cursor string) templ.SafeURL { return pageURL("/admin", q, param, cursor) }
}

// pageTitle is the document title.
func pageTitle(title string) string {
	if title == "" {
		return "HossAgent"
	}
	return title + " · HossAgent"
}

// nonZero reports whether any amount in t is not zero.
func nonZero(t Totals) bool {
	for _, m := range t {
		if m.Cents != 0 {
			return true
		}
	}
	return false
}

// signClass colours an amount: green when it is positive or zero, red when
// it is negative. Each currency of a Totals is judged on its own.
func signClass(m Money) string {
	if m.Cents < 0 {
		return "bad"
	}
	return "money"
}

// totalsParts splits totals into the amounts shown, one per currency; an
// empty total is a zero in the fallback currency.
func totalsParts(t Totals, fallback string) []Money {
	if len(t) == 0 {
		return []Money{{Currency: fallback}}
	}
	return t
}

// isDryRun reports whether the outbound e-mail mode only pretends to send.
func isDryRun(mode string) bool {
	return strings.EqualFold(strings.TrimSpace(mode), "dry_run")
}

// orDash shows a dash for an empty string.
func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return dash
	}
	return s
}

// taskLabel names a task in one line: its kind and the start of its
// description.
func taskLabel(t Task) string {
	if t.Description == "" {
		return t.Kind
	}
	return t.Kind + ": " + truncate(t.Description, 80)
}

// pageCount says how many rows a list holds: "1,234 in all", or "1,000+
// matches" when a search stopped counting.
func pageCount(pg Page) string {
	if pg.AtLeast {
		return fmtCount(int64(pg.Total)) + "+ matches"
	}
	return fmtCount(int64(pg.Total)) + " in all"
}

// invoiceDate is when an invoice was issued, or created while a draft.
func invoiceDate(inv Invoice) string {
	if inv.IssuedAt != nil {
		return fmtTime(*inv.IssuedAt)
	}
	return fmtTime(inv.CreatedAt)
}

// emptyText is an empty table's message; under a search it says that
// nothing matched rather than that nothing exists.
func emptyText(none, search string) string {
	if search != "" {
		return "Nothing matches “" + truncate(search, 60) + "”."
	}
	return none
}

// elapsedText is how long something has run, to the second: "12 s",
// "4 min 5 s", "2 h 3 min".
func elapsedText(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return strconv.Itoa(h) + " h " + strconv.Itoa(m) + " min"
	case m > 0:
		return strconv.Itoa(m) + " min " + strconv.Itoa(s) + " s"
	}
	return strconv.Itoa(s) + " s"
}
