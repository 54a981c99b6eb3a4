package agents

import (
	"fmt"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// guarded reopens the rig's store with the deliverability guard g.
func (r *outreachRig) guarded(g db.Guard) {
	r.t.Helper()
	s, err := db.Open(r.ctx, r.path, db.WithClock(r.clock.Now), db.WithGuard(g))
	if err != nil {
		r.t.Fatalf("db.Open: %v", err)
	}
	r.t.Cleanup(func() { _ = s.Close() })
	r.store = s
}

func TestBizDevSendsNothingWhilePausedAndSaysWhy(t *testing.T) {
	r := newOutreachRig(t)
	r.guarded(db.Guard{BounceRateBasisPoints: 500, BounceWindow: 50, BounceMinSends: 10})
	for i := range 10 {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"queued": 10, "sent": 10})

	// One bounce of ten is 10%, over 5%: outreach pauses.
	if c, err := r.store.ApplyMailEvent(r.ctx, "p3@co3.example", db.SuppressBounced, "sendgrid:bounce"); err != nil || !c.Paused {
		t.Fatalf("ApplyMailEvent = %+v, %v; want it to pause outreach", c, err)
	}
	for i := 10; i < 13; i++ {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	events := r.events.count(EventDataChanged)
	counts := r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{})))
	wantOutreachCounts(t, counts, Counts{"queued": 0, "sent": 0, "paused": 1, "paused_bounce_rate": 1})
	if len(counts) != 9 || m.callCount() != 10 || r.events.count(EventDataChanged) != events {
		t.Fatalf("paused run: counts %v, mailer calls %d, events %d; want 9 counts, 10 calls, no new event", counts, m.callCount(), r.events.count(EventDataChanged)-events)
	}
	if n := r.count("SELECT COUNT(*) FROM messages WHERE status = 'queued'"); n != 0 {
		t.Fatalf("%d messages queued while paused", n)
	}

	// Resumed, outreach runs on; a complaint during the batch stops it at
	// the next claim, and the next run reports the complaint.
	if _, err := r.store.ResumeOutreach(r.ctx); err != nil {
		t.Fatal(err)
	}
	m.fail = func(call int, out OutgoingMail) error {
		if call == 12 {
			if _, err := r.store.ApplyMailEvent(r.ctx, "p0@co0.example", db.SuppressComplaint, "arf:report-1"); err != nil {
				t.Error(err)
			}
		}
		return nil
	}
	counts = r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{})))
	wantOutreachCounts(t, counts, Counts{"queued": 3, "sent": 2, "paused": 1, "paused_complaint": 1})
	if m.callCount() != 12 {
		t.Fatalf("mailer calls = %d, want 12: the complaint stops the batch", m.callCount())
	}
	counts = r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{})))
	wantOutreachCounts(t, counts, Counts{"queued": 0, "sent": 0, "paused": 1, "paused_complaint": 1, "paused_bounce_rate": 0})
	p, err := r.store.OutreachPause(r.ctx)
	if err != nil || p.Why() != "a complaint from p0@co0.example (arf:report-1)" {
		t.Fatalf("OutreachPause = %+v, %v", p, err)
	}
}

func TestBizDevFollowsTheWarmupRamp(t *testing.T) {
	r := newOutreachRig(t)
	r.guarded(db.Guard{WarmupStart: 3, WarmupDays: 10})
	for i := range 6 {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	m := &outreachMailer{mode: MailModeSMTP}
	// Day 1: 3 of the daily 200.
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"queued": 6, "sent": 3, "capped": 3})
	w, err := r.store.Warmup(r.ctx, 200)
	if err != nil || !w.Started || w.Day != 1 || w.Cap != 3 {
		t.Fatalf("Warmup = %+v, %v", w, err)
	}
}
