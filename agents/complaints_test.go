package agents

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// Feedback-loop reports (ARF, RFC 5965) shaped as Microsoft's JMRP
// (Hotmail/Outlook.com) and Yahoo's CFL send them, and the variants a
// provider writes: the recipient redacted, a not-spam report.
func TestParseAndSortFeedbackReports(t *testing.T) {
	hotmail := string(readReply(t, "arf_hotmail.eml"))
	redacted := strings.NewReplacer(
		"Original-Rcpt-To: <dana.doe@hotmail.com>\n", "",
		"X-HmXmrOriginalRecipient: <dana.doe@hotmail.com>\n", "",
		"To: dana.doe@hotmail.com\n", "To: **********@hotmail.com\n").Replace(hotmail)
	notSpam := strings.Replace(hotmail, "Feedback-Type: abuse", "Feedback-Type: not-spam", 1)
	for _, tc := range []struct {
		name, raw                                  string
		complaint                                  bool
		feedbackType, userAgent, original, sortsAs string
		recipients                                 []string
		reason                                     string
	}{
		{"hotmail", hotmail, true, "abuse", "Hotmail FBL", "hossagent.outbox.4242@hoss.example", ReplyUnsubscribe,
			[]string{"dana.doe@hotmail.com"}, "spam complaint: a feedback report (ARF, feedback type abuse, from Hotmail FBL) about dana.doe@hotmail.com"},
		{"yahoo", string(readReply(t, "arf_yahoo.eml")), true, "abuse", "Yahoo!-Mail-Feedback/2.0", "hossagent.outbox.77@hoss.example", ReplyUnsubscribe,
			[]string{"sam.smith@yahoo.com"}, "from Yahoo!-Mail-Feedback/2.0) about sam.smith@yahoo.com"},
		{"hotmail, recipient redacted", redacted, true, "abuse", "Hotmail FBL", "hossagent.outbox.4242@hoss.example", ReplyUnsubscribe,
			nil, "with the recipient redacted"},
		{"not-spam", notSpam, true, "not-spam", "Hotmail FBL", "hossagent.outbox.4242@hoss.example", ReplyOther,
			[]string{"dana.doe@hotmail.com"}, "not a complaint"},
	} {
		for _, wire := range []bool{false, true} {
			raw := []byte(tc.raw)
			if wire {
				raw = crlf(raw)
			}
			p, err := ParseInbound(raw)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			c := p.Complaint
			if c == nil {
				t.Errorf("%s (crlf %v): no complaint read", tc.name, wire)
				continue
			}
			if p.DSN != nil {
				t.Errorf("%s: read as a DSN too: %+v", tc.name, p.DSN)
			}
			if c.FeedbackType != tc.feedbackType || c.UserAgent != tc.userAgent || c.OriginalMessageID != tc.original || !slices.Equal(c.Recipients, tc.recipients) {
				t.Errorf("%s (crlf %v): complaint %+v; want %s / %s / %s / %q", tc.name, wire, c, tc.feedbackType, tc.userAgent, tc.original, tc.recipients)
			}
			s := SortReply(p, replyNow)
			if s.Class != tc.sortsAs || !s.Automatic || s.Unsure || s.Complaint != (tc.sortsAs == ReplyUnsubscribe) || !strings.Contains(s.Reason, tc.reason) {
				t.Errorf("%s (crlf %v): sorted %+v; want %s, …%q…", tc.name, wire, s, tc.sortsAs, tc.reason)
			}
		}
	}
	y, _ := ParseInbound(readReply(t, "arf_yahoo.eml"))
	if y.Complaint.ReportedDomain != "hoss.example" || y.From != "feedback@arf.mail.yahoo.com" {
		t.Errorf("yahoo report: %+v from %q", y.Complaint, y.From)
	}
	h, _ := ParseInbound(readReply(t, "arf_hotmail.eml"))
	if h.Complaint.SourceIP != "203.0.113.25" || complaintSource(*h.Complaint) != "arf:abuse" {
		t.Errorf("hotmail report: %+v, source %q", h.Complaint, complaintSource(*h.Complaint))
	}
	if got := complaintSource(Complaint{UserAgent: "SomeISP FBL/1.0"}); got != "arf:SomeISP FBL/1.0" {
		t.Errorf("source without a feedback type = %q", got)
	}
	// An ordinary reply and a DSN are no complaint.
	for _, f := range []string{"postfix_dsn.eml", "sounds_good.eml"} {
		if p, _ := ParseInbound(readReply(t, f)); p.Complaint != nil {
			t.Errorf("%s read as a complaint: %+v", f, p.Complaint)
		}
	}
}

// arfFor is a Yahoo-shaped report about message id sent to rcpt ("" for a
// redacted recipient).
func arfFor(t *testing.T, rcpt, messageID string) []byte {
	raw := string(readReply(t, "arf_yahoo.eml"))
	raw = strings.ReplaceAll(raw, "hossagent.outbox.77@hoss.example", messageID)
	if rcpt == "" {
		raw = strings.NewReplacer("Original-Rcpt-To: sam.smith@yahoo.com\n", "", "To: sam.smith@yahoo.com\n", "To: redacted@yahoo.com\n").Replace(raw)
	} else {
		raw = strings.ReplaceAll(raw, "sam.smith@yahoo.com", rcpt)
	}
	return crlf([]byte(raw))
}

// A complaint suppresses the address as a complaint, moves the lead to
// unsubscribed, ends its sequence, and is stored once; it is matched by our
// Message-ID even when the recipient is redacted, and a report naming
// another recipient than the one our message went to is not that lead's.
func TestAComplaintSuppressesAndEndsTheSequence(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	first, second := w.lead(1, db.LeadNew), w.lead(2, db.LeadNew)
	bizdev := NewBizDevCycle(w.store, w.env, mailer, BizDevOptions{MaxPerCycle: 10, MaxPerHour: 100, MaxPerDay: 100,
		Sleep: noSleep, From: "outreach@hoss.example", BaseURL: "https://hoss.example"})
	w.run(bizdev)
	msgOf := func(l *db.Lead) string {
		var id int64
		if err := w.store.Bun().NewRaw("SELECT id FROM messages WHERE lead_id = ?", l.ID).Scan(w.ctx, &id); err != nil {
			t.Fatal(err)
		}
		return OutboxMessageID(id, "outreach@hoss.example")
	}
	replies := NewRepliesCycle(w.store, w.env, nil, RepliesOptions{})

	// Naming the first lead's message but another recipient: not its lead,
	// and no lead has that address.
	if got, err := replies.Apply(w.ctx, arfFor(t, "someone@else.example", msgOf(first)), false); err != nil || got != repliesUnmatched {
		t.Fatalf("a report about another recipient = %q, %v; want unmatched", got, err)
	}
	// The recipient named.
	for range 2 { // the second delivery changes nothing
		if _, err := replies.Apply(w.ctx, arfFor(t, first.EmailAddr(), msgOf(first)), false); err != nil {
			t.Fatal(err)
		}
	}
	// The recipient redacted: matched by our Message-ID alone.
	if got, err := replies.Apply(w.ctx, arfFor(t, "", msgOf(second)), false); err != nil || got != repliesStored {
		t.Fatalf("a redacted report = %q, %v", got, err)
	}
	for _, l := range []*db.Lead{first, second} {
		var s db.Suppression
		if err := w.store.Bun().NewSelect().Model(&s).Where("value = ?", l.EmailAddr()).Scan(w.ctx); err != nil {
			t.Fatalf("%s not suppressed: %v", l.EmailAddr(), err)
		}
		if s.Reason != db.SuppressComplaint || s.Source != "arf:abuse" {
			t.Errorf("suppression of %s = %+v", l.EmailAddr(), s)
		}
		var got db.Lead
		if err := w.store.Bun().NewSelect().Model(&got).Where("l.id = ?", l.ID).Scan(w.ctx); err != nil {
			t.Fatal(err)
		}
		if got.Status != db.LeadUnsubscribed || got.NextStepAt != nil || got.SequenceStop != "spam complaint" {
			t.Errorf("lead %d after the complaint: status %s, next %v, stop %q", l.ID, got.Status, got.NextStepAt, got.SequenceStop)
		}
		if n := w.count("SELECT COUNT(*) FROM replies WHERE lead_id = ? AND class = 'unsubscribe' AND class_reason LIKE 'spam complaint%'", l.ID); n != 1 {
			t.Errorf("lead %d: %d complaint reports stored, want 1", l.ID, n)
		}
	}
	if n := w.count("SELECT COUNT(*) FROM suppressions WHERE value = 'someone@else.example'"); n != 0 {
		t.Error("the unmatched report suppressed its address")
	}
	if n := w.count("SELECT COUNT(*) FROM suppressions"); n != 2 {
		t.Errorf("%d suppressions, want 2", n)
	}
}

// SendGrid's spamreport event takes the same path (RecordComplaint): the
// lead's sequence ends too.
func TestASendGridSpamReportEndsTheSequence(t *testing.T) {
	w := newFulfilmentWorld(t)
	l := w.lead(1, db.LeadNew)
	w.run(NewBizDevCycle(w.store, w.env, &outreachMailer{mode: MailModeSMTP}, BizDevOptions{MaxPerCycle: 10, MaxPerHour: 100, MaxPerDay: 100,
		Sleep: noSleep, From: "outreach@hoss.example", BaseURL: "https://hoss.example"}))
	c, err := w.store.ApplyMailEvent(w.ctx, l.EmailAddr(), db.SuppressComplaint, "sendgrid:spamreport")
	if err != nil || !c.Suppressed || !c.LeadMoved || c.LeadID != l.ID {
		t.Fatalf("ApplyMailEvent = %+v, %v", c, err)
	}
	if n := w.count(fmt.Sprintf("SELECT COUNT(*) FROM leads WHERE id = %d AND next_step_at IS NULL AND sequence_stop = 'spam complaint' AND status = 'unsubscribed'", l.ID)); n != 1 {
		t.Error("the spam report did not end the lead's sequence")
	}
}

// A forged report cannot suppress leads or pause outreach: a feedback part
// inside an ordinary message is no report; a report is matched only by a
// message a provider really accepted from us, never by the addresses it
// names; and of a matched report only the message's own recipient is
// suppressed.
func TestAForgedComplaintActsOnNobody(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	contacted := w.lead(1, db.LeadNew)
	bizdev := NewBizDevCycle(w.store, w.env, mailer, BizDevOptions{MaxPerCycle: 1, MaxPerHour: 100, MaxPerDay: 100,
		Sleep: noSleep, From: "outreach@hoss.example", BaseURL: "https://hoss.example"})
	w.run(bizdev)
	untouched := w.lead(2, db.LeadNew) // never contacted
	var sentID int64
	if err := w.store.Bun().NewRaw("SELECT id FROM messages WHERE lead_id = ?", contacted.ID).Scan(w.ctx, &sentID); err != nil {
		t.Fatal(err)
	}
	replies := NewRepliesCycle(w.store, w.env, nil, RepliesOptions{})

	// A multipart/mixed message from a prankster carrying a feedback part.
	mixed := strings.Replace(string(arfFor(t, untouched.EmailAddr(), "<hossagent.outbox.999@hoss.example>")),
		"report-type=feedback-report", "x-not-a-report=1", 1)
	mixed = strings.Replace(mixed, "multipart/report", "multipart/mixed", 1)
	// A report about a message we never sent, naming a lead.
	unsent := arfFor(t, untouched.EmailAddr(), "<hossagent.outbox.999@hoss.example>")
	for name, raw := range map[string][]byte{"mixed": []byte(mixed), "unsent": unsent} {
		if _, err := replies.Apply(w.ctx, raw, false); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := w.count("SELECT COUNT(*) FROM suppressions"); n != 0 {
			t.Fatalf("%s: %d suppressions, want none", name, n)
		}
	}
	if p, err := w.store.OutreachPause(w.ctx); err != nil || p.Paused {
		t.Fatalf("a forged report paused outreach: %+v, %v", p, err)
	}
	var got db.Lead
	if err := w.store.Bun().NewSelect().Model(&got).Where("l.id = ?", untouched.ID).Scan(w.ctx); err != nil || got.Status != db.LeadNew {
		t.Fatalf("the never-contacted lead = %s, %v", got.Status, err)
	}

	// A real report about our message names a second address besides the
	// recipient (Original-Rcpt-To twice): only the recipient is suppressed.
	two := strings.Replace(string(arfFor(t, contacted.EmailAddr(), OutboxMessageID(sentID, "outreach@hoss.example"))),
		"Original-Rcpt-To: "+contacted.EmailAddr(), "Original-Rcpt-To: "+contacted.EmailAddr()+"\r\nOriginal-Rcpt-To: "+untouched.EmailAddr(), 1)
	if got, err := replies.Apply(w.ctx, []byte(two), false); err != nil || got != repliesStored {
		t.Fatalf("a real report = %q, %v", got, err)
	}
	if n := w.count("SELECT COUNT(*) FROM suppressions WHERE value = ?", untouched.EmailAddr()); n != 0 {
		t.Error("the second address the report named was suppressed")
	}
	if n := w.count("SELECT COUNT(*) FROM suppressions WHERE value = ? AND reason = 'complaint'", contacted.EmailAddr()); n != 1 {
		t.Error("the recipient of our message was not suppressed as a complaint")
	}
	if p, err := w.store.OutreachPause(w.ctx); err != nil || !p.Paused || p.Reason != db.PauseComplaint {
		t.Errorf("the real complaint did not pause outreach: %+v, %v", p, err)
	}
}
