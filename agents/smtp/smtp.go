// Package smtp is HossAgent's SMTP adapter on go-mail: the agents.Mailer
// for EMAIL_MODE=SMTP.
package smtp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/hossagent/hossagent/agents"
)

// SMTP transport security, as SMTP_TLS names it.
const (
	// StartTLS upgrades the connection with STARTTLS and refuses a
	// server that does not offer it (port 587).
	StartTLS = "starttls"
	// ImplicitTLS speaks TLS from the first byte (port 465).
	ImplicitTLS = "tls"
	// NoTLS sends in the clear: for a relay on the same host or a test
	// server only, since credentials travel in plain text too.
	NoTLS = "none"
)

// defaultTimeout bounds one connection: dial, handshake, the whole
// exchange.
const defaultTimeout = 30 * time.Second

// Options configure the SMTP mailer (the SMTP_* settings).
type Options struct {
	Host string
	// Port defaults to 587 for starttls, 465 for tls and 25 for none.
	Port               int
	Username, Password string // auth is used when Username is set
	// TLS is StartTLS (the default), ImplicitTLS or NoTLS.
	TLS string
	// From and FromName are the sender for a message that names none.
	From, FromName string
	// ReplyTo, when set, is the Reply-To address of every message
	// (EMAIL_REPLY_TO): where the recipients' replies go.
	ReplyTo string
	// Timeout bounds one send, connection included; 0 is 30 s.
	Timeout time.Duration
	// TLSConfig replaces the default (system roots, server name Host); tests
	// trust their own certificate with it.
	TLSConfig *tls.Config
	// Now dates the messages; nil is time.Now.
	Now func() time.Time
	// Random draws the Message-ID of a mail that has no outbox message
	// (the control room's test e-mail); nil is crypto/rand.
	Random io.Reader
}

// Mailer sends each message over its own SMTP connection through
// go-mail. One connection per message keeps the outcome of each message
// unambiguous, and BizDev sends at most a few a minute. Safe for
// concurrent use.
type Mailer struct {
	opts Options
}

// New checks the options and returns the mailer for EMAIL_MODE=SMTP.
func New(opts Options) (*Mailer, error) {
	opts.Host = strings.TrimSpace(opts.Host)
	opts.TLS = strings.ToLower(strings.TrimSpace(opts.TLS))
	if opts.TLS == "" {
		opts.TLS = StartTLS
	}
	if opts.Port == 0 {
		opts.Port = map[string]int{StartTLS: 587, ImplicitTLS: 465, NoTLS: 25}[opts.TLS]
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Random == nil {
		opts.Random = rand.Reader
	}
	switch {
	case opts.Host == "":
		return nil, errors.New("smtp: no host")
	case opts.TLS != StartTLS && opts.TLS != ImplicitTLS && opts.TLS != NoTLS:
		return nil, fmt.Errorf("smtp: TLS mode %q: want starttls, tls or none", opts.TLS)
	case opts.Port < 1 || opts.Port > 65535:
		return nil, fmt.Errorf("smtp: port %d out of range", opts.Port)
	}
	if opts.From != "" {
		if _, err := netmail.ParseAddress(opts.From); err != nil {
			return nil, fmt.Errorf("smtp: sender %q: %w", opts.From, err)
		}
	}
	if opts.ReplyTo != "" {
		if _, err := netmail.ParseAddress(opts.ReplyTo); err != nil {
			return nil, fmt.Errorf("smtp: Reply-To %q: %w", opts.ReplyTo, err)
		}
	}
	return &Mailer{opts: opts}, nil
}

// Mode is SMTP.
func (m *Mailer) Mode() string { return agents.MailModeSMTP }

// Send delivers one message and returns its Message-ID, which is derived
// from the outbox id: a retry of the same outbox message carries the same
// Message-ID, so a receiving server can tell it is not a new message.
// The message counts as sent once the server accepted its DATA; a failure
// after that (RSET, QUIT) does not make it fail, so it is never sent twice.
// Cancelling ctx aborts the exchange at once.
func (m *Mailer) Send(ctx context.Context, out agents.OutgoingMail) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	msg, id, err := m.message(out)
	if err != nil {
		return "", &agents.MailError{Provider: "smtp", Permanent: true, Err: err}
	}
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	client, err := mail.NewClient(m.opts.Host, m.clientOptions(ctx, &stop)...)
	if err != nil {
		return "", &agents.MailError{Provider: "smtp", Permanent: true, Err: err}
	}
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return "", mailError(err)
	}
	defer func() { _ = client.CloseWithSMTPClient(conn) }()
	err = client.SendWithSMTPClient(conn, msg)
	if msg.IsDelivered() {
		return id, nil
	}
	if err == nil {
		err = errors.New("the server did not confirm the message")
	}
	return "", mailError(err)
}

// clientOptions configure go-mail for one send. The connection is dialled
// here, not by go-mail, so that cancelling ctx can close it mid-exchange;
// *stop unregisters that once the send is over.
func (m *Mailer) clientOptions(ctx context.Context, stop *func() bool) []mail.Option {
	tlsConfig := m.tlsConfig()
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := (&net.Dialer{}).DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		*stop = context.AfterFunc(ctx, func() { _ = raw.Close() })
		if m.opts.TLS != ImplicitTLS {
			return raw, nil
		}
		conn := tls.Client(raw, tlsConfig)
		if err := conn.HandshakeContext(dctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		// A *tls.Conn, unwrapped: go-mail's SMTP client sees the connection
		// is encrypted and allows PLAIN and LOGIN over it.
		return conn, nil
	}
	opts := []mail.Option{
		mail.WithPort(m.opts.Port), mail.WithTimeout(m.opts.Timeout), mail.WithDialContextFunc(dial),
		mail.WithTLSConfig(tlsConfig),
	}
	switch m.opts.TLS {
	case StartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case ImplicitTLS:
		opts = append(opts, mail.WithSSL())
	case NoTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if m.opts.Username == "" {
		return opts
	}
	// The strongest mechanism the server offers from this list; PLAIN and
	// LOGIN travel in the clear only where the operator chose no TLS.
	mechs := []mail.SMTPAuthType{mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1, mail.SMTPAuthCramMD5, mail.SMTPAuthPlain, mail.SMTPAuthLogin}
	if m.opts.TLS == NoTLS {
		mechs = []mail.SMTPAuthType{mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1, mail.SMTPAuthCramMD5, mail.SMTPAuthPlainNoEnc, mail.SMTPAuthLoginNoEnc}
	}
	return append(opts, mail.WithUsername(m.opts.Username), mail.WithPassword(m.opts.Password), mail.WithOpportunisticSMTPAuth(mechs...))
}

func (m *Mailer) tlsConfig() *tls.Config {
	if m.opts.TLSConfig == nil {
		return &tls.Config{ServerName: m.opts.Host, MinVersion: tls.VersionTLS12}
	}
	c := m.opts.TLSConfig.Clone()
	if c.ServerName == "" {
		c.ServerName = m.opts.Host
	}
	return c
}

// message builds the MIME message: plain text, the sender, the recipient,
// the Reply-To, the subject, a Message-ID from the outbox id and every extra
// header. With HTML the body is multipart/alternative (text/plain first,
// then text/html); with attachments it is multipart/mixed around that, each
// file base64 as Content-Disposition: attachment. A message with neither is
// a single text/plain part.
func (m *Mailer) message(out agents.OutgoingMail) (*mail.Msg, string, error) {
	if err := agents.CheckAttachments(out.Attachments); err != nil {
		return nil, "", err
	}
	from, fromName := out.From, out.FromName
	if from == "" {
		from, fromName = m.opts.From, m.opts.FromName
	}
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.FromFormat(fromName, from); err != nil {
		return nil, "", fmt.Errorf("sender %q: %w", from, err)
	}
	if err := msg.To(out.To); err != nil {
		return nil, "", fmt.Errorf("recipient %q: %w", out.To, err)
	}
	replyTo := m.opts.ReplyTo
	if out.ReplyTo != "" {
		replyTo = out.ReplyTo
	}
	if replyTo != "" {
		if err := msg.ReplyTo(replyTo); err != nil {
			return nil, "", fmt.Errorf("Reply-To %q: %w", replyTo, err)
		}
	}
	for name, value := range out.Headers {
		if strings.ContainsAny(name+value, "\r\n") || strings.ContainsAny(name, " :") || name == "" {
			return nil, "", fmt.Errorf("header %q is malformed", name)
		}
		msg.SetGenHeader(mail.Header(textproto.CanonicalMIMEHeaderKey(name)), value)
	}
	id, err := m.messageID(out.OutboxID, from)
	if err != nil {
		return nil, "", err
	}
	msg.SetMessageIDWithValue(id)
	msg.SetDateWithValue(m.opts.Now())
	msg.Subject(out.Subject)
	msg.SetUserAgent("HossAgent")
	msg.SetBodyString(mail.TypeTextPlain, out.Body)
	if out.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, out.HTML)
	}
	for _, a := range out.Attachments {
		msg.AttachReadSeeker(agents.AttachmentName(a.Filename), bytes.NewReader(a.Content),
			mail.WithFileContentType(mail.ContentType(agents.AttachmentType(a.ContentType))), mail.WithFileEncoding(mail.EncodingB64))
	}
	return msg, id, nil
}

// messageID is "hossagent.outbox.<id>@<sender's domain>" for an outbox
// message, the same on every retry of it. A mail from no outbox message
// (outboxID 0: the test e-mail) gets "hossagent.<32 random hex
// digits>@<domain>", its own: a receiving server that sees a Message-ID
// again may drop the message as a duplicate.
func (m *Mailer) messageID(outboxID int64, from string) (string, error) {
	if outboxID != 0 {
		return agents.OutboxMessageID(outboxID, from), nil
	}
	domain := "hossagent.invalid"
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		domain = strings.ToLower(from[at+1:])
	}
	var b [16]byte
	if _, err := io.ReadFull(m.opts.Random, b[:]); err != nil {
		return "", fmt.Errorf("message id: %w", err)
	}
	return "hossagent." + hex.EncodeToString(b[:]) + "@" + domain, nil
}

// mailError classifies an SMTP failure by its reply code: 5xx is permanent,
// 4xx and failures without a reply (network, TLS, timeout) are temporary.
func mailError(err error) error {
	code := 0
	var se *mail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se):
		code = se.ErrorCode()
	case errors.As(err, &te):
		code = te.Code
	}
	// The body went out and no reply code came back: the server may have
	// queued the message.
	unknown := code == 0 && se != nil && se.Reason == mail.ErrSMTPDataClose
	return &agents.MailError{Provider: "smtp", Permanent: code >= 500 && code < 600, Unknown: unknown, Code: code, Err: err}
}
