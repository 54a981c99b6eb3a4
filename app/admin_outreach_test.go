package app

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// pauseOutreach drives the store into a pause the way BizDev does: a
// message claimed, then a provider error with a threshold of one.
func pauseOutreach(t *testing.T, store *db.DB) {
	t.Helper()
	ctx := context.Background()
	l, err := store.CreateLead(ctx, nil, db.NewLead{Name: "Dana", Email: "dana@delta.example", Company: "Delta", Source: "test", DomainKey: "delta.example"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := store.QueueMessage(ctx, l.ID, func(*db.Lead, int64) (db.OutboxDraft, error) {
		return db.OutboxDraft{Template: "general/1", Subject: "Hello", Body: "Hi"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := store.ClaimMessage(ctx, m.ID, db.EmailCaps{PerCycle: 1, PerHour: 1, PerDay: 1}); err != nil || c != db.ClaimOK {
		t.Fatalf("ClaimMessage = %v, %v", c, err)
	}
	if res, err := store.RecordSendError(ctx, m.ID, "smtp: permanent 535 error: authentication failed", 1); err != nil || !res.Paused {
		t.Fatalf("RecordSendError = %+v, %v", res, err)
	}
}

// emailPanel renders the e-mail health panel with the server's pause data.
func emailPanel(t *testing.T, s *Server) *goquery.Selection {
	t.Helper()
	var panel views.EmailPanel
	if err := s.outreachPanelData(context.Background(), &panel); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := views.AdminEmailHealth(views.AdminPage{EmailHealth: panel}).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return doc.Find("#email-pause")
}

func TestResumeOutreachAction(t *testing.T) {
	f := newActionFixture(t, actionOptions{})
	f.signInAs(t, db.RoleAdmin)
	if got := text(emailPanel(t, f.server)); got != "running" {
		t.Fatalf("pause row before any error = %q", got)
	}
	pauseOutreach(t, f.store)
	row := emailPanel(t, f.server)
	if got := text(row); !strings.HasPrefix(got, "PAUSED at 2026-11-27 12:00 UTC: 1 provider error") {
		t.Fatalf("pause row = %q", got)
	}
	if btn := row.Find(`button[hx-post="/admin/outreach/resume"]`); btn.Length() != 1 || text(btn) != "Resume" ||
		btn.AttrOr("hx-target", "") != "#resume-result" {
		t.Fatalf("no Resume button in the pause row: %s", text(row))
	}

	status, result, _ := f.act(t, "/admin/outreach/resume", nil)
	if status != http.StatusOK || !strings.Contains(result, "Outreach resumed (paused for 1 provider error); BizDev sends again on its next cycle.") {
		t.Fatalf("resume = %d %q", status, result)
	}
	if p, err := f.store.OutreachPause(context.Background()); err != nil || p.Paused || p.Errors != 0 {
		t.Fatalf("after resume: %+v, %v", p, err)
	}
	if got := text(emailPanel(t, f.server)); got != "running" {
		t.Fatalf("pause row after resume = %q", got)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = 'outreach.resume' AND actor = 'admin@hossagent.test' AND detail = 'paused since 2026-11-27 12:00 UTC (provider_errors): 1 provider error'"); n != 1 {
		t.Errorf("audit entries for the resume = %d", n)
	}

	status, result, _ = f.act(t, "/admin/outreach/resume", nil)
	if status != http.StatusOK || !strings.Contains(result, "not paused") {
		t.Fatalf("second resume = %d %q", status, result)
	}

	// Without htmx the browser goes back to the control room.
	pauseAgain(t, f.store)
	resp, _ := f.post(t, f.client, "/admin/outreach/resume", url.Values{}, map[string]string{"Origin": f.srv.URL})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin" {
		t.Fatalf("plain form resume = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if p, _ := f.store.OutreachPause(context.Background()); p.Paused {
		t.Fatal("the plain form resume left outreach paused")
	}
}

// pauseAgain pauses outreach again through a retry: the failed message is
// claimed anew and fails once more.
func pauseAgain(t *testing.T, store *db.DB) {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := store.Bun().NewRaw("SELECT id FROM messages ORDER BY id LIMIT 1").Scan(ctx, &id); err != nil {
		t.Fatal(err)
	}
	if c, err := store.ClaimMessage(ctx, id, db.EmailCaps{PerCycle: 1, PerHour: 1, PerDay: 1}); err != nil || c != db.ClaimOK {
		t.Fatalf("ClaimMessage = %v, %v", c, err)
	}
	if res, err := store.RecordSendError(ctx, id, "smtp: temporary error: connection refused", 1); err != nil || !res.Paused {
		t.Fatalf("RecordSendError = %+v, %v", res, err)
	}
}

func TestResumeOutreachIsAnAdminSameOriginPOST(t *testing.T) {
	f := newActionFixture(t, actionOptions{})
	f.createUser(t, "viewer@hossagent.test", db.RoleViewer)
	viewer := f.signIn(t, "viewer@hossagent.test")
	f.signInAs(t, db.RoleAdmin)
	pauseOutreach(t, f.store)
	const path = "/admin/outreach/resume"
	if resp, _, _ := f.get(t, path); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET = %d (Allow %q), want 405", resp.StatusCode, resp.Header.Get("Allow"))
	}
	for _, c := range []struct {
		name   string
		client *http.Client
		origin string
		want   int
	}{
		{"anonymous", newClient(t), f.srv.URL, http.StatusUnauthorized},
		{"viewer", viewer, f.srv.URL, http.StatusForbidden},
		{"cross-origin admin", f.client, "https://evil.example", http.StatusForbidden},
	} {
		if resp, _ := f.post(t, c.client, path, nil, map[string]string{"Origin": c.origin, "HX-Request": "true"}); resp.StatusCode != c.want {
			t.Errorf("%s POST = %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	if p, _ := f.store.OutreachPause(context.Background()); !p.Paused {
		t.Fatal("a refused request resumed outreach")
	}
	big := url.Values{"x": {strings.Repeat("1", maxActionForm*2)}}
	if status, result, _ := f.act(t, path, big); status != http.StatusRequestEntityTooLarge || !strings.Contains(result, "too large") {
		t.Errorf("oversized form = %d %q", status, result)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = 'outreach.resume'"); n != 0 {
		t.Errorf("refused requests were audited: %d", n)
	}
}
