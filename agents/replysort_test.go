package agents

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// replyNow is the tests' clock: Monday 5 January 2026.
var replyNow = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func ymd(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// TestSortRealReplies sorts the real-world-shaped messages of
// testdata/replies, as the wire (CRLF) and as files (LF) give them.
func TestSortRealReplies(t *testing.T) {
	for _, tc := range []struct {
		file, class, reason string // reason: a part the reason must contain
		returnDate          time.Time
		bounced             []string
		hard, automatic     bool
	}{
		{file: "outlook_ooo.eml", class: ReplyOutOfOffice, reason: `Auto-Submitted: auto-replied header and out-of-office wording "out of the office"`,
			returnDate: ymd(2026, 1, 12), automatic: true},
		{file: "gmail_vacation.eml", class: ReplyOutOfOffice, reason: `Auto-Submitted: auto-replied header and out-of-office wording "on vacation"`,
			returnDate: ymd(2026, 1, 19), automatic: true},
		{file: "postfix_dsn.eml", class: ReplyBounce, reason: "DSN: 5.1.1 failed for nobody@old-bakery.example",
			bounced: []string{"nobody@old-bakery.example"}, hard: true, automatic: true},
		{file: "exchange_ndr.eml", class: ReplyBounce, reason: "DSN: 5.1.10 failed for j.doe@fabrikam.example",
			bounced: []string{"j.doe@fabrikam.example"}, hard: true, automatic: true},
		{file: "qmail_failure.eml", class: ReplyBounce, reason: "non-standard bounce from mailer-daemon@mx.tiny-host.example: 5.1.1 failed for sales@closed-shop.example",
			bounced: []string{"sales@closed-shop.example"}, hard: true, automatic: true},
		{file: "delayed_dsn.eml", class: ReplyOther, reason: "DSN: 4.4.1 delayed for owner@slow-florist.example",
			bounced: []string{"owner@slow-florist.example"}, automatic: true},
		{file: "auto_ack.eml", class: ReplyOther, reason: "Auto-Submitted: auto-generated header: an automatic reply without out-of-office wording", automatic: true},
		{file: "remove_me.eml", class: ReplyUnsubscribe, reason: `phrase "please remove me"`},
		{file: "sounds_good.eml", class: ReplyInterested, reason: `phrase "sounds good"`},
		{file: "one_word_no.eml", class: ReplyNotInterested, reason: `one-word reply "no"`},
		{file: "not_now.eml", class: ReplyNotNow, reason: `phrase "not right now"`},
		{file: "html_only.eml", class: ReplyInterested, reason: `phrase "interested"`},
		{file: "quoted_unsubscribe.eml", class: ReplyInterested, reason: `phrase "interested"`},
		{file: "latin1.eml", class: ReplyInterested, reason: `phrase "let's chat"`},
	} {
		for _, wire := range []bool{false, true} {
			raw := readReply(t, tc.file)
			if wire {
				raw = crlf(raw)
			}
			p, err := ParseInbound(raw)
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			s := SortReply(p, replyNow)
			if s.Class != tc.class || s.Reason == "" || !strings.Contains(s.Reason, tc.reason) {
				t.Errorf("%s (crlf %v): %s / %q; want %s / …%q…", tc.file, wire, s.Class, s.Reason, tc.class, tc.reason)
			}
			if !s.ReturnDate.Equal(tc.returnDate) || !slices.Equal(s.BounceRecipients, tc.bounced) || s.Hard != tc.hard || s.Automatic != tc.automatic {
				t.Errorf("%s (crlf %v): return %v bounced %q hard %v automatic %v; want %v %q %v %v", tc.file, wire,
					s.ReturnDate, s.BounceRecipients, s.Hard, s.Automatic, tc.returnDate, tc.bounced, tc.hard, tc.automatic)
			}
		}
	}
}

// TestSortPhrases sorts replies by their text alone (as a caller that has
// no raw message, like the Inbound Parse form, builds them).
func TestSortPhrases(t *testing.T) {
	for _, tc := range []struct{ text, class, reason string }{
		{"Please remove me from your list", ReplyUnsubscribe, `phrase "please remove me"`},
		{"Take me off your list.", ReplyUnsubscribe, `phrase "take me off"`},
		{"Stop emailing me!", ReplyUnsubscribe, `phrase "stop emailing"`},
		{"Do not contact us again.", ReplyUnsubscribe, `phrase "do not contact"`},
		{"STOP", ReplyUnsubscribe, `one-word reply "stop"`},
		{"Unsubscribe", ReplyUnsubscribe, `phrase "unsubscribe"`},
		{"Not interested.", ReplyNotInterested, `phrase "not interested"`},
		{"We're not really interested, thanks.", ReplyNotInterested, `negated "interested" ("we're not really interested")`},
		{"No thanks", ReplyNotInterested, `one-word reply "no thanks"`},
		{"No thank you, we have this covered in house.", ReplyNotInterested, `phrase "no thank you"`},
		{"We’re all set, thanks.", ReplyNotInterested, `phrase "we're all set"`},
		{"Honestly this is not a fit for us.", ReplyNotInterested, `phrase "not a fit"`},
		{"no", ReplyNotInterested, `one-word reply "no"`},
		{"Nope.\n\nJim", ReplyNotInterested, `one-word reply "nope"`},
		{"No thanks for now, but reach out in the spring.", ReplyNotNow, `phrase "no thanks", but asks to be contacted later: phrase "reach out in"`},
		{"Not right now, maybe next quarter.", ReplyNotNow, `phrase "not right now"`},
		{"Interested, but we're busy until March.", ReplyNotNow, `phrase "busy until"`},
		{"Let's circle back after the summer.", ReplyNotNow, `phrase "circle back"`},
		{"Try me again in 3 months please", ReplyNotNow, `phrase "in 3 months"`},
		{"Sounds good, let's talk next week", ReplyInterested, `phrase "sounds good"`},
		{"No, let's talk next week.", ReplyInterested, `phrase "let's talk"`},
		{"Yes", ReplyInterested, `one-word reply "yes"`},
		{"Sure.", ReplyInterested, `one-word reply "sure"`},
		{"Yes, happy to chat on Thursday.", ReplyInterested, `phrase "happy to chat"`},
		{"Can you book a call for Tuesday?", ReplyInterested, `phrase "book a call"`},
		{"Please send more info", ReplyInterested, `phrase "send more info"`},
		{"What's the price for two locations?", ReplyInterested, `phrase "what's the price"`},
		{"I don't think this sounds good at all.", ReplyOther, "no rule matched"},
		{"I'm not sure who you are.", ReplyOther, "no rule matched"},
		{"Yesterday I read your mail; who is this?", ReplyOther, "no rule matched"},
		{"Who gave you my address?", ReplyOther, "no rule matched"},
		{"", ReplyOther, "no new text"},
		{"> Interested?\n> Reply yes", ReplyOther, "no new text"},
	} {
		s := SortReply(ParsedReply{Text: tc.text, Subject: "Re: A quick idea"}, replyNow)
		if s.Class != tc.class || !strings.Contains(s.Reason, tc.reason) || s.Automatic || s.Hard {
			t.Errorf("%q: %s / %q (automatic %v); want %s / …%q…", tc.text, s.Class, s.Reason, s.Automatic, tc.class, tc.reason)
		}
	}
	// An empty reply titled by its sender is read by its subject; a "Re:"
	// subject is ours, and is not.
	if s := SortReply(ParsedReply{Subject: "Unsubscribe"}, replyNow); s.Class != ReplyUnsubscribe || s.Reason != `phrase "unsubscribe" in the subject` {
		t.Errorf("subject-only unsubscribe: %+v", s)
	}
	if s := SortReply(ParsedReply{Subject: "Re: Interested in more leads?"}, replyNow); s.Class != ReplyOther {
		t.Errorf("empty reply under our subject: %+v", s)
	}
}

func TestSortAutomatic(t *testing.T) {
	ooo := "I am out of the office until 12 January."
	for _, tc := range []struct {
		name    string
		p       ParsedReply
		class   string
		reason  string
		returns time.Time
	}{
		{"X-Autoreply", ParsedReply{Text: ooo, Headers: ReplyHeaders{XAutoreply: "yes"}}, ReplyOutOfOffice, "X-Autoreply header", ymd(2026, 1, 12)},
		{"X-Autorespond", ParsedReply{Text: ooo, Headers: ReplyHeaders{XAutorespond: "on"}}, ReplyOutOfOffice, "X-Autorespond header", ymd(2026, 1, 12)},
		{"Precedence", ParsedReply{Text: ooo, Headers: ReplyHeaders{Precedence: "auto_reply"}}, ReplyOutOfOffice, "Precedence: auto_reply header", ymd(2026, 1, 12)},
		{"subject only", ParsedReply{Subject: "Out of Office: A quick idea", Text: "Thanks, I'll read it when I'm back."}, ReplyOutOfOffice, `subject "Out of Office: A quick idea" (out of office)`, time.Time{}},
		{"return date only", ParsedReply{Text: "Thanks for your note. Back on 2026-01-20.", Headers: ReplyHeaders{AutoSubmitted: "auto-replied"}}, ReplyOutOfOffice, "a stated return date", ymd(2026, 1, 20)},
		// An auto-acknowledgement's "unsubscribe" is no request of the person.
		{"auto-generated", ParsedReply{Text: "To unsubscribe reply STOP", Headers: ReplyHeaders{AutoSubmitted: "auto-generated"}}, ReplyOther, "automatic reply without out-of-office wording", time.Time{}},
		// Auto-Submitted: no is a person's mail.
		{"Auto-Submitted: no", ParsedReply{Text: "I'm interested", Headers: ReplyHeaders{AutoSubmitted: "no"}}, ReplyInterested, `phrase "interested"`, time.Time{}},
		// Precedence: bulk alone (a mailing list) is not an auto-reply.
		{"Precedence: bulk", ParsedReply{Text: "remove me", Headers: ReplyHeaders{Precedence: "bulk"}}, ReplyUnsubscribe, `phrase "remove me"`, time.Time{}},
		// A person who mentions being away is read by the phrase rules.
		{"human out of office", ParsedReply{Text: "I'm out of office until Monday but interested, let's talk then."}, ReplyInterested, `phrase "interested"`, time.Time{}},
		{"read receipt", ParsedReply{Headers: ReplyHeaders{ContentType: "multipart/report; report-type=disposition-notification; boundary=x"}}, ReplyOther, "read receipt", time.Time{}},
		{"complaint", ParsedReply{Headers: ReplyHeaders{ContentType: `multipart/report; report-type="feedback-report"; boundary=x`}}, ReplyOther, "spam complaint", time.Time{}},
		{"success DSN", ParsedReply{DSN: &DSN{Standard: true, Recipients: []DSNRecipient{{FinalRecipient: "a@b.example", Action: "delivered", Status: "2.0.0"}}}}, ReplyOther, "DSN: 2.0.0 delivered for a@b.example", time.Time{}},
		{"expired DSN", ParsedReply{DSN: &DSN{Standard: true, Recipients: []DSNRecipient{{FinalRecipient: "a@b.example", Action: "failed", Status: "4.4.7"}}}}, ReplyBounce, "gave up after retries", time.Time{}},
	} {
		s := SortReply(tc.p, replyNow)
		if s.Class != tc.class || !strings.Contains(s.Reason, tc.reason) || !s.ReturnDate.Equal(tc.returns) {
			t.Errorf("%s: %s / %q / %v; want %s / …%q… / %v", tc.name, s.Class, s.Reason, s.ReturnDate, tc.class, tc.reason, tc.returns)
		}
	}
	if s := SortReply(ParsedReply{DSN: &DSN{Standard: true, Recipients: []DSNRecipient{{FinalRecipient: "a@b.example", Action: "failed", Status: "4.4.7"}}}}, replyNow); s.Hard {
		t.Errorf("a 4.4.7 failure is not hard: %+v", s)
	}
	two := &DSN{Standard: true, Recipients: []DSNRecipient{
		{FinalRecipient: "a@b.example", Action: "failed", Status: "5.1.1"},
		{FinalRecipient: "c@d.example", Action: "failed", Status: "5.2.2"},
		{FinalRecipient: "e@f.example", Action: "delayed", Status: "4.4.1"},
	}}
	if s := SortReply(ParsedReply{DSN: two}, replyNow); s.Class != ReplyBounce || !s.Hard ||
		!slices.Equal(s.BounceRecipients, []string{"a@b.example", "c@d.example"}) || !strings.HasSuffix(s.Reason, "and 1 more") {
		t.Errorf("two failed, one delayed: %+v", s)
	}
}

func TestReturnDate(t *testing.T) {
	for _, tc := range []struct {
		text string
		now  time.Time
		want time.Time
	}{
		{"back on Monday 12 January", replyNow, ymd(2026, 1, 12)},
		{"I will return on 2026-01-12.", replyNow, ymd(2026, 1, 12)},
		{"away until January 12th", replyNow, ymd(2026, 1, 12)},
		{"until Monday, January 12th, 2026", replyNow, ymd(2026, 1, 12)},
		{"out until the 12th of Jan", replyNow, ymd(2026, 1, 12)},
		{"back on 12/01", replyNow, time.Time{}},           // ambiguous: skipped
		{"back on 25/01/2026", replyNow, ymd(2026, 1, 25)}, // only day/month
		{"back on 01/25", replyNow, ymd(2026, 1, 25)},      // only month/day
		{"out from 5 January until 9 January", replyNow, ymd(2026, 1, 9)},
		{"on leave 5 January - 14 January", replyNow, ymd(2026, 1, 14)},
		{"away through Jan 9", replyNow, ymd(2026, 1, 10)},
		{"back Friday", replyNow, ymd(2026, 1, 9)},
		{"back on Monday", replyNow, ymd(2026, 1, 12)}, // today is Monday: the next one
		{"I'll be back tomorrow", replyNow, ymd(2026, 1, 6)},
		{"back on January 5", time.Date(2025, 12, 20, 15, 0, 0, 0, time.UTC), ymd(2026, 1, 5)},
		{"back on 2020-01-01", replyNow, time.Time{}}, // past
		{"back on 2031-01-01", replyNow, time.Time{}}, // too far
		{"back on 31 April", replyNow, time.Time{}},   // no such day
		{"I may be away for a while", replyNow, time.Time{}},
		{"returning 3 march", replyNow, ymd(2026, 3, 3)},
	} {
		if got := returnDate(normalizeReply(tc.text), tc.now); !got.Equal(tc.want) {
			t.Errorf("returnDate(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	// The date is midnight in now's location.
	loc := time.FixedZone("EST", -5*3600)
	if got := returnDate("back on 2026-01-12", replyNow.In(loc)); got.Location() != loc || got.Hour() != 0 || got.Day() != 12 {
		t.Errorf("return date in %v = %v", loc, got)
	}
}

func TestValidReplyClass(t *testing.T) {
	for _, c := range ReplyClasses {
		if !ValidReplyClass(c) {
			t.Errorf("%q not valid", c)
		}
	}
	for _, c := range []string{"", "Interested", "spam"} {
		if ValidReplyClass(c) {
			t.Errorf("%q valid", c)
		}
	}
}

// Unsure marks what the rules could not tell, which alone goes to the LLM:
// no rule matched, or one phrase decided a long message. A sure rule (an
// unsubscribe phrasing, a one-word answer, an automatic reply, a DSN) is
// never unsure.
func TestSortReplySaysWhenItIsUnsure(t *testing.T) {
	long := "Thanks for the note. " + strings.Repeat("We run four clinics and the front desk handles the bookings by phone. ", 6) + "Sounds good."
	for _, tc := range []struct {
		text   string
		class  string
		unsure bool
	}{
		{"Could you tell me whether this works with our booking system?", ReplyOther, true},
		{"Sounds good, let's talk next week.", ReplyInterested, false},
		{long, ReplyInterested, true},
		{long + " Please remove me from your list.", ReplyUnsubscribe, false},
		{"No.", ReplyNotInterested, false},
		{"STOP", ReplyUnsubscribe, false},
	} {
		s := SortReply(ParsedReply{From: "a@b.example", Subject: "Re: hello", Text: tc.text, NewText: tc.text}, replyNow)
		if s.Class != tc.class || s.Unsure != tc.unsure {
			t.Errorf("%.60q: %s unsure %v (%s); want %s unsure %v", tc.text, s.Class, s.Unsure, s.Reason, tc.class, tc.unsure)
		}
	}
	for _, f := range []string{"outlook_ooo.eml", "postfix_dsn.eml", "auto_ack.eml", "delayed_dsn.eml", "arf_yahoo.eml"} {
		p, _ := ParseInbound(readReply(t, f))
		if s := SortReply(p, replyNow); s.Unsure {
			t.Errorf("%s is unsure: %+v", f, s)
		}
	}
}
