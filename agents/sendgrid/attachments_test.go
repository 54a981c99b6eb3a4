package sendgrid

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents"
)

func TestSendGridMailerSendsHTMLAndAttachments(t *testing.T) {
	fake := newSendGridFake(t, accepted("sg-inv-1"))
	out := testMail("client@acme.example", 77)
	out.HTML = "<p>Your invoice <b>INV-0007</b> is attached.</p>"
	pdf := append([]byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), 0, 1, 2, 0xfe, 0xff)
	out.Attachments = []agents.Attachment{
		{Filename: "INV-0007.pdf", ContentType: "application/pdf", Content: pdf},
		{Filename: "../a\r\nb.txt", ContentType: "text/plain\r\nX-Evil: 1", Content: []byte("notes")},
	}
	if id, err := fake.mailer(t, Options{}).Send(context.Background(), out); err != nil || id != "sg-inv-1" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	req := fake.lastRequest()
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"content", 0, "type"}, "text/plain"},
		{[]any{"content", 0, "value"}, out.Body},
		{[]any{"content", 1, "type"}, "text/html"},
		{[]any{"content", 1, "value"}, out.HTML},
		{[]any{"attachments", 0, "filename"}, "INV-0007.pdf"},
		{[]any{"attachments", 0, "type"}, "application/pdf"},
		{[]any{"attachments", 0, "disposition"}, "attachment"},
		{[]any{"attachments", 1, "filename"}, ".._a__b.txt"},
		{[]any{"attachments", 1, "type"}, "application/octet-stream"},
		{[]any{"attachments", 1, "disposition"}, "attachment"},
		{[]any{"custom_args", "outbox_id"}, "77"},
		{[]any{"headers", "List-Unsubscribe"}, "<https://hoss.example/unsubscribe/tok77>"},
	} {
		if got := jsonPath(req, c.path...); got != c.want {
			t.Errorf("request %v = %#v, want %#v", c.path, got, c.want)
		}
	}
	if n := len(jsonPath(req, "content").([]any)); n != 2 {
		t.Errorf("%d content entries, want 2", n)
	}
	if n := len(jsonPath(req, "attachments").([]any)); n != 2 {
		t.Errorf("%d attachments, want 2", n)
	}
	b64, _ := jsonPath(req, "attachments", 0, "content").(string)
	if got, err := base64.StdEncoding.DecodeString(b64); err != nil || !bytes.Equal(got, pdf) {
		t.Errorf("attachment content %q decodes to %q (%v), want the PDF bytes", b64, got, err)
	}
}

// A plain-text message has one content entry and no attachments field, as
// before HTML and attachments existed.
func TestSendGridMailerTextOnlyIsUnchanged(t *testing.T) {
	fake := newSendGridFake(t, accepted("sg-1"))
	if _, err := fake.mailer(t, Options{}).Send(context.Background(), testMail("dana@delta.example", 1)); err != nil {
		t.Fatal(err)
	}
	req := fake.lastRequest()
	if n := len(jsonPath(req, "content").([]any)); n != 1 {
		t.Errorf("%d content entries, want 1", n)
	}
	if _, ok := req["attachments"]; ok {
		t.Errorf("a text-only message carries attachments: %v", req["attachments"])
	}
}

func TestSendGridMailerRefusesOversizedAttachmentsBeforeSending(t *testing.T) {
	fake := newSendGridFake(t, accepted("never"))
	out := testMail("dana@delta.example", 1)
	out.Attachments = []agents.Attachment{
		{Filename: "a.pdf", ContentType: "application/pdf", Content: make([]byte, agents.MaxAttachmentBytes)},
		{Filename: "b.pdf", ContentType: "application/pdf", Content: []byte{1}},
	}
	_, err := fake.mailer(t, Options{}).Send(context.Background(), out)
	if !agents.IsPermanentMailError(err) || !strings.Contains(err.Error(), "attachments") {
		t.Fatalf("oversized attachments: %v, want a permanent refusal", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.requests) != 0 {
		t.Fatal("an oversized message was posted")
	}
}

// Attachments up to the limit fit in the request, though the body alone
// is bounded by maxSendGridRequest.
func TestSendGridMailerEncodesAttachmentsAtTheLimit(t *testing.T) {
	m, err := NewMailer(Options{APIKey: sendGridTestKey})
	if err != nil {
		t.Fatal(err)
	}
	out := testMail("dana@delta.example", 1)
	out.Attachments = []agents.Attachment{{Filename: "a.pdf", ContentType: "application/pdf", Content: make([]byte, agents.MaxAttachmentBytes)}}
	body, err := m.request(out)
	if err != nil || len(body) < base64.StdEncoding.EncodedLen(agents.MaxAttachmentBytes) {
		t.Fatalf("request at the limit: %d bytes, %v", len(body), err)
	}
}
