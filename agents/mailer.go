package agents

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/hossagent/hossagent/agents/mailmode"
	"github.com/hossagent/hossagent/db"
)

// Mail modes, as EMAIL_MODE names them: the names agents code reads, for
// the one definition in agents/mailmode.
const (
	MailModeDryRun   = mailmode.DryRun
	MailModeSMTP     = mailmode.SMTP
	MailModeSendGrid = mailmode.SendGrid
)

// OutgoingMail is one e-mail as a Mailer receives it. Body is plain text;
// HTML, when set, is the same message as HTML (a real mailer sends both as
// multipart/alternative), and Attachments are files sent with it.
type OutgoingMail struct {
	To, From, FromName, Subject, Body string
	HTML                              string
	Attachments                       []Attachment
	// ReplyTo, when set, is this message's Reply-To, in place of the
	// mailer's own (EMAIL_REPLY_TO): client e-mail is answered at
	// BILLING_EMAIL.
	ReplyTo string
	// Headers are extra header fields (List-Unsubscribe and friends) that a
	// real mailer must put on the wire as they are.
	Headers map[string]string
	// OutboxID is the outbox message the mail comes from, so that a real
	// mailer can derive a stable Message-ID or provider-side reference. 0
	// is a mail from no outbox message (the test e-mail): each gets a
	// Message-ID of its own.
	OutboxID int64
}

// Attachment is a file sent with an e-mail (an invoice PDF).
type Attachment struct {
	Filename, ContentType string
	Content               []byte
}

// Mailer hands e-mail to a provider. Send returns the provider's id for the
// accepted message; an error means the provider did not accept it, and the
// message may be tried again. Send must honour ctx.
type Mailer interface {
	Mode() string
	Send(ctx context.Context, m OutgoingMail) (providerID string, err error)
}

// MailError is a provider's refusal of a message, or a failure to reach it.
// Permanent means the provider will not take this message as it is (an SMTP
// 5xx reply, an HTTP 4xx answer); otherwise trying again later may work.
// BizDev retries both within MaxSendAttempts: a permanent error for one
// message may be a passing misconfiguration of the account.
type MailError struct {
	Provider  string // "smtp" or "sendgrid"
	Permanent bool
	// Unknown is set when the message may have been accepted: the body was
	// handed over and the provider's answer never came (a timeout or a
	// dropped connection at that moment). Such a message is never retried.
	Unknown bool
	// Code is the SMTP reply code or the HTTP status; 0 when the provider
	// never answered (network, TLS, timeout).
	Code int
	Err  error
}

func (e *MailError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		kind += " " + strconv.Itoa(e.Code)
	}
	return e.Provider + ": " + kind + " error: " + e.Err.Error()
}

func (e *MailError) Unwrap() error { return e.Err }

// IsPermanentMailError reports whether err holds a permanent refusal.
func IsPermanentMailError(err error) bool {
	var me *MailError
	return errors.As(err, &me) && me.Permanent
}

// IsUnknownMailOutcome reports whether err leaves open whether the provider
// accepted the message.
func IsUnknownMailOutcome(err error) bool {
	var me *MailError
	return errors.As(err, &me) && me.Unknown
}

// DryRunMailer accepts every message and sends nothing: the whole pipeline
// runs, the wire stays silent. Safe for concurrent use.
type DryRunMailer struct {
	mu sync.Mutex
	n  int64
}

// NewDryRunMailer returns a mailer for EMAIL_MODE=DRY_RUN.
func NewDryRunMailer() *DryRunMailer { return &DryRunMailer{} }

// Mode is DRY_RUN.
func (m *DryRunMailer) Mode() string { return MailModeDryRun }

// Send accepts the message without sending it and returns "dry-run-<n>".
func (m *DryRunMailer) Send(ctx context.Context, _ OutgoingMail) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	return "dry-run-" + strconv.FormatInt(m.n, 10), nil
}

// SleepContext waits for d or until ctx ends, whichever is first. It is the
// default for the sleeps that adapters and cycles take through an injectable
// function.
func SleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SettingUnsubscribeKey is the settings key of the per-install secret that
// signs unsubscribe tokens.
const SettingUnsubscribeKey = "unsubscribe.key"

// UnsubscribeTokens makes and checks the opaque tokens in unsubscribe links.
// A token is base64url(message id ‖ HMAC-SHA256(key, message id)): nothing is
// stored per message, a token cannot be forged or altered without the
// install's key, and it names the message (hence the lead and address) it
// unsubscribes.
type UnsubscribeTokens struct {
	key []byte
}

// LoadUnsubscribeTokens reads the install's unsubscribe key from the store,
// creating it from random on first use.
func LoadUnsubscribeTokens(ctx context.Context, store *db.DB, random io.Reader) (*UnsubscribeTokens, error) {
	v, err := store.SettingOrInit(ctx, SettingUnsubscribeKey, func() (string, error) {
		if random == nil {
			return "", errors.New("no random source to draw the unsubscribe key from")
		}
		b := make([]byte, 32)
		if _, err := io.ReadFull(random, b); err != nil {
			return "", fmt.Errorf("unable to draw the unsubscribe key: %w", err)
		}
		return base64.RawURLEncoding.EncodeToString(b), nil
	})
	if err != nil {
		return nil, err
	}
	key, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("unsubscribe: setting %s is not a valid key", SettingUnsubscribeKey)
	}
	return &UnsubscribeTokens{key: key}, nil
}

// UnsubscribeToken is the token for the unsubscribe link of message id.
func (u *UnsubscribeTokens) UnsubscribeToken(messageID int64) string {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+sha256.Size), uint64(messageID))
	return base64.RawURLEncoding.EncodeToString(u.mac(b[:8], b))
}

// VerifyUnsubscribeToken returns the message a token was made for, and false
// for any token this install did not make.
func (u *UnsubscribeTokens) VerifyUnsubscribeToken(token string) (int64, bool) {
	if len(token) > 128 {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 8+sha256.Size {
		return 0, false
	}
	want := u.mac(b[:8], nil)
	if !hmac.Equal(b[8:], want) {
		return 0, false
	}
	id := int64(binary.BigEndian.Uint64(b[:8]))
	return id, id > 0
}

// mac appends HMAC-SHA256(key, purpose ‖ id) to dst.
func (u *UnsubscribeTokens) mac(id, dst []byte) []byte {
	h := hmac.New(sha256.New, u.key)
	h.Write([]byte("hossagent/unsubscribe\x00"))
	h.Write(id)
	return h.Sum(dst)
}
