package agents

import (
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// A due follow-up takes the cycle's place before any new lead: with one
// message per cycle and new leads arriving every cycle, the lead waiting for
// its second step still gets it, and the new leads wait their turn.
func TestBizDevQueuesDueFollowUpsBeforeNewLeads(t *testing.T) {
	r := newOutreachRig(t)
	first := r.addLead("Ana Lopez", "ana@alpha-agency.example", "Alpha Agency", "digital marketing agency")
	opts := bizdevOpts(&outreachSleeps{})
	opts.MaxPerCycle = 1
	mailer := NewDryRunMailer()
	wantOutreachCounts(t, r.run(r.bizdev(mailer, opts)), Counts{"queued": 1, "dry_run": 1})
	if l := r.lead(first.ID); l.SequenceStep != 1 || l.NextStepAt == nil {
		t.Fatalf("after the first e-mail: step %d next %v", l.SequenceStep, l.NextStepAt)
	}
	// Two weeks on, the follow-up is due and new leads keep coming.
	r.clock.Advance(14 * 24 * time.Hour)
	fresh := r.addLead("Ben Ode", "ben@beta-soft.example", "Beta Soft", "B2B SaaS")
	wantOutreachCounts(t, r.run(r.bizdev(mailer, opts)), Counts{"queued": 1, "follow_ups": 1, "dry_run": 1})
	if l := r.lead(first.ID); l.SequenceStep != 2 {
		t.Errorf("the waiting lead is at step %d, want 2", l.SequenceStep)
	}
	if l := r.lead(fresh.ID); l.Status != db.LeadNew {
		t.Errorf("the new lead is %s, want new (its turn is next)", l.Status)
	}
	wantOutreachCounts(t, r.run(r.bizdev(mailer, opts)), Counts{"queued": 1, "dry_run": 1})
	if l := r.lead(fresh.ID); l.Status != db.LeadContacted {
		t.Errorf("the new lead is %s after the next cycle, want contacted", l.Status)
	}
}

// A follow-up queued while the app ran in DRY_RUN and still waiting when it
// restarts in a real mode is withdrawn, not sent: a real "Re:" under an
// e-mail that never left would answer nothing.
func TestBizDevWithdrawsADryRunFollowUpInARealMode(t *testing.T) {
	r := newOutreachRig(t)
	lead := r.addLead("Ana Lopez", "ana@alpha-agency.example", "Alpha Agency", "digital marketing agency")
	opts := bizdevOpts(&outreachSleeps{})
	wantOutreachCounts(t, r.run(r.bizdev(NewDryRunMailer(), opts)), Counts{"queued": 1, "dry_run": 1})
	r.clock.Advance(14 * 24 * time.Hour)
	m, err := r.store.QueueFollowUp(r.ctx, lead.ID, 2, func(*db.Lead, int64) (db.OutboxDraft, error) {
		return db.OutboxDraft{Template: "t/step2", Subject: "Re: hello", Body: "Following up."}, nil
	})
	if err != nil || m == nil {
		t.Fatalf("QueueFollowUp: %v, %v", m, err)
	}
	real := &outreachMailer{mode: MailModeSMTP}
	counts := r.run(r.bizdev(real, opts))
	if len(real.sent) != 0 {
		t.Fatalf("sent %d e-mails for real to a lead contacted only in DRY_RUN: %+v", len(real.sent), real.sent)
	}
	if counts["suppressed"] != 1 {
		t.Errorf("counts %v, want suppressed 1", counts)
	}
	ms := r.messages(lead.ID)
	if got := ms[len(ms)-1]; got.ID != m.ID || got.Status != db.MessageSuppressed {
		t.Errorf("follow-up %d is %s, want suppressed", got.ID, got.Status)
	}
	if l := r.lead(lead.ID); l.SequenceStop != dryRunSequenceStop || l.NextStepAt != nil {
		t.Errorf("lead sequence: stop %q next %v", l.SequenceStop, l.NextStepAt)
	}
}
