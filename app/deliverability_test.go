package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// realSends sends n first e-mails for real, a minute apart, to
// pat<i>@<domain>.
func realSends(t *testing.T, f *actionFixture, domain string, n int) []string {
	t.Helper()
	ctx := context.Background()
	var addrs []string
	for i := range n {
		f.clock.Advance(time.Minute)
		addr := fmt.Sprintf("pat%d@%s", i, domain)
		l, err := f.store.CreateLead(ctx, nil, db.NewLead{Email: addr, Company: "Co " + addr, Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		m, err := f.store.QueueMessage(ctx, l.ID, func(*db.Lead, int64) (db.OutboxDraft, error) {
			return db.OutboxDraft{Template: "general/1", Subject: "Hello", Body: "Hi"}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := f.store.ClaimMessage(ctx, m.ID, db.EmailCaps{PerCycle: 100, PerHour: 100, PerDay: 100}); err != nil || c != db.ClaimOK {
			t.Fatalf("ClaimMessage = %v, %v", c, err)
		}
		if err := f.store.MarkSent(ctx, m.ID, "p", false); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, addr)
	}
	// What BizDev's events do: the control room renders afresh.
	f.server.refreshLive()
	return addrs
}

func TestEmailPanelSaysWhyOutreachPaused(t *testing.T) {
	f := newActionFixture(t, actionOptions{env: map[string]string{"EMAIL_BOUNCE_WINDOW": "10", "EMAIL_BOUNCE_MIN_SENDS": "4"}})
	f.signInAs(t, db.RoleAdmin)
	ctx := context.Background()
	addrs := realSends(t, f, "guard.example", 4)
	_, doc, _ := f.get(t, "/admin")
	if got, want := text(doc.Find("#email-bounces")), "0 of the last 4 recipients bounced (0%); pauses above 5% of the last 10, from 4 sends"; got != want {
		t.Fatalf("bounces row = %q, want %q", got, want)
	}

	// One bounce of four: 25% > 5%.
	f.clock.Advance(time.Minute)
	pausedAt := f.clock.Now()
	if c, err := f.store.ApplyMailEvent(ctx, addrs[2], db.SuppressBounced, "sendgrid:bounce"); err != nil || !c.Paused {
		t.Fatalf("ApplyMailEvent = %+v, %v", c, err)
	}
	f.server.refreshLive()
	_, doc, _ = f.get(t, "/admin")
	row := doc.Find("#email-pause")
	want := "PAUSED at " + pausedAt.Format("2006-01-02 15:04 UTC") + ": 1 of the last 4 recipients bounced (25% > 5%)"
	if got := text(row.Find(".bad")); got != want {
		t.Fatalf("pause row = %q, want %q", got, want)
	}
	if confirm := row.Find(`button[hx-post="/admin/outreach/resume"]`).AttrOr("hx-confirm", ""); !strings.Contains(confirm, "bounce rate") {
		t.Fatalf("the Resume button asks %q; want a word on the bounce rate", confirm)
	}
	if got := text(doc.Find("#email-bounces")); !strings.HasPrefix(got, "1 of the last 4 recipients bounced (25%)") {
		t.Fatalf("bounces row = %q", got)
	}

	status, result, _ := f.act(t, "/admin/outreach/resume", nil)
	if status != http.StatusOK || !strings.Contains(result, "Outreach resumed (paused for 1 of the last 4 recipients bounced (25% > 5%)); "+
		"BizDev sends again on its next cycle; the bounce rate counts only the messages sent from now on.") {
		t.Fatalf("resume = %d %q", status, result)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = 'outreach.resume' AND detail LIKE '% (bounce_rate): 1 of the last 4 recipients bounced (25% > 5%)'"); n != 1 {
		t.Errorf("audit entries for the resume = %d", n)
	}
	_, doc, _ = f.get(t, "/admin")
	if got := text(doc.Find("#email-pause")); got != "running" {
		t.Fatalf("pause row after the resume = %q", got)
	}
	if got := text(doc.Find("#email-bounces")); !strings.HasPrefix(got, "no send counted yet;") {
		t.Fatalf("bounces row after the resume = %q: the old sends must not count", got)
	}

	// A complaint pauses at once, and says from whom; the source is text,
	// never markup.
	f.clock.Advance(time.Hour)
	if c, err := f.store.ApplyMailEvent(ctx, addrs[0], db.SuppressComplaint, "arf:<b>abuse</b>"); err != nil || !c.Paused {
		t.Fatalf("complaint = %+v, %v", c, err)
	}
	f.server.refreshLive()
	_, doc, raw := f.get(t, "/admin")
	row = doc.Find("#email-pause")
	want = "PAUSED at " + f.clock.Now().Format("2006-01-02 15:04 UTC") + ": a complaint from pat0@guard.example (arf:<b>abuse</b>)"
	if got := text(row.Find(".bad")); got != want || row.Find("b").Length() != 0 || strings.Contains(raw, "<b>abuse") {
		t.Fatalf("pause row = %q, want %q, escaped", got, want)
	}
	if confirm := row.Find("button").AttrOr("hx-confirm", ""); !strings.Contains(confirm, "complaint") {
		t.Fatalf("the Resume button asks %q", confirm)
	}
}

func TestEmailPanelShowsTheWarmupRamp(t *testing.T) {
	f := newActionFixture(t, actionOptions{env: map[string]string{"EMAIL_WARMUP_START": "10", "EMAIL_WARMUP_DAYS": "14", "EMAIL_BOUNCE_PAUSE_RATE": "0"}})
	f.signInAs(t, db.RoleAdmin)
	_, doc, _ := f.get(t, "/admin")
	if got := text(doc.Find("#email-warmup")); got != "warm-up day 1 of 14 from the first real send: cap 10 today (max 200)" {
		t.Fatalf("warm-up row before any send = %q", got)
	}
	if got := text(doc.Find("#email-bounces")); got != "not watched (EMAIL_BOUNCE_PAUSE_RATE=0)" {
		t.Fatalf("bounces row = %q", got)
	}
	realSends(t, f, "warm.example", 2)
	f.clock.Advance(2 * 24 * time.Hour)
	realSends(t, f, "warmer.example", 3)
	f.client = f.signIn(t, "admin@hossagent.test") // two days on, the session has expired
	_, doc, _ = f.get(t, "/admin")
	if got := text(doc.Find("#email-warmup")); got != "warm-up day 3 of 14: cap 39 today (max 200)" {
		t.Fatalf("warm-up row on day 3 = %q", got)
	}
	// The last 24 hours are counted against the day's cap.
	if got := text(doc.Find("#email-sent-day")); got != "3 of 39" {
		t.Fatalf("sent-day row = %q, want 3 of 39", got)
	}
	if got := doc.Find("#caps-per-day").AttrOr("value", ""); got != "200" {
		t.Fatalf("the caps form shows the daily cap %q, want the stored 200", got)
	}
}
