package agents

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// readReply reads a message of testdata/replies.
func readReply(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "replies", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crlf is b with every line ending "\r\n", as on the wire.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

func TestParseInboundHeaders(t *testing.T) {
	for _, nl := range []string{"LF", "CRLF"} {
		t.Run(nl, func(t *testing.T) {
			read := func(name string) ParsedReply {
				t.Helper()
				raw := readReply(t, name)
				if nl == "CRLF" {
					raw = crlf(raw)
				}
				p, err := ParseInbound(raw)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				return p
			}

			p := read("outlook_ooo.eml")
			if p.MessageID != "DB9PR08MB6523A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6@DB9PR08MB6523.eurprd08.prod.outlook.com" {
				t.Errorf("outlook Message-ID = %q", p.MessageID)
			}
			if p.InReplyTo != "hossagent.outbox.42@acme-outreach.example" || !slices.Equal(p.References, []string{"hossagent.outbox.42@acme-outreach.example"}) {
				t.Errorf("outlook In-Reply-To %q, References %q", p.InReplyTo, p.References)
			}
			if p.From != "mark.fenwick@contoso-dental.example" || p.FromName != "Mark Fenwick" {
				t.Errorf("outlook From = %q, %q", p.From, p.FromName)
			}
			if p.Subject != "Automatic reply: A quick idea for Contoso Dental" {
				t.Errorf("outlook Subject = %q", p.Subject)
			}
			if want := time.Date(2026, 1, 5, 9, 14, 5, 0, time.UTC); !p.Date.Equal(want) {
				t.Errorf("outlook Date = %v, want %v", p.Date, want)
			}
			if p.Headers.AutoSubmitted != "auto-replied" || p.Headers.XAutoResponseSuppress != "All" ||
				!strings.HasPrefix(p.Headers.ContentType, "multipart/alternative;") {
				t.Errorf("outlook headers = %+v", p.Headers)
			}
			// The quoted-printable soft break inside "2026" is undone, and
			// the text part is preferred to the HTML one.
			if !strings.Contains(p.Text, "until Monday, 12 January 2026 with limited") || strings.Contains(p.Text, "<p>") {
				t.Errorf("outlook Text = %q", p.Text)
			}
			if p.DSN != nil {
				t.Errorf("outlook DSN = %+v, want none", p.DSN)
			}

			p = read("sounds_good.eml")
			if want := []string{"hossagent.outbox.60@acme-outreach.example", "hossagent.outbox.61@acme-outreach.example"}; !slices.Equal(p.References, want) {
				t.Errorf("folded References = %q, want %q", p.References, want)
			}
			if p.InReplyTo != "hossagent.outbox.61@acme-outreach.example" || p.MessageID != "CAB9xK2pQ7uN1m@mail.gmail.com" {
				t.Errorf("gmail ids: In-Reply-To %q, Message-ID %q", p.InReplyTo, p.MessageID)
			}
			if p.NewText != "Sounds good, let\u2019s talk next week.\n\nAnna" {
				t.Errorf("gmail NewText = %q", p.NewText)
			}

			p = read("gmail_vacation.eml")
			if p.Headers.XAutoreply != "yes" || p.Headers.Precedence != "bulk" || p.Headers.ReturnPath != "<>" {
				t.Errorf("gmail vacation headers = %+v", p.Headers)
			}

			p = read("html_only.eml")
			if p.FromName != "S\u00f8ren Hansen" || p.From != "soren@fjord-cafe.example" {
				t.Errorf("html From = %q, %q", p.From, p.FromName)
			}
			for _, bad := range []string{"<", "color:red", "remove me", "unsubscribe"} {
				if strings.Contains(strings.ToLower(p.NewText), bad) {
					t.Errorf("html NewText has %q: %q", bad, p.NewText)
				}
			}
			if !strings.Contains(p.NewText, "We\u2019d be interested \u2014 could you send more info & pricing?") {
				t.Errorf("html NewText = %q", p.NewText)
			}
			if !strings.Contains(p.Text, "> Not interested? Unsubscribe here.") {
				t.Errorf("html Text keeps the quoted history marked: %q", p.Text)
			}

			p = read("latin1.eml")
			if p.FromName != "Jos\u00e9 M\u00fcller" || p.Subject != "Re: Caf\u00e9 Z\u00fcrich \u2013 a quick idea" {
				t.Errorf("latin-1 headers: name %q, subject %q", p.FromName, p.Subject)
			}
			if !strings.HasPrefix(p.Text, "Yes, let\u2019s chat \u2013 our caf\u00e9 needs more guests.") || !utf8.ValidString(p.Text) {
				t.Errorf("latin-1 Text = %q", p.Text)
			}

			p = read("not_now.eml")
			if p.NewText != "Not right now, maybe next quarter.\n\nClaire" {
				t.Errorf("base64 outlook NewText = %q", p.NewText)
			}
		})
	}
}

func TestParseInboundDSN(t *testing.T) {
	for _, tc := range []struct {
		file, original, action, status, recipient, diagnostic string
		standard                                              bool
	}{
		{"postfix_dsn.eml", "hossagent.outbox.101@acme-outreach.example", "failed", "5.1.1", "nobody@old-bakery.example",
			"550 5.1.1 <nobody@old-bakery.example>: Recipient address rejected: User unknown in virtual mailbox table", true},
		{"exchange_ndr.eml", "hossagent.outbox.202@acme-outreach.example", "failed", "5.1.10", "j.doe@fabrikam.example",
			"550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient j.doe@fabrikam.example not found by SMTP address lookup", true},
		{"delayed_dsn.eml", "hossagent.outbox.303@acme-outreach.example", "delayed", "4.4.1", "owner@slow-florist.example",
			"connect to mx.slow-florist.example[203.0.113.9]:25: Connection timed out", true},
		{"qmail_failure.eml", "hossagent.outbox.404@acme-outreach.example", "failed", "5.1.1", "sales@closed-shop.example", "", false},
	} {
		for _, nl := range []string{"LF", "CRLF"} {
			raw := readReply(t, tc.file)
			if nl == "CRLF" {
				raw = crlf(raw)
			}
			p, err := ParseInbound(raw)
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			d := p.DSN
			if d == nil {
				t.Errorf("%s (%s): no DSN", tc.file, nl)
				continue
			}
			if d.OriginalMessageID != tc.original || d.Standard != tc.standard {
				t.Errorf("%s (%s): original %q standard %v, want %q %v", tc.file, nl, d.OriginalMessageID, d.Standard, tc.original, tc.standard)
			}
			if len(d.Recipients) != 1 {
				t.Errorf("%s (%s): recipients %+v, want one", tc.file, nl, d.Recipients)
				continue
			}
			r := d.Recipients[0]
			if r.Action != tc.action || r.Status != tc.status || r.Address() != tc.recipient || r.DiagnosticCode != tc.diagnostic {
				t.Errorf("%s (%s): recipient %+v, want %s %s %s %q", tc.file, nl, r, tc.action, tc.status, tc.recipient, tc.diagnostic)
			}
			if strings.Contains(p.Text, "Hi, we help") && tc.standard {
				t.Errorf("%s: Text is the returned message's, not the report's: %q", tc.file, p.Text)
			}
		}
	}
	p, _ := ParseInbound(readReply(t, "postfix_dsn.eml"))
	if p.DSN.ReportingMTA != "mail.acme-outreach.example" || p.DSN.Recipients[0].OriginalRecipient != "nobody@old-bakery.example" {
		t.Errorf("postfix DSN = %+v", p.DSN)
	}
	if p.From != "mailer-daemon@mail.acme-outreach.example" {
		t.Errorf("postfix From = %q", p.From)
	}
}

func TestParseInboundRefusesAndLimits(t *testing.T) {
	for _, raw := range []string{"", "\r\n\r\nbody only", "no header here\n\nbody"} {
		if _, err := ParseInbound([]byte(raw)); !errors.Is(err, ErrNotEmail) {
			t.Errorf("ParseInbound(%q) error = %v, want ErrNotEmail", raw, err)
		}
	}

	// A message longer than the limit is read from its beginning.
	big := "From: a@b.example\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\nInterested!\r\n" + strings.Repeat("x", MaxInboundMessage)
	p, err := ParseInbound([]byte(big))
	if err != nil || !p.Truncated || !strings.HasPrefix(p.Text, "Interested!") || len(p.Text) > maxReplyText {
		t.Errorf("big message: err %v, truncated %v, text %d bytes", err, p.Truncated, len(p.Text))
	}

	// Deep nesting stops at maxMIMEDepth; many parts at maxMIMEParts.
	var deep strings.Builder
	deep.WriteString("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := 1; i <= 50; i++ {
		deep.WriteString("--b" + itoa(i-1) + "\r\nContent-Type: multipart/mixed; boundary=b" + itoa(i) + "\r\n\r\n")
	}
	deep.WriteString("--b50\r\nContent-Type: text/plain\r\n\r\ntoo deep\r\n")
	if p, err := ParseInbound([]byte(deep.String())); err != nil || p.Text != "" {
		t.Errorf("deep nesting: err %v, text %q", err, p.Text)
	}
	var many strings.Builder
	many.WriteString("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n")
	for range 300 {
		many.WriteString("--zz\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n")
	}
	many.WriteString("--zz\r\nContent-Type: text/plain\r\n\r\nlate text\r\n--zz--\r\n")
	if p, err := ParseInbound([]byte(many.String())); err != nil || !p.Truncated || p.Text != "" {
		t.Errorf("many parts: err %v, truncated %v, text %q", err, p.Truncated, p.Text)
	}

	// Deeply nested quotes cost linear time and a bounded prefix.
	nested := "From: a@b.example\r\nContent-Type: text/html\r\n\r\n" + strings.Repeat("<blockquote>quoted ", 1<<15)
	if p, err := ParseInbound([]byte(nested)); err != nil || len(p.Text) > maxReplyText ||
		strings.Contains(p.Text, "> > > > ") || !strings.HasPrefix(p.Text, "> quoted\n> > quoted\n> > > quoted\n> > > quoted\n") {
		t.Errorf("nested blockquotes: err %v, %d bytes, starts %q", err, len(p.Text), p.Text[:min(len(p.Text), 40)])
	}

	// Broken pieces are skipped, not fatal: a bad header line, junk in
	// base64, an unknown charset, a bad date, an unterminated multipart.
	odd := "Subject: =?x-unknown?Q?caf=E9?=\r\nthis line is no header\r\nFrom: \"Broken =?bad?= name\" <Odd@Example.COM>\r\n" +
		"Date: yesterday\r\nMessage-ID: no-brackets@example.com\r\nReferences: <a@x> junk <b@y\r\n" +
		"Content-Type: multipart/mixed; boundary=\"q\"; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/plain; charset=x-klingon\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nSGVs bG8h\r\n!!\r\n--q\r\nContent-Type: text/html\r\n\r\n<p>never closed"
	p, err = ParseInbound([]byte(odd))
	if err != nil {
		t.Fatalf("odd message: %v", err)
	}
	if p.From != "odd@example.com" || p.MessageID != "no-brackets@example.com" || !slices.Equal(p.References, []string{"a@x", "b@y"}) ||
		!p.Date.IsZero() || p.Text != "Hello!" {
		t.Errorf("odd message = %+v", p)
	}
}

func itoa(i int) string { return fmt.Sprintf("%02d", i) }

func TestMessageIDs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"<a@b>", []string{"a@b"}},
		{"  <a@b> (comment) <c@d>", []string{"a@b", "c@d"}},
		{"a@b c@d", []string{"a@b", "c@d"}},
		{"<a@\r\n b>", []string{"a@b"}},
		{"<>", nil},
		{"", nil},
		{"<" + strings.Repeat("x", maxReplyID+1) + ">", nil},
	} {
		if got := messageIDs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("messageIDs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var refs []string
	for i := range 80 {
		refs = append(refs, "r"+itoa(i))
	}
	got := clipRefs(refs)
	if len(got) != maxReferences || got[0] != "r00" || got[len(got)-1] != "r79" {
		t.Errorf("clipRefs kept %d: first %q last %q", len(got), got[0], got[len(got)-1])
	}
}

func TestStripQuoted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Yes please.\n\n> old text\n> unsubscribe", "Yes please."},
		{"Great.\n\nOn Mon, Jan 5, 2026 at 9:00 AM Jane <j@x.example> wrote:\n> hi", "Great."},
		{"Great.\n\nOn Mon, Jan 5, 2026 at 9:00 AM Jane Doe\n<j@x.example> wrote:\n\nhi unquoted", "Great."},
		{"Fine.\n________________________________\nFrom: Acme <a@b>\nSent: Monday\nTo: me\nSubject: hi\n\nunsubscribe", "Fine."},
		{"Fine.\n\n*From:* Acme [mailto:a@b]\n*Sent:* Monday\n*To:* me\n\nunsubscribe", "Fine."},
		{"OK\n\n-----Original Message-----\nunsubscribe", "OK"},
		{"OK\n\n---------- Forwarded message ---------\nunsubscribe", "OK"},
		{"Thanks\n-- \nJane\nTo unsubscribe from our newsletter...", "Thanks"},
		{"Interleaved:\n> question one?\nanswer one\n> question two?\nanswer two", "Interleaved:\nanswer one\nanswer two"},
		{"Jane wrote:\n> quoted\nmine", "mine"},
		{"On Monday we can talk.", "On Monday we can talk."},
		{"From: me to you, with love. Sent: now", "From: me to you, with love. Sent: now"},
	} {
		if got := StripQuoted(tc.in); got != tc.want {
			t.Errorf("StripQuoted(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecodeCharset(t *testing.T) {
	for _, tc := range []struct{ in, charset, want string }{
		{"caf\xe9", "ISO-8859-1", "caf\u00e9"},
		{"\x93quoted\x94 \x80", "windows-1252", "\u201cquoted\u201d \u20ac"},
		{"\xa4", "iso-8859-15", "\u20ac"},
		{"caf\u00e9", "utf-8", "caf\u00e9"},
		{"bad \xff", "utf-8", "bad \ufffd"},
		{"bad \xff", "x-unknown", "bad \ufffd"},
		{"plain", "", "plain"},
	} {
		if got := decodeCharset([]byte(tc.in), tc.charset); got != tc.want {
			t.Errorf("decodeCharset(%q, %q) = %q, want %q", tc.in, tc.charset, got, tc.want)
		}
	}
}

func TestHTMLToText(t *testing.T) {
	got := htmlToText(`<html><head><title>t</title><style>x{}</style></head><body><p>One &amp; two</p>` +
		`<p>three<br>four</p><script>evil()</script><blockquote>quoted<p>more</p></blockquote>after</body></html>`)
	want := "One & two\n\nthree\nfour\n\n> quoted\n> more\n\nafter"
	if got != want {
		t.Errorf("htmlToText = %q, want %q", got, want)
	}
}

// FuzzParseInbound feeds hostile messages to the parser (without
// ParseInbound's recover, so a panic is a finding) and the sorter.
func FuzzParseInbound(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "replies", "*.eml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(crlf(b))
	}
	f.Add([]byte("From: a@b\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n\r\n\r\nFinal-Recipient: ;\r\n --x--"))
	f.Add([]byte("From: <>\r\nContent-Type: text/html\r\n\r\n<div class=gmail_quote><blockquote><blockquote>"))
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := parseInbound(raw)
		if err != nil {
			if !errors.Is(err, ErrNotEmail) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for _, s := range []string{p.MessageID, p.InReplyTo, p.From, p.FromName, p.Subject, p.Text, p.NewText} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("invalid string %q", s)
			}
		}
		if len(p.Text) > maxReplyText || len(p.References) > maxReferences || len(p.Subject) > maxHeaderValue {
			t.Fatalf("limits exceeded: text %d, refs %d, subject %d", len(p.Text), len(p.References), len(p.Subject))
		}
		if p.DSN != nil && len(p.DSN.Recipients) > maxDSNRecipients {
			t.Fatalf("%d DSN recipients", len(p.DSN.Recipients))
		}
		s := SortReply(p, now)
		if !ValidReplyClass(s.Class) || s.Reason == "" || !utf8.ValidString(s.Reason) {
			t.Fatalf("sorted %+v", s)
		}
		if (s.Class == ReplyBounce && p.DSN == nil) || (s.Hard && s.Class != ReplyBounce) {
			t.Fatalf("bounce without a DSN, or hard without a bounce: %+v", s)
		}
	})
}
