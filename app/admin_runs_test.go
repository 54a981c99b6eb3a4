package app

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// addTestRuns writes finished runs into the cycle log, one second apart,
// the newest last: agent and outcome in turn from specs, and message.
func addTestRuns(t *testing.T, f *fixture, n int, agent, outcome, message string, start time.Time) {
	t.Helper()
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second)
		_, err := f.store.Bun().ExecContext(context.Background(), `INSERT INTO agent_runs (agent, trigger, started_at, finished_at, outcome, message)
			VALUES (?, 'autopilot', ?, ?, ?, ?)`, agent, at, at.Add(2500*time.Millisecond), outcome, message)
		if err != nil {
			t.Fatal(err)
		}
	}
}

var secondsTime = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`)

// TestRunsPageFiltersAndPages: /admin/runs filters by agent and outcome,
// shows times to the second and how long each run took, pages by cursor
// with the filters kept in its links, and folds a panic's stack under its
// first line.
func TestRunsPageFiltersAndPages(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	start := testNow.Add(-time.Hour)
	addTestRuns(t, f, 60, "billing", db.RunOK, "links=0", start)
	addTestRuns(t, f, 3, "ops", db.RunPanicked, "panic: boom <b>\ngoroutine 7 [running]:\nmain.crash()", start.Add(2*time.Minute))
	addTestRuns(t, f, 2, "billing", db.RunFailed, "billing: 1 of 1 payment links failed", start.Add(3*time.Minute))

	resp, doc, _ := f.get(t, "/admin/runs")
	rows := doc.Find("#runs-log tbody tr")
	if resp.StatusCode != http.StatusOK || rows.Length() != runsPerPage {
		t.Fatalf("/admin/runs = %d with %d rows", resp.StatusCode, rows.Length())
	}
	first := rows.First().Find("td")
	if got := text(first.Eq(0)); !secondsTime.MatchString(got) {
		t.Errorf("started = %q, want seconds", got)
	}
	if got := text(first.Eq(5)); got != "2.5s" {
		t.Errorf("took = %q, want 2.5s", got)
	}
	next := doc.Find(`#runs-log .pager a[rel="next"]`)
	href := next.AttrOr("href", "")
	if !strings.HasPrefix(href, "/admin/runs?c=2-o") || next.AttrOr("hx-get", "") != href || next.AttrOr("hx-push-url", "") != "true" ||
		next.AttrOr("hx-select-oob", "") != "#live" || next.AttrOr("hx-target", "") != "#runs-log" {
		t.Errorf("next link = %q %v", href, next.Nodes[0].Attr)
	}
	_, page2, _ := f.get(t, href)
	if n := page2.Find("#runs-log tbody tr").Length(); n != 65-runsPerPage {
		t.Errorf("page 2 has %d rows, want %d", n, 65-runsPerPage)
	}

	// A panic: its first line is the summary of a closed <details>, the
	// stack inside it, all escaped.
	_, doc, _ = f.get(t, "/admin/runs?agent=ops&outcome=panicked")
	rows = doc.Find("#runs-log tbody tr")
	details := rows.First().Find("details.run-stack")
	if rows.Length() != 3 || details.Length() != 1 || details.AttrOr("open", "none") != "none" ||
		text(details.Find("summary")) != "panic: boom <b>" || !strings.Contains(details.Find("pre").Text(), "goroutine 7 [running]") ||
		doc.Find("#runs-log b").Length() != 0 {
		t.Errorf("panics: %d rows, details %q", rows.Length(), text(details))
	}
	if got := doc.Find(`#runs-agent option[selected]`).AttrOr("value", ""); got != "ops" {
		t.Errorf("agent select shows %q", got)
	}

	// Filters together, and the pager keeps them.
	_, doc, _ = f.get(t, "/admin/runs?agent=billing&outcome=failed")
	rows = doc.Find("#runs-log tbody tr")
	if rows.Length() != 2 || !strings.Contains(text(rows.First()), "payment links failed") {
		t.Errorf("billing failures = %d rows: %q", rows.Length(), text(rows))
	}
	addTestRuns(t, f, 55, "billing", db.RunFailed, "again", start.Add(10*time.Minute))
	_, doc, _ = f.get(t, "/admin/runs?agent=billing&outcome=failed")
	next = doc.Find(`#runs-log .pager a[rel="next"]`)
	u, _ := url.Parse(next.AttrOr("href", ""))
	if u == nil || u.Query().Get("agent") != "billing" || u.Query().Get("outcome") != "failed" || u.Query().Get("c") == "" {
		t.Errorf("filtered next link = %q", next.AttrOr("href", ""))
	}
}

// TestRunsPageRefusesUnknownFilters: an agent or outcome the log does not
// have is refused with 400, said on the page (escaped) and not applied;
// the page still lists the runs.
func TestRunsPageRefusesUnknownFilters(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	addTestRuns(t, f, 3, "billing", db.RunOK, "", testNow.Add(-time.Hour))
	for _, q := range []string{"agent=nobody", "outcome=great", "agent=" + url.QueryEscape("<script>x</script>"), "outcome=" + url.QueryEscape("ok' OR 1=1 --"), "agent=billing&outcome=OK"} {
		resp, doc, body := f.get(t, "/admin/runs?"+q)
		if resp.StatusCode != http.StatusBadRequest || doc.Find("#runs-problem").Length() != 1 || doc.Find("#runs-log tbody tr").Length() != 3 ||
			strings.Contains(body, "<script>x") {
			t.Errorf("%s: %d, problem %q, %d rows", q, resp.StatusCode, text(doc.Find("#runs-problem")), doc.Find("#runs-log tbody tr").Length())
		}
	}
	for _, q := range []string{"", "agent=coordinator", "outcome=interrupted", "c=garbage", "c=" + strconv.Itoa(1<<30)} {
		if resp, _, _ := f.get(t, "/admin/runs?"+q); resp.StatusCode != http.StatusOK {
			t.Errorf("%q: %d, want 200", q, resp.StatusCode)
		}
	}
	// Anonymous readers are sent to sign in; the stream is not theirs.
	anon := newClient(t)
	for _, p := range []string{"/admin/runs", "/admin/audit", "/events/admin/runs", "/events/admin/audit"} {
		if resp, _ := f.do(t, anon, http.MethodGet, p, nil, nil); resp.StatusCode < 300 || resp.StatusCode >= 500 {
			t.Errorf("anonymous %s = %d", p, resp.StatusCode)
		}
	}
}

// TestAuditPageSearchAndPages: /admin/audit searches actor, action and
// target with a bounded term, pages by cursor in place, and the control
// room's panel links to it.
func TestAuditPageSearchAndPages(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	ctx := context.Background()
	for i := range 70 {
		e := db.AuditEntry{Actor: "ops@hossagent.test", Action: "agent.run", Target: "billing", CreatedAt: testNow.Add(time.Duration(i-100) * time.Second)}
		if i%10 == 0 {
			e.Target = "invoice INV-0000" + strconv.Itoa(i/10)
		}
		if err := f.store.RecordAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	_, doc, _ := f.get(t, "/admin")
	if doc.Find(`#admin-audit a[href="/admin/audit"]`).Length() != 1 || doc.Find(`#admin-runs a[href="/admin/runs"]`).Length() != 1 {
		t.Errorf("the control room does not link to the log pages")
	}
	resp, doc, _ := f.get(t, "/admin/audit")
	rows := doc.Find("#audit-log tbody tr")
	if resp.StatusCode != http.StatusOK || rows.Length() != auditPerPage || !secondsTime.MatchString(text(rows.First().Find("td").First())) {
		t.Fatalf("/admin/audit = %d, %d rows", resp.StatusCode, rows.Length())
	}
	if a := doc.Find(`#audit-log .pager a[rel="next"]`); a.AttrOr("hx-get", "") == "" || a.AttrOr("hx-target", "") != "#audit-log" {
		t.Errorf("audit pager does not page in place: %v", a.Nodes)
	}
	_, doc, _ = f.get(t, "/admin/audit?q=inv-")
	rows = doc.Find("#audit-log tbody tr")
	if rows.Length() != 7 || !strings.Contains(text(rows.First()), "INV-00006") || doc.Find("#audit-search-how").Length() != 1 {
		t.Errorf("search inv- = %d rows %q", rows.Length(), text(rows.First()))
	}
	if got := doc.Find("#audit-q").AttrOr("value", ""); got != "inv-" {
		t.Errorf("search box = %q", got)
	}
	// A huge term is cut to maxSearchLen, not refused.
	resp, doc, _ = f.get(t, "/admin/audit?q="+strings.Repeat("x", 5000))
	if resp.StatusCode != http.StatusOK || len(doc.Find("#audit-q").AttrOr("value", "")) != maxSearchLen {
		t.Errorf("long search = %d, box %d chars", resp.StatusCode, len(doc.Find("#audit-q").AttrOr("value", "")))
	}
}
