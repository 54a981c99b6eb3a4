package agents

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/hossagent/hossagent/db"
)

// tryLater is the SMTP server's temporary refusal.
var tryLater = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

func TestOutreachPausesAfterConsecutiveErrorsUntilResumed(t *testing.T) {
	r := newOutreachRig(t)
	var failing atomic.Bool
	failing.Store(true)
	sink, _ := startSMTPSink(t, sinkOptions{RcptErr: func(string, int) error {
		if failing.Load() {
			return tryLater
		}
		return nil
	}})
	for i := range 5 {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	opts := bizdevOpts(&outreachSleeps{})
	opts.PauseAfterErrors = 3
	mailer := sink.mailer(t, SMTPOptions{Now: r.clock.Now})

	// The third consecutive error pauses outreach: the rest of the batch
	// stays queued.
	wantOutreachCounts(t, r.run(r.bizdev(mailer, opts)), Counts{"queued": 5, "failed": 3, "sent": 0, "paused": 1})
	p, err := r.store.OutreachPause(r.ctx)
	if err != nil || !p.Paused || p.PausedAfter != 3 || p.Errors != 3 || !p.PausedAt.Equal(r.clock.Now()) {
		t.Fatalf("OutreachPause = %+v, %v; want paused after 3 errors at %s", p, err, r.clock.Now())
	}
	if n := r.count("SELECT COUNT(*) FROM messages WHERE status = 'queued'"); n != 2 {
		t.Fatalf("queued messages = %d, want 2", n)
	}

	// While paused nothing new is queued and nothing is sent, across a
	// restart too; the cycle says why, and announces no data change.
	r.addLead("", "late@co9.example", "Co 9", "")
	events := r.events.count(EventDataChanged)
	failing.Store(false)
	r.clock.Advance(2 * time.Hour)
	wantOutreachCounts(t, r.run(r.bizdev(mailer, opts)), Counts{"queued": 0, "failed": 0, "sent": 0, "paused": 1})
	r.store = r.open()
	got := r.run(r.bizdev(mailer, opts))
	wantOutreachCounts(t, got, Counts{"queued": 0, "sent": 0, "paused": 1})
	if len(sink.messages()) != 0 || sink.rcptCount() != 3 {
		t.Fatalf("while paused the server saw %d RCPT and accepted %d messages", sink.rcptCount(), len(sink.messages()))
	}
	if n := r.events.count(EventDataChanged); n != events {
		t.Errorf("paused cycles published %d data changes", n-events)
	}

	was, err := r.store.ResumeOutreach(r.ctx)
	if err != nil || !was.Paused || was.PausedAfter != 3 {
		t.Fatalf("ResumeOutreach = %+v, %v", was, err)
	}
	got = r.run(r.bizdev(mailer, opts))
	wantOutreachCounts(t, got, Counts{"queued": 1, "sent": 6, "failed": 0})
	if _, ok := got["paused"]; ok {
		t.Errorf("a running cycle reports paused: %v", got)
	}
	if p, _ := r.store.OutreachPause(r.ctx); p.Paused || p.Errors != 0 {
		t.Fatalf("after resuming and sending: %+v", p)
	}
	if got := sink.byRecipient(); len(got) != 6 {
		t.Fatalf("received %v, want 6 recipients once each", got)
	}
	if was, err := r.store.ResumeOutreach(r.ctx); err != nil || was.Paused {
		t.Fatalf("a second resume found %+v, %v", was, err)
	}
}

func TestOutreachErrorCountResetsOnSuccess(t *testing.T) {
	r := newOutreachRig(t)
	sink, _ := startSMTPSink(t, sinkOptions{RcptErr: func(rcpt string, _ int) error {
		if strings.HasPrefix(rcpt, "bad") {
			return tryLater
		}
		return nil
	}})
	for _, local := range []string{"bad1", "bad2", "good", "bad3", "bad4"} {
		r.addLead("", local+"@"+local+".example", local, "")
	}
	opts := bizdevOpts(&outreachSleeps{})
	opts.PauseAfterErrors = 3
	wantOutreachCounts(t, r.run(r.bizdev(sink.mailer(t, SMTPOptions{}), opts)), Counts{"failed": 4, "sent": 1})
	if p, _ := r.store.OutreachPause(r.ctx); p.Paused || p.Errors != 2 {
		t.Fatalf("OutreachPause = %+v, want running with 2 consecutive errors", p)
	}

	// PauseAfterErrors 0 never pauses.
	opts.PauseAfterErrors = 0
	wantOutreachCounts(t, r.run(r.bizdev(sink.mailer(t, SMTPOptions{}), opts)), Counts{"failed": 4, "sent": 0})
	if p, _ := r.store.OutreachPause(r.ctx); p.Paused || p.Errors != 6 {
		t.Fatalf("OutreachPause = %+v, want running with 6 consecutive errors", p)
	}
}

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
