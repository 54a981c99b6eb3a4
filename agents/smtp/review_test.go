package smtp

import (
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

// With the review switch on, BizDev writes drafts, not outbox messages, and
// nothing reaches the SMTP server until an admin approves; an approved
// first step is then sent once (later runs send nothing more), a follow-up
// is drafted when due and, approved, arrives threaded under the first
// e-mail; a rejected draft sends nothing and ends the lead's sequence.
func TestReviewDraftsAreSentOnceApproved(t *testing.T) {
	r := agentstest.NewRig(t) // Monday 2 June 2025, 09:00 UTC
	sink := agentstest.StartMailSink(t, 0)
	from := "outreach@hoss.example"
	mailer, err := New(Options{Host: sink.Host, Port: sink.Port, TLS: NoTLS, From: from, FromName: "Hoss Research", Now: r.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	opts := agentstest.BizDevOptions(&agentstest.Sleeps{})
	opts.From, opts.Review = from, true
	keen := r.AddLead("Kim Keen", "kim@keen.example", "Keen Co", "B2B SaaS")
	nope := r.AddLead("Nat Nope", "nat@nope.example", "Nope Co", "B2B SaaS")
	bizdev := r.BizDev(mailer, opts)

	agentstest.WantCounts(t, r.Run(bizdev), agents.Counts{"drafted": 2, "queued": 0, "sent": 0})
	agentstest.WantCounts(t, r.Run(bizdev), agents.Counts{"drafted": 0, "queued": 0, "sent": 0})
	if n := r.Count("SELECT COUNT(*) FROM messages"); n != 0 {
		t.Fatalf("%d outbox messages with review on, want 0", n)
	}
	if n := len(sink.Mails()); n != 0 {
		t.Fatalf("%d mails reached the server before any approval", n)
	}
	drafts, err := r.Store.WaitingDrafts(r.Ctx, 10)
	if err != nil || len(drafts) != 2 {
		t.Fatalf("WaitingDrafts = %d, %v", len(drafts), err)
	}
	byLead := map[int64]db.WaitingDraft{}
	for _, d := range drafts {
		byLead[d.LeadID] = d
		if strings.Contains(d.Body, "/unsubscribe/") {
			t.Errorf("draft %d carries a footer before it has a message: %q", d.ID, d.Body)
		}
	}
	tokens, err := agents.LoadUnsubscribeTokens(r.Ctx, r.Store, r.Env().Random)
	if err != nil {
		t.Fatal(err)
	}

	if out, err := r.Store.RejectDraft(r.Ctx, byLead[nope.ID].ID, 1, "admin@hoss.example"); err != nil || !out.Done {
		t.Fatalf("RejectDraft = %+v, %v", out, err)
	}
	out, err := agents.ApproveDraft(r.Ctx, r.Store, tokens, bizdev.Footer(), byLead[keen.ID].ID, 1, "admin@hoss.example")
	if err != nil || !out.Done {
		t.Fatalf("ApproveDraft = %+v, %v", out, err)
	}
	agentstest.WantCounts(t, r.Run(bizdev), agents.Counts{"sent": 1, "drafted": 0})
	for range 3 {
		r.Clock.Advance(time.Hour)
		agentstest.WantCounts(t, r.Run(bizdev), agents.Counts{"sent": 0, "drafted": 0})
	}
	mails := sink.Mails()
	if len(mails) != 1 || mails[0].To[0] != keen.EmailAddr() {
		t.Fatalf("mails after approval: %d (want one, to %s)", len(mails), keen.EmailAddr())
	}
	first := mails[0]
	if first.Subject != byLead[keen.ID].Subject {
		t.Errorf("subject %q, want the draft's %q", first.Subject, byLead[keen.ID].Subject)
	}
	wantUnsub := "https://hoss.example/unsubscribe/" + tokens.UnsubscribeToken(out.MessageID)
	if !strings.Contains(first.Text, wantUnsub) || first.Header.Get("List-Unsubscribe") != "<"+wantUnsub+">" {
		t.Errorf("the approved e-mail does not carry its message's unsubscribe link %s: %q", wantUnsub, first.Text)
	}
	if id := agents.MessageFromReference(first.Header.Get("Message-Id")); id != out.MessageID {
		t.Errorf("Message-ID %q names message %d, want %d", first.Header.Get("Message-Id"), id, out.MessageID)
	}
	if l := r.Lead(nope.ID); l.SequenceStop != db.DraftRejectedStop || l.Status != db.LeadNew {
		t.Errorf("rejected lead: stop %q, status %s", l.SequenceStop, l.Status)
	}

	// Thursday: the second step is due, and drafted, not sent.
	r.Clock.Advance(3 * 24 * time.Hour)
	agentstest.WantCounts(t, r.Run(bizdev), agents.Counts{"drafted": 1, "follow_ups": 1, "sent": 0})
	agentstest.WantCounts(t, r.Run(bizdev), agents.Counts{"drafted": 0, "sent": 0})
	if n := len(sink.Mails()); n != 1 {
		t.Fatalf("%d mails before the follow-up's approval, want 1", n)
	}
	drafts, err = r.Store.WaitingDrafts(r.Ctx, 10)
	if err != nil || len(drafts) != 1 || drafts[0].Step != 2 || drafts[0].LeadID != keen.ID {
		t.Fatalf("WaitingDrafts = %+v, %v", drafts, err)
	}
	follow := drafts[0]
	if follow.InReplyTo != first.Header.Get("Message-Id") || follow.Subject != "Re: "+first.Subject {
		t.Errorf("follow-up draft threads under %q with %q; want %q, %q", follow.InReplyTo, follow.Subject, first.Header.Get("Message-Id"), "Re: "+first.Subject)
	}
	if l := r.Lead(keen.ID); l.NextStepAt != nil || l.SequenceStep != 1 {
		t.Errorf("lead while its follow-up waits: step %d, next %v", l.SequenceStep, l.NextStepAt)
	}
	if out, err = r.Store.EditDraft(r.Ctx, follow.ID, 1, follow.Subject, "Kim, a short note from me.\n\nSam"); err != nil || !out.Done {
		t.Fatalf("EditDraft = %+v, %v", out, err)
	}
	if out, err = agents.ApproveDraft(r.Ctx, r.Store, tokens, bizdev.Footer(), follow.ID, 2, "admin@hoss.example"); err != nil || !out.Done {
		t.Fatalf("ApproveDraft = %+v, %v", out, err)
	}
	agentstest.WantCounts(t, r.Run(bizdev), agents.Counts{"sent": 1})
	agentstest.WantCounts(t, r.Run(bizdev), agents.Counts{"sent": 0})
	mails = sink.Mails()
	if len(mails) != 2 {
		t.Fatalf("%d mails, want 2", len(mails))
	}
	second := mails[1]
	if second.Header.Get("In-Reply-To") != first.Header.Get("Message-Id") || second.Subject != "Re: "+first.Subject ||
		!strings.HasPrefix(second.Text, "Kim, a short note from me.") {
		t.Errorf("approved follow-up: In-Reply-To %q subject %q text %q", second.Header.Get("In-Reply-To"), second.Subject, second.Text)
	}
	if l := r.Lead(keen.ID); l.SequenceStep != 2 || l.NextStepAt == nil {
		t.Errorf("lead after the approved follow-up: step %d, next %v", l.SequenceStep, l.NextStepAt)
	}
	agentstest.RequireInvariants(t, r.Ctx, r.Store, r.Clock.Now())
}
