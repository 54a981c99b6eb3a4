package sendgrid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// SendGrid's Event Webhook: the signature that proves SendGrid sent a batch,
// and the events in it that change whom outreach may write to.

// Events is SendGrid's event webhook as agents.MailEvents: its verifier
// reads SENDGRID_WEBHOOK_VERIFICATION_KEY, and its batches are read by
// ParseEvents.
type Events struct{}

var _ agents.MailEvents = Events{}

// Verifier reads the verification key (NewEventVerifier).
func (Events) Verifier(key string) (agents.MailEventVerifier, error) {
	v, err := NewEventVerifier(key)
	if err != nil {
		return nil, err // never a typed nil in the interface
	}
	return v, nil
}

// Parse reads a batch (ParseEvents).
func (Events) Parse(body []byte) ([]agents.MailEvent, error) { return ParseEvents(body) }

// Headers of a signed SendGrid event batch.
const (
	SignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	TimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// EventWindow is how far a batch's signature timestamp may lie from
// now, either way. SendGrid signs each delivery (a retry too) when it sends
// it, so a genuine batch is seconds old; the window allows for clock skew
// and slow networks, and refuses a batch captured and replayed later.
const EventWindow = 10 * time.Minute

// EventVerifier checks the ECDSA signature SendGrid puts on each
// event batch when "Signed Event Webhook Requests" is on: SHA-256 over the
// timestamp header followed by the raw body, signed with SendGrid's P-256
// key, whose public half the operator copies into
// SENDGRID_WEBHOOK_VERIFICATION_KEY.
type EventVerifier struct {
	key *ecdsa.PublicKey
}

// NewEventVerifier reads the verification key as SendGrid shows it:
// base64 of the DER SubjectPublicKeyInfo (a PEM block is accepted too). Only
// an ECDSA P-256 key is accepted: it is what SendGrid signs with.
func NewEventVerifier(verificationKey string) (*EventVerifier, error) {
	s := strings.TrimSpace(verificationKey)
	var der []byte
	if block, _ := pem.Decode([]byte(s)); block != nil {
		der = block.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), "")); err != nil {
			return nil, fmt.Errorf("sendgrid: the verification key is not base64: %w", err)
		}
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sendgrid: the verification key is not a public key: %w", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("sendgrid: the verification key is not an ECDSA P-256 key")
	}
	return &EventVerifier{key: key}, nil
}

// Verify checks signature (base64 of an ASN.1 DER ECDSA signature) over
// timestamp ‖ body, then that timestamp (Unix seconds, as SendGrid sends
// it) lies within EventWindow of now. It returns agents.ErrEventSignature
// for a missing or wrong signature or an unreadable timestamp, and
// agents.ErrEventStale for a genuine but stale (or future) one. Within the
// window a batch may still arrive twice (SendGrid retries); that is harmless
// because applying an event twice changes nothing.
func (v *EventVerifier) Verify(signature, timestamp string, body []byte, now time.Time) error {
	if signature == "" || timestamp == "" {
		return fmt.Errorf("%w: %s or %s header missing", agents.ErrEventSignature, SignatureHeader, TimestampHeader)
	}
	sent, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil || sent < 0 {
		return fmt.Errorf("%w: %s is not a Unix time", agents.ErrEventSignature, TimestampHeader)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", agents.ErrEventSignature)
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	if !ecdsa.VerifyASN1(v.key, h.Sum(nil), sig) {
		return agents.ErrEventSignature
	}
	// Compared in whole seconds (sent may be far beyond what a time.Time
	// holds); sent >= 0, so neither difference overflows.
	window := int64(EventWindow / time.Second)
	if age := now.Unix() - sent; age > window || -age > window {
		return fmt.Errorf("%w: signed %d s before now (the window is %s either way)", agents.ErrEventStale, age, EventWindow)
	}
	return nil
}

// VerifyRequest is Verify with the signature and timestamp read from the
// request's SignatureHeader and TimestampHeader (agents.MailEventVerifier).
func (v *EventVerifier) VerifyRequest(header http.Header, body []byte, now time.Time) error {
	return v.Verify(header.Get(SignatureHeader), header.Get(TimestampHeader), body, now)
}

// sendGridEvent is the part of a SendGrid event HossAgent reads.
type sendGridEvent struct {
	Email   string `json:"email"`
	Event   string `json:"event"`
	Type    string `json:"type"`   // bounce: "bounce" (hard) or "blocked" (soft)
	Reason  string `json:"reason"` // bounce: the SMTP reply; dropped: why SendGrid did not send
	EventID string `json:"sg_event_id"`
}

// ParseEvents reads a batch (a JSON array of events). An event that
// is not an object is an error; unknown event names and fields are not.
func ParseEvents(body []byte) ([]agents.MailEvent, error) {
	var raw []sendGridEvent
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("sendgrid: the event batch is not a JSON array of events: %w", err)
	}
	events := make([]agents.MailEvent, 0, len(raw))
	for _, e := range raw {
		ev := agents.MailEvent{Kind: e.Event, ID: e.EventID, Detail: e.Type, Reason: e.Reason, Address: eventAddress(e.Email)}
		if e.Event == "dropped" {
			ev.Detail = e.Reason
		}
		if ev.Address != "" {
			ev.Suppress = suppressionFor(e)
		}
		events = append(events, ev)
	}
	return events, nil
}

// suppressionFor maps a SendGrid event to the suppression it calls for.
//   - bounce: only a hard bounce ("bounce"); "blocked" is a soft bounce (a
//     full mailbox, a greylist) and the next message may well arrive.
//   - dropped: SendGrid refused to send. Only the reasons that are about the
//     address suppress it; a drop for our own content or quota says nothing
//     about the recipient.
//   - spamreport is a complaint; unsubscribe and group_unsubscribe are what
//     they say.
func suppressionFor(e sendGridEvent) string {
	switch e.Event {
	case "bounce":
		if t := strings.ToLower(e.Type); t == "" || t == "bounce" {
			return db.SuppressBounced
		}
	case "dropped":
		switch strings.ToLower(strings.TrimSpace(e.Reason)) {
		case "bounced address", "invalid":
			return db.SuppressBounced
		case "spam reporting address":
			return db.SuppressComplaint
		case "unsubscribed address":
			return db.SuppressUnsubscribed
		}
	case "spamreport":
		return db.SuppressComplaint
	case "unsubscribe", "group_unsubscribe":
		return db.SuppressUnsubscribed
	}
	return ""
}

// eventAddress is the event's recipient, lower-cased, or "" when it is not
// an e-mail address.
func eventAddress(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 320 {
		return ""
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return ""
	}
	return strings.ToLower(a.Address)
}
