package app

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// SendGrid's Inbound Parse takes the mailbox's sorting path when the
// Replies agent is wired: each post is sorted, matched by its threading
// headers or its sender, stored once and acted on by its class.
func TestInboundReplyIsSortedLikeTheMailbox(t *testing.T) {
	m := newMailRig(t, map[string]string{"EMAIL_INBOUND_SECRET": mailInboundSecret}, func(d *Deps) {
		d.Replies = agents.NewRepliesCycle(d.Store, agents.Env{Now: d.Now}, nil, agents.RepliesOptions{})
	})
	keen := m.lead(t, "keen@keen.example", db.LeadContacted)
	done := m.lead(t, "done@done.example", db.LeadContacted)
	away := m.lead(t, "away@away.example", db.LeadContacted)
	post := func(from, subject, text, headers string) string {
		t.Helper()
		form := url.Values{"from": {from}, "to": {"outreach@hossagent.example"}, "subject": {subject}, "text": {text}, "headers": {headers}}
		status, answer := m.postRaw(t, "/email/inbound/"+mailInboundSecret, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
		if status != http.StatusOK {
			t.Fatalf("inbound = %d %s", status, answer)
		}
		return answer
	}
	if a := post("keen@keen.example", "Re: hello", "Sounds good, let's talk next week.", "Message-ID: <k1@keen.example>\r\n"); !strings.Contains(a, "recorded") {
		t.Errorf("interested = %q", a)
	}
	if a := post("keen@keen.example", "Re: hello", "Sounds good, let's talk next week.", "Message-ID: <k1@keen.example>\r\n"); !strings.Contains(a, "duplicate") {
		t.Errorf("the same message again = %q", a)
	}
	post("done@done.example", "Re: hello", "Please remove me from your list.", "Message-ID: <d1@done.example>\r\n")
	post("away@away.example", "Out of office", "I am out of the office until Monday, 16 June 2025.",
		"Message-ID: <a1@away.example>\r\nAuto-Submitted: auto-replied\r\n")
	if a := post("stranger@else.example", "Hi", "Who are you?", ""); !strings.Contains(a, "unknown sender") {
		t.Errorf("a stranger = %q", a)
	}
	for id, want := range map[int64]string{keen.ID: db.LeadResponded, done.ID: db.LeadUnsubscribed, away.ID: db.LeadContacted} {
		if got := m.leadStatus(t, id); got != want {
			t.Errorf("lead %d = %s, want %s", id, got, want)
		}
	}
	classes := map[int64]string{}
	for _, r := range mailReplies(t, m.store) {
		classes[r.LeadID] = r.Class
		if r.ClassReason == "" || r.ClassBy != "rules" {
			t.Errorf("reply %+v has no reason", r)
		}
	}
	if classes[keen.ID] != db.ReplyInterested || classes[done.ID] != db.ReplyUnsubscribe || classes[away.ID] != db.ReplyOutOfOffice || len(classes) != 3 {
		t.Errorf("classes = %v", classes)
	}
	if ok, _ := m.store.IsSuppressed(t.Context(), "done@done.example"); !ok {
		t.Error("the unsubscribe request added no suppression")
	}
}

// With "POST the raw, full MIME message" on, Inbound Parse posts the message
// itself (field email): a feedback-loop report arriving that way is a
// complaint, like one in the mailbox.
func TestInboundRawFeedbackReportIsAComplaint(t *testing.T) {
	m := newMailRig(t, map[string]string{"EMAIL_INBOUND_SECRET": mailInboundSecret}, func(d *Deps) {
		d.Replies = agents.NewRepliesCycle(d.Store, agents.Env{Now: d.Now}, nil, agents.RepliesOptions{})
	})
	dana := m.lead(t, "dana.doe@hotmail.example", db.LeadContacted)
	sent := m.store.Now()
	msg := &db.Message{LeadID: dana.ID, ToAddr: "dana.doe@hotmail.example", Template: "agency", Subject: "Hello", Body: "Hi Dana",
		Status: db.MessageSent, ProviderID: "prov-1", Attempts: 1, CreatedAt: sent, SentAt: &sent, UpdatedAt: sent}
	if _, err := m.store.Bun().NewInsert().Model(msg).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	arf := strings.ReplaceAll(`From: staff@hotmail.com
To: fbl@hossagent.example
Subject: complaint about message from 203.0.113.25
Message-ID: <fbl-1@hotmail.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="NP"

--NP
Content-Type: text/plain

This is an email abuse report.

--NP
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Hotmail FBL
Version: 0.1
Original-Rcpt-To: <dana.doe@hotmail.example>

--NP
Content-Type: message/rfc822

From: outreach@hossagent.example
To: dana.doe@hotmail.example
Subject: Hello
Message-ID: <hossagent.outbox.MSGID@hossagent.example>

Hi Dana

--NP--
`, "\n", "\r\n")
	arf = strings.ReplaceAll(arf, "MSGID", strconv.FormatInt(msg.ID, 10))
	for i, want := range []string{"recorded", "duplicate"} {
		form := url.Values{"from": {"staff@hotmail.com"}, "to": {"fbl@hossagent.example"}, "subject": {"complaint about message from 203.0.113.25"}, "email": {arf}}
		status, answer := m.postRaw(t, "/email/inbound/"+mailInboundSecret, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
		if status != http.StatusOK || !strings.Contains(answer, want) {
			t.Errorf("post %d = %d %q, want …%s…", i, status, answer, want)
		}
	}
	if got := m.leadStatus(t, dana.ID); got != db.LeadUnsubscribed {
		t.Errorf("lead = %s, want unsubscribed", got)
	}
	var s db.Suppression
	if err := m.store.Bun().NewSelect().Model(&s).Where("value = ?", "dana.doe@hotmail.example").Scan(t.Context()); err != nil ||
		s.Reason != db.SuppressComplaint || s.Source != "arf:abuse" {
		t.Errorf("suppression = %+v, %v", s, err)
	}
	if rs := mailReplies(t, m.store); len(rs) != 1 || rs[0].Class != db.ReplyUnsubscribe || !strings.HasPrefix(rs[0].ClassReason, "spam complaint") {
		t.Errorf("replies = %+v", rs)
	}
}
