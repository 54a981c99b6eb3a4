package smtp

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents"
)

// pdfLike is a small file with every byte value in it, so that a transfer
// encoding that lost or changed one shows.
func pdfLike() []byte {
	b := []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n")
	for i := 0; i < 256; i++ {
		b = append(b, byte(i))
	}
	return append(b, "\r\n\r\n.\r\n%%EOF\n"...)
}

// mimePart is one leaf part of a received message, its body decoded.
type mimePart struct {
	Type, Disposition, Filename string
	Body                        []byte
}

// readParts parses a received message with net/mail and mime/multipart:
// the top-level media type and the leaves in order, each with the media
// type of the multipart that holds it.
func readParts(t *testing.T, raw []byte) (string, map[string]string, []mimePart, []string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message does not parse: %v", err)
	}
	top, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	var parts []mimePart
	var containers []string
	var walk func(mediaType string, params map[string]string, body io.Reader)
	walk = func(mediaType string, params map[string]string, body io.Reader) {
		containers = append(containers, mediaType)
		r := multipart.NewReader(body, params["boundary"])
		for {
			p, err := r.NextPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", mediaType, err)
			}
			ct, cp, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if err != nil {
				t.Fatalf("part Content-Type %q: %v", p.Header.Get("Content-Type"), err)
			}
			if strings.HasPrefix(ct, "multipart/") {
				walk(ct, cp, p)
				continue
			}
			var rd io.Reader = p // quoted-printable is decoded by multipart
			if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
				rd = base64.NewDecoder(base64.StdEncoding, p)
			}
			b, err := io.ReadAll(rd)
			if err != nil {
				t.Fatalf("part %s: %v", ct, err)
			}
			disp, _, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
			parts = append(parts, mimePart{Type: ct, Disposition: disp, Filename: p.FileName(), Body: b})
		}
	}
	if strings.HasPrefix(top, "multipart/") {
		walk(top, params, msg.Body)
	}
	return top, params, parts, containers
}

func TestSMTPMailerSendsHTMLAndAttachments(t *testing.T) {
	sink, _ := startSMTPSink(t, sinkOptions{})
	out := testMail("client@acme.example", 31)
	out.Subject = "Invoice INV-0007"
	out.Body = "Hello,\n\nyour invoice INV-0007 is attached.\n"
	out.HTML = "<!doctype html><p>Hello,</p><p>your invoice <b>INV-0007</b> is attached.</p>"
	pdf := pdfLike()
	out.Attachments = []agents.Attachment{{Filename: "INV-0007.pdf", ContentType: "application/pdf", Content: pdf}}
	id, err := sink.mailer(t, Options{}).Send(context.Background(), out)
	if err != nil || id != "hossagent.outbox.31@hossagent.example" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	got := sink.messages()
	if len(got) != 1 {
		t.Fatalf("the server received %d messages, want 1", len(got))
	}
	p := parseSinkMail(t, got[0])
	if mid := p.Header.Get("Message-Id"); mid != "<"+id+">" {
		t.Errorf("Message-ID = %q", mid)
	}
	if lu := p.Header.Get("List-Unsubscribe"); lu != out.Headers["List-Unsubscribe"] {
		t.Errorf("List-Unsubscribe = %q", lu)
	}
	top, _, parts, containers := readParts(t, got[0].Raw)
	if top != "multipart/mixed" || strings.Join(containers, ",") != "multipart/mixed,multipart/alternative" {
		t.Fatalf("structure: top %s, containers %v; want mixed holding alternative", top, containers)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want text, html, attachment: %+v", len(parts), parts)
	}
	if parts[0].Type != "text/plain" || strings.ReplaceAll(string(parts[0].Body), "\r\n", "\n") != out.Body {
		t.Errorf("first part %s %q, want the plain text", parts[0].Type, parts[0].Body)
	}
	if parts[1].Type != "text/html" || strings.ReplaceAll(string(parts[1].Body), "\r\n", "\n") != out.HTML {
		t.Errorf("second part %s %q, want the HTML", parts[1].Type, parts[1].Body)
	}
	a := parts[2]
	if a.Type != "application/pdf" || a.Disposition != "attachment" || a.Filename != "INV-0007.pdf" {
		t.Errorf("attachment: type %s, disposition %s, filename %q", a.Type, a.Disposition, a.Filename)
	}
	if !bytes.Equal(a.Body, pdf) {
		t.Errorf("attachment bytes differ: got %d bytes, want %d", len(a.Body), len(pdf))
	}
}

// HTML without attachments is multipart/alternative alone; attachments
// without HTML are multipart/mixed around the plain text.
func TestSMTPMailerAlternativeOrMixedAlone(t *testing.T) {
	sink, _ := startSMTPSink(t, sinkOptions{})
	m := sink.mailer(t, Options{})
	html := testMail("a@x.example", 1)
	html.HTML = "<p>Hi</p>"
	files := testMail("b@x.example", 2)
	files.Attachments = []agents.Attachment{{Filename: "receipt.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.4 receipt")}}
	for _, out := range []agents.OutgoingMail{html, files} {
		if _, err := m.Send(context.Background(), out); err != nil {
			t.Fatal(err)
		}
	}
	got := sink.messages()
	top, _, parts, _ := readParts(t, got[0].Raw)
	if top != "multipart/alternative" || len(parts) != 2 || parts[0].Type != "text/plain" || parts[1].Type != "text/html" {
		t.Errorf("HTML mail: %s %+v", top, parts)
	}
	top, _, parts, containers := readParts(t, got[1].Raw)
	if top != "multipart/mixed" || len(containers) != 1 || len(parts) != 2 || parts[0].Type != "text/plain" ||
		parts[1].Filename != "receipt.pdf" || string(parts[1].Body) != "%PDF-1.4 receipt" {
		t.Errorf("mail with a file: %s %v %+v", top, containers, parts)
	}
}

// A plain-text mail is one text/plain part, as before HTML and attachments
// existed.
func TestSMTPMailerTextOnlyStaysASinglePart(t *testing.T) {
	sink, _ := startSMTPSink(t, sinkOptions{})
	if _, err := sink.mailer(t, Options{}).Send(context.Background(), testMail("a@x.example", 5)); err != nil {
		t.Fatal(err)
	}
	raw := sink.messages()[0].Raw
	p := parseSinkMail(t, sink.messages()[0])
	ct, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
	if err != nil || ct != "text/plain" || bytes.Contains(raw, []byte("multipart")) || bytes.Contains(raw, []byte("Content-Disposition")) {
		t.Fatalf("text-only mail: Content-Type %q (%v)\n%s", p.Header.Get("Content-Type"), err, raw)
	}
	if p.Body != "Hi Dana,\n\nHello there.\n" {
		t.Errorf("body = %q", p.Body)
	}
}

func TestSMTPMailerSanitisesAttachmentNamesAndTypes(t *testing.T) {
	sink, _ := startSMTPSink(t, sinkOptions{})
	out := testMail("a@x.example", 9)
	out.Attachments = []agents.Attachment{
		{Filename: "../../etc/passwd", ContentType: "application/pdf", Content: []byte("1")},
		{Filename: "evil\r\nBcc: victim@example.com.pdf", ContentType: "application/pdf\r\nBcc: victim@example.com", Content: []byte("2")},
		{Filename: "", ContentType: "", Content: []byte("3")},
		{Filename: strings.Repeat("é", 150) + ".pdf", ContentType: "application/pdf", Content: []byte("4")},
	}
	if _, err := sink.mailer(t, Options{}).Send(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	raw := sink.messages()[0].Raw
	if bytes.Contains(raw, []byte("\nBcc:")) || bytes.Contains(raw, []byte("etc/passwd")) {
		t.Fatalf("a file name or type reached the headers unsanitised:\n%s", raw)
	}
	_, _, parts, _ := readParts(t, raw)
	if len(parts) != 5 {
		t.Fatalf("%d parts, want the text and four files", len(parts))
	}
	if parts[2].Type != "application/octet-stream" || parts[3].Type != "application/octet-stream" {
		t.Errorf("malformed and missing types: %s, %s; want application/octet-stream", parts[2].Type, parts[3].Type)
	}
	for i, p := range parts[1:] {
		if p.Disposition != "attachment" || p.Filename == "" || string(p.Body) != string(rune('1'+i)) {
			t.Errorf("file %d: %+v", i+1, p)
		}
	}
	if parts[3].Filename != "attachment" {
		t.Errorf("empty name became %q, want attachment", parts[3].Filename)
	}

	for in, want := range map[string]string{
		"INV-0007.pdf": "INV-0007.pdf", "../../etc/passwd": ".._.._etc_passwd", `C:\x\y.pdf`: "C:_x_y.pdf",
		"a\r\nb.pdf": "a__b.pdf", "": "attachment", "  ..  ": "attachment", "bad\xffbyte.pdf": "bad_byte.pdf",
		"tab\tname\x00.pdf": "tab_name_.pdf", "\u0085next.pdf": "_next.pdf", "Rechnung für März.pdf": "Rechnung für März.pdf",
	} {
		if got := agents.AttachmentName(in); got != want {
			t.Errorf("agents.AttachmentName(%q) = %q, want %q", in, got, want)
		}
	}
	long := agents.AttachmentName(strings.Repeat("é", 150) + ".pdf")
	if len(long) > agents.MaxFilenameBytes || !strings.HasPrefix(long, "éé") || strings.ContainsRune(long, '\uFFFD') {
		t.Errorf("a long name became %d bytes: %q", len(long), long)
	}
}

func TestSMTPMailerRefusesOversizedAttachmentsBeforeSending(t *testing.T) {
	sink, _ := startSMTPSink(t, sinkOptions{})
	out := testMail("a@x.example", 3)
	out.Attachments = []agents.Attachment{
		{Filename: "a.pdf", ContentType: "application/pdf", Content: make([]byte, agents.MaxAttachmentBytes/2)},
		{Filename: "b.pdf", ContentType: "application/pdf", Content: make([]byte, agents.MaxAttachmentBytes/2+1)},
	}
	_, err := sink.mailer(t, Options{}).Send(context.Background(), out)
	if !agents.IsPermanentMailError(err) || !strings.Contains(err.Error(), "attachments") {
		t.Fatalf("oversized attachments: %v, want a permanent refusal", err)
	}
	if sink.rcptCount() != 0 || len(sink.messages()) != 0 {
		t.Fatalf("an oversized message reached the server (%d RCPT, %d messages)", sink.rcptCount(), len(sink.messages()))
	}
	// Exactly the limit is sent.
	out.Attachments[1].Content = out.Attachments[1].Content[:agents.MaxAttachmentBytes/2]
	if _, err := sink.mailer(t, Options{}).Send(context.Background(), out); err != nil {
		t.Fatalf("attachments at the limit: %v", err)
	}
}
