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
