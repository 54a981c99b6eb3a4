package agents

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

func rawReply(from, inReplyTo, text string) []byte {
	return []byte(fmt.Sprintf("From: %s\r\nTo: outreach@hoss.example\r\nSubject: Re: hello\r\nMessage-ID: <%d@x.example>\r\nIn-Reply-To: <%s>\r\nContent-Type: text/plain\r\n\r\n%s\r\n",
		from, time.Now().UnixNano(), inReplyTo, text))
}

// Our Message-IDs can be guessed: a reply naming one counts only from the
// address the message went to (or its domain).
func TestAReplyFromAStrangerNamingOurMessageIsNotItsLeads(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	l := w.lead(1, db.LeadNew)
	bizdev := NewBizDevCycle(w.store, w.env, mailer, BizDevOptions{MaxPerCycle: 10, MaxPerHour: 100, MaxPerDay: 100,
		Sleep: noSleep, From: "outreach@hoss.example", BaseURL: "https://hoss.example"})
	w.run(bizdev)
	var msgID int64
	if err := w.store.Bun().NewRaw("SELECT id FROM messages WHERE lead_id = ?", l.ID).Scan(w.ctx, &msgID); err != nil {
		t.Fatal(err)
	}
	replies := NewRepliesCycle(w.store, w.env, nil, RepliesOptions{})
	ref := OutboxMessageID(msgID, "outreach@hoss.example")
	if got, err := replies.Apply(w.ctx, rawReply("stranger@evil.example", ref, "Not interested."), false); err != nil || got != repliesUnmatched {
		t.Errorf("a stranger's reply = %q, %v; want unmatched", got, err)
	}
	if got := w.count("SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'contacted'", l.ID); got != 1 {
		t.Error("the stranger moved the lead")
	}
	// A colleague at the lead's domain is heard.
	if got, err := replies.Apply(w.ctx, rawReply("boss@lead001.example", ref, "Please remove me from your list."), false); err != nil || got != repliesStored {
		t.Fatalf("a colleague's reply = %q, %v", got, err)
	}
	for _, addr := range []string{l.EmailAddr(), "boss@lead001.example"} {
		if ok, _ := w.store.IsSuppressed(w.ctx, addr); !ok {
			t.Errorf("%s not suppressed after the unsubscribe request", addr)
		}
	}
}

// A lead contacted only in DRY_RUN gets no real follow-up under an e-mail
// that never left: its sequence stops until it is re-queued.
func TestADryRunContactGetsNoRealFollowUp(t *testing.T) {
	w := newFulfilmentWorld(t)
	l := w.lead(1, db.LeadNew)
	opts := BizDevOptions{MaxPerCycle: 10, MaxPerHour: 100, MaxPerDay: 100, Sleep: noSleep, From: "outreach@hoss.example", BaseURL: "https://hoss.example"}
	w.run(NewBizDevCycle(w.store, w.env, NewDryRunMailer(), opts))
	w.clock.Advance(10 * 24 * time.Hour)
	real := &outreachMailer{mode: MailModeSMTP}
	w.run(NewBizDevCycle(w.store, w.env, real, opts))
	if len(real.sent) != 0 {
		t.Errorf("sent for real: %v", real.sent)
	}
	var got db.Lead
	if err := w.store.Bun().NewSelect().Model(&got).Where("l.id = ?", l.ID).Scan(w.ctx); err != nil {
		t.Fatal(err)
	}
	if got.NextStepAt != nil || got.SequenceStop == "" {
		t.Errorf("the dry-run lead's sequence runs on: %+v", got)
	}
}

// An operator's change of class undoes the rules' decision: a terse "No."
// that closed the lead, sorted interested, opens it for onboarding.
func TestAnOperatorsClassReopensALeadTheRulesClosed(t *testing.T) {
	w := newFulfilmentWorld(t)
	l := w.lead(1, db.LeadContacted)
	replies := NewRepliesCycle(w.store, w.env, nil, RepliesOptions{})
	if got, err := replies.Apply(w.ctx, rawReply(l.EmailAddr(), "none@x", "No."), false); err != nil || got != repliesStored {
		t.Fatalf("reply = %q, %v", got, err)
	}
	var r db.Reply
	if err := w.store.Bun().NewSelect().Model(&r).Where("lead_id = ?", l.ID).Scan(w.ctx); err != nil {
		t.Fatal(err)
	}
	if r.Class != db.ReplyNotInterested || w.count("SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'dead'", l.ID) != 1 {
		t.Fatalf("the rules: class %s", r.Class)
	}
	_, out, err := w.store.ReclassifyReply(w.ctx, r.ID, db.ReplyInterested, "admin@hoss.example")
	if err != nil || out.LeadMoved != db.LeadResponded {
		t.Fatalf("ReclassifyReply = %+v, %v", out, err)
	}
	if err := w.store.Bun().NewSelect().Model(&r).Where("id = ?", r.ID).Scan(w.ctx); err != nil {
		t.Fatal(err)
	}
	if r.Class != db.ReplyInterested || r.ClassBy != "operator" || r.ClassReason != "changed by admin@hoss.example from not_interested" {
		t.Errorf("reply after the change = %+v", r)
	}
}

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }
