package agentstest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// MailSink is a real SMTP server (emersion/go-smtp, plain, no auth) on a
// loopback port that keeps every message it accepts, parsed: the tests of
// client e-mail read what a client's mail server would have received.
type MailSink struct {
	Host string
	Port int

	delay   time.Duration
	mu      sync.Mutex
	mails   []ReceivedMail
	arrived chan struct{}
}

// ReceivedMail is one accepted message, as its MIME parts.
type ReceivedMail struct {
	From        string
	To          []string
	Raw         []byte
	Header      mail.Header
	Subject     string
	Text, HTML  string
	Attachments []ReceivedFile
}

// ReceivedFile is one attachment of a received message.
type ReceivedFile struct {
	Filename, ContentType string
	Content               []byte
}

// StartMailSink serves a sink until the test ends. delay holds each DATA
// that long before it is answered, so that a test can kill a sender while
// a message is in flight.
func StartMailSink(t *testing.T, delay time.Duration) *MailSink {
	t.Helper()
	s := &MailSink{delay: delay, arrived: make(chan struct{}, 1)}
	server := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		return &sinkSession{sink: s}, nil
	}))
	server.Domain = "sink.test"
	server.AllowInsecureAuth = true
	server.ErrorLog = log.New(io.Discard, "", 0)
	server.ReadTimeout, server.WriteTimeout = 10*time.Second, 10*time.Second
	server.MaxMessageBytes = 32 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Host, s.Port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Close() })
	return s
}

// Mails is every message accepted so far, in arrival order.
func (s *MailSink) Mails() []ReceivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ReceivedMail(nil), s.mails...)
}

// WaitFor waits until some accepted message satisfies match and returns it;
// it fails the test after timeout.
func (s *MailSink) WaitFor(t *testing.T, timeout time.Duration, what string, match func(ReceivedMail) bool) ReceivedMail {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		for _, m := range s.Mails() {
			if match(m) {
				return m
			}
		}
		select {
		case <-s.arrived:
		case <-deadline.C:
			t.Fatalf("no %s reached the SMTP server within %s (%d messages there)", what, timeout, len(s.Mails()))
		}
	}
}

type sinkSession struct {
	sink *MailSink
	from string
	to   []string
}

func (x *sinkSession) AuthMechanisms() []string { return nil }

func (x *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if x.sink.delay > 0 {
		time.Sleep(x.sink.delay)
	}
	m, err := ParseMail(raw)
	if err != nil {
		return err
	}
	m.From, m.To = x.from, x.to
	x.sink.mu.Lock()
	x.sink.mails = append(x.sink.mails, m)
	x.sink.mu.Unlock()
	select {
	case x.sink.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (x *sinkSession) Reset() { x.from, x.to = "", nil }

func (x *sinkSession) Logout() error { return nil }

// ParseMail reads a message into its text, HTML and attachments.
func ParseMail(raw []byte) (ReceivedMail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ReceivedMail{}, err
	}
	m := ReceivedMail{Raw: raw, Header: msg.Header}
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return m, err
	}
	err = m.walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Header.Get("Content-Disposition"), msg.Body)
	return m, err
}

func (m *ReceivedMail) walk(contentType, encoding, disposition string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(media, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p); err != nil {
				return err
			}
		}
	}
	var content []byte
	switch strings.ToLower(encoding) {
	case "base64":
		content, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, body))
	case "quoted-printable":
		content, err = io.ReadAll(quotedprintable.NewReader(body))
	default:
		content, err = io.ReadAll(body)
	}
	if err != nil {
		return err
	}
	if d, dp, err := mime.ParseMediaType(disposition); err == nil && d == "attachment" {
		m.Attachments = append(m.Attachments, ReceivedFile{Filename: dp["filename"], ContentType: media, Content: content})
		return nil
	}
	switch media {
	case "text/html":
		m.HTML += string(content)
	default:
		m.Text += string(content)
	}
	return nil
}
