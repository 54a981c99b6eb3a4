package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// inboundHeaders is the raw header block Inbound Parse posts as "headers".
func inboundHeaders(messageID string) string {
	h := "Received: from mx.acme.example by mx.sendgrid.net\r\nFrom: Jane Doe <jane@acme.example>\r\nSubject: Re: a quick idea\r\n"
	if messageID != "" {
		h += "Message-ID:\r\n " + messageID + "\r\n"
	}
	return h + "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
}

// TestInboundReplyDeliveredTwiceIsStoredOnce: SendGrid retries a delivery
// it thinks failed, and a mail server may hand the same message over twice.
// The second delivery answers 200 (so the retries stop) and changes
// nothing: by Message-ID when the message has one, else by sender, subject
// and text.
func TestInboundReplyDeliveredTwiceIsStoredOnce(t *testing.T) {
	m := newMailRig(t, map[string]string{"EMAIL_INBOUND_SECRET": mailInboundSecret})
	jane := m.lead(t, "jane@acme.example", db.LeadContacted)
	inbound := "/email/inbound/" + mailInboundSecret
	post := func(fields map[string]string) (int, string) {
		t.Helper()
		ct, body := inboundMultipart(t, fields)
		return m.postRaw(t, inbound, ct, body, nil)
	}
	reply := map[string]string{"from": "Jane Doe <jane@acme.example>", "subject": "Re: a quick idea", "text": "Sounds good.",
		"headers": inboundHeaders("<CAB+x1@mail.acme.example>")}
	if status, answer := post(reply); status != http.StatusOK || !strings.Contains(answer, "recorded") {
		t.Fatalf("first delivery = %d %s", status, answer)
	}
	var before db.Lead
	if err := m.store.Bun().NewSelect().Model(&before).Where("l.id = ?", jane.ID).Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.clock.Advance(3600e9)
	// The same message again, re-encoded (the Message-ID without its
	// brackets, the text as SendGrid might re-wrap it does not matter).
	again := map[string]string{"from": "jane@acme.example", "subject": "Re: a quick idea", "text": "Sounds good.\r\n",
		"headers": inboundHeaders("CAB+x1@mail.acme.example")}
	for i := range 2 {
		status, answer := post(again)
		if status != http.StatusOK || !strings.Contains(answer, "duplicate") {
			t.Errorf("repeat %d = %d %s, want 200 duplicate", i+1, status, answer)
		}
	}
	if r := mailReplies(t, m.store); len(r) != 1 {
		t.Errorf("replies after repeated delivery = %d, want 1", len(r))
	}
	var after db.Lead
	if err := m.store.Bun().NewSelect().Model(&after).Where("l.id = ?", jane.ID).Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !after.UpdatedAt.Equal(before.UpdatedAt) || after.Status != db.LeadResponded {
		t.Errorf("the repeat changed the lead: %s %v, was %v", after.Status, after.UpdatedAt, before.UpdatedAt)
	}
	if n := m.events.dataChanged(); n != 1 {
		t.Errorf("data_changed events = %d, want 1 (none for a repeat)", n)
	}

	// A new message (new Message-ID) with the same words is a new reply.
	second := map[string]string{"from": "jane@acme.example", "subject": "Re: a quick idea", "text": "Sounds good.",
		"headers": inboundHeaders("<CAB+x2@mail.acme.example>")}
	if status, answer := post(second); status != http.StatusOK || !strings.Contains(answer, "recorded") {
		t.Errorf("a new message = %d %s", status, answer)
	}

	// Without a Message-ID: sender, subject and text decide.
	bare := url.Values{"from": {"jane@acme.example"}, "subject": {"Re: one more"}, "text": {"Call me at 3."}}
	for i, want := range []string{"recorded", "duplicate", "duplicate"} {
		status, answer := m.postRaw(t, inbound, "application/x-www-form-urlencoded", []byte(bare.Encode()), nil)
		if status != http.StatusOK || !strings.Contains(answer, want) {
			t.Errorf("bare delivery %d = %d %s, want %s", i+1, status, answer, want)
		}
	}
	bare.Set("text", "Call me at 4.")
	if status, answer := m.postRaw(t, inbound, "application/x-www-form-urlencoded", []byte(bare.Encode()), nil); status != http.StatusOK || !strings.Contains(answer, "recorded") {
		t.Errorf("bare, other text = %d %s", status, answer)
	}
	if r := mailReplies(t, m.store); len(r) != 4 { // x1, x2, and the two bare texts
		t.Errorf("replies = %d, want 4", len(r))
	}
}

// TestInboundReplyWithBadTextIsCleaned: the sender of a reply cannot be
// asked to fix it, so NUL bytes and invalid UTF-8 in the subject or text
// are cleaned and the reply stored (200), never a 5xx SendGrid would retry
// for days.
func TestInboundReplyWithBadTextIsCleaned(t *testing.T) {
	m := newMailRig(t, map[string]string{"EMAIL_INBOUND_SECRET": mailInboundSecret})
	m.lead(t, "jane@acme.example", db.LeadContacted)
	inbound := "/email/inbound/" + mailInboundSecret
	form := url.Values{"from": {"jane@acme.example"}, "subject": {"Re: \x00hi\xff"}, "text": {"line\x00one \xc3\x28 two"},
		"headers": {"Message-ID: <a\x00b\xfe@x>\r\n"}}
	status, answer := m.postRaw(t, inbound, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	if status != http.StatusOK {
		t.Fatalf("reply with NUL and invalid UTF-8 = %d %s", status, answer)
	}
	ct, body := inboundMultipart(t, map[string]string{"from": "jane@acme.example", "subject": "\x00", "text": "\x00\x00\xff"})
	if status, answer := m.postRaw(t, inbound, ct, body, nil); status != http.StatusOK {
		t.Fatalf("multipart reply of NULs = %d %s", status, answer)
	}
	r := mailReplies(t, m.store)
	if len(r) != 2 || r[0].Subject != "Re: hi\uFFFD" || r[0].Body != "lineone \uFFFD( two" || strings.ContainsRune(r[1].Body, 0) {
		t.Errorf("replies = %+v", r)
	}
}

func TestMessageIDOfHeaders(t *testing.T) {
	for headers, want := range map[string]string{
		"":                                           "",
		"Subject: hi\r\n":                            "",
		"Message-ID: <a@b>\r\nSubject: x\r\n":        "<a@b>",
		"message-id:<a@b>\n":                         "<a@b>",
		"MESSAGE-ID : <a@b>":                         "<a@b>",
		"Message-ID:\r\n <long@b>\r\nTo: y\r\n":      "<long@b>",
		"Message-ID: <a\r\n\t@b>\r\n":                "<a\t@b>",
		"Subject: x\r\n\r\nMessage-ID: <body@b>\r\n": "", // after the header block: body text
		"X-Message-ID: <no@b>\r\n":                   "",
		"In-Reply-To: <ours@x>\r\nMessage-ID: <theirs@y>\r\n": "<theirs@y>",
		" folded start\r\nMessage-ID: <c@d>":                  "<c@d>",
	} {
		if got := messageIDOf(headers); got != want {
			t.Errorf("messageIDOf(%q) = %q, want %q", headers, got, want)
		}
	}
	if got := messageIDOf("Message-ID: <" + strings.Repeat("x", 5000) + ">"); len([]rune(got)) > maxMessageID+1 {
		t.Errorf("a huge Message-ID is kept whole (%d runes)", len([]rune(got)))
	}
}
