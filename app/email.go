package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// The mail endpoints the outside world calls: the unsubscribe link of every
// outreach e-mail (unsubscribe.go), replies forwarded by SendGrid Inbound
// Parse, and SendGrid's event webhook (bounces, complaints, unsubscribes).
// None reads a session; each verifies its caller its own way (the link's
// HMAC token, a shared secret in the URL, SendGrid's ECDSA signature), which
// is why the cross-origin check exempts them.

const (
	// maxInboundBody bounds an inbound e-mail as Inbound Parse posts it
	// (headers, text, HTML and attachments): a reply worth reading is far
	// smaller; a larger one is refused with 413.
	maxInboundBody = 1 << 20
	// maxEventsBody bounds one batch of SendGrid events.
	maxEventsBody = 1 << 20
	// maxUnsubscribeForm bounds the unsubscribe POST: one short field.
	maxUnsubscribeForm = 4 << 10
)

// mailEndpoints is the state the mail endpoints share.
type mailEndpoints struct {
	mailer agents.Mailer
	events agents.Publisher

	// eventReader verifies and reads the provider's event batches
	// (Deps.MailEvents); nil turns /email/events off, as in PRODUCTION
	// without a key.
	eventReader agents.MailEvents
	// verifier checks SendGrid's event signatures; nil when no key is
	// configured. verifierErr is set when a key is configured but
	// unreadable: then every event is refused, never accepted unchecked.
	verifier    agents.MailEventVerifier
	verifierErr error

	// testMails allows one test e-mail a minute per admin.
	testMails *attemptLimiter

	mu     sync.Mutex
	tokens *agents.UnsubscribeTokens // loaded on first use when not given
}

// newMailEndpoints prepares the mail endpoints from the dependencies. That
// SendGrid events will be taken unverified is said at start by config.Load's
// warnings, in the modes where SendGrid sends any; in PRODUCTION, without a
// key the endpoint is off (emailEvents).
func newMailEndpoints(d Deps) *mailEndpoints {
	m := &mailEndpoints{
		mailer:      d.Mailer,
		events:      d.Events,
		tokens:      d.Unsubscribe,
		testMails:   newAttemptLimiter(testMailEvery, 1, d.Now),
		eventReader: d.MailEvents,
	}
	key := d.Config.Email.SendGridVerificationKey
	if key == "" || m.eventReader == nil {
		return m
	}
	if m.verifier, m.verifierErr = m.eventReader.Verifier(key); m.verifierErr != nil {
		d.Logger.Error("SENDGRID_WEBHOOK_VERIFICATION_KEY is unreadable: every SendGrid event will be refused", "err", m.verifierErr)
	}
	return m
}

// unsubscribeTokens are the install's unsubscribe tokens: those main loaded,
// or else loaded (the key created on the very first use) from the store.
func (s *Server) unsubscribeTokens(ctx context.Context) (*agents.UnsubscribeTokens, error) {
	s.mail.mu.Lock()
	defer s.mail.mu.Unlock()
	if s.mail.tokens == nil {
		t, err := agents.LoadUnsubscribeTokens(ctx, s.store, s.random)
		if err != nil {
			return nil, err
		}
		s.mail.tokens = t
	}
	return s.mail.tokens, nil
}

// publishDataChanged tells the live views that leads changed.
func (s *Server) publishDataChanged(subject, message string) {
	if s.mail.events != nil {
		s.mail.events.Publish(agents.Event{Kind: agents.EventDataChanged, At: s.now().UTC(), Subject: subject, Message: message})
		return
	}
	s.refreshLive()
}

// sameSecret compares a presented secret with the configured one in
// constant time; hashing first hides the length too.
func sameSecret(presented, configured string) bool {
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(configured))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// readWebhookBody reads a bounded body; false means it answered (413 for
// too large, 400 for unreadable).
func readWebhookBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		return body, true
	}
	if tooBig := new(http.MaxBytesError); errors.As(err, &tooBig) {
		webhookReply(w, http.StatusRequestEntityTooLarge, "body too large")
		return nil, false
	}
	webhookReply(w, http.StatusBadRequest, "unreadable body")
	return nil, false
}

// emailEvents takes a batch of SendGrid events (POST /email/events). With a
// verification key configured nothing is read before the signature checks
// out, and a batch signed more than the provider's window from now
// (agents/sendgrid.EventWindow: a captured batch replayed) is refused.
// Without a key the endpoint is off in PRODUCTION (404: one unsigned POST
// could suppress any address) and takes unsigned batches elsewhere; without
// a reader of the events (Deps.MailEvents) it is off (404), or unavailable
// (503) when a key is set. Hard bounces, complaints and unsubscribes
// suppress the address and move its lead; a hard bounce or a complaint on a
// customer's contact address also flags the customer (Collections stops
// writing to it); every other event is ignored.
// SendGrid retries on any non-2xx answer, which is what a 500 wants;
// applying an event again changes nothing, so a retried batch is harmless.
func (s *Server) emailEvents(w http.ResponseWriter, r *http.Request) {
	if s.mail.eventReader == nil {
		s.log.Warn("sendgrid events refused: no reader of mail events was wired (Deps.MailEvents)")
		if s.cfg.Email.SendGridVerificationKey != "" {
			// A key is set: the operator wants events, so a wiring fault
			// is unavailable (SendGrid retries), not "off".
			http.Error(w, "event verification unavailable", http.StatusServiceUnavailable)
			return
		}
		s.notFound(w, r)
		return
	}
	if s.mail.verifier == nil && s.mail.verifierErr == nil && s.cfg.IsProduction() {
		s.log.Warn("sendgrid events refused: no SENDGRID_WEBHOOK_VERIFICATION_KEY in PRODUCTION")
		s.notFound(w, r)
		return
	}
	body, ok := readWebhookBody(w, r, maxEventsBody)
	if !ok {
		return
	}
	if s.mail.verifierErr != nil {
		webhookReply(w, http.StatusServiceUnavailable, "verification key unreadable")
		return
	}
	if v := s.mail.verifier; v != nil {
		err := v.VerifyRequest(r.Header, body, s.now())
		if errors.Is(err, agents.ErrEventStale) {
			s.log.Warn("sendgrid events refused: stale signature timestamp (a replay?)", "err", err)
			webhookReply(w, http.StatusForbidden, "stale timestamp")
			return
		}
		if err != nil {
			s.log.Warn("sendgrid events refused", "err", err)
			webhookReply(w, http.StatusForbidden, "bad signature")
			return
		}
	}
	events, err := s.mail.eventReader.Parse(body)
	if err != nil {
		s.log.Warn("sendgrid events refused: malformed batch", "err", err)
		webhookReply(w, http.StatusBadRequest, "malformed JSON")
		return
	}
	ctx := context.WithoutCancel(r.Context())
	applied, changed, flagged := 0, 0, 0
	for _, ev := range events {
		if ev.Suppress == "" {
			continue
		}
		c, err := s.store.ApplyMailEvent(ctx, ev.Address, ev.Suppress, "sendgrid:"+ev.Kind)
		if err != nil {
			s.log.Error("sendgrid event not applied; SendGrid will retry", "event", ev.ID, "kind", ev.Kind, "err", err)
			webhookReply(w, http.StatusInternalServerError, "not applied; retry later")
			return
		}
		applied++
		if c.Changed() {
			changed++
			s.log.Info("address suppressed by a sendgrid event", "kind", ev.Kind, "detail", ev.Detail, "reason", ev.Suppress,
				"lead", c.LeadID, "lead_moved", c.LeadMoved)
		}
		if c.Paused {
			s.log.Warn("outreach paused by a sendgrid event until an admin resumes it", "event", ev.ID, "kind", ev.Kind, "reason", ev.Suppress)
		}
		// A hard bounce or a complaint on a client's address flags the
		// customer, so Collections writes to it no more; the suppression
		// above is outreach's, which client mail does not consult.
		if flag := ev.ClientFlag(); flag != "" {
			isClient, err := s.store.FlagCustomerMail(ctx, ev.Address, flag)
			if err != nil {
				s.log.Error("sendgrid event not applied to the client; SendGrid will retry", "event", ev.ID, "kind", ev.Kind, "err", err)
				webhookReply(w, http.StatusInternalServerError, "not applied; retry later")
				return
			}
			if isClient {
				flagged++
				s.log.Warn("client address flagged by a sendgrid event", "event", ev.ID, "kind", ev.Kind)
			}
		}
	}
	if changed > 0 {
		s.publishDataChanged("suppressions", "mail events applied")
	}
	if flagged > 0 {
		s.publishDataChanged("customers", "client address flagged")
	}
	webhookReply(w, http.StatusOK, "ok")
}

// emailInbound takes a reply forwarded by SendGrid Inbound Parse
// (POST /email/inbound/{secret}, multipart or URL-encoded fields from, to,
// subject, text). A reply from a lead is stored and moves the lead to
// responded; mail from anyone else is only logged, never turned into a lead.
// Without EMAIL_INBOUND_SECRET the endpoint is off (503); a wrong secret
// looks like no endpoint at all (404).
func (s *Server) emailInbound(w http.ResponseWriter, r *http.Request) {
	secret := s.cfg.Email.InboundSecret
	if secret == "" {
		s.log.Warn("inbound e-mail refused: EMAIL_INBOUND_SECRET is not set")
		webhookReply(w, http.StatusServiceUnavailable, "inbound mail not configured")
		return
	}
	if !sameSecret(chi.URLParam(r, "secret"), secret) {
		s.notFound(w, r)
		return
	}
	body, ok := readWebhookBody(w, r, maxInboundBody)
	if !ok {
		return
	}
	form, err := parseInboundForm(r.Header.Get("Content-Type"), body)
	if err != nil {
		s.log.Warn("inbound e-mail refused: unreadable form", "err", err)
		webhookReply(w, http.StatusBadRequest, "unreadable form: "+err.Error())
		return
	}
	in, problem := inboundReplyOf(form)
	if problem != "" {
		s.log.Warn("inbound e-mail refused", "problem", problem)
		webhookReply(w, http.StatusBadRequest, problem)
		return
	}
	if s.replies != nil {
		// The sorting path every reply takes (the mailbox's, the
		// simulator's): sorted, matched, stored once, acted on.
		outcome, err := s.replies.ApplyParsed(context.WithoutCancel(r.Context()), inboundParsed(form, in), false)
		switch {
		case err != nil:
			s.log.Error("inbound e-mail not recorded; SendGrid will retry", "err", err)
			webhookReply(w, http.StatusInternalServerError, "not recorded; retry later")
		case outcome == "unmatched":
			s.log.Info("inbound e-mail from an address that is no lead: ignored", "from", in.FromAddr)
			webhookReply(w, http.StatusOK, "unknown sender")
		case outcome == "duplicate":
			webhookReply(w, http.StatusOK, "duplicate: already recorded")
		default:
			s.publishDataChanged("replies", "reply received")
			webhookReply(w, http.StatusOK, "recorded")
		}
		return
	}
	res, err := s.store.RecordInboundReply(context.WithoutCancel(r.Context()), in)
	if err != nil {
		s.log.Error("inbound e-mail not recorded; SendGrid will retry", "err", err)
		webhookReply(w, http.StatusInternalServerError, "not recorded; retry later")
		return
	}
	if res.LeadID == 0 {
		s.log.Info("inbound e-mail from an address that is no lead: ignored", "from", in.FromAddr)
		webhookReply(w, http.StatusOK, "unknown sender")
		return
	}
	if res.Duplicate {
		// A retried or repeated delivery: 200, so SendGrid stops retrying.
		s.log.Info("reply delivered again: already recorded", "lead", res.LeadID)
		webhookReply(w, http.StatusOK, "duplicate: already recorded")
		return
	}
	s.log.Info("reply received", "lead", res.LeadID, "responded", res.Responded)
	s.publishDataChanged("lead "+strconv.FormatInt(res.LeadID, 10), "reply received")
	webhookReply(w, http.StatusOK, "recorded")
}

// parseInboundForm reads the form fields of an Inbound Parse post; files
// (attachments) are dropped.
func parseInboundForm(contentType string, body []byte) (url.Values, error) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, errors.New("no readable Content-Type")
	}
	switch mediaType {
	case "multipart/form-data":
		form, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).ReadForm(maxInboundBody)
		if err != nil {
			return nil, err
		}
		defer func() { _ = form.RemoveAll() }()
		return url.Values(form.Value), nil
	case "application/x-www-form-urlencoded":
		return url.ParseQuery(string(body))
	}
	return nil, errors.New("Content-Type " + mediaType + " is not a form")
}

// inboundReplyOf reads the reply from the form, or says what is wrong.
func inboundReplyOf(form url.Values) (db.InboundReply, string) {
	var charsets map[string]string
	if c := form.Get("charsets"); c != "" {
		_ = json.Unmarshal([]byte(c), &charsets) // unreadable: take every field as UTF-8
	}
	// The sender cannot be asked to fix a reply: NUL bytes and invalid
	// UTF-8 are cleaned, never refused (a refusal is retried for days).
	field := func(name string) string { return cleanText(decodeCharset(form.Get(name), charsets[name])) }
	from := strings.TrimSpace(field("from"))
	if from == "" {
		return db.InboundReply{}, "from is missing"
	}
	addr := senderAddress(from)
	if addr == "" {
		return db.InboundReply{}, "from is not an e-mail address"
	}
	body := field("text")
	if strings.TrimSpace(body) == "" {
		body = field("html") // kept as text; every view escapes it
	}
	return db.InboundReply{FromAddr: addr, Subject: clipEcho(strings.TrimSpace(field("subject")), maxReplySubject), Body: body,
		MessageID: messageIDOf(field("headers"))}, ""
}

// maxMessageID bounds the Message-ID read: a header line is at most 998
// characters (RFC 5322).
const maxMessageID = 998

// messageIDOf reads the Message-ID from the raw header block Inbound Parse
// posts as "headers" (folded lines unfolded), or "" when there is none.
func messageIDOf(headers string) string {
	var id strings.Builder
	in := false
	for line := range strings.SplitSeq(headers, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case line == "":
			return clipEcho(strings.TrimSpace(id.String()), maxMessageID) // the end of the header block
		case line[0] == ' ' || line[0] == '\t':
			if in {
				id.WriteString(line)
			}
			continue
		case in:
			return clipEcho(strings.TrimSpace(id.String()), maxMessageID)
		}
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "Message-ID") {
			in = true
			id.WriteString(value)
		}
	}
	return clipEcho(strings.TrimSpace(id.String()), maxMessageID)
}

// maxReplySubject bounds a stored subject, in runes.
const maxReplySubject = 500

// senderAddress is the bare, lower-cased address of a From header
// ("Jane Doe <Jane@Acme.example>" → "jane@acme.example"), or "".
func senderAddress(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		return strings.ToLower(a.Address)
	}
	// A display name net/mail cannot decode (an unknown charset) must not
	// lose the reply: the address between the brackets is what matters.
	open, end := strings.LastIndexByte(from, '<'), strings.LastIndexByte(from, '>')
	if open >= 0 && end > open {
		if a, err := mail.ParseAddress(from[open : end+1]); err == nil {
			return strings.ToLower(a.Address)
		}
	}
	return ""
}

// decodeCharset turns a field in the charset Inbound Parse names for it into
// UTF-8. Latin-1 is decoded; anything else that is not valid UTF-8 keeps its
// readable part.
func decodeCharset(v, charset string) string {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "iso-8859-1", "latin1", "latin-1", "l1":
		b := make([]rune, 0, len(v))
		for i := 0; i < len(v); i++ {
			b = append(b, rune(v[i]))
		}
		return string(b)
	}
	return strings.ToValidUTF8(v, "\uFFFD")
}

// inboundParsed is an Inbound Parse post as the sorting path reads it. With
// "POST the raw, full MIME message" on, the post carries the message itself
// (field email), read like the mailbox's (agents.ParseInbound): DSNs and
// feedback-loop reports (complaints) included. Otherwise: the cleaned
// fields, and from the raw header block the threading and auto-reply
// headers.
func inboundParsed(form url.Values, in db.InboundReply) agents.ParsedReply {
	if raw := form.Get("email"); raw != "" {
		if p, err := agents.ParseInbound([]byte(raw)); err == nil && p.From != "" {
			return p
		}
	}
	p := agents.ParsedReply{MessageID: strings.Trim(in.MessageID, "<> "), From: in.FromAddr, Subject: in.Subject,
		Text: in.Body, NewText: agents.StripQuoted(in.Body)}
	if m, err := mail.ReadMessage(strings.NewReader(strings.TrimRight(cleanText(form.Get("headers")), "\r\n") + "\r\n\r\n")); err == nil {
		h := m.Header
		p.InReplyTo = strings.Trim(strings.TrimSpace(h.Get("In-Reply-To")), "<>")
		for _, ref := range strings.Fields(h.Get("References")) {
			p.References = append(p.References, strings.Trim(ref, "<>"))
		}
		p.Headers = agents.ReplyHeaders{AutoSubmitted: h.Get("Auto-Submitted"), XAutoreply: h.Get("X-Autoreply"),
			XAutorespond: h.Get("X-Autorespond"), Precedence: h.Get("Precedence"), ReturnPath: h.Get("Return-Path")}
	}
	return p
}
