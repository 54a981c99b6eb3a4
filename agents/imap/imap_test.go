package imap

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
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/hossagent/hossagent/agents"
)

const (
	testUser     = "replies@hossagent.test"
	testPassword = "Zq7-correct-horse-battery"
)

// testServer is go-imap's in-memory IMAP server on 127.0.0.1, with one
// user and its INBOX.
type testServer struct {
	user *imapmemserver.User
	addr string
	port int

	mu    sync.Mutex
	conns []net.Conn // the server's side of every accepted connection
}

type serverOptions struct {
	implicitTLS *tls.Config // TLS from the first byte
	startTLS    *tls.Config // offer STARTTLS with this config
	noKeywords  bool        // PERMANENTFLAGS without \* (keywords refused)
	idling      chan string // receives the user name when a session starts IDLE
}

func startServer(t *testing.T, o serverOptions) *testServer {
	t.Helper()
	mem := imapmemserver.New()
	ts := &testServer{user: imapmemserver.NewUser(testUser, testPassword)}
	if err := ts.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(ts.user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &hookSession{Session: mem.NewSession(), o: o}, nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}},
		InsecureAuth: o.startTLS == nil,
		TLSConfig:    o.startTLS,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	ts.port = ln.Addr().(*net.TCPAddr).Port
	var l net.Listener = &trackingListener{Listener: ln, ts: ts}
	if o.implicitTLS != nil {
		l = tls.NewListener(l, o.implicitTLS)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ts
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// hookSession is the memory server's session, optionally without keywords
// (its mailboxes keep system flags only) and telling when it idles.
type hookSession struct {
	imapserver.Session
	o serverOptions
}

func (s *hookSession) Select(name string, o *goimap.SelectOptions) (*goimap.SelectData, error) {
	d, err := s.Session.Select(name, o)
	if d != nil && s.o.noKeywords {
		d.PermanentFlags = []goimap.Flag{goimap.FlagSeen, goimap.FlagAnswered, goimap.FlagFlagged, goimap.FlagDeleted, goimap.FlagDraft}
	}
	return d, err
}

// Idle reports the session's updates as the memory server's IDLE does, but
// by polling its queue, so that an update queued at any moment is sent
// (the memory server misses one queued while its IDLE is starting, when
// the test may append), and says when it started.
func (s *hookSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if s.o.idling != nil {
		select {
		case s.o.idling <- "idle":
		default:
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.Session.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

type trackingListener struct {
	net.Listener
	ts *testServer
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.ts.mu.Lock()
		l.ts.conns = append(l.ts.conns, c)
		l.ts.mu.Unlock()
	}
	return c, err
}

// dropConnections closes the server's side of every connection, as a
// server restart or a NAT timeout would.
func (ts *testServer) dropConnections() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.conns {
		_ = c.Close()
	}
	ts.conns = nil
}

func (ts *testServer) appendMail(t *testing.T, raw []byte, flags ...goimap.Flag) uint32 {
	t.Helper()
	d, err := ts.user.Append("INBOX", bytes.NewReader(raw), &goimap.AppendOptions{Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	return uint32(d.UID)
}

func (ts *testServer) unseen(t *testing.T) uint32 {
	t.Helper()
	st, err := ts.user.Status("INBOX", &goimap.StatusOptions{NumMessages: true, NumUnseen: true})
	if err != nil {
		t.Fatal(err)
	}
	return *st.NumUnseen
}

func (ts *testServer) options() Options {
	return Options{Host: "127.0.0.1", Port: ts.port, Username: testUser, Password: testPassword, TLS: NoTLS, Timeout: 10 * time.Second}
}

func open(t *testing.T, o Options) *Mailbox {
	t.Helper()
	m := New(o)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// selfSignedCert makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "imap.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

var (
	reply = crlf(`From: Dana Lead <dana@acme-corp.com>
To: replies@hossagent.test
Subject: Re: A quick idea for Acme
Message-ID: <r1@acme-corp.com>
In-Reply-To: <hossagent.outbox.7@hossagent.example>
References: <hossagent.outbox.7@hossagent.example>
Date: Mon, 02 Feb 2026 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

Sounds good, let's talk next week.
`)
	dsn = crlf(`From: Mail Delivery System <MAILER-DAEMON@mx.acme-corp.com>
To: replies@hossagent.test
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn1@mx.acme-corp.com>
Date: Mon, 02 Feb 2026 10:01:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail system: <gone@acme-corp.com>: user unknown
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme-corp.com

Final-Recipient: rfc822; gone@acme-corp.com
Action: failed
Status: 5.1.1
--B--
`)
)

// bigMail is a message of exactly n bytes.
func bigMail(n int) []byte {
	head := crlf("From: a@acme-corp.com\nSubject: big\nMessage-ID: <big@acme-corp.com>\n\n")
	body := bytes.Repeat([]byte("x"), n-len(head))
	return append(head, body...)
}

func TestFetchReturnsMessagesOldestFirstWithExactBytesAndMarkHandledHidesThem(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := testCtx(t)
	atLimit := bigMail(agents.MaxInboundBytes)
	u1 := ts.appendMail(t, reply)
	u2 := ts.appendMail(t, dsn)
	u3 := ts.appendMail(t, atLimit)
	var over []uint32
	o := ts.options()
	o.OnOversized = func(uid uint32, size int64) {
		over = append(over, uid)
		if size != agents.MaxInboundBytes+1 {
			t.Errorf("oversized size = %d", size)
		}
	}
	u4 := ts.appendMail(t, bigMail(agents.MaxInboundBytes+1))
	m := open(t, o)

	got, err := m.Fetch(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("fetched %d messages, want 3 (the oversized one skipped)", len(got))
	}
	for i, want := range []struct {
		uid uint32
		raw []byte
	}{{u1, reply}, {u2, dsn}, {u3, atLimit}} {
		if got[i].UID != want.uid || !bytes.Equal(got[i].Raw, want.raw) {
			t.Errorf("message %d: UID %d, %d bytes; want UID %d, %d bytes, exact", i, got[i].UID, len(got[i].Raw), want.uid, len(want.raw))
		}
	}
	if m.Oversized() != 1 || len(over) != 1 || over[0] != u4 {
		t.Errorf("oversized: counter %d, reported %v; want 1, [%d]", m.Oversized(), over, u4)
	}
	if f := m.HandledFlag(); f != string(HandledKeyword) {
		t.Errorf("handled flag = %q, want the keyword", f)
	}
	// Reading set no \Seen (BODY.PEEK), nor did marking the big one.
	if n := ts.unseen(t); n != 4 {
		t.Errorf("%d unseen after fetch, want 4", n)
	}

	// A limit returns the oldest first.
	first, err := m.Fetch(ctx, 2)
	if err != nil || len(first) != 2 || first[0].UID != u1 || first[1].UID != u2 {
		t.Fatalf("Fetch(2) = %v, %v", uids(first), err)
	}

	if err := m.MarkHandled(ctx, []uint32{u1, u3}); err != nil {
		t.Fatal(err)
	}
	rest, err := m.Fetch(ctx, 10)
	if err != nil || len(rest) != 1 || rest[0].UID != u2 {
		t.Fatalf("after marking 2: %v, %v; want [%d]", uids(rest), err, u2)
	}
	if err := m.MarkHandled(ctx, []uint32{u2}); err != nil {
		t.Fatal(err)
	}
	none, err := m.Fetch(ctx, 10)
	if err != nil || len(none) != 0 {
		t.Fatalf("after marking all: %v, %v", uids(none), err)
	}
	// The keyword is kept on the server: a new connection sees it too.
	m2 := open(t, ts.options())
	if again, err := m2.Fetch(ctx, 10); err != nil || len(again) != 0 {
		t.Fatalf("new connection: %v, %v", uids(again), err)
	}
	// The keyword left \Seen alone: an operator's mail client still shows
	// the messages unread.
	if n := ts.unseen(t); n != 4 {
		t.Errorf("%d unseen after marking handled, want 4", n)
	}
	// A message read by an operator (\Seen) is still fetched.
	u5 := ts.appendMail(t, reply, goimap.FlagSeen)
	if got, err := m.Fetch(ctx, 10); err != nil || len(got) != 1 || got[0].UID != u5 {
		t.Fatalf("a seen message: %v, %v; want [%d]", uids(got), err, u5)
	}
}

func uids(ms []agents.InboundMail) []uint32 {
	var out []uint32
	for _, m := range ms {
		out = append(out, m.UID)
	}
	return out
}

func TestWithoutKeywordsHandledIsSeenAndReadingDoesNotSetIt(t *testing.T) {
	ts := startServer(t, serverOptions{noKeywords: true})
	ctx := testCtx(t)
	u1 := ts.appendMail(t, reply)
	u2 := ts.appendMail(t, dsn)
	ts.appendMail(t, reply, goimap.FlagSeen) // read by someone: not fetched
	m := open(t, ts.options())
	for range 2 {
		got, err := m.Fetch(ctx, 10)
		if err != nil || len(got) != 2 || got[0].UID != u1 || got[1].UID != u2 {
			t.Fatalf("Fetch = %v, %v; want [%d %d]", uids(got), err, u1, u2)
		}
		if n := ts.unseen(t); n != 2 {
			t.Fatalf("%d unseen after fetching, want 2: reading must not set \\Seen", n)
		}
	}
	if f := m.HandledFlag(); f != string(goimap.FlagSeen) {
		t.Fatalf("handled flag = %q, want \\Seen", f)
	}
	if err := m.MarkHandled(ctx, []uint32{u1}); err != nil {
		t.Fatal(err)
	}
	if n := ts.unseen(t); n != 1 {
		t.Errorf("%d unseen after marking one, want 1", n)
	}
	got, err := m.Fetch(ctx, 10)
	if err != nil || len(got) != 1 || got[0].UID != u2 {
		t.Fatalf("Fetch = %v, %v; want [%d]", uids(got), err, u2)
	}
}

func TestWaitReturnsWhenNewMailArrivesDuringIdle(t *testing.T) {
	idling := make(chan string, 1)
	ts := startServer(t, serverOptions{idling: idling})
	ctx := testCtx(t)
	m := open(t, ts.options())
	if got, err := m.Fetch(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty mailbox: %v, %v", uids(got), err)
	}
	const d = time.Hour // far past the test's own deadline
	done := make(chan error, 1)
	go func() { done <- m.Wait(ctx, d) }()
	select {
	case <-idling:
	case err := <-done:
		t.Fatalf("Wait returned before any mail: %v", err)
	case <-ctx.Done():
		t.Fatal("the client never started IDLE")
	}
	uid := ts.appendMail(t, reply)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Wait did not return after new mail")
	}
	got, err := m.Fetch(ctx, 10)
	if err != nil || len(got) != 1 || got[0].UID != uid {
		t.Fatalf("after Wait: %v, %v; want [%d]", uids(got), err, uid)
	}
	// With nothing new, Wait lasts until d.
	start := time.Now()
	if err := m.Wait(ctx, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("Wait returned after %s with no new mail", el)
	}
}

// Mail reported during another command (not during IDLE) makes the next
// Wait return at once, until a Fetch reads it.
func TestWaitReturnsAtOnceForMailReportedSinceTheLastFetch(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := testCtx(t)
	m := open(t, ts.options())
	if _, err := m.Fetch(ctx, 10); err != nil {
		t.Fatal(err)
	}
	uid := ts.appendMail(t, reply)
	// Any command gets the server's EXISTS for it.
	if err := m.MarkHandled(ctx, []uint32{999}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Wait(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got, err := m.Fetch(ctx, 10)
	if err != nil || len(got) != 1 || got[0].UID != uid {
		t.Fatalf("Fetch = %v, %v", uids(got), err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := m.Wait(short, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait after the Fetch = %v, want the context's deadline", err)
	}
}

func TestWaitPollsWithoutIdle(t *testing.T) {
	ts := startServer(t, serverOptions{})
	m := open(t, ts.options())
	m.noIdle = true
	ctx := testCtx(t)
	start := time.Now()
	if err := m.Wait(ctx, 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("Wait returned after %s", el)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Wait(short, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a canceled context = %v", err)
	}
	if m.dials.Load() != 0 {
		t.Errorf("polling Wait connected %d times", m.dials.Load())
	}
}

func TestFetchReconnectsAfterTheServerDroppedTheConnection(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := testCtx(t)
	u1 := ts.appendMail(t, reply)
	m := open(t, ts.options())
	if got, err := m.Fetch(ctx, 10); err != nil || len(got) != 1 {
		t.Fatalf("Fetch = %v, %v", uids(got), err)
	}
	ts.dropConnections()
	u2 := ts.appendMail(t, dsn)
	got, err := m.Fetch(ctx, 10)
	if err != nil || len(got) != 2 || got[0].UID != u1 || got[1].UID != u2 {
		t.Fatalf("Fetch after the drop = %v, %v", uids(got), err)
	}
	if n := m.dials.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	ts.dropConnections()
	if err := m.MarkHandled(ctx, []uint32{u1, u2}); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Fetch(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("Fetch after marking = %v, %v", uids(got), err)
	}
	if n := m.dials.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
	// A drop during IDLE ends Wait with an error; the next call reconnects.
	idling := make(chan string, 1)
	ts2 := startServer(t, serverOptions{idling: idling})
	m2 := open(t, ts2.options())
	done := make(chan error, 1)
	go func() { done <- m2.Wait(ctx, time.Hour) }()
	select {
	case <-idling:
	case <-ctx.Done():
		t.Fatal("no IDLE")
	}
	ts2.dropConnections()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Wait after a dropped connection returned nil")
		}
	case <-ctx.Done():
		t.Fatal("Wait went on after the connection dropped")
	}
	if _, err := m2.Fetch(ctx, 10); err != nil {
		t.Fatal(err)
	}
}

func TestWrongPasswordFailsWithoutShowingIt(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := testCtx(t)
	o := ts.options()
	o.Password = "hunter2-wrong-password"
	m := open(t, o)
	_, err := m.Fetch(ctx, 10)
	if err == nil {
		t.Fatal("Fetch with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), o.Password) || strings.Contains(err.Error(), testPassword) {
		t.Fatalf("the error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "login") {
		t.Errorf("error %q does not say the login failed", err)
	}
	// A server echoing the password would still not show it.
	e := m.errorf("login", errors.New("NO bad password hunter2-wrong-password"))
	if strings.Contains(e.Error(), o.Password) {
		t.Fatalf("redaction failed: %v", e)
	}
}

func TestContextEndsEveryCall(t *testing.T) {
	ts := startServer(t, serverOptions{})
	ctx := testCtx(t)
	ts.appendMail(t, reply)
	// A server that accepts and never answers: only the context ends it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	o := ts.options()
	o.Port = ln.Addr().(*net.TCPAddr).Port
	o.Timeout = time.Hour
	m := open(t, o)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := m.Fetch(short, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch against a silent server = %v, want the deadline", err)
	}
	// Options.Timeout bounds a call too.
	o.Timeout = 100 * time.Millisecond
	m2 := open(t, o)
	if _, err := m2.Fetch(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch past Timeout = %v, want the deadline", err)
	}

	// A canceled Wait during IDLE returns the context's error, and the
	// next call reconnects.
	idling := make(chan string, 1)
	ts2 := startServer(t, serverOptions{idling: idling})
	m3 := open(t, ts2.options())
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m3.Wait(wctx, time.Hour) }()
	<-idling
	wcancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Wait = %v", err)
	}
	if _, err := m3.Fetch(ctx, 10); err != nil {
		t.Fatal(err)
	}
	canceled, c := context.WithCancel(ctx)
	c()
	if _, err := m3.Fetch(canceled, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch on a canceled context = %v", err)
	}
	if err := m3.MarkHandled(canceled, []uint32{1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("MarkHandled on a canceled context = %v", err)
	}
}

func TestCloseEndsAWaitAndLaterCalls(t *testing.T) {
	idling := make(chan string, 1)
	ts := startServer(t, serverOptions{idling: idling})
	ctx := testCtx(t)
	m := New(ts.options())
	done := make(chan error, 1)
	go func() { done <- m.Wait(ctx, time.Hour) }()
	<-idling
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v", err)
	}
	if _, err := m.Fetch(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Fetch after Close = %v", err)
	}
}

func TestTLSAndSTARTTLS(t *testing.T) {
	cert, roots := selfSignedCert(t)
	ctx := testCtx(t)
	for _, tc := range []struct {
		mode string
		so   serverOptions
	}{
		{ImplicitTLS, serverOptions{implicitTLS: &tls.Config{Certificates: []tls.Certificate{cert}}}},
		{StartTLS, serverOptions{startTLS: &tls.Config{Certificates: []tls.Certificate{cert}}}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ts := startServer(t, tc.so)
			uid := ts.appendMail(t, dsn)
			o := ts.options()
			o.TLS = tc.mode
			o.TLSConfig = &tls.Config{RootCAs: roots}
			m := open(t, o)
			got, err := m.Fetch(ctx, 10)
			if err != nil || len(got) != 1 || got[0].UID != uid || !bytes.Equal(got[0].Raw, dsn) {
				t.Fatalf("Fetch over %s = %v, %v", tc.mode, uids(got), err)
			}
			// An untrusted certificate is refused.
			o.TLSConfig = nil
			if _, err := open(t, o).Fetch(ctx, 10); err == nil {
				t.Fatal("a self-signed certificate was accepted without being trusted")
			}
		})
	}
	// STARTTLS required: a server without it is refused, before the
	// password is sent.
	ts := startServer(t, serverOptions{})
	o := ts.options()
	o.TLS = StartTLS
	if _, err := open(t, o).Fetch(ctx, 10); err == nil {
		t.Fatal("STARTTLS mode logged in over a plain connection")
	}
}

func TestOptionsDefaultsAndChecks(t *testing.T) {
	m := New(Options{Host: " imap.acme-corp.com "})
	if m.opts.Port != 993 || m.opts.TLS != ImplicitTLS || m.opts.Mailbox != "INBOX" || m.opts.Timeout != defaultTimeout || m.addr != "imap.acme-corp.com:993" {
		t.Fatalf("defaults: %+v %s", m.opts, m.addr)
	}
	if New(Options{Host: "h", TLS: "STARTTLS"}).opts.Port != 143 {
		t.Fatal("starttls port")
	}
	ctx := testCtx(t)
	for _, o := range []Options{{}, {Host: "h", TLS: "ssl", Username: "u", Password: "p"}, {Host: "h", Port: 70000, Username: "u", Password: "p"}, {Host: "h", Username: "u"}} {
		m := New(o)
		if _, err := m.Fetch(ctx, 1); err == nil {
			t.Errorf("%+v accepted", o)
		}
		if m.dials.Load() != 0 {
			t.Errorf("%+v dialled", o)
		}
	}
	if got, err := New(Options{}).Fetch(ctx, 0); got != nil || err != nil {
		t.Error("Fetch(0) did something")
	}
	if err := New(Options{}).MarkHandled(ctx, nil); err != nil {
		t.Error(err)
	}
}
