package agents

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
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// SendGrid's Event Webhook: the signature that proves SendGrid sent a batch,
// and the events in it that change whom outreach may write to.

// Headers of a signed SendGrid event batch.
const (
	SendGridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	SendGridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// ErrEventSignature means a SendGrid event batch is unsigned or its signature
// does not verify against the configured key.
var ErrEventSignature = errors.New("sendgrid: event batch signature missing or invalid")

// ErrEventStale means a batch is signed, but its signature timestamp lies
// more than SendGridEventWindow from now: a captured batch replayed, or a
// clock far off.
var ErrEventStale = errors.New("sendgrid: event batch timestamp outside the accepted window")

// SendGridEventWindow is how far a batch's signature timestamp may lie from
// now, either way. SendGrid signs each delivery (a retry too) when it sends
// it, so a genuine batch is seconds old; the window allows for clock skew
// and slow networks, and refuses a batch captured and replayed later.
const SendGridEventWindow = 10 * time.Minute

// SendGridEventVerifier checks the ECDSA signature SendGrid puts on each
// event batch when "Signed Event Webhook Requests" is on: SHA-256 over the
// timestamp header followed by the raw body, signed with SendGrid's P-256
// key, whose public half the operator copies into
// SENDGRID_WEBHOOK_VERIFICATION_KEY.
type SendGridEventVerifier struct {
	key *ecdsa.PublicKey
}

// NewSendGridEventVerifier reads the verification key as SendGrid shows it:
// base64 of the DER SubjectPublicKeyInfo (a PEM block is accepted too). Only
// an ECDSA P-256 key is accepted: it is what SendGrid signs with.
func NewSendGridEventVerifier(verificationKey string) (*SendGridEventVerifier, error) {
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
	return &SendGridEventVerifier{key: key}, nil
}

// Verify checks signature (base64 of an ASN.1 DER ECDSA signature) over
// timestamp ‖ body, then that timestamp (Unix seconds, as SendGrid sends
// it) lies within SendGridEventWindow of now. It returns ErrEventSignature
// for a missing or wrong signature or an unreadable timestamp, and
// ErrEventStale for a genuine but stale (or future) one. Within the window
// a batch may still arrive twice (SendGrid retries); that is harmless
// because applying an event twice changes nothing.
func (v *SendGridEventVerifier) Verify(signature, timestamp string, body []byte, now time.Time) error {
	if signature == "" || timestamp == "" {
		return fmt.Errorf("%w: %s or %s header missing", ErrEventSignature, SendGridSignatureHeader, SendGridTimestampHeader)
	}
	sent, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil || sent < 0 {
		return fmt.Errorf("%w: %s is not a Unix time", ErrEventSignature, SendGridTimestampHeader)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrEventSignature)
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	if !ecdsa.VerifyASN1(v.key, h.Sum(nil), sig) {
		return ErrEventSignature
	}
	// Compared in whole seconds (sent may be far beyond what a time.Time
	// holds); sent >= 0, so neither difference overflows.
	window := int64(SendGridEventWindow / time.Second)
	if age := now.Unix() - sent; age > window || -age > window {
		return fmt.Errorf("%w: signed %d s before now (the window is %s either way)", ErrEventStale, age, SendGridEventWindow)
	}
	return nil
}

// MailEvent is one event of a provider's batch, read for what outreach must
// do about it.
type MailEvent struct {
	// Kind is the event name as the provider sent it ("bounce", "dropped").
	Kind string
	// Address is the recipient, lower-cased; "" when the event named none
	// or an unreadable one.
	Address string
	// Suppress is the suppression reason the event calls for
	// (db.SuppressBounced, db.SuppressComplaint, db.SuppressUnsubscribed), or "" when
	// the event changes nothing (delivered, opened, a soft bounce, …).
	Suppress string
	// ID is the provider's event id (sg_event_id), for the log.
	ID string
	// Detail is the provider's reason or bounce type, for the log.
	Detail string
}

// sendGridEvent is the part of a SendGrid event HossAgent reads.
type sendGridEvent struct {
	Email   string `json:"email"`
	Event   string `json:"event"`
	Type    string `json:"type"`   // bounce: "bounce" (hard) or "blocked" (soft)
	Reason  string `json:"reason"` // dropped: why SendGrid did not send
	EventID string `json:"sg_event_id"`
}

// ParseSendGridEvents reads a batch (a JSON array of events). An event that
// is not an object is an error; unknown event names and fields are not.
func ParseSendGridEvents(body []byte) ([]MailEvent, error) {
	var raw []sendGridEvent
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("sendgrid: the event batch is not a JSON array of events: %w", err)
	}
	events := make([]MailEvent, 0, len(raw))
	for _, e := range raw {
		ev := MailEvent{Kind: e.Event, ID: e.EventID, Detail: e.Type, Address: eventAddress(e.Email)}
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
