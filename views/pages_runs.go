package views

import (
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
)

// RunsPage is the cycle log's own page at /admin/runs.
type RunsPage struct {
	Meta
	Runs             []AgentRun
	Page             Page
	Agent, Outcome   string   // the filters shown ("" for all)
	Problem          string   // why a filter was refused
	Agents, Outcomes []string // the filters' choices
}

// AuditPage is the audit log's own page at /admin/audit.
type AuditPage struct {
	Meta
	Entries []AuditEntry
	Page    Page
	Search  string
	// Window is how many entries a search page looks at; WindowEnded
	// says the page's window ended before the page was full.
	Window      int
	WindowEnded bool
}

// runsQuery is the runs page's filters as its links carry them.
func runsQuery(p RunsPage) url.Values {
	v := url.Values{}
	if p.Agent != "" {
		v.Set("agent", p.Agent)
	}
	if p.Outcome != "" {
		v.Set("outcome", p.Outcome)
	}
	return v
}

// runsPageURL links to a page of the cycle log under the same filters.
func runsPageURL(p RunsPage) func(string) templ.SafeURL {
	q := runsQuery(p)
	return func(cursor string) templ.SafeURL { return pageURL("/admin/runs", q, "c", cursor) }
}

// auditPageURL links to a page of the audit log under the same search.
func auditPageURL(p AuditPage) func(string) templ.SafeURL {
	q := url.Values{}
	if p.Search != "" {
		q.Set("q", p.Search)
	}
	return func(cursor string) templ.SafeURL { return pageURL("/admin/audit", q, "c", cursor) }
}

// runsFilterURL is the cycle log filtered by one agent (an agent cell's
// link).
func runsFilterURL(agent string) templ.SafeURL {
	return templ.URL("/admin/runs?" + url.Values{"agent": {agent}}.Encode())
}

// runStack is what follows the first line of a run's message: a panic's
// stack ("" for a one-line message).
func runStack(msg string) string {
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		return strings.TrimSpace(msg[i+1:])
	}
	return ""
}

// runTook is how long a run took, or, while it runs, how long it has run
// so far ("12s so far").
func runTook(r AgentRun, now time.Time) string {
	if r.FinishedAt == nil {
		if now.IsZero() || now.Before(r.StartedAt) {
			return dash
		}
		return fmtDuration(now.Sub(r.StartedAt)) + " so far"
	}
	return fmtDuration(r.FinishedAt.Sub(r.StartedAt))
}

// emptyRuns says why a page of the cycle log is empty.
func emptyRuns(p RunsPage) string {
	if p.Agent != "" || p.Outcome != "" {
		return "No run matches these filters: clear them to see every run."
	}
	return "No run yet: agents log each cycle here once they run."
}

// emptyAudit says why a page of the audit log is empty.
func emptyAudit(search string) string {
	if search != "" {
		return "No entry here matches the search."
	}
	return "No admin actions yet."
}

// linkErrorWhen is when a payment link last failed, and how often in a
// row: "at 2026-01-02 10:00:00 UTC, 3 failures in a row".
func linkErrorWhen(e *LinkError) string {
	s := "at " + fmtTimeSec(e.At)
	if e.Failures > 1 {
		s += ", " + fmtCount(e.Failures) + " failures in a row"
	}
	return s
}

// LinkFailureRow is one invoice a bulk link action could not give a link,
// and why.
type LinkFailureRow struct {
	InvoiceID int64
	Number    string
	Error     string
}
