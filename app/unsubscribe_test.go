package app

import (
	"bytes"
	"context"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// mailRecorder is a DRY_RUN mailer that remembers every message it was
// handed.
type mailRecorder struct {
	*agents.DryRunMailer
	mu   sync.Mutex
	sent []agents.OutgoingMail
}

func (m *mailRecorder) Send(ctx context.Context, mail agents.OutgoingMail) (string, error) {
	id, err := m.DryRunMailer.Send(ctx, mail)
	if err == nil {
		m.mu.Lock()
		m.sent = append(m.sent, mail)
		m.mu.Unlock()
	}
	return id, err
}

func (m *mailRecorder) to(addr string) []agents.OutgoingMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []agents.OutgoingMail
	for _, s := range m.sent {
		if s.To == addr {
			out = append(out, s)
		}
	}
	return out
}

// seededReader is a deterministic byte source (the unsubscribe key).
type seededReader struct{ c *rand.ChaCha8 }

func (r seededReader) Read(p []byte) (int, error) { return r.c.Read(p) }

// runBizDev runs the real BizDev cycle once against the store.
func runBizDev(t *testing.T, f *fixture, mailer agents.Mailer) agents.Counts {
	t.Helper()
	env := agents.Env{
		Now:    f.clock.Now,
		Random: seededReader{rand.NewChaCha8([32]byte{7})},
		Rand:   agents.NewLockedRand(rand.New(rand.NewPCG(1, 2))),
	}
	c := agents.NewBizDevCycle(f.store, env, mailer, agents.BizDevOptions{
		MaxPerCycle: 10, MaxPerHour: 50, MaxPerDay: 200,
		Sleep: func(context.Context, time.Duration) error { return nil },
		From:  "outreach@hossagent.example", SenderName: "Hoss & Co", BaseURL: "https://hossagent.example",
	})
	counts, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// unsubscribePath is the path of the List-Unsubscribe link of a sent mail.
func unsubscribePath(t *testing.T, m agents.OutgoingMail) string {
	t.Helper()
	u, err := url.Parse(strings.Trim(m.Headers["List-Unsubscribe"], "<>"))
	if err != nil || !strings.HasPrefix(u.Path, "/unsubscribe/") {
		t.Fatalf("List-Unsubscribe = %q", m.Headers["List-Unsubscribe"])
	}
	if m.Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("List-Unsubscribe-Post = %q", m.Headers["List-Unsubscribe-Post"])
	}
	return u.Path
}

func (m *mailRig) getPage(t *testing.T, path string) (int, *goquery.Document) {
	t.Helper()
	resp, doc, _ := m.get(t, path)
	return resp.StatusCode, doc
}

func (m *mailRig) postForm(t *testing.T, path string, form url.Values, header map[string]string) (int, *goquery.Document) {
	t.Helper()
	resp, doc := m.post(t, newClient(t), path, form, header)
	return resp.StatusCode, doc
}

func TestUnsubscribeGetChangesNothingAndPostActs(t *testing.T) {
	m := newMailRig(t, map[string]string{"EMAIL_SENDER_NAME": "Hoss & Co"})
	jane := m.lead(t, "jane@acme.example", db.LeadNew)
	bob := m.lead(t, "bob@bob.example", db.LeadNew)
	mailer := &mailRecorder{DryRunMailer: agents.NewDryRunMailer()}
	if c := runBizDev(t, m.fixture, mailer); c["dry_run"] != 2 {
		t.Fatalf("bizdev counts = %v", c)
	}
	janePath := unsubscribePath(t, mailer.to("jane@acme.example")[0])
	bobPath := unsubscribePath(t, mailer.to("bob@bob.example")[0])

	// A mail scanner, or the prospect, opens the link: a page, no change.
	for range 2 {
		status, doc := m.getPage(t, janePath)
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d", janePath, status)
		}
		if got := text(doc.Find("#unsubscribe-address")); !strings.Contains(got, "j***@acme.example") || strings.Contains(got, "jane@") ||
			!strings.Contains(got, "Hoss & Co") {
			t.Errorf("page shows %q, want the masked address and the sender", got)
		}
		if action, _ := doc.Find("#unsubscribe form").Attr("action"); action != janePath || doc.Find("#unsubscribe-button").Length() != 1 {
			t.Errorf("form action %q, want %q and a button", action, janePath)
		}
	}
	if s := m.suppressions(t); len(s) != 0 || m.leadStatus(t, jane.ID) != db.LeadContacted || m.events.dataChanged() != 0 {
		t.Fatalf("GET changed something: suppressions %v, lead %s", s, m.leadStatus(t, jane.ID))
	}

	// The mail client's one-click POST (RFC 8058): no cookie, no Origin of ours.
	status, doc := m.postForm(t, janePath, url.Values{"List-Unsubscribe": {"One-Click"}},
		map[string]string{"Origin": "https://mail.example", "Sec-Fetch-Site": "cross-site"})
	if status != http.StatusOK || !strings.Contains(text(doc.Find("#unsubscribe h2")), "unsubscribed") {
		t.Fatalf("one-click POST = %d %q", status, text(doc.Find("#unsubscribe")))
	}
	if got := m.suppressions(t)["jane@acme.example"]; got != "unsubscribed/one-click" {
		t.Errorf("suppression = %q", got)
	}
	if got := m.leadStatus(t, jane.ID); got != db.LeadUnsubscribed {
		t.Errorf("jane = %s, want unsubscribed", got)
	}
	// Twice is harmless.
	if status, _ := m.postForm(t, janePath, url.Values{"List-Unsubscribe": {"One-Click"}}, nil); status != http.StatusOK {
		t.Errorf("second one-click = %d", status)
	}
	if s := m.suppressions(t); len(s) != 1 || m.events.dataChanged() != 1 {
		t.Errorf("second POST changed something: %v, %d events", s, m.events.dataChanged())
	}
	if _, doc := m.getPage(t, janePath); !strings.Contains(text(doc.Find("#unsubscribe h2")), "Already unsubscribed") || doc.Find("#unsubscribe form").Length() != 0 {
		t.Errorf("page after unsubscribing = %q", text(doc.Find("#unsubscribe")))
	}

	// The same, encoded as multipart/form-data (RFC 8058 allows both).
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("List-Unsubscribe", "One-Click")
	_ = mw.Close()
	if status, _ := m.postRaw(t, janePath, mw.FormDataContentType(), buf.Bytes(), nil); status != http.StatusOK {
		t.Errorf("multipart one-click = %d", status)
	}
	if s := m.suppressions(t); len(s) != 1 {
		t.Errorf("multipart repeat changed the suppressions: %v", s)
	}

	// The page's button.
	if status, _ := m.postForm(t, bobPath, url.Values{"confirm": {"yes"}}, map[string]string{"Origin": m.srv.URL}); status != http.StatusOK {
		t.Fatalf("page POST = %d", status)
	}
	if got := m.suppressions(t)["bob@bob.example"]; got != "unsubscribed/page" {
		t.Errorf("bob's suppression = %q", got)
	}
	if got := m.leadStatus(t, bob.ID); got != db.LeadUnsubscribed {
		t.Errorf("bob = %s", got)
	}

	// Whatever puts the leads back in the queue, BizDev never writes to
	// them again.
	for _, id := range []int64{jane.ID, bob.ID} {
		if _, err := m.store.Bun().NewUpdate().Model((*db.Lead)(nil)).Set("status = ?", db.LeadNew).Where("id = ?", id).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	counts := runBizDev(t, m.fixture, mailer)
	if len(mailer.to("jane@acme.example")) != 1 || len(mailer.to("bob@bob.example")) != 1 {
		t.Errorf("BizDev mailed an unsubscribed address again: counts %v", counts)
	}
	if counts["suppressed"] != 2 || counts["dry_run"] != 0 {
		t.Errorf("second cycle counts = %v, want 2 suppressed", counts)
	}
}

func TestUnsubscribeForgedTokenIs404(t *testing.T) {
	ctx := context.Background()
	var tokens *agents.UnsubscribeTokens
	m := newMailRig(t, nil, func(d *Deps) {
		var err error
		if tokens, err = agents.LoadUnsubscribeTokens(ctx, d.Store, seededReader{rand.NewChaCha8([32]byte{9})}); err != nil {
			t.Fatal(err)
		}
		d.Unsubscribe = tokens
	})
	jane := m.lead(t, "jane@acme.example", db.LeadNew)
	msg, err := m.store.QueueMessage(ctx, jane.ID, func(*db.Lead, int64) (db.OutboxDraft, error) {
		return db.OutboxDraft{Template: "general/1", Subject: "Hi", Body: "Hello"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	good := tokens.UnsubscribeToken(msg.ID)
	if status, _ := m.getPage(t, "/unsubscribe/"+good); status != http.StatusOK {
		t.Fatalf("good token = %d", status)
	}
	other, err := agents.LoadUnsubscribeTokens(ctx, m.store, nil) // same store, same key
	if err != nil || other.UnsubscribeToken(msg.ID) != good {
		t.Fatalf("the install's key is not stable: %v", err)
	}
	flipped := []byte(good)
	flipped[len(flipped)-1] ^= 1
	for name, tok := range map[string]string{
		"altered":         string(flipped),
		"garbage":         "not-a-token",
		"long":            strings.Repeat("A", 400),
		"unknown message": tokens.UnsubscribeToken(msg.ID + 100), // genuine HMAC, no such message
	} {
		if status, doc := m.getPage(t, "/unsubscribe/"+tok); status != http.StatusNotFound || doc.Find(".error-page").Length() != 1 {
			t.Errorf("GET %s = %d, want a plain 404", name, status)
		}
		for _, form := range []url.Values{{"List-Unsubscribe": {"One-Click"}}, {"confirm": {"yes"}}} {
			if status, _ := m.postForm(t, "/unsubscribe/"+tok, form, nil); status != http.StatusNotFound {
				t.Errorf("POST %s = %d, want 404", name, status)
			}
		}
	}
	if s := m.suppressions(t); len(s) != 0 || m.leadStatus(t, jane.ID) != db.LeadNew {
		t.Errorf("a forged token changed something: %v", s)
	}
	// An oversized body is refused before anything is looked up.
	big := url.Values{"List-Unsubscribe": {"One-Click"}, "pad": {strings.Repeat("x", maxUnsubscribeForm)}}
	if status, _ := m.postForm(t, "/unsubscribe/"+good, big, nil); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized POST = %d, want 413", status)
	}
	if len(m.suppressions(t)) != 0 {
		t.Error("an oversized POST unsubscribed")
	}
}
