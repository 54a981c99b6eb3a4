package agents

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// Reading an inbound reply (a raw RFC 5322 message, as an IMAP FETCH of
// BODY[] or a raw Inbound Parse post gives it) into what the reply cycle
// needs: the threading ids to match it to our message, the sender, the
// reply's own words without the quoted history, the auto-reply headers, and,
// for a delivery-status notification, who bounced and why. Pure functions:
// no store, no network. SortReply (replysort.go) decides what it is.

// MaxInboundMessage bounds the raw message ParseInbound reads: the rest is
// ignored (the headers and the first text part come first in any real
// reply) and ParsedReply.Truncated says so.
const MaxInboundMessage = 2 << 20

const (
	// maxReplyText bounds ParsedReply.Text and NewText, in bytes.
	maxReplyText = 128 << 10
	// maxMIMEParts bounds the parts walked, at any depth.
	maxMIMEParts = 100
	// maxMIMEDepth bounds multipart nesting.
	maxMIMEDepth = 8
	// maxReplyID bounds one message id: a header line is at most 998
	// characters (RFC 5322).
	maxReplyID = 998
	// maxReferences bounds ParsedReply.References (the first id, the
	// thread's root, and the last ones are kept).
	maxReferences = 50
	// maxHeaderValue bounds a header value kept in ParsedReply.
	maxHeaderValue = 998
	// maxDSNRecipients bounds DSN.Recipients.
	maxDSNRecipients = 50
	// maxDiagnostic bounds DSNRecipient.DiagnosticCode.
	maxDiagnostic = 500
)

// ErrNotEmail means ParseInbound found no header block: the input is not an
// e-mail message.
var ErrNotEmail = errors.New("inbound: not an e-mail message (no header fields)")

// ParsedReply is an inbound message as ParseInbound reads it. Every string
// is valid UTF-8 without NUL bytes.
type ParsedReply struct {
	// MessageID is the message's own id, without the angle brackets; ""
	// when it has none.
	MessageID string
	// InReplyTo is the first id of In-Reply-To, without angle brackets.
	InReplyTo string
	// References are the ids of References, in order, without angle
	// brackets (at most maxReferences: the first and the last ones).
	References []string
	// From is the sender's bare address, lower-cased ("" when unreadable);
	// FromName its display name, decoded.
	From     string
	FromName string
	// Subject is decoded (RFC 2047).
	Subject string
	// Date is the Date header; zero when missing or unreadable.
	Date time.Time
	// Text is the message's plain text (from its HTML, tags stripped, when
	// it has no text part), line ends "\n", quoted history included.
	Text string
	// NewText is Text without the quoted history (">" lines, "On … wrote:",
	// Outlook's "From: … Sent: …" block, "-----Original Message-----",
	// the signature after "-- "): the sender's own words, which SortReply
	// reads.
	NewText string
	// Headers are the header fields that sorting reads.
	Headers ReplyHeaders
	// DSN is the delivery-status notification the message is, or nil.
	DSN *DSN
	// Complaint is the feedback-loop report (ARF, RFC 5965) the message
	// is, or nil: a recipient marked our e-mail as spam.
	Complaint *Complaint
	// Truncated says the message was longer than MaxInboundMessage, or had
	// more parts than are read, and only its beginning was read.
	Truncated bool
}

// ReplyHeaders are the raw values (unfolded, trimmed) of the header fields
// that say whether a message was sent by a program.
type ReplyHeaders struct {
	AutoSubmitted         string // Auto-Submitted (RFC 3834): "no", "auto-replied", "auto-generated", …
	XAutoreply            string // X-Autoreply
	XAutorespond          string // X-Autorespond
	XAutoResponseSuppress string // X-Auto-Response-Suppress (Exchange; not by itself an auto-reply)
	Precedence            string // Precedence: "auto_reply", "bulk", "list", …
	ContentType           string // the top-level Content-Type
	ReturnPath            string // Return-Path: "<>" for bounces and most auto-replies
}

// DSN is a delivery-status notification: a standard one (RFC 3464,
// multipart/report; report-type=delivery-status) or a bounce recognised by
// its sender and subject.
type DSN struct {
	// Standard is true when read from a message/delivery-status part, false
	// when guessed from a non-standard bounce's text.
	Standard bool
	// ReportingMTA is the Reporting-MTA field, without its type ("dns;").
	ReportingMTA string
	// Recipients are the per-recipient fields, in order.
	Recipients []DSNRecipient
	// OriginalMessageID is the Message-ID of the message that bounced,
	// without angle brackets, from the message/rfc822 or
	// text/rfc822-headers part (or, in a non-standard bounce, the text);
	// "" when it is not included.
	OriginalMessageID string
}

// Complaint is a feedback-loop report (ARF, RFC 5965: multipart/report;
// report-type=feedback-report, with a message/feedback-report part and the
// original message), as mailbox providers (Microsoft's JMRP, Yahoo's CFL,
// …) send them when a recipient marks a message as spam.
type Complaint struct {
	// FeedbackType is the Feedback-Type field, lower case: "abuse",
	// "fraud", "virus", "other", "not-spam", …
	FeedbackType string
	// UserAgent is the User-Agent field ("Yahoo!-Mail-Feedback/2.0").
	UserAgent string
	// Recipients are the complained-about addresses, lower case: the
	// Original-Rcpt-To fields, else the original message's To; empty when
	// the provider redacted them (then OriginalMessageID tells whom).
	Recipients []string
	// OriginalMessageID is the Message-ID of the message complained about,
	// without angle brackets, from the original message part ("" when not
	// included).
	OriginalMessageID string
	// ReportedDomain and SourceIP are the fields of those names, when given.
	ReportedDomain, SourceIP string
}

// maxComplaintRecipients bounds Complaint.Recipients: a report is about one
// message to one recipient.
const maxComplaintRecipients = 5

// DSNRecipient is one recipient's block of a delivery-status notification.
type DSNRecipient struct {
	// FinalRecipient and OriginalRecipient are bare addresses, lower-cased
	// (the "rfc822;" type removed).
	FinalRecipient    string
	OriginalRecipient string
	// Action is lower-cased: "failed", "delayed", "delivered", "relayed" or
	// "expanded".
	Action string
	// Status is the enhanced status code ("5.1.1"), "" when missing or
	// unreadable.
	Status string
	// DiagnosticCode is the remote server's words, without the "smtp;" type.
	DiagnosticCode string
}

// Address is the recipient's address: the final one, or the original one
// when the final one is missing.
func (r DSNRecipient) Address() string {
	if r.FinalRecipient != "" {
		return r.FinalRecipient
	}
	return r.OriginalRecipient
}

// ParseInbound reads a raw message. It reads at most MaxInboundMessage
// bytes, never panics, and fails only when raw has no header block
// (ErrNotEmail); anything else unreadable (a broken part, an unknown
// charset, a bad date) is skipped or cleaned and the rest kept.
func ParseInbound(raw []byte) (p ParsedReply, err error) {
	defer func() {
		// Belt and braces for the reply agent: a message that trips a bug
		// must be an error it can log and skip, not a crash repeated at
		// every fetch. FuzzParseInbound calls parseInbound without this.
		if r := recover(); r != nil {
			p, err = ParsedReply{}, fmt.Errorf("inbound: message unreadable: %v", r)
		}
	}()
	return parseInbound(raw)
}

func parseInbound(raw []byte) (ParsedReply, error) {
	var p ParsedReply
	if len(raw) > MaxInboundMessage {
		raw, p.Truncated = raw[:MaxInboundMessage], true
	}
	h, body := splitHeader(raw)
	if len(h) == 0 {
		return ParsedReply{}, ErrNotEmail
	}
	get := func(k string) string { return headerValue(h, k) }

	p.MessageID = firstID(get("Message-Id"))
	p.InReplyTo = firstID(get("In-Reply-To"))
	p.References = clipRefs(messageIDs(get("References")))
	p.From, p.FromName = parseFrom(get("From"))
	p.Subject = decodeHeader(get("Subject"))
	if d, err := mail.ParseDate(get("Date")); err == nil {
		p.Date = d
	}
	p.Headers = ReplyHeaders{
		AutoSubmitted:         get("Auto-Submitted"),
		XAutoreply:            get("X-Autoreply"),
		XAutorespond:          get("X-Autorespond"),
		XAutoResponseSuppress: get("X-Auto-Response-Suppress"),
		Precedence:            get("Precedence"),
		ContentType:           get("Content-Type"),
		ReturnPath:            get("Return-Path"),
	}

	w := &mimeWalker{}
	w.walk(h, bytes.NewReader(body), 0)
	p.Truncated = p.Truncated || w.truncated
	text := w.text
	if strings.TrimSpace(text) == "" && w.html != "" {
		text = htmlToText(w.html)
	}
	p.Text = clipBytes(text, maxReplyText)
	p.NewText = StripQuoted(p.Text)

	switch {
	case w.feedback != nil && reportType(p.Headers.ContentType) == "feedback-report":
		// Only a report as RFC 5965 shapes it, at the top level: a
		// feedback part tucked into an ordinary message is no complaint.
		p.Complaint = w.complaint()
	case w.dsn != nil:
		w.dsn.OriginalMessageID = w.embeddedID
		p.DSN = w.dsn
	default:
		p.DSN = nonStandardBounce(p, w.embeddedID)
	}
	return p, nil
}

// splitHeader reads the header block leniently (a line that is no field is
// skipped, not fatal: a reply must not be lost to one bad header) and
// returns it with the body after the blank line.
func splitHeader(raw []byte) (textproto.MIMEHeader, []byte) {
	h := textproto.MIMEHeader{}
	var key string
	rest := raw
	for len(rest) > 0 {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // the end of the header block
		}
		if line[0] == ' ' || line[0] == '\t' {
			if key != "" {
				vs := h[key]
				if v := vs[len(vs)-1]; len(v) < maxHeaderValue*4 {
					vs[len(vs)-1] = v + " " + strings.TrimSpace(string(line))
				}
			}
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validFieldName(name) {
			key = ""
			continue
		}
		key = textproto.CanonicalMIMEHeaderKey(string(name))
		h[key] = append(h[key], strings.TrimSpace(string(value)))
	}
	return h, rest
}

// validFieldName is RFC 5322's field name: printable ASCII but ':' and space.
func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// headerValue is the first value of key, cleaned (valid UTF-8, no control
// characters), at most maxHeaderValue bytes.
func headerValue(h textproto.MIMEHeader, key string) string {
	vs := h[key]
	if len(vs) == 0 {
		return ""
	}
	return clipBytes(cleanLine(vs[0]), maxHeaderValue)
}

// cleanLine makes s valid UTF-8 on one line: control characters become
// spaces, and the ends are trimmed. C1 controls (U+0080–U+009F), which are
// what a Windows-1252 header labelled ISO-8859-1 decodes to, are read as
// Windows-1252.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f:
			return ' '
		case r >= 0x80 && r < 0xa0:
			return cp1252High[r-0x80]
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// cleanText makes s valid UTF-8 with "\n" line ends and no NUL bytes.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\x00", "")
}

// clipBytes is s cut to at most n bytes on a rune boundary.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// messageIDs are the ids of a Message-ID, In-Reply-To or References value,
// without angle brackets: those between brackets, or, when there are none,
// the words.
func messageIDs(v string) []string {
	var ids []string
	add := func(id string) {
		id = strings.Join(strings.Fields(id), "")
		if id != "" && len(id) <= maxReplyID {
			ids = append(ids, id)
		}
	}
	if !strings.Contains(v, "<") {
		for _, f := range strings.Fields(v) {
			add(strings.Trim(f, "<>"))
		}
		return ids
	}
	for {
		open := strings.IndexByte(v, '<')
		if open < 0 {
			return ids
		}
		end := strings.IndexByte(v[open:], '>')
		if end < 0 {
			add(v[open+1:])
			return ids
		}
		add(v[open+1 : open+end])
		v = v[open+end+1:]
	}
}

// firstID is the first id of v, or "".
func firstID(v string) string {
	if ids := messageIDs(v); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// clipRefs keeps the first id (the thread's root) and the last ones when
// there are more than maxReferences.
func clipRefs(ids []string) []string {
	if len(ids) <= maxReferences {
		return ids
	}
	return append([]string{ids[0]}, ids[len(ids)-maxReferences+1:]...)
}

// headerDecoder decodes RFC 2047 words in every charset decodeCharset knows
// (net/mail's own knows only UTF-8, US-ASCII and ISO-8859-1).
var headerDecoder = &mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(io.LimitReader(input, maxHeaderValue*4))
	if err != nil {
		return nil, err
	}
	return strings.NewReader(decodeCharset(b, charset)), nil
}}

// decodeHeader decodes the RFC 2047 words of v; undecodable words are kept
// as they are.
func decodeHeader(v string) string {
	if d, err := headerDecoder.DecodeHeader(v); err == nil {
		v = d
	}
	return clipBytes(cleanLine(v), maxHeaderValue)
}

// parseFrom reads a From value into its lower-cased address and its name.
func parseFrom(v string) (addr, name string) {
	if v == "" {
		return "", ""
	}
	parser := mail.AddressParser{WordDecoder: headerDecoder}
	if a, err := parser.Parse(v); err == nil {
		return strings.ToLower(a.Address), cleanLine(a.Name)
	}
	if list, err := parser.ParseList(v); err == nil && len(list) > 0 {
		return strings.ToLower(list[0].Address), cleanLine(list[0].Name)
	}
	// A display name net/mail cannot read: the address between the last
	// brackets is what matters.
	open, end := strings.LastIndexByte(v, '<'), strings.LastIndexByte(v, '>')
	if open >= 0 && end > open {
		if a, err := mail.ParseAddress(v[open : end+1]); err == nil {
			return strings.ToLower(a.Address), decodeHeader(strings.Trim(strings.TrimSpace(v[:open]), `"`))
		}
	}
	return "", ""
}

// mimeWalker collects what ParseInbound needs from the MIME tree.
type mimeWalker struct {
	parts      int
	text, html string
	dsn        *DSN
	embeddedID string
	embeddedTo []string
	feedback   map[string][]string // the message/feedback-report part's fields
	truncated  bool
}

// complaint is the Complaint of a feedback report walked.
func (w *mimeWalker) complaint() *Complaint {
	first := func(k string) string {
		if vs := w.feedback[k]; len(vs) > 0 {
			return clipBytes(cleanLine(vs[0]), 200)
		}
		return ""
	}
	c := &Complaint{FeedbackType: strings.ToLower(firstWord(first("feedback-type"))), UserAgent: first("user-agent"),
		OriginalMessageID: w.embeddedID, ReportedDomain: strings.ToLower(first("reported-domain")), SourceIP: first("source-ip")}
	for _, v := range w.feedback["original-rcpt-to"] {
		c.Recipients = appendAddress(c.Recipients, dsnAddress(v))
	}
	if len(c.Recipients) == 0 {
		for _, a := range w.embeddedTo {
			c.Recipients = appendAddress(c.Recipients, a)
		}
	}
	return c
}

// appendAddress adds a complained-about address to list: one that reads as
// a real address (not redacted with asterisks, "redacted" or
// "xxxxx"), once, at most maxComplaintRecipients.
func appendAddress(list []string, a string) []string {
	a = strings.ToLower(strings.Trim(strings.TrimSpace(a), "<>"))
	local, domain, ok := strings.Cut(a, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || len(list) >= maxComplaintRecipients || slices.Contains(list, a) {
		return list
	}
	if strings.ContainsAny(a, "* \t") || strings.Contains(a, "redacted") || strings.Trim(local, "xX") == "" {
		return list
	}
	if _, err := mail.ParseAddress(a); err != nil {
		return list
	}
	return append(list, a)
}

// feedbackFields reads a message/feedback-report body: one block of
// "Name: value" lines, every value of a repeated name kept (a report may
// name several Original-Rcpt-To), names lower case.
func feedbackFields(body string) map[string][]string {
	out := map[string][]string{}
	key, n := "", 0
	for line := range strings.SplitSeq(body, "\n") {
		if n++; n > 200 {
			break
		}
		if strings.TrimSpace(line) == "" {
			key = ""
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if vs := out[key]; key != "" && len(vs) > 0 && len(vs[len(vs)-1]) < maxHeaderValue {
				vs[len(vs)-1] += " " + strings.TrimSpace(line)
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			key = ""
			continue
		}
		key = strings.ToLower(strings.TrimSpace(name))
		if len(out[key]) < 20 {
			out[key] = append(out[key], strings.TrimSpace(value))
		} else {
			key = ""
		}
	}
	return out
}

// walk reads one entity (the message or a part) with header h.
func (w *mimeWalker) walk(h textproto.MIMEHeader, body io.Reader, depth int) {
	mediaType, params := mediaTypeOf(headerValue(h, "Content-Type"))
	if strings.HasPrefix(mediaType, "multipart/") {
		boundary := params["boundary"]
		if boundary == "" || depth >= maxMIMEDepth {
			return
		}
		mr := multipart.NewReader(body, boundary)
		for {
			if w.parts >= maxMIMEParts {
				w.truncated = true
				return
			}
			part, err := mr.NextRawPart()
			if err != nil {
				return // io.EOF, or a broken part: keep what was read
			}
			w.parts++
			w.walk(part.Header, part, depth+1)
		}
	}
	attachment := false
	if d, _, err := mime.ParseMediaType(headerValue(h, "Content-Disposition")); err == nil && d == "attachment" {
		attachment = true
	}
	switch mediaType {
	case "text/plain":
		if w.text == "" && !attachment {
			w.text = cleanText(decodeCharset(readDecoded(h, body), params["charset"]))
		}
	case "text/html":
		if w.html == "" && !attachment {
			w.html = cleanText(decodeCharset(readDecoded(h, body), params["charset"]))
		}
	case "message/delivery-status", "message/global-delivery-status":
		if w.dsn == nil {
			w.dsn = parseDeliveryStatus(cleanText(string(readDecoded(h, body))))
		}
	case "message/feedback-report":
		if w.feedback == nil {
			w.feedback = feedbackFields(cleanText(string(readDecoded(h, body))))
		}
	case "message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers":
		if w.embeddedID == "" {
			eh, _ := splitHeader(readDecoded(h, body))
			w.embeddedID = firstID(headerValue(eh, "Message-Id"))
			if list, err := (&mail.AddressParser{WordDecoder: headerDecoder}).ParseList(headerValue(eh, "To")); err == nil {
				for _, a := range list {
					w.embeddedTo = append(w.embeddedTo, strings.ToLower(a.Address))
				}
			}
		}
	}
}

// mediaTypeOf reads a Content-Type, lower-cased, with its parameters; a
// missing one is text/plain, and an unreadable one keeps what can be read
// (the type, the boundary, the charset).
func mediaTypeOf(ct string) (string, map[string]string) {
	if ct == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil {
		return mt, params
	}
	mt, rest, _ := strings.Cut(ct, ";")
	params = map[string]string{}
	for _, m := range looseParam.FindAllStringSubmatch(rest, 10) {
		k := strings.ToLower(m[1])
		if _, ok := params[k]; !ok {
			params[k] = strings.Trim(m[2], `"`)
		}
	}
	return strings.ToLower(strings.TrimSpace(mt)), params
}

var looseParam = regexp.MustCompile(`(?i)\b(boundary|charset|report-type)\s*=\s*("[^"]*"|[^;\s]+)`)

// readDecoded reads an entity's body, undoing its Content-Transfer-Encoding;
// a body that stops decoding keeps what was decoded.
func readDecoded(h textproto.MIMEHeader, body io.Reader) []byte {
	r := io.LimitReader(body, MaxInboundMessage)
	switch strings.ToLower(headerValue(h, "Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		raw, _ := io.ReadAll(r)
		raw = bytes.Map(func(c rune) rune {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
				return c
			}
			return -1 // line ends, spaces, padding and junk
		}, raw)
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(raw)))
		n, _ := base64.RawStdEncoding.Decode(out, raw[:len(raw)/4*4+validTail(len(raw)%4)])
		return out[:n]
	}
	b, _ := io.ReadAll(r)
	return b
}

// validTail is how many of the last len%4 base64 characters can be decoded
// (a single trailing one cannot).
func validTail(n int) int {
	if n == 1 {
		return 0
	}
	return n
}

// decodeCharset turns text in the named charset into UTF-8: UTF-8 and
// US-ASCII are checked, ISO-8859-1 is read as Windows-1252 (as browsers do:
// mail labelled Latin-1 is often 1252), ISO-8859-15 is decoded; anything
// else keeps its valid UTF-8 and replaces the rest.
func decodeCharset(b []byte, charset string) string {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(charset), `"`)) {
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819", "ibm819",
		"windows-1252", "cp1252", "x-cp1252", "cp-1252":
		return decodeSingleByte(b, cp1252High[:], nil)
	case "iso-8859-15", "iso8859-15", "iso_8859-15", "latin-9", "latin9", "l9":
		return decodeSingleByte(b, nil, latin9)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// decodeSingleByte decodes a Latin-1 based charset: high maps 0x80–0x9F,
// over maps single bytes that differ from Latin-1.
func decodeSingleByte(b []byte, high []rune, over map[byte]rune) string {
	var s strings.Builder
	s.Grow(len(b) + len(b)/4)
	for _, c := range b {
		switch r, ok := over[c]; {
		case ok:
			s.WriteRune(r)
		case c >= 0x80 && c < 0xa0 && high != nil:
			s.WriteRune(high[c-0x80])
		default:
			s.WriteRune(rune(c))
		}
	}
	return s.String()
}

// cp1252High is Windows-1252 from 0x80 to 0x9F (U+FFFD where undefined).
var cp1252High = [32]rune{
	0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
	0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
}

// latin9 are ISO-8859-15's differences from ISO-8859-1.
var latin9 = map[byte]rune{0xA4: 0x20AC, 0xA6: 0x0160, 0xA8: 0x0161, 0xB4: 0x017D, 0xB8: 0x017E, 0xBC: 0x0152, 0xBD: 0x0153, 0xBE: 0x0178}

// parseDeliveryStatus reads a message/delivery-status body: the
// per-message block, then one block per recipient.
func parseDeliveryStatus(body string) *DSN {
	d := &DSN{Standard: true}
	for i, block := range fieldBlocks(body) {
		if i == 0 {
			if v := block["reporting-mta"]; v != "" {
				d.ReportingMTA = afterType(v)
			}
			if block["final-recipient"] == "" && block["original-recipient"] == "" {
				continue
			}
		}
		r := DSNRecipient{
			FinalRecipient:    dsnAddress(block["final-recipient"]),
			OriginalRecipient: dsnAddress(block["original-recipient"]),
			Action:            strings.ToLower(firstWord(block["action"])),
			Status:            statusCode(block["status"]),
			DiagnosticCode:    clipBytes(afterType(block["diagnostic-code"]), maxDiagnostic),
		}
		if r.Address() == "" && r.Action == "" && r.Status == "" {
			continue
		}
		if len(d.Recipients) == maxDSNRecipients {
			break
		}
		d.Recipients = append(d.Recipients, r)
	}
	return d
}

// fieldBlocks reads blocks of "Name: value" lines separated by blank lines
// (folded lines unfolded); names are lower-cased and the first value of a
// name is kept.
func fieldBlocks(body string) []map[string]string {
	var blocks []map[string]string
	cur, key := map[string]string{}, ""
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, cur)
		}
		cur, key = map[string]string{}, ""
	}
	for line := range strings.SplitSeq(body, "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			if len(blocks) > maxDSNRecipients+1 {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if key != "" && len(cur[key]) < maxDiagnostic*2 {
				cur[key] += " " + strings.TrimSpace(line)
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			key = ""
			continue
		}
		key = strings.ToLower(strings.TrimSpace(name))
		if _, seen := cur[key]; seen {
			key = "" // keep the first
			continue
		}
		cur[key] = strings.TrimSpace(value)
	}
	flush()
	return blocks
}

// afterType is a typed DSN value without its type ("rfc822; a@b" → "a@b").
func afterType(v string) string {
	if _, rest, ok := strings.Cut(v, ";"); ok {
		v = rest
	}
	return cleanLine(v)
}

// dsnAddress is the lower-cased address of a Final-Recipient or
// Original-Recipient value.
func dsnAddress(v string) string {
	a := strings.Trim(afterType(v), "<> ")
	if a == "" || !strings.Contains(a, "@") {
		return ""
	}
	return clipBytes(strings.ToLower(a), 320)
}

// firstWord is v's first word.
func firstWord(v string) string {
	if f := strings.Fields(v); len(f) > 0 {
		return clipBytes(f[0], 40)
	}
	return ""
}

// statusRe is an enhanced status code (RFC 3463): class.subject.detail.
var statusRe = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// statusCode is the first enhanced status code in v, or "".
func statusCode(v string) string {
	return statusRe.FindString(v)
}

// htmlToText is the text of an HTML body: script, style and head content
// dropped, block elements on their own lines, entities decoded, and
// quoted history (blockquote, Gmail's, Outlook's and Yahoo's quote
// containers) marked with "> " so that StripQuoted removes it.
func htmlToText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var out, line strings.Builder
	skip, quote, lineQuote := 0, 0, 0
	quoteRest := false
	blank := true // the output ends with a blank line (or is empty)
	flush := func() {
		text := strings.Join(strings.Fields(line.String()), " ")
		line.Reset()
		if text == "" {
			if !blank {
				out.WriteString("\n")
				blank = true
			}
			return
		}
		out.WriteString(strings.Repeat("> ", min(lineQuote, 3))) // the depth is for reading, not for StripQuoted
		out.WriteString(text)
		out.WriteString("\n")
		blank = false
	}
	for {
		tt := z.Next()
		if out.Len() > maxReplyText {
			tt = html.ErrorToken // the rest would be clipped anyway
		}
		switch tt {
		case html.ErrorToken:
			flush()
			return strings.TrimSpace(out.String())
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := string(z.Text())
			if strings.TrimSpace(t) == "" {
				if line.Len() > 0 {
					line.WriteString(" ")
				}
				continue
			}
			if line.Len() == 0 {
				lineQuote = quote
				if quoteRest {
					lineQuote++
				}
			}
			line.WriteString(t)
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			end := tt == html.EndTagToken
			switch tag {
			case "script", "style", "head", "title", "noscript", "template":
				if tt == html.StartTagToken {
					skip++
				} else if end && skip > 0 {
					skip--
				}
				continue
			case "blockquote":
				flush()
				if tt == html.StartTagToken {
					quote++
				} else if end && quote > 0 {
					quote--
				}
				continue
			case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "hr", "dt", "dd":
				flush()
			}
			if !end && hasAttr && !quoteRest {
				for {
					k, v, more := z.TagAttr()
					if (string(k) == "class" || string(k) == "id") && quoteContainer(string(v)) {
						flush()
						quoteRest = true // the history is at the bottom: all that follows
						break
					}
					if !more {
						break
					}
				}
			}
		}
	}
}

// quoteContainer says whether a class or id names a mail client's quoted
// history container.
func quoteContainer(v string) bool {
	v = strings.ToLower(v)
	for _, c := range []string{"gmail_quote", "yahoo_quoted", "divrplyfwdmsg", "moz-cite-prefix", "olk_src_body_section", "protonmail_quote"} {
		if strings.Contains(v, c) {
			return true
		}
	}
	return false
}

// The patterns of quoted history.
var (
	originalMessageRe = regexp.MustCompile(`(?i)^-{2,}\s*(original message|forwarded message)\s*-{2,}$`)
	forwardedRe       = regexp.MustCompile(`(?i)^begin forwarded message:?$`)
)

// StripQuoted is text without its quoted history: lines starting with ">"
// are dropped, and everything is cut from the first "On … wrote:"
// attribution, Outlook "From: … Sent: …" header block, "-----Original
// Message-----" or forwarded-message separator, or "-- " signature
// delimiter. What remains is trimmed.
func StripQuoted(text string) string {
	lines := strings.Split(text, "\n")
	var kept []string
lines:
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(t, ">"):
			continue
		case lines[i] == "-- " || t == "--":
			break lines
		case originalMessageRe.MatchString(t) || forwardedRe.MatchString(t):
			break lines
		case attribution(lines, i):
			break lines
		case outlookHeader(lines, i):
			if n := len(kept); n > 0 && strings.Trim(strings.TrimSpace(kept[n-1]), "_-") == "" {
				kept = kept[:n-1] // the "______" line above it
			}
			break lines
		case strings.HasSuffix(t, "wrote:") && nextQuoted(lines, i):
			continue
		}
		kept = append(kept, lines[i])
	}
	return strings.TrimSpace(strings.Join(kept, "\n"))
}

// attribution says whether lines[i] starts an "On <date>, <name> wrote:"
// line, possibly wrapped over three lines.
func attribution(lines []string, i int) bool {
	t := strings.TrimSpace(lines[i])
	if len(t) < 3 || !strings.EqualFold(t[:3], "on ") {
		return false
	}
	joined := t
	for j := i; j < len(lines) && j < i+3; j++ {
		if j > i {
			joined += " " + strings.TrimSpace(lines[j])
		}
		if len(joined) > 400 {
			return false
		}
		if strings.HasSuffix(strings.TrimSpace(joined), "wrote:") {
			return true
		}
	}
	return false
}

// outlookHeader says whether lines[i] starts Outlook's header block of the
// message replied to: "From:" then, within four lines, "Sent:" or "Date:",
// and "To:" or "Subject:".
func outlookHeader(lines []string, i int) bool {
	if !hasField(lines[i], "from:") {
		return false
	}
	sent, to := false, false
	for j := i + 1; j < len(lines) && j <= i+4; j++ {
		sent = sent || hasField(lines[j], "sent:") || hasField(lines[j], "date:")
		to = to || hasField(lines[j], "to:") || hasField(lines[j], "subject:")
	}
	return sent && to
}

// hasField says whether line starts with the field name (lower-case, with
// its colon), ignoring bold markers.
func hasField(line, name string) bool {
	t := strings.TrimLeft(strings.TrimSpace(line), "*")
	t = strings.Replace(t, "*", "", 1)
	return len(t) >= len(name) && strings.EqualFold(t[:len(name)], name)
}

// nextQuoted says whether the next non-blank line after i is quoted.
func nextQuoted(lines []string, i int) bool {
	for j := i + 1; j < len(lines); j++ {
		if t := strings.TrimSpace(lines[j]); t != "" {
			return strings.HasPrefix(t, ">")
		}
	}
	return false
}

// The signs of a non-standard bounce.
var (
	bounceSubjects = []string{
		"undelivered mail returned to sender", "delivery status notification (failure)",
		"delivery status notification (delay)", "mail delivery failed", "undeliverable:",
		"undeliverable mail", "returned mail", "failure notice", "delivery failure",
		"delivery has failed", "mail delivery failure", "message not delivered",
		"could not be delivered", "delivery notification", "nondeliverable", "non-delivery",
		"delayed mail", "delivery delayed", "warning: could not send message",
	}
	daemonLocals = []string{"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster"}
	emailRe      = regexp.MustCompile(`[A-Za-z0-9._%+'\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})+`)
	textIDRe     = regexp.MustCompile(`(?im)^\s*message-id:\s*<([^>\s]{1,998})>`)
)

// nonStandardBounce recognises a bounce without a delivery-status part:
// from MAILER-DAEMON or postmaster (or sent with a null Return-Path) under a
// bounce subject, or from a daemon with a status code in its text. It
// returns nil for anything else.
func nonStandardBounce(p ParsedReply, embeddedID string) *DSN {
	local, _, _ := strings.Cut(p.From, "@")
	daemon := false
	for _, d := range daemonLocals {
		daemon = daemon || local == d
	}
	name := strings.ToLower(p.FromName)
	daemon = daemon || strings.Contains(name, "mail delivery") || strings.Contains(name, "mailer-daemon")
	subject := strings.ToLower(p.Subject)
	bounceSubject := false
	for _, s := range bounceSubjects {
		bounceSubject = bounceSubject || strings.Contains(subject, s)
	}
	text := clipBytes(p.Text, 32<<10)
	codes := statusRe.FindAllString(text, 20)
	if !(daemon && (bounceSubject || len(codes) > 0)) && !(bounceSubject && strings.TrimSpace(p.Headers.ReturnPath) == "<>") {
		return nil
	}
	r := DSNRecipient{Action: "failed"}
	delayed := strings.Contains(subject, "delay") || strings.Contains(subject, "warning")
	for _, c := range codes {
		if c[0] == '5' {
			r.Status = c
			break
		}
	}
	switch {
	case r.Status != "":
	case delayed:
		r.Action, r.Status = "delayed", "4.0.0"
		if len(codes) > 0 {
			r.Status = codes[0]
		}
	case len(codes) > 0:
		r.Status = codes[0]
	default:
		r.Status = "5.0.0"
	}
	d := &DSN{OriginalMessageID: embeddedID}
	if d.OriginalMessageID == "" {
		if m := textIDRe.FindStringSubmatch(text); m != nil {
			d.OriginalMessageID = m[1]
		}
	}
	// The recipients: the addresses of the bounce's own words (before any
	// copy of the original), but those of header lines and the daemon.
	seen := map[string]bool{p.From: true}
	for line := range strings.SplitSeq(text, "\n") {
		t := strings.ToLower(strings.TrimSpace(line))
		if strings.Contains(t, "original message") || strings.Contains(t, "copy of the message") ||
			strings.HasPrefix(t, "received:") || strings.HasPrefix(t, "return-path:") {
			break
		}
		if hasField(t, "from:") || hasField(t, "reply-to:") || hasField(t, "sender:") || hasField(t, "message-id:") {
			continue
		}
		for _, a := range emailRe.FindAllString(t, 5) {
			a = strings.Trim(a, ".'-")
			if local, _, _ := strings.Cut(a, "@"); seen[a] || slices.Contains(daemonLocals, local) {
				continue
			}
			seen[a] = true
			rr := r
			rr.FinalRecipient = a
			d.Recipients = append(d.Recipients, rr)
			if len(d.Recipients) == maxDSNRecipients {
				return d
			}
		}
	}
	if len(d.Recipients) == 0 {
		d.Recipients = []DSNRecipient{r}
	}
	return d
}
