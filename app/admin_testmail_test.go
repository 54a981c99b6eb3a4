package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/hossagent/hossagent/agents"
	smtpmailer "github.com/hossagent/hossagent/agents/smtp"
	"github.com/hossagent/hossagent/db"
)

// fakeMailer is a real-mode mailer that records what it was handed and
// answers with a provider id, or with err.
type fakeMailer struct {
	mu   sync.Mutex
	sent []agents.OutgoingMail
	err  error
}

func (m *fakeMailer) Mode() string { return agents.MailModeSMTP }

func (m *fakeMailer) Send(_ context.Context, mail agents.OutgoingMail) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, mail)
	if m.err != nil {
		return "", m.err
	}
	return "<msg-1@smtp.example>", nil
}

func (m *fakeMailer) recipients() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var to []string
	for _, s := range m.sent {
		to = append(to, s.To)
	}
	return to
}

// testMailPost sends the action as htmx does and returns status and result.
func testMailPost(t *testing.T, f *fixture, form url.Values) (int, string) {
	t.Helper()
	resp, doc := f.post(t, f.client, "/admin/outreach/test-mail", form, map[string]string{"Origin": f.srv.URL, "HX-Request": "true"})
	return resp.StatusCode, text(doc.Find(".result"))
}

func TestTestMailGoesOnlyToTheAdminAndIsRateLimited(t *testing.T) {
	mailer := &fakeMailer{}
	f := newFixture(t, map[string]string{"COMPANY_POSTAL_ADDRESS": "1 Main St, Springfield"}, func(d *Deps) { d.Mailer = mailer })
	admin := f.signInAs(t, db.RoleAdmin)

	// The form names a stranger; the mail goes to the admin all the same.
	status, result := testMailPost(t, f, url.Values{"to": {"victim@elsewhere.example"}, "email": {"victim@elsewhere.example"}})
	if status != http.StatusOK || !strings.Contains(result, "<msg-1@smtp.example>") {
		t.Fatalf("test mail = %d %q", status, result)
	}
	if got := mailer.recipients(); len(got) != 1 || got[0] != admin.Email {
		t.Fatalf("recipients = %v, want only %s", got, admin.Email)
	}
	sent := mailer.sent[0]
	if sent.From != "outreach@hossagent.example" || !strings.Contains(sent.Body, "1 Main St, Springfield") || sent.Subject == "" {
		t.Errorf("test mail = %+v", sent)
	}

	// A second one within the minute is refused without reaching the mailer.
	status, result = testMailPost(t, f, nil)
	if status != http.StatusTooManyRequests || !strings.Contains(result, "a minute") {
		t.Errorf("second test mail = %d %q, want 429", status, result)
	}
	if len(mailer.recipients()) != 1 {
		t.Fatal("the rate limit let a second mail through")
	}
	f.clock.Advance(time.Minute)
	if status, _ := testMailPost(t, f, nil); status != http.StatusOK || len(mailer.recipients()) != 2 {
		t.Errorf("after a minute = %d, %d mails", status, len(mailer.recipients()))
	}

	// The provider's error is shown in place.
	f.clock.Advance(time.Minute)
	mailer.mu.Lock()
	mailer.err = errors.New("535 authentication failed")
	mailer.mu.Unlock()
	if status, result := testMailPost(t, f, nil); status != http.StatusBadGateway || !strings.Contains(result, "535 authentication failed") {
		t.Errorf("provider error = %d %q", status, result)
	}

	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = 'outreach.test_mail' AND target = ?", admin.Email); n != 4 {
		t.Errorf("audit entries = %d, want 4", n)
	}
}

func TestTestMailDryRunAndNoMailer(t *testing.T) {
	f := newFixture(t, nil, func(d *Deps) { d.Mailer = agents.NewDryRunMailer() })
	f.signInAs(t, db.RoleAdmin)
	if status, result := testMailPost(t, f, nil); status != http.StatusOK || !strings.Contains(result, "DRY_RUN") || !strings.Contains(result, "dry-run-1") {
		t.Errorf("dry-run test mail = %d %q", status, result)
	}

	none := newFixture(t, nil)
	none.signInAs(t, db.RoleAdmin)
	if status, result := testMailPost(t, none, nil); status != http.StatusServiceUnavailable || !strings.Contains(result, "No mailer") {
		t.Errorf("no mailer = %d %q", status, result)
	}
}

func TestTestMailIsAnAdminSameOriginPOST(t *testing.T) {
	mailer := &fakeMailer{}
	f := newFixture(t, nil, func(d *Deps) { d.Mailer = mailer })
	if resp, _ := f.post(t, f.client, "/admin/outreach/test-mail", nil, map[string]string{"Origin": f.srv.URL}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous = %d, want 401", resp.StatusCode)
	}
	f.signInAs(t, db.RoleViewer)
	if resp, _ := f.post(t, f.client, "/admin/outreach/test-mail", nil, map[string]string{"Origin": f.srv.URL}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer = %d, want 403", resp.StatusCode)
	}
	f.signInAs(t, db.RoleAdmin)
	if resp, _ := f.post(t, f.client, "/admin/outreach/test-mail", nil, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site = %d, want 403", resp.StatusCode)
	}
	if resp, _, _ := f.get(t, "/admin/outreach/test-mail"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", resp.StatusCode)
	}
	// Without htmx the admin lands back in the control room.
	if resp, _ := f.post(t, f.client, "/admin/outreach/test-mail", nil, map[string]string{"Origin": f.srv.URL}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("plain POST = %d, want 303", resp.StatusCode)
	}
	if len(mailer.recipients()) != 1 {
		t.Errorf("mails = %v, want exactly the admin's one", mailer.recipients())
	}
}

// smtpInbox is a real SMTP server (emersion/go-smtp, plain, on a loopback
// port) that keeps the raw messages it accepts.
type smtpInbox struct {
	mu  sync.Mutex
	raw [][]byte
}

func (b *smtpInbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &inboxSession{inbox: b}, nil }

func (b *smtpInbox) messages() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.raw...)
}

type inboxSession struct{ inbox *smtpInbox }

func (s *inboxSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *inboxSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *inboxSession) Reset()                               {}
func (s *inboxSession) Logout() error                        { return nil }
func (s *inboxSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.inbox.mu.Lock()
	defer s.inbox.mu.Unlock()
	s.inbox.raw = append(s.inbox.raw, raw)
	return nil
}

// startSMTPInbox serves an inbox until the test ends; it returns the
// inbox and an SMTP mailer pointed at it.
func startSMTPInbox(t *testing.T) (*smtpInbox, *smtpmailer.Mailer) {
	t.Helper()
	inbox := &smtpInbox{}
	server := smtp.NewServer(inbox)
	server.Domain = "inbox.test"
	server.ErrorLog = log.New(io.Discard, "", 0)
	server.ReadTimeout, server.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Close() })
	mailer, err := smtpmailer.New(smtpmailer.Options{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, TLS: smtpmailer.NoTLS,
		From: "outreach@hossagent.example"})
	if err != nil {
		t.Fatal(err)
	}
	return inbox, mailer
}

// Two test e-mails through a real SMTP server carry two Message-IDs: a
// receiving server that sees one again may drop the mail as a duplicate.
// The id the control room reports is the one on the wire.
func TestEachTestMailHasItsOwnMessageID(t *testing.T) {
	inbox, mailer := startSMTPInbox(t)
	f := newFixture(t, nil, func(d *Deps) { d.Mailer = mailer })
	f.signInAs(t, db.RoleAdmin)
	var results []string
	for range 2 {
		status, result := testMailPost(t, f, nil)
		if status != http.StatusOK {
			t.Fatalf("test mail = %d %q", status, result)
		}
		results = append(results, result)
		f.clock.Advance(time.Minute)
	}
	raw := inbox.messages()
	if len(raw) != 2 {
		t.Fatalf("the server received %d messages, want 2", len(raw))
	}
	var ids []string
	for i, m := range raw {
		msg, err := netmail.ReadMessage(bytes.NewReader(m))
		if err != nil {
			t.Fatal(err)
		}
		id := strings.Trim(msg.Header.Get("Message-Id"), "<>")
		if !strings.HasPrefix(id, "hossagent.") || !strings.HasSuffix(id, "@hossagent.example") {
			t.Errorf("Message-ID %q", id)
		}
		if !strings.Contains(results[i], id) {
			t.Errorf("result %q does not report the Message-ID %q", results[i], id)
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Errorf("both test e-mails carry the Message-ID %q", ids[0])
	}
}
