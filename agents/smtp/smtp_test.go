package smtp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

// smtpSink is a real SMTP server (emersion/go-smtp) on a loopback port. It
// keeps every message it accepts, with its envelope.
type smtpSink struct {
	host string
	port int
	opts sinkOptions

	mu       sync.Mutex
	received []sinkMail
	rcpts    int // RCPT commands seen, accepted or not
	entered  chan struct{}
	release  chan struct{}
}

// sinkOptions shape the server.
type sinkOptions struct {
	// TLS is NoTLS (plain, no STARTTLS offered), StartTLS (plain,
	// STARTTLS offered) or ImplicitTLS (TLS from the first byte).
	TLS string
	// User and Pass, when set, make AUTH PLAIN required before MAIL.
	User, Pass string
	// RcptErr answers a RCPT TO; nil accepts every recipient.
	RcptErr func(rcpt string, n int) error
	// Hold makes DATA wait, after reading the message and before answering,
	// until the test ends; entered is signalled when it starts waiting.
	Hold bool
}

// sinkMail is one accepted message.
type sinkMail struct {
	From     string
	To       []string
	Raw      []byte
	TLS      bool
	AuthUser string
}

// startSMTPSink serves a sink until the test ends. It returns a client TLS
// configuration that trusts the server's self-signed certificate.
func startSMTPSink(t *testing.T, o sinkOptions) (*smtpSink, *tls.Config) {
	t.Helper()
	if o.TLS == "" {
		o.TLS = NoTLS
	}
	s := &smtpSink{opts: o, entered: make(chan struct{}, 16), release: make(chan struct{})}
	cert, roots := selfSignedCert(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	server := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &sinkSession{sink: s, conn: c}, nil
	}))
	server.Domain = "sink.test"
	server.AllowInsecureAuth = o.TLS == NoTLS
	server.ErrorLog = log.New(io.Discard, "", 0)
	server.ReadTimeout, server.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch o.TLS {
	case StartTLS:
		server.TLSConfig = serverTLS
	case ImplicitTLS:
		ln = tls.NewListener(ln, serverTLS)
	}
	s.host, s.port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Close() })
	t.Cleanup(func() { close(s.release) }) // runs first: frees a held DATA
	return s, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// mailer is an SMTP mailer pointed at the sink.
func (s *smtpSink) mailer(t *testing.T, o Options) *Mailer {
	t.Helper()
	o.Host, o.Port = s.host, s.port
	if o.TLS == "" {
		o.TLS = NoTLS
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (s *smtpSink) messages() []sinkMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMail(nil), s.received...)
}

// rcptCount is how many RCPT commands the server saw.
func (s *smtpSink) rcptCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcpts
}

// byRecipient counts the accepted messages per recipient.
func (s *smtpSink) byRecipient() map[string]int {
	out := map[string]int{}
	for _, m := range s.messages() {
		for _, to := range m.To {
			out[to]++
		}
	}
	return out
}

// sinkSession is one SMTP session of the sink.
type sinkSession struct {
	sink     *smtpSink
	conn     *gosmtp.Conn
	authUser string
	from     string
	to       []string
}

func (x *sinkSession) AuthMechanisms() []string {
	if x.sink.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != x.sink.opts.User || pass != x.sink.opts.Pass {
			return gosmtp.ErrAuthFailed
		}
		x.authUser = user
		return nil
	}), nil
}

func (x *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if x.sink.opts.User != "" && x.authUser == "" {
		return gosmtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	x.sink.mu.Lock()
	x.sink.rcpts++
	n := x.sink.rcpts
	x.sink.mu.Unlock()
	if f := x.sink.opts.RcptErr; f != nil {
		if err := f(to, n); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if x.sink.opts.Hold {
		x.sink.entered <- struct{}{}
		<-x.sink.release
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "held, then dropped"}
	}
	_, isTLS := x.conn.TLSConnectionState()
	x.sink.mu.Lock()
	defer x.sink.mu.Unlock()
	x.sink.received = append(x.sink.received, sinkMail{From: x.from, To: x.to, Raw: raw, TLS: isTLS, AuthUser: x.authUser})
	return nil
}

func (x *sinkSession) Reset()        { x.from, x.to = "", nil }
func (x *sinkSession) Logout() error { return nil }

// selfSignedCert makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sink.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// parsedMail is a received message, its headers and its decoded text body.
type parsedMail struct {
	Header netmail.Header
	Body   string
}

func parseSinkMail(t *testing.T, m sinkMail) parsedMail {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, m.Raw)
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return parsedMail{Header: msg.Header, Body: strings.ReplaceAll(string(b), "\r\n", "\n")}
}

func testMail(to string, id int64) agents.OutgoingMail {
	return agents.OutgoingMail{
		To: to, From: "outreach@hossagent.example", FromName: "Hoss Research", Subject: "A note for Delta",
		Body: "Hi Dana,\n\nHello there.\n", OutboxID: id,
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://hoss.example/unsubscribe/tok" + fmt.Sprint(id) + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
}

func TestSMTPMailerDeliversOutreachWithUnsubscribeHeadersAndFooter(t *testing.T) {
	r := agentstest.NewRig(t)
	sink, _ := startSMTPSink(t, sinkOptions{})
	l := r.AddLead("Dana Lee", "dana@delta.example", "Delta", "revenue operations")
	mailer := sink.mailer(t, Options{Now: r.Clock.Now})
	agentstest.WantCounts(t, r.Run(r.BizDev(mailer, agentstest.BizDevOptions(&agentstest.Sleeps{}))), agents.Counts{"queued": 1, "sent": 1, "failed": 0})

	got := sink.messages()
	if len(got) != 1 {
		t.Fatalf("the server received %d messages, want 1", len(got))
	}
	out := r.Messages(l.ID)[0]
	if out.Status != db.MessageSent || out.ProviderID != fmt.Sprintf("hossagent.outbox.%d@hossagent.example", out.ID) {
		t.Fatalf("outbox row: status %s provider id %q", out.Status, out.ProviderID)
	}
	if got[0].From != "outreach@hossagent.example" || len(got[0].To) != 1 || got[0].To[0] != "dana@delta.example" {
		t.Errorf("envelope: MAIL FROM %q RCPT TO %v", got[0].From, got[0].To)
	}
	p := parseSinkMail(t, got[0])
	from, err := netmail.ParseAddress(p.Header.Get("From"))
	if err != nil || from.Name != "Hoss Research" || from.Address != "outreach@hossagent.example" {
		t.Errorf("From = %q (%v)", p.Header.Get("From"), err)
	}
	if to, err := netmail.ParseAddress(p.Header.Get("To")); err != nil || to.Address != "dana@delta.example" {
		t.Errorf("To = %q", p.Header.Get("To"))
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(p.Header.Get("Subject"))
	if subject != out.Subject || subject == "" {
		t.Errorf("Subject = %q, want %q", subject, out.Subject)
	}
	if id := p.Header.Get("Message-Id"); id != "<"+out.ProviderID+">" {
		t.Errorf("Message-ID = %q, want <%s>", id, out.ProviderID)
	}
	if date, err := p.Header.Date(); err != nil || !date.Equal(r.Clock.Now().Truncate(time.Second)) {
		t.Errorf("Date = %q (%v), want the injected clock %s", p.Header.Get("Date"), err, r.Clock.Now())
	}
	if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want plain text", ct)
	}

	tokens, err := agents.LoadUnsubscribeTokens(r.Ctx, r.Store, r.Rand)
	if err != nil {
		t.Fatal(err)
	}
	link := "https://hoss.example/unsubscribe/" + tokens.UnsubscribeToken(out.ID)
	if lu := p.Header.Get("List-Unsubscribe"); lu != "<"+link+">" {
		t.Errorf("List-Unsubscribe = %q, want <%s>", lu, link)
	}
	if lup := p.Header.Get("List-Unsubscribe-Post"); lup != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", lup)
	}
	if strings.TrimRight(p.Body, "\n") != strings.TrimRight(out.Body, "\n") {
		t.Errorf("body on the wire differs from the outbox:\n%q\n%q", p.Body, out.Body)
	}
	for _, want := range []string{"Hi Dana", link, "1 Test Street, Springfield", "To receive no further e-mail"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, p.Body)
		}
	}
}

// EMAIL_REPLY_TO is the Reply-To of outreach mail as it reaches a real SMTP
// server; without it no Reply-To is sent (replies go to From).
func TestSMTPMailerSetsReplyToOnOutreach(t *testing.T) {
	r := agentstest.NewRig(t)
	sink, _ := startSMTPSink(t, sinkOptions{})
	r.AddLead("Dana Lee", "dana@delta.example", "Delta", "revenue operations")
	mailer := sink.mailer(t, Options{Now: r.Clock.Now, ReplyTo: "replies@reply.acme-corp.com"})
	agentstest.WantCounts(t, r.Run(r.BizDev(mailer, agentstest.BizDevOptions(&agentstest.Sleeps{}))), agents.Counts{"queued": 1, "sent": 1, "failed": 0})
	got := sink.messages()
	if len(got) != 1 {
		t.Fatalf("the server received %d messages, want 1", len(got))
	}
	p := parseSinkMail(t, got[0])
	if rt, err := netmail.ParseAddress(p.Header.Get("Reply-To")); err != nil || rt.Address != "replies@reply.acme-corp.com" {
		t.Errorf("Reply-To = %q (%v), want replies@reply.acme-corp.com", p.Header.Get("Reply-To"), err)
	}
	if from, _ := netmail.ParseAddress(p.Header.Get("From")); from == nil || from.Address != "outreach@hossagent.example" {
		t.Errorf("From = %q: Reply-To must not change the sender", p.Header.Get("From"))
	}

	if _, err := sink.mailer(t, Options{}).Send(r.Ctx, testMail("b@alpha.example", 2)); err != nil {
		t.Fatal(err)
	}
	if rt := parseSinkMail(t, sink.messages()[1]).Header.Get("Reply-To"); rt != "" {
		t.Errorf("Reply-To = %q without EMAIL_REPLY_TO, want none", rt)
	}
	if _, err := New(Options{Host: "mx.example", ReplyTo: "not an address"}); err == nil {
		t.Error("a malformed Reply-To was accepted")
	}
}

func TestSMTPMailerAuthOnAPlainTestServer(t *testing.T) {
	sink, _ := startSMTPSink(t, sinkOptions{User: "hoss", Pass: "s3cret-pass"})
	ctx := context.Background()
	id, err := sink.mailer(t, Options{Username: "hoss", Password: "s3cret-pass"}).Send(ctx, testMail("a@alpha.example", 7))
	if err != nil || id != "hossagent.outbox.7@hossagent.example" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	if got := sink.messages(); len(got) != 1 || got[0].AuthUser != "hoss" || got[0].TLS {
		t.Fatalf("received %+v, want one message from the authenticated user", got)
	}

	_, err = sink.mailer(t, Options{Username: "hoss", Password: "wrong"}).Send(ctx, testMail("b@alpha.example", 8))
	var me *agents.MailError
	if !errors.As(err, &me) || !me.Permanent || me.Code != 535 || !strings.Contains(err.Error(), "permanent 535") {
		t.Fatalf("wrong password: %v, want a permanent 535", err)
	}
	_, err = sink.mailer(t, Options{}).Send(ctx, testMail("c@alpha.example", 9))
	if !errors.As(err, &me) || !me.Permanent || me.Code != 502 {
		t.Fatalf("no credentials: %v, want a permanent 502", err)
	}
	if n := len(sink.messages()); n != 1 {
		t.Fatalf("the server accepted %d messages, want 1", n)
	}
}

func TestSMTPMailerSTARTTLSIsRequired(t *testing.T) {
	sink, clientTLS := startSMTPSink(t, sinkOptions{TLS: StartTLS, User: "hoss", Pass: "s3cret-pass"})
	ctx := context.Background()
	m := sink.mailer(t, Options{TLS: StartTLS, Username: "hoss", Password: "s3cret-pass", TLSConfig: clientTLS})
	if _, err := m.Send(ctx, testMail("a@alpha.example", 1)); err != nil {
		t.Fatalf("Send over STARTTLS: %v", err)
	}
	if got := sink.messages(); len(got) != 1 || !got[0].TLS || got[0].AuthUser != "hoss" {
		t.Fatalf("received %+v, want one message over TLS, authenticated", got)
	}

	// A certificate the client does not trust: nothing is sent, and the
	// failure is temporary (no SMTP reply code).
	untrusted := sink.mailer(t, Options{TLS: StartTLS, Username: "hoss", Password: "s3cret-pass"})
	_, err := untrusted.Send(ctx, testMail("b@alpha.example", 2))
	var me *agents.MailError
	if !errors.As(err, &me) || me.Permanent || me.Code != 0 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}

	// A server without STARTTLS is refused before any credential is sent.
	plain, _ := startSMTPSink(t, sinkOptions{})
	_, err = plain.mailer(t, Options{TLS: StartTLS, Username: "hoss", Password: "s3cret-pass", TLSConfig: clientTLS}).
		Send(ctx, testMail("c@alpha.example", 3))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("server without STARTTLS: %v", err)
	}
	if len(plain.messages()) != 0 || len(sink.messages()) != 1 {
		t.Fatalf("messages were accepted where they must not be")
	}
}

func TestSMTPMailerImplicitTLS(t *testing.T) {
	sink, clientTLS := startSMTPSink(t, sinkOptions{TLS: ImplicitTLS, User: "hoss", Pass: "s3cret-pass"})
	m := sink.mailer(t, Options{TLS: ImplicitTLS, Username: "hoss", Password: "s3cret-pass", TLSConfig: clientTLS})
	if _, err := m.Send(context.Background(), testMail("a@alpha.example", 1)); err != nil {
		t.Fatalf("Send over implicit TLS: %v", err)
	}
	if got := sink.messages(); len(got) != 1 || !got[0].TLS || got[0].AuthUser != "hoss" {
		t.Fatalf("received %+v, want one message over TLS, authenticated", got)
	}
}

func TestSMTPMailerCancelAbortsTheExchange(t *testing.T) {
	sink, _ := startSMTPSink(t, sinkOptions{Hold: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := sink.mailer(t, Options{Timeout: time.Minute}).Send(ctx, testMail("a@alpha.example", 1))
		done <- err
	}()
	<-sink.entered // the server has the message and has not answered
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Send succeeded after its context was cancelled mid-exchange")
	}
	if _, err := sink.mailer(t, Options{}).Send(ctx, testMail("b@alpha.example", 2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a cancelled context = %v", err)
	}
}

func TestNewSMTPMailerChecksItsOptions(t *testing.T) {
	for _, o := range []Options{{}, {Host: "mx.example", TLS: "ssl"}, {Host: "mx.example", Port: 70000}, {Host: "mx.example", From: "not an address"}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	for tlsMode, port := range map[string]int{"": 587, StartTLS: 587, ImplicitTLS: 465, NoTLS: 25} {
		m, err := New(Options{Host: "mx.example", TLS: tlsMode})
		if err != nil || m.opts.Port != port || m.Mode() != agents.MailModeSMTP {
			t.Errorf("TLS %q: port %d, err %v; want %d", tlsMode, m.opts.Port, err, port)
		}
	}
	// A header that would smuggle another header in is refused, permanently.
	m, _ := New(Options{Host: "127.0.0.1", Port: 1, TLS: NoTLS})
	bad := testMail("a@alpha.example", 1)
	bad.Headers["X-Evil"] = "x\r\nBcc: victim@example.com"
	if _, err := m.Send(context.Background(), bad); !agents.IsPermanentMailError(err) {
		t.Fatalf("header injection: %v, want a permanent refusal", err)
	}
}

func TestSMTPServerErrorFailsTheMessageWhichIsRetriedAndNeverResent(t *testing.T) {
	r := agentstest.NewRig(t)
	sink, _ := startSMTPSink(t, sinkOptions{RcptErr: func(_ string, n int) error {
		if n == 1 {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
		}
		return nil
	}})
	l := r.AddLead("", "flaky@co.example", "Co", "")
	mailer := sink.mailer(t, Options{Now: r.Clock.Now})
	agentstest.WantCounts(t, r.Run(r.BizDev(mailer, agentstest.BizDevOptions(&agentstest.Sleeps{}))), agents.Counts{"queued": 1, "failed": 1, "sent": 0})
	ms := r.Messages(l.ID)
	if len(ms) != 1 || ms[0].Status != db.MessageFailed || ms[0].Attempts != 1 ||
		!strings.Contains(ms[0].Error, "permanent 550") || !strings.Contains(ms[0].Error, "mailbox unavailable") {
		t.Fatalf("after the 550: %+v", ms)
	}
	if len(sink.messages()) != 0 {
		t.Fatal("a refused message was recorded as received")
	}
	agentstest.WantCounts(t, r.Run(r.BizDev(mailer, agentstest.BizDevOptions(&agentstest.Sleeps{}))), agents.Counts{"queued": 0, "failed": 0, "sent": 1})
	agentstest.WantCounts(t, r.Run(r.BizDev(mailer, agentstest.BizDevOptions(&agentstest.Sleeps{}))), agents.Counts{"queued": 0, "sent": 0})
	if got := sink.byRecipient(); got["flaky@co.example"] != 1 || len(got) != 1 {
		t.Fatalf("received %v, want flaky@co.example once", got)
	}
	if ms := r.Messages(l.ID); len(ms) != 1 || ms[0].Status != db.MessageSent || ms[0].Attempts != 2 {
		t.Fatalf("after the retry: %+v", ms)
	}

	// A 4xx is temporary.
	busy, _ := startSMTPSink(t, sinkOptions{RcptErr: func(string, int) error {
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	}})
	_, err := busy.mailer(t, Options{}).Send(r.Ctx, testMail("a@alpha.example", 1))
	var me *agents.MailError
	if !errors.As(err, &me) || me.Permanent || me.Code != 451 || agents.IsPermanentMailError(err) {
		t.Fatalf("451: %v, want a temporary error", err)
	}
}

// crashingMailer sends through the real mailer, then "crashes" before BizDev
// can record the provider's acceptance.
type crashingMailer struct {
	agents.Mailer
	crash func(ctx context.Context) error
	once  sync.Once
}

func (c *crashingMailer) Send(ctx context.Context, m agents.OutgoingMail) (string, error) {
	id, err := c.Mailer.Send(ctx, m)
	if err != nil {
		return "", err
	}
	var crashErr error
	c.once.Do(func() { crashErr = c.crash(ctx) })
	return id, crashErr
}

func TestSMTPCrashBetweenSendingAndSentNeverDeliversTwice(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash func(r *agentstest.Rig, cancel context.CancelFunc) func(context.Context) error
	}{
		{"context cancelled once the server accepted", func(_ *agentstest.Rig, cancel context.CancelFunc) func(context.Context) error {
			return func(ctx context.Context) error { cancel(); return ctx.Err() }
		}},
		{"panic after Send returned", func(*agentstest.Rig, context.CancelFunc) func(context.Context) error {
			return func(context.Context) error { panic("process killed") }
		}},
		{"store gone before sent is written", func(r *agentstest.Rig, _ context.CancelFunc) func(context.Context) error {
			return func(context.Context) error { _ = r.Store.Close(); return nil }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := agentstest.NewRig(t)
			sink, _ := startSMTPSink(t, sinkOptions{})
			first := r.AddLead("", "first@one.example", "One", "")
			second := r.AddLead("", "second@two.example", "Two", "")
			real := sink.mailer(t, Options{Now: r.Clock.Now})
			ctx, cancel := context.WithCancel(r.Ctx)
			defer cancel()
			crashing := &crashingMailer{Mailer: real, crash: tc.crash(r, cancel)}

			err := runRecovering(ctx, r.BizDev(crashing, agentstest.BizDevOptions(&agentstest.Sleeps{})))
			if err == nil {
				t.Fatal("the crashed run reported success")
			}
			if got := sink.byRecipient(); got["first@one.example"] != 1 || len(got) != 1 {
				t.Fatalf("before the restart the server received %v", got)
			}

			// Restart: a fresh store handle and a fresh cycle with the real
			// mailer. The first message's fate is unknown to the outbox.
			r.Store = r.Open()
			if ms := r.Messages(first.ID); len(ms) != 1 || ms[0].Status != db.MessageSending || ms[0].NeedsReview {
				t.Fatalf("after the crash: %+v", ms)
			}
			agentstest.WantCounts(t, r.Run(r.BizDev(real, agentstest.BizDevOptions(&agentstest.Sleeps{}))), agents.Counts{"sent": 1, "needs_review": 0, "queued": 0})
			r.Clock.Advance(agents.StaleSendingAfter + time.Second)
			agentstest.WantCounts(t, r.Run(r.BizDev(real, agentstest.BizDevOptions(&agentstest.Sleeps{}))), agents.Counts{"sent": 0, "needs_review": 1, "queued": 0})
			agentstest.WantCounts(t, r.Run(r.BizDev(real, agentstest.BizDevOptions(&agentstest.Sleeps{}))), agents.Counts{"sent": 0, "needs_review": 0, "queued": 0})

			if got := sink.byRecipient(); got["first@one.example"] != 1 || got["second@two.example"] != 1 || len(got) != 2 {
				t.Fatalf("the server received %v, want each lead exactly once", got)
			}
			if ms := r.Messages(first.ID); len(ms) != 1 || ms[0].Status != db.MessageSending || !ms[0].NeedsReview {
				t.Fatalf("the crashed message: %+v, want sending and flagged for review", ms)
			}
			if ms := r.Messages(second.ID); len(ms) != 1 || ms[0].Status != db.MessageSent {
				t.Fatalf("the second message: %+v", ms)
			}
		})
	}
}

// runRecovering runs a cycle and turns a panic into an error, as the
// agent's supervisor would.
func runRecovering(ctx context.Context, c agents.Cycle) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	_, err = c.Run(ctx)
	return err
}

func TestSMTPAutopilotDeliversRealMailWithinTheCaps(t *testing.T) {
	r := agentstest.NewRig(t)
	sink, _ := startSMTPSink(t, sinkOptions{})
	opts := agentstest.BizDevOptions(&agentstest.Sleeps{})
	opts.MaxPerHour = 3
	bus := agents.NewBus()
	t.Cleanup(bus.Close)
	events := bus.Subscribe(10000)
	engine := agents.NewEngine(agents.EngineConfig{Store: r.Store, Events: bus, Logger: agentstest.QuietLogger(), Now: time.Now, Cycles: map[string]agents.Cycle{
		agents.LeadSource: agents.NewLeadSourceCycle(r.Store, r.Env(), agents.NewSyntheticLeads(r.Rand), agents.LeadSourceOptions{MaxPerCycle: 5}),
		agents.BizDev:     r.BizDev(sink.mailer(t, Options{Now: r.Clock.Now}), opts),
	}, Partial: true})
	coordinator := agents.NewCoordinator(agents.CoordinatorConfig{Engine: engine, Store: r.Store, Events: bus, Logger: agentstest.QuietLogger(),
		Now: time.Now, Ticker: func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }, Interval: time.Hour})
	engine.Add(coordinator)
	ctx, cancel := context.WithCancel(r.Ctx)
	served := make(chan error, 1)
	go func() { served <- engine.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })
	for idle := map[string]bool{}; len(idle) < 2; {
		if ev := <-events.C; ev.Kind == agents.EventAgentState && ev.State.State == agents.StateIdle {
			idle[ev.Agent] = true
		}
	}

	bizdevCounts := func() agents.Counts {
		t.Helper()
		results, err := coordinator.RunFullCycle(r.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range results {
			if res.Err != nil {
				t.Fatalf("stage %s: %v", res.Agent, res.Err)
			}
			if res.Agent == agents.BizDev {
				return res.Counts
			}
		}
		t.Fatal("no BizDev stage ran")
		return nil
	}
	agentstest.WantCounts(t, bizdevCounts(), agents.Counts{"queued": 5, "sent": 3, "capped": 2})
	if got := sink.byRecipient(); len(got) != 3 {
		t.Fatalf("after the first cycle the server received %v, want 3 recipients", got)
	}
	r.Clock.Advance(30 * time.Minute)
	agentstest.WantCounts(t, bizdevCounts(), agents.Counts{"sent": 0})
	if n := len(sink.messages()); n != 3 {
		t.Fatalf("within the same hour the server received %d messages, want still 3", n)
	}
	r.Clock.Advance(31 * time.Minute)
	agentstest.WantCounts(t, bizdevCounts(), agents.Counts{"sent": 3})
	got := sink.byRecipient()
	if len(got) != 6 || len(sink.messages()) != 6 {
		t.Fatalf("after the next hour the server received %v, want 6 recipients", got)
	}
	for to, n := range got {
		if n != 1 || !strings.HasSuffix(to, ".example") && !strings.HasSuffix(to, ".test") {
			t.Errorf("%s received %d messages", to, n)
		}
	}
	if n := r.Count("SELECT COUNT(*) FROM messages WHERE status = 'sent'"); n != 6 {
		t.Errorf("%d messages marked sent, want 6", n)
	}
}
