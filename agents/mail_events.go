package agents

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/hossagent/hossagent/db"
)

// The port of a mail provider's event webhook (bounces, complaints,
// unsubscribes): agents/sendgrid implements it for SendGrid, and app's
// /email/events reads through it, so app links no provider.

// MailEvents verifies and reads the event batches a mail provider posts
// (agents/sendgrid.Events).
type MailEvents interface {
	// Verifier reads the provider's verification key, as the operator
	// configured it; an error means the key is unreadable, and then no
	// batch may be accepted.
	Verifier(key string) (MailEventVerifier, error)
	// Parse reads a verified (or, without a key, unverified) batch.
	Parse(body []byte) ([]MailEvent, error)
}

// MailEventVerifier checks that a batch comes from the provider.
type MailEventVerifier interface {
	// VerifyRequest checks the signature the request's headers carry over
	// body, and that it was made within the provider's window of now. It
	// returns ErrEventSignature for a missing or wrong signature, and
	// ErrEventStale for a genuine but stale (or future) one.
	VerifyRequest(header http.Header, body []byte, now time.Time) error
}

// ErrEventSignature means a mail provider's event batch is unsigned or its
// signature does not verify against the configured key.
var ErrEventSignature = errors.New("sendgrid: event batch signature missing or invalid")

// ErrEventStale means a batch is signed, but its signature timestamp lies
// further from now than the provider's window (agents/sendgrid.EventWindow):
// a captured batch replayed, or a clock far off.
var ErrEventStale = errors.New("sendgrid: event batch timestamp outside the accepted window")

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
	// Reason is the provider's own words on why (a bounce's SMTP reply, a
	// drop's cause), "" when it gave none.
	Reason string
}

// maxFlagReason bounds the provider's words kept in a client flag.
const maxFlagReason = 120

// ClientFlag is the mail flag the event puts on a customer whose contact
// address it names (db.DB.FlagCustomerMail): "hard bounce: <the provider's
// reason>" for a hard bounce, "complaint" for a complaint, and "" for every
// other event. An unsubscribe flags no customer: it is from outreach, and
// outreach unsubscribes do not stop a client's invoices.
func (e MailEvent) ClientFlag() string {
	switch e.Suppress {
	case db.SuppressBounced:
		reason := shortReason(e.Reason)
		if reason == "" {
			reason = shortReason(e.Kind)
		}
		if reason == "" {
			return "hard bounce"
		}
		return "hard bounce: " + reason
	case db.SuppressComplaint:
		return "complaint"
	}
	return ""
}

// shortReason is s on one line, without control characters, spaces
// collapsed, at most maxFlagReason runes.
func shortReason(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(s); len(r) > maxFlagReason {
		s = string(r[:maxFlagReason-1]) + "…"
	}
	return s
}
