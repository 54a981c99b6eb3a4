package agents

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

func TestOutreachPauseStopsAConcurrentRunAtItsNextClaim(t *testing.T) {
	r := newOutreachRig(t)
	l := r.addLead("", "a@alpha.example", "Alpha", "")
	m, err := r.store.QueueMessage(r.ctx, l.ID, func(*db.Lead, int64) (db.OutboxDraft, error) {
		return db.OutboxDraft{Template: "general/1", Subject: "Hello", Body: "Hi"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	caps := db.EmailCaps{PerCycle: 10, PerHour: 10, PerDay: 10}
	if c, err := r.store.ClaimMessage(r.ctx, m.ID, caps); err != nil || c != db.ClaimOK {
		t.Fatalf("ClaimMessage = %v, %v", c, err)
	}
	res, err := r.store.RecordSendError(r.ctx, m.ID, "smtp: permanent 535 error", 1)
	if err != nil || !res.Paused || res.Errors != 1 || res.LeadFailed {
		t.Fatalf("RecordSendError = %+v, %v", res, err)
	}
	// The failed message has attempts left, but no run may claim it now.
	if c, err := r.store.ClaimMessage(r.ctx, m.ID, caps); err != nil || c != db.ClaimPaused {
		t.Fatalf("ClaimMessage while paused = %v, %v", c, err)
	}
	if ms := r.messages(l.ID); ms[0].Status != db.MessageFailed || ms[0].Attempts != 1 {
		t.Fatalf("message after the refused claim: %+v", ms[0])
	}
}

func TestSendWindowParsesAndContains(t *testing.T) {
	for _, bad := range []string{"9-17", "09:00", "09:00-09:00", "25:00-26:00", "09:00-17:60", "nine-five"} {
		if _, err := ParseSendWindow(bad, time.UTC); err == nil {
			t.Errorf("ParseSendWindow(%q) accepted", bad)
		}
	}
	always, err := ParseSendWindow("  ", nil)
	if err != nil || !always.Contains(outreachStart) || always.String() != "always" {
		t.Fatalf("empty window: %v %v", always, err)
	}
	plus2 := time.FixedZone("UTC+2", 2*3600)
	day := func(h, m int) time.Time { return time.Date(2025, 6, 2, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		window string
		loc    *time.Location
		at     time.Time
		want   bool
	}{
		{"09:00-17:00", time.UTC, day(9, 0), true},
		{"09:00-17:00", time.UTC, day(8, 59), false},
		{"09:00-17:00", time.UTC, day(16, 59), true},
		{"09:00-17:00", time.UTC, day(17, 0), false},
		{"09:00-17:00", plus2, day(7, 0), true},   // 09:00 local
		{"09:00-17:00", plus2, day(15, 0), false}, // 17:00 local
		{"22:00-06:00", time.UTC, day(23, 30), true},
		{"22:00-06:00", time.UTC, day(0, 0), true},
		{"22:00-06:00", time.UTC, day(5, 59), true},
		{"22:00-06:00", time.UTC, day(6, 0), false},
		{"22:00-06:00", time.UTC, day(12, 0), false},
		{"22:00-06:00", time.UTC, day(21, 59), false},
		{"22:00-06:00", plus2, day(20, 0), true}, // 22:00 local
		{"22:00-06:00", plus2, day(4, 0), false}, // 06:00 local
	} {
		w, err := ParseSendWindow(tc.window, tc.loc)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Contains(tc.at); got != tc.want {
			t.Errorf("%s in %s at %s: Contains = %v, want %v", tc.window, tc.loc, tc.at.Format("15:04 MST"), got, tc.want)
		}
	}
	if w, _ := ParseSendWindow("22:00-06:00", plus2); w.String() != "22:00-06:00 UTC+2" {
		t.Errorf("String = %q", w.String())
	}
}

func TestBizDevSendsOnlyInsideTheSendWindow(t *testing.T) {
	r := newOutreachRig(t) // the clock starts at 09:00 UTC
	for i := range 2 {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	opts := bizdevOpts(&outreachSleeps{})
	opts.SendWindow = "10:00-17:00"
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"queued": 2, "sent": 0, "outside_window": 2})
	if n := r.count("SELECT COUNT(*) FROM messages WHERE status = 'queued'"); n != 2 || m.callCount() != 0 {
		t.Fatalf("queued %d, mailer calls %d; want 2 queued and no call", n, m.callCount())
	}
	r.clock.Advance(time.Hour)
	got := r.run(r.bizdev(m, opts))
	wantOutreachCounts(t, got, Counts{"sent": 2})
	if _, ok := got["outside_window"]; ok {
		t.Errorf("an open window reports outside_window: %v", got)
	}
}

func TestBizDevSendWindowPastMidnightInItsZone(t *testing.T) {
	r := newOutreachRig(t)
	r.addLead("", "night@owl.example", "Owl", "")
	opts := bizdevOpts(&outreachSleeps{})
	opts.SendWindow, opts.Location = "22:00-06:00", time.FixedZone("UTC+2", 2*3600)
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"queued": 1, "outside_window": 1}) // 11:00 local
	r.clock.Advance(11 * time.Hour)                                                           // 22:00 local
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"sent": 1})
}

func TestBizDevStopsWhenTheWindowClosesMidCycle(t *testing.T) {
	r := newOutreachRig(t) // 09:00 UTC
	for i := range 3 {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	opts := bizdevOpts(&outreachSleeps{})
	opts.SendWindow = "09:00-09:30"
	opts.Sleep = func(ctx context.Context, _ time.Duration) error {
		r.clock.Advance(20 * time.Minute) // a long gap between sends
		return ctx.Err()
	}
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"queued": 3, "sent": 2, "outside_window": 1})
	if n := r.count("SELECT COUNT(*) FROM messages WHERE status = 'queued'"); n != 1 {
		t.Fatalf("queued messages = %d, want 1", n)
	}
}

func TestBizDevRefusesAMalformedSendWindow(t *testing.T) {
	r := newOutreachRig(t)
	r.addLead("", "a@alpha.example", "Alpha", "")
	opts := bizdevOpts(&outreachSleeps{})
	opts.SendWindow = "9 to 5"
	m := &outreachMailer{mode: MailModeSMTP}
	if _, err := r.bizdev(m, opts).Run(r.ctx); err == nil || !strings.Contains(err.Error(), "send window") {
		t.Fatalf("Run with a malformed window = %v", err)
	}
	if m.callCount() != 0 || r.count("SELECT COUNT(*) FROM messages") != 0 {
		t.Fatal("a cycle with a malformed window did work")
	}
}
