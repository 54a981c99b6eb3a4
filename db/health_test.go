package db

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// healthMessage stores one outbox row as the health queries see it.
func healthMessage(t *testing.T, d *DB, leadID int64, status string, at time.Time, errText string, review bool) {
	t.Helper()
	m := &Message{LeadID: leadID, ToAddr: fmt.Sprintf("to-%d@example.com", leadID), Template: "intro", Subject: "Hello", Body: "Hi",
		Status: status, Error: errText, NeedsReview: review, CreatedAt: at, UpdatedAt: at}
	switch status {
	case MessageSent, MessageDryRun:
		m.SentAt = &at
	case MessageSending:
		m.SendingAt = &at
	}
	if _, err := d.Bun().NewInsert().Model(m).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestEmailHealth(t *testing.T) {
	ctx := context.Background()
	d, now := outboxStore(t)
	lead := outboxLead(t, d, "a@acme.example", "acme.example").ID
	rows := []struct {
		status string
		ago    time.Duration
		err    string
		review bool
	}{
		{MessageSent, 10 * time.Minute, "", false},   // hour and day
		{MessageDryRun, 30 * time.Minute, "", false}, // hour and day
		{MessageSending, 5 * time.Minute, "", true},  // in flight: counted, needs review
		{MessageSent, 3 * time.Hour, "", false},      // day only
		{MessageSent, 30 * time.Hour, "", false},     // neither
		{MessageQueued, time.Minute, "", false},      // not sent
		{MessageFailed, 2 * time.Hour, "older failure", false},
		{MessageFailed, time.Hour, "smtp: 550 mailbox unavailable", false},
	}
	for _, r := range rows {
		healthMessage(t, d, lead, r.status, now.Add(-r.ago), r.err, r.review)
	}
	if err := d.AddSuppression(ctx, "address", "gone@example.com", "bounced", "test"); err != nil {
		t.Fatal(err)
	}
	h, err := d.EmailHealth(ctx, *now, 1)
	if err != nil {
		t.Fatal(err)
	}
	if h.SentLastHour != 3 || h.SentLastDay != 4 {
		t.Errorf("sent last hour/day = %d/%d, want 3/4", h.SentLastHour, h.SentLastDay)
	}
	want := map[string]int64{MessageSent: 3, MessageDryRun: 1, MessageSending: 1, MessageQueued: 1, MessageFailed: 2}
	for status, n := range want {
		if h.Outbox[status] != n {
			t.Errorf("outbox[%s] = %d, want %d", status, h.Outbox[status], n)
		}
	}
	if h.NeedsReview != 1 || h.Suppressions != 1 {
		t.Errorf("needs review %d, suppressions %d, want 1 and 1", h.NeedsReview, h.Suppressions)
	}
	if len(h.Failures) != 1 || h.Failures[0].Error != "smtp: 550 mailbox unavailable" {
		t.Errorf("failures = %+v, want the newest one only", h.Failures)
	}

	empty, _ := outboxStore(t)
	if h, err := empty.EmailHealth(ctx, *now, 5); err != nil || h.SentLastDay != 0 || len(h.Failures) != 0 {
		t.Errorf("empty store: %+v, %v", h, err)
	}
}

func TestEmailCapsInEffectWritesNothing(t *testing.T) {
	ctx := context.Background()
	d, _ := outboxStore(t)
	defaults := EmailCaps{PerCycle: 10, PerHour: 50, PerDay: 200}
	if caps, err := d.EmailCapsInEffect(ctx, defaults); err != nil || caps != defaults {
		t.Fatalf("unset caps = %+v, %v; want the defaults", caps, err)
	}
	var n int
	if err := d.Bun().NewRaw("SELECT COUNT(*) FROM settings").Scan(ctx, &n); err != nil || n != 0 {
		t.Fatalf("settings rows after a read = %d, %v; want none", n, err)
	}
	if err := d.SetEmailCaps(ctx, EmailCaps{PerCycle: 1, PerHour: 2, PerDay: 3}); err != nil {
		t.Fatal(err)
	}
	if caps, _ := d.EmailCapsInEffect(ctx, defaults); caps != (EmailCaps{1, 2, 3}) {
		t.Errorf("stored caps = %+v", caps)
	}
	if err := d.SetSetting(ctx, SettingEmailMaxPerDay, "-4"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.EmailCapsInEffect(ctx, defaults); err == nil {
		t.Error("a negative stored cap was accepted")
	}
}

func TestLeadsCreatedSince(t *testing.T) {
	ctx := context.Background()
	d, now := outboxStore(t)
	outboxLead(t, d, "old@old.example", "old.example")
	*now = now.Add(25 * time.Hour)
	for i, source := range []string{"synthetic", "synthetic", "csv"} {
		if _, err := d.CreateLead(ctx, nil, NewLead{Email: fmt.Sprintf("n%d@new%d.example", i, i), DomainKey: fmt.Sprintf("new%d.example", i), Company: "New", Source: source}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.LeadsCreatedSince(ctx, now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["synthetic"] != 2 || got["csv"] != 1 {
		t.Errorf("leads created in the last day = %v", got)
	}
}

func TestStripeHealth(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	h, err := d.StripeHealth(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's newest event is the one of invoice 26 (paid latest).
	if h.LastEvent == nil || h.LastEvent.EventID == "" {
		t.Fatalf("last event = %+v", h.LastEvent)
	}
	latest := f.events[0]
	for _, e := range f.events {
		if e.ReceivedAt.After(latest.ReceivedAt) || (e.ReceivedAt.Equal(latest.ReceivedAt) && e.ID > latest.ID) {
			latest = e
		}
	}
	if h.LastEvent.EventID != latest.EventID {
		t.Errorf("last event = %s, want %s", h.LastEvent.EventID, latest.EventID)
	}
	var open int64
	if err := d.Bun().NewRaw("SELECT COUNT(*) FROM invoices WHERE status = 'open' AND payment_url = '' AND flag = ''").Scan(ctx, &open); err != nil {
		t.Fatal(err)
	}
	if h.MissingLinks != open || h.Flagged != 0 || len(h.FlaggedList) != 0 {
		t.Errorf("missing links %d (want %d), flagged %d", h.MissingLinks, open, h.Flagged)
	}
	inv := f.invoices[4] // open
	if _, err := d.Bun().NewUpdate().Model(inv).Set("flag = ?", "amount mismatch").WherePK().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err = d.StripeHealth(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if h.Flagged != 1 || len(h.FlaggedList) != 1 || h.FlaggedList[0].Flag != "amount mismatch" || h.FlaggedList[0].Company == "" {
		t.Errorf("flagged = %d %+v", h.Flagged, h.FlaggedList)
	}
	if inv.PaymentURL == "" && h.MissingLinks != open-1 {
		t.Errorf("a flagged invoice still counts as missing its link: %d", h.MissingLinks)
	}

	empty, _ := outboxStore(t)
	if h, err := empty.StripeHealth(ctx, 5); err != nil || h.LastEvent != nil || h.MissingLinks != 0 {
		t.Errorf("empty store: %+v, %v", h, err)
	}
}
