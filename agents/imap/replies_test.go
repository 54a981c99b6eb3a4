package imap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/agents/smtp"
	"github.com/hossagent/hossagent/db"
)

// The conversation over real SMTP and IMAP servers: a lead who answers
// "interested" to the second step is converted to a customer and gets no
// third; a lead whose first e-mail bounces (a Postfix DSN in the mailbox)
// is suppressed and gets nothing more; an out-of-office moves the next step
// to the return date. Every message is marked handled on the server only
// once it is stored.
func TestRepliesFromTheMailboxSortAndAct(t *testing.T) {
	r := agentstest.NewRig(t) // Monday 2 June 2025, 09:00 UTC
	sink := agentstest.StartMailSink(t, 0)
	from := "outreach@hoss.example"
	mailer, err := smtp.New(smtp.Options{Host: sink.Host, Port: sink.Port, TLS: smtp.NoTLS, From: from, FromName: "Hoss Research", Now: r.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, serverOptions{})
	box := open(t, ts.options())
	opts := agentstest.BizDevOptions(&agentstest.Sleeps{})
	opts.From = from
	keen := r.AddLead("Kim Keen", "kim@keen.example", "Keen Co", "B2B SaaS")
	gone := r.AddLead("Ghost", "ghost@gone.example", "Gone Co", "B2B SaaS")
	away := r.AddLead("Avery Away", "avery@away.example", "Away Co", "B2B SaaS")
	replies := agents.NewRepliesCycle(r.Store, r.Env(), box, agents.RepliesOptions{})
	onboarding := agents.NewOnboardingCycle(r.Store, r.Env(), agents.DefaultCatalogue("usd"), agents.OnboardingOptions{})

	r.Run(r.BizDev(mailer, opts)) // step 1 to all three
	firstTo := func(addr string) agentstest.ReceivedMail {
		for _, m := range sink.Mails() {
			if m.To[0] == addr {
				return m
			}
		}
		t.Fatalf("nothing reached %s", addr)
		return agentstest.ReceivedMail{}
	}
	// The bounce of Ghost's first e-mail, as Postfix writes it.
	ts.appendMail(t, crlf(postfixDSN(gone.EmailAddr(), firstTo(gone.EmailAddr()).Header.Get("Message-Id"))))
	// Avery is away until Monday 16 June.
	ts.appendMail(t, crlf(fmt.Sprintf(`From: Avery Away <avery@away.example>
To: %s
Subject: Automatic reply: %s
Message-ID: <ooo-1@away.example>
In-Reply-To: %s
Auto-Submitted: auto-replied
Date: Mon, 2 Jun 2025 09:30:00 +0000
Content-Type: text/plain; charset=utf-8

I am out of the office until Monday, 16 June 2025, with limited access to e-mail.
`, from, firstTo(away.EmailAddr()).Subject, firstTo(away.EmailAddr()).Header.Get("Message-Id"))))
	agentstest.WantCounts(t, r.Run(replies), agents.Counts{"fetched": 2, "stored": 2})
	if l := r.Lead(gone.ID); l.Status != db.LeadBounced {
		t.Errorf("bounced lead is %s", l.Status)
	}
	if ok, err := r.Store.IsSuppressed(r.Ctx, gone.EmailAddr()); err != nil || !ok {
		t.Errorf("bounced address suppressed = %v, %v", ok, err)
	}
	if l := r.Lead(away.ID); l.NextStepAt == nil || l.NextStepAt.Before(time.Date(2025, 6, 16, 0, 0, 0, 0, time.UTC)) || l.Status != db.LeadContacted {
		t.Errorf("out-of-office lead: next step %v, status %s", l.NextStepAt, l.Status)
	}
	agentstest.WantCounts(t, r.Run(replies), agents.Counts{"fetched": 0}) // handled on the server

	// Thursday: the second step; Kim answers it.
	r.Clock.Advance(3 * 24 * time.Hour)
	r.Run(r.BizDev(mailer, opts))
	var second agentstest.ReceivedMail
	for _, m := range sink.Mails() {
		if m.To[0] == keen.EmailAddr() && strings.HasPrefix(m.Subject, "Re: ") {
			second = m
		}
	}
	if second.Subject == "" {
		t.Fatal("Kim got no second step")
	}
	for _, m := range sink.Mails() {
		if m.To[0] == gone.EmailAddr() && strings.HasPrefix(m.Subject, "Re: ") {
			t.Error("the bounced lead got a follow-up")
		}
		if m.To[0] == away.EmailAddr() && strings.HasPrefix(m.Subject, "Re: ") {
			t.Error("the lead out of office got a follow-up before the return date")
		}
	}
	ts.appendMail(t, crlf(fmt.Sprintf(`From: Kim Keen <kim@keen.example>
To: %s
Subject: %s
Message-ID: <kim-1@keen.example>
In-Reply-To: %s
References: %s %s
Date: Thu, 5 Jun 2025 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

Sounds good, let's talk next week.

On Thu, 5 Jun 2025, Hoss Research wrote:
> A quick follow-up on my note below
`, from, "Re: "+second.Subject, second.Header.Get("Message-Id"), firstTo(keen.EmailAddr()).Header.Get("Message-Id"), second.Header.Get("Message-Id"))))

	// The process dies after the store and before the mark: the message is
	// fetched again and stored once.
	crashing := &markFails{Mailbox: box}
	if _, err := agents.NewRepliesCycle(r.Store, r.Env(), crashing, agents.RepliesOptions{}).Run(r.Ctx); err == nil {
		t.Fatal("a lost mark reported no error")
	}
	agentstest.WantCounts(t, r.Run(replies), agents.Counts{"fetched": 1, "duplicate": 1, "stored": 0})
	if n := r.Count("SELECT COUNT(*) FROM replies WHERE lead_id = ?", keen.ID); n != 1 {
		t.Errorf("Kim's replies stored = %d", n)
	}
	var reply db.Reply
	if err := r.Store.Bun().NewSelect().Model(&reply).Where("lead_id = ?", keen.ID).Scan(r.Ctx); err != nil {
		t.Fatal(err)
	}
	if reply.Class != db.ReplyInterested || reply.ClassReason == "" || reply.ClassBy != "rules" || reply.MessageID == nil {
		t.Errorf("Kim's reply = %+v", reply)
	}
	r.Run(onboarding)
	if l := r.Lead(keen.ID); l.Status != db.LeadConverted {
		t.Errorf("Kim is %s, want converted", l.Status)
	}

	// A week later: no third step for Kim, nothing for Ghost; Avery's
	// second step comes after the return date.
	before := len(sink.Mails())
	for range 14 * 24 {
		r.Clock.Advance(time.Hour)
		r.Run(r.BizDev(mailer, opts))
	}
	for _, m := range sink.Mails()[before:] {
		switch m.To[0] {
		case keen.EmailAddr(), gone.EmailAddr():
			t.Errorf("%s got %q after answering or bouncing", m.To[0], m.Subject)
		}
	}
	if n := r.Count("SELECT COUNT(*) FROM messages WHERE lead_id = ? AND step = 2 AND status = 'sent' AND sent_at >= ?", away.ID,
		time.Date(2025, 6, 16, 0, 0, 0, 0, time.UTC)); n != 1 {
		t.Errorf("Avery's second steps after the return date = %d", n)
	}
}

// markFails is a mailbox whose MarkHandled never reaches the server: the
// process died after storing.
type markFails struct{ agents.Mailbox }

func (m *markFails) MarkHandled(context.Context, []uint32) error {
	return errors.New("killed before the mark")
}

func postfixDSN(rcpt, messageID string) string {
	return fmt.Sprintf(`From: MAILER-DAEMON@mx.gone.example (Mail Delivery System)
To: outreach@hoss.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-1@mx.gone.example>
Date: Mon, 2 Jun 2025 09:05:00 +0000
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.gone.example.
I'm sorry to have to inform you that your message could not be delivered.

<%[1]s>: host mx.gone.example said: 550 5.1.1 <%[1]s>: Recipient address rejected: User unknown

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.gone.example

Final-Recipient: rfc822; %[1]s
Original-Recipient: rfc822;%[1]s
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <%[1]s>: Recipient address rejected: User unknown

--B1
Content-Type: text/rfc822-headers

From: Hoss Research <outreach@hoss.example>
To: %[1]s
Subject: Hello
Message-ID: %[2]s

--B1--
`, rcpt, messageID)
}

// A feedback-loop report (ARF, Yahoo's shape) in the replies mailbox is a
// complaint: the address is suppressed as a complaint, the lead is
// unsubscribed and gets no further step, and the report is stored once,
// even when it is fetched again after a crash before the mark.
func TestAComplaintInTheMailboxSuppressesTheAddress(t *testing.T) {
	r := agentstest.NewRig(t)
	sink := agentstest.StartMailSink(t, 0)
	from := "outreach@hoss.example"
	mailer, err := smtp.New(smtp.Options{Host: sink.Host, Port: sink.Port, TLS: smtp.NoTLS, From: from, FromName: "Hoss Research", Now: r.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, serverOptions{})
	box := open(t, ts.options())
	opts := agentstest.BizDevOptions(&agentstest.Sleeps{})
	opts.From = from
	sam := r.AddLead("Sam Smith", "sam.smith@yahoo.example", "Smith Co", "B2B SaaS")
	r.Run(r.BizDev(mailer, opts))
	mails := sink.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails sent, want 1", len(mails))
	}
	ts.appendMail(t, crlf(yahooARF(sam.EmailAddr(), mails[0].Header.Get("Message-Id"), mails[0].Subject)))

	crashing := &markFails{Mailbox: box}
	if _, err := agents.NewRepliesCycle(r.Store, r.Env(), crashing, agents.RepliesOptions{}).Run(r.Ctx); err == nil {
		t.Fatal("a lost mark reported no error")
	}
	replies := agents.NewRepliesCycle(r.Store, r.Env(), box, agents.RepliesOptions{})
	agentstest.WantCounts(t, r.Run(replies), agents.Counts{"fetched": 1, "duplicate": 1, "stored": 0})
	agentstest.WantCounts(t, r.Run(replies), agents.Counts{"fetched": 0})

	var s db.Suppression
	if err := r.Store.Bun().NewSelect().Model(&s).Where("value = ?", sam.EmailAddr()).Scan(r.Ctx); err != nil {
		t.Fatalf("not suppressed: %v", err)
	}
	if s.Reason != db.SuppressComplaint || s.Source != "arf:abuse" {
		t.Errorf("suppression = %+v", s)
	}
	if l := r.Lead(sam.ID); l.Status != db.LeadUnsubscribed || l.NextStepAt != nil {
		t.Errorf("lead after the complaint: %s, next step %v", l.Status, l.NextStepAt)
	}
	if n := r.Count("SELECT COUNT(*) FROM replies WHERE lead_id = ? AND class = 'unsubscribe' AND message_id IS NOT NULL", sam.ID); n != 1 {
		t.Errorf("%d reports stored, want 1", n)
	}
	for range 10 * 24 {
		r.Clock.Advance(time.Hour)
		r.Run(r.BizDev(mailer, opts))
	}
	if n := len(sink.Mails()); n != 1 {
		t.Errorf("%d mails after the complaint, want none after the first", n-1)
	}
}

func yahooARF(rcpt, messageID, subject string) string {
	return fmt.Sprintf(`Return-Path: <feedback@arf.mail.yahoo.com>
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: outreach@hoss.example
Subject: FW: %[3]s
Message-ID: <1749000000.1234@arf.mail.yahoo.com>
Date: Mon, 2 Jun 2025 11:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type="feedback-report"; boundary="_----------=_1749000000"

This is a multi-part message in MIME format.

--_----------=_1749000000
Content-Type: text/plain; charset="UTF-8"

This is an email abuse report for an email message from hoss.example on Mon, 2 Jun 2025 09:01:00 +0000

--_----------=_1749000000
Content-Type: message/feedback-report
Content-Disposition: inline; filename="feedback-report.txt"

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 0.1
Original-Mail-From: <outreach@hoss.example>
Original-Rcpt-To: %[1]s
Received-Date: Mon, 2 Jun 2025 09:01:00 +0000
Reported-Domain: hoss.example

--_----------=_1749000000
Content-Type: message/rfc822
Content-Disposition: inline

From: Hoss Research <outreach@hoss.example>
To: %[1]s
Subject: %[3]s
Date: Mon, 2 Jun 2025 09:00:30 +0000
Message-ID: %[2]s
Content-Type: text/plain; charset=utf-8

Hi Sam,

--_----------=_1749000000--
`, rcpt, messageID, subject)
}
