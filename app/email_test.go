package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/sendgrid"
	"github.com/hossagent/hossagent/db"
)

const mailInboundSecret = "inbound-0123456789abcdef"

// mailEvents is a Publisher that keeps every event.
type mailEvents struct {
	mu     sync.Mutex
	events []agents.Event
}

func (m *mailEvents) Publish(e agents.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
}

func (m *mailEvents) dataChanged() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, e := range m.events {
		if e.Kind == agents.EventDataChanged {
			n++
		}
	}
	return n
}

// mailRig is the real router on a fresh store, with the event bus recorded.
type mailRig struct {
	*fixture
	events *mailEvents
}

func newMailRig(t *testing.T, env map[string]string, opts ...func(*Deps)) *mailRig {
	t.Helper()
	ev := &mailEvents{}
	f := newFixture(t, env, append([]func(*Deps){func(d *Deps) { d.Events = ev }}, opts...)...)
	return &mailRig{fixture: f, events: ev}
}

// lead stores a lead with status.
func (m *mailRig) lead(t *testing.T, email, status string) *db.Lead {
	t.Helper()
	ctx := context.Background()
	domain := email[strings.IndexByte(email, '@')+1:]
	l, err := m.store.CreateLead(ctx, nil, db.NewLead{Name: "Jane Doe", Email: email, DomainKey: domain, Company: "Co " + domain, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.store.Bun().NewUpdate().Model((*db.Lead)(nil)).Set("status = ?", status).Where("id = ?", l.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

func (m *mailRig) leadStatus(t *testing.T, id int64) string {
	t.Helper()
	var l db.Lead
	if err := m.store.Bun().NewSelect().Model(&l).Where("l.id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l.Status
}

func (m *mailRig) suppressions(t *testing.T) map[string]string {
	t.Helper()
	var rows []db.Suppression
	if err := m.store.Bun().NewSelect().Model(&rows).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range rows {
		out[s.Value] = s.Reason + "/" + s.Source
	}
	return out
}

// postRaw sends body with contentType and headers, anonymously (no cookies),
// the way a mail provider or a mail client does.
func (m *mailRig) postRaw(t *testing.T, path, contentType string, body []byte, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, m.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// inboundMultipart is an Inbound Parse post as SendGrid sends it by
// default: multipart/form-data, with an attachment.
func inboundMultipart(t *testing.T, fields map[string]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := w.CreateFormFile("attachment1", "notes.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write([]byte("attached notes"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), buf.Bytes()
}

func mailReplies(t *testing.T, store *db.DB) []db.Reply {
	t.Helper()
	var r []db.Reply
	if err := store.Bun().NewSelect().Model(&r).OrderExpr("id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInboundReplyMarksTheLeadResponded(t *testing.T) {
	m := newMailRig(t, map[string]string{"EMAIL_INBOUND_SECRET": mailInboundSecret})
	jane := m.lead(t, "jane@acme.example", db.LeadContacted)
	bob := m.lead(t, "bob@bob.example", db.LeadNew)

	// Multipart, the Inbound Parse default; SendGrid sends no Origin, but a
	// cross-site marker must not matter either: the secret is the check.
	ct, body := inboundMultipart(t, map[string]string{
		"from": `"Jane Doe" <Jane@ACME.example>`, "to": "outreach@hossagent.example",
		"subject": "Re: a quick idea", "text": "Sounds good, call me.", "html": "<p>Sounds good</p>",
	})
	status, answer := m.postRaw(t, "/email/inbound/"+mailInboundSecret, ct, body, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if status != http.StatusOK || !strings.Contains(answer, "recorded") {
		t.Fatalf("multipart inbound = %d %s", status, answer)
	}
	if got := m.leadStatus(t, jane.ID); got != db.LeadResponded {
		t.Errorf("jane = %s, want responded", got)
	}

	// URL-encoded, with a Latin-1 body as the charsets field declares it.
	form := url.Values{"from": {"bob@bob.example"}, "to": {"outreach@hossagent.example"}, "subject": {"Re: hi"},
		"text": {"Caf\xe9 at noon?"}, "charsets": {`{"text":"iso-8859-1","subject":"UTF-8","from":"UTF-8"}`}}
	status, answer = m.postRaw(t, "/email/inbound/"+mailInboundSecret, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	if status != http.StatusOK {
		t.Fatalf("urlencoded inbound = %d %s", status, answer)
	}
	if got := m.leadStatus(t, bob.ID); got != db.LeadResponded {
		t.Errorf("bob = %s, want responded", got)
	}

	replies := mailReplies(t, m.store)
	if len(replies) != 2 {
		t.Fatalf("replies = %+v", replies)
	}
	r := replies[0]
	if r.LeadID != jane.ID || r.FromAddr != "jane@acme.example" || r.Subject != "Re: a quick idea" || r.Body != "Sounds good, call me." || r.Simulated {
		t.Errorf("jane's reply = %+v", r)
	}
	if replies[1].Body != "Café at noon?" {
		t.Errorf("latin-1 body = %q", replies[1].Body)
	}
	if n := m.events.dataChanged(); n != 2 {
		t.Errorf("data_changed events = %d, want 2", n)
	}
}

func TestInboundRefusals(t *testing.T) {
	form := func(from string) []byte {
		return []byte(url.Values{"from": {from}, "subject": {"Re"}, "text": {"hello"}}.Encode())
	}
	const urlencoded = "application/x-www-form-urlencoded"

	off := newMailRig(t, nil)
	off.lead(t, "jane@acme.example", db.LeadContacted)
	if status, _ := off.postRaw(t, "/email/inbound/anything", urlencoded, form("jane@acme.example"), nil); status != http.StatusServiceUnavailable {
		t.Errorf("no secret configured = %d, want 503", status)
	}

	m := newMailRig(t, map[string]string{"EMAIL_INBOUND_SECRET": mailInboundSecret})
	jane := m.lead(t, "jane@acme.example", db.LeadContacted)
	for _, path := range []string{
		"/email/inbound/wrong", "/email/inbound/" + mailInboundSecret[:10], "/email/inbound/" + mailInboundSecret + "x",
		"/email/inbound", "/email/inbound?key=" + mailInboundSecret,
	} {
		if status, _ := m.postRaw(t, path, urlencoded, form("jane@acme.example"), nil); status != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404", path, status)
		}
	}

	inbound := "/email/inbound/" + mailInboundSecret
	status, answer := m.postRaw(t, inbound, urlencoded, form("Stranger <who@else.example>"), nil)
	if status != http.StatusOK || !strings.Contains(answer, "unknown sender") {
		t.Errorf("unknown sender = %d %s, want 200", status, answer)
	}
	for name, c := range map[string]struct {
		ct   string
		body []byte
		want int
	}{
		"no from":       {urlencoded, []byte("subject=hi&text=x"), http.StatusBadRequest},
		"bad from":      {urlencoded, form("not an address"), http.StatusBadRequest},
		"not a form":    {"application/json", []byte(`{"from":"jane@acme.example"}`), http.StatusBadRequest},
		"no type":       {"", form("jane@acme.example"), http.StatusBadRequest},
		"bad multipart": {"multipart/form-data; boundary=xyz", []byte("garbage"), http.StatusBadRequest},
		"too large":     {urlencoded, append(form("jane@acme.example"), []byte("&pad="+strings.Repeat("a", maxInboundBody))...), http.StatusRequestEntityTooLarge},
	} {
		if status, answer := m.postRaw(t, inbound, c.ct, c.body, nil); status != c.want {
			t.Errorf("%s = %d %s, want %d", name, status, answer, c.want)
		}
	}
	if r := mailReplies(t, m.store); len(r) != 0 {
		t.Errorf("refused mail stored replies: %+v", r)
	}
	if got := m.leadStatus(t, jane.ID); got != db.LeadContacted {
		t.Errorf("jane = %s after refused mail", got)
	}
	if n := countRows(t, m.store, "SELECT COUNT(*) FROM leads"); n != 1 {
		t.Errorf("leads = %d: inbound mail created a lead", n)
	}
	if m.events.dataChanged() != 0 {
		t.Error("refused mail published a change")
	}
}

// mailSigningKey is a key pair like SendGrid's: the private half signs in
// the test, the public half is configured as SendGrid shows it.
func mailSigningKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, base64.StdEncoding.EncodeToString(der)
}

// mailSign signs a batch the way SendGrid does and returns the headers.
func mailSign(t *testing.T, key *ecdsa.PrivateKey, timestamp string, body []byte) map[string]string {
	t.Helper()
	h := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		sendgrid.SignatureHeader: base64.StdEncoding.EncodeToString(sig),
		sendgrid.TimestampHeader: timestamp,
	}
}

const mailEventBatch = `[
	{"email":"b@bounce.example","timestamp":1764244800,"event":"bounce","type":"bounce","reason":"550 5.1.1 no such user","sg_event_id":"ev1"},
	{"email":"s@spam.example","timestamp":1764244801,"event":"spamreport","sg_event_id":"ev2"},
	{"email":"soft@soft.example","timestamp":1764244802,"event":"bounce","type":"blocked","sg_event_id":"ev3"},
	{"email":"b@bounce.example","timestamp":1764244803,"event":"delivered","sg_event_id":"ev4"},
	{"email":"s@spam.example","timestamp":1764244804,"event":"open","sg_event_id":"ev5","useragent":"Mail"},
	{"email":"n@new.example","timestamp":1764244805,"event":"something_new","sg_event_id":"ev6"}
]`

func TestSendGridEventsSigned(t *testing.T) {
	key, public := mailSigningKey(t)
	m := newMailRig(t, map[string]string{"SENDGRID_WEBHOOK_VERIFICATION_KEY": public})
	bounced := m.lead(t, "b@bounce.example", db.LeadContacted)
	complained := m.lead(t, "s@spam.example", db.LeadContacted)
	soft := m.lead(t, "soft@soft.example", db.LeadContacted)
	body := []byte(mailEventBatch)
	ts := strconv.FormatInt(testNow.Unix(), 10) // the batch was signed just now

	other, _ := mailSigningKey(t)
	forged := mailSign(t, other, ts, body)
	noTimestamp := mailSign(t, key, ts, body)
	delete(noTimestamp, sendgrid.TimestampHeader)
	for name, h := range map[string]map[string]string{
		"no signature":   nil,
		"other key":      forged,
		"no timestamp":   noTimestamp,
		"other time":     mailSign(t, key, strconv.FormatInt(testNow.Unix()+1, 10), []byte("[]")),
		"altered body":   mailSign(t, key, ts, []byte(strings.Replace(mailEventBatch, "b@bounce", "x@bounce", 1))),
		"not base64 sig": {sendgrid.SignatureHeader: "!!!", sendgrid.TimestampHeader: ts},
	} {
		if status, answer := m.postRaw(t, "/email/events", "application/json", body, h); status != http.StatusForbidden {
			t.Errorf("%s = %d %s, want 403", name, status, answer)
		}
	}
	if s := m.suppressions(t); len(s) != 0 {
		t.Fatalf("refused batches added suppressions: %v", s)
	}

	signed := mailSign(t, key, ts, body)
	status, answer := m.postRaw(t, "/email/events", "application/json", body, signed)
	if status != http.StatusOK {
		t.Fatalf("signed batch = %d %s", status, answer)
	}
	want := map[string]string{"b@bounce.example": "bounced/sendgrid:bounce", "s@spam.example": "complaint/sendgrid:spamreport"}
	if got := m.suppressions(t); len(got) != len(want) || got["b@bounce.example"] != want["b@bounce.example"] || got["s@spam.example"] != want["s@spam.example"] {
		t.Errorf("suppressions = %v, want %v", got, want)
	}
	for id, st := range map[int64]string{bounced.ID: db.LeadBounced, complained.ID: db.LeadUnsubscribed, soft.ID: db.LeadContacted} {
		if got := m.leadStatus(t, id); got != st {
			t.Errorf("lead %d = %s, want %s", id, got, st)
		}
	}
	published := m.events.dataChanged()
	if published != 1 {
		t.Errorf("data_changed events = %d, want 1", published)
	}

	// SendGrid retries, and a captured batch may be replayed: nothing changes.
	if status, _ := m.postRaw(t, "/email/events", "application/json", body, signed); status != http.StatusOK {
		t.Errorf("replayed batch = %d", status)
	}
	if got := m.suppressions(t); len(got) != 2 || m.events.dataChanged() != published {
		t.Errorf("replay changed something: %v, %d events", got, m.events.dataChanged())
	}

	malformed := []byte(`[{"email":"b@bounce.example","event":`)
	if status, _ := m.postRaw(t, "/email/events", "application/json", malformed, mailSign(t, key, ts, malformed)); status != http.StatusBadRequest {
		t.Errorf("signed malformed JSON = %d, want 400", status)
	}
	huge := []byte("[" + strings.Repeat(" ", maxEventsBody) + "]")
	if status, _ := m.postRaw(t, "/email/events", "application/json", huge, mailSign(t, key, ts, huge)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized batch = %d, want 413", status)
	}
}

func TestSendGridEventsWithoutKey(t *testing.T) {
	m := newMailRig(t, nil)
	// DRY_RUN sends nothing through SendGrid: the key does not apply, and
	// nothing warns about it (config.Load warns where it does).
	if strings.Contains(m.logs.String(), "SENDGRID_WEBHOOK_VERIFICATION_KEY") {
		t.Errorf("a DRY_RUN start warns about the SendGrid key: %s", m.logs.String())
	}
	l := m.lead(t, "u@unsub.example", db.LeadContacted)
	body := []byte(`[{"email":"U@unsub.example","event":"unsubscribe"},{"email":"g@group.example","event":"group_unsubscribe","asm_group_id":3}]`)
	if status, answer := m.postRaw(t, "/email/events", "application/json", body, nil); status != http.StatusOK {
		t.Fatalf("unsigned batch without a key = %d %s", status, answer)
	}
	got := m.suppressions(t)
	if got["u@unsub.example"] != "unsubscribed/sendgrid:unsubscribe" || got["g@group.example"] != "unsubscribed/sendgrid:group_unsubscribe" {
		t.Errorf("suppressions = %v", got)
	}
	if st := m.leadStatus(t, l.ID); st != db.LeadUnsubscribed {
		t.Errorf("lead = %s", st)
	}
	for _, bad := range []string{`not json`, `{"event":"bounce"}`, `[1]`} {
		if status, _ := m.postRaw(t, "/email/events", "application/json", []byte(bad), nil); status != http.StatusBadRequest {
			t.Errorf("%q = %d, want 400", bad, status)
		}
	}
}

// Without a reader of the provider's events (Deps.MailEvents nil) the
// endpoint is off, as in PRODUCTION without a key: 404, nothing applied.
func TestSendGridEventsWithoutReaderAreOff(t *testing.T) {
	m := newMailRig(t, nil, func(d *Deps) { d.MailEvents = nil })
	m.lead(t, "u@unsub.example", db.LeadContacted)
	body := []byte(`[{"email":"u@unsub.example","event":"unsubscribe"}]`)
	if status, answer := m.postRaw(t, "/email/events", "application/json", body, nil); status != http.StatusNotFound {
		t.Errorf("events without a reader = %d %s, want 404", status, answer)
	}
	if len(m.suppressions(t)) != 0 {
		t.Error("an event was applied without a reader")
	}
}

// With a verification key set the operator wants events: a server wired
// without a reader is unavailable (503, SendGrid retries), not "off".
func TestSendGridEventsWithAKeyButNoReaderAreUnavailable(t *testing.T) {
	m := newMailRig(t, map[string]string{"SENDGRID_WEBHOOK_VERIFICATION_KEY": "not-a-key"}, func(d *Deps) { d.MailEvents = nil })
	m.lead(t, "u@unsub.example", db.LeadContacted)
	body := []byte(`[{"email":"u@unsub.example","event":"unsubscribe"}]`)
	if status, answer := m.postRaw(t, "/email/events", "application/json", body, nil); status != http.StatusServiceUnavailable {
		t.Errorf("events with a key and no reader = %d %s, want 503", status, answer)
	}
	if len(m.suppressions(t)) != 0 {
		t.Error("an event was applied without a reader")
	}
}

func TestSendGridEventsUnreadableKeyRefusesAll(t *testing.T) {
	m := newMailRig(t, map[string]string{"SENDGRID_WEBHOOK_VERIFICATION_KEY": "not-a-key"})
	body := []byte(`[{"email":"b@bounce.example","event":"bounce","type":"bounce"}]`)
	if status, _ := m.postRaw(t, "/email/events", "application/json", body, nil); status != http.StatusServiceUnavailable {
		t.Errorf("events with an unreadable key = %d, want 503", status)
	}
	if len(m.suppressions(t)) != 0 {
		t.Error("an event was applied without verification")
	}
}

// customerFlags is every customer's mail flag by contact address.
func (m *mailRig) customerFlags(t *testing.T) map[string]string {
	t.Helper()
	var rows []db.Customer
	if err := m.store.Bun().NewSelect().Model(&rows).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range rows {
		out[c.ContactEmail] = c.MailFlag
		if (c.MailFlag != "") != (c.MailFlaggedAt != nil) {
			t.Errorf("customer %s: flag %q, flagged at %v", c.ContactEmail, c.MailFlag, c.MailFlaggedAt)
		}
	}
	return out
}

// A hard bounce or a spam report on a customer's contact address flags the
// customer (Collections writes to it no more); outreach's suppressions are
// recorded as before. A soft bounce or an unsubscribe flags no customer,
// and an event for an address that is no customer's changes no customer.
func TestSendGridEventsFlagClientAddresses(t *testing.T) {
	m := newMailRig(t, nil)
	ctx := context.Background()
	for _, email := range []string{"billing@acme.example", "ops@beta.example", "ap@gamma.example", "pay@delta.example", "quiet@eps.example"} {
		if _, _, err := m.store.CreateCustomer(ctx, nil, db.NewCustomer{Company: "Co " + email, ContactEmail: email, Plan: "starter"}, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	stranger := m.lead(t, "stranger@nowhere.example", db.LeadContacted)
	body := []byte(`[
		{"email":"Billing@Acme.example","event":"bounce","type":"bounce","reason":"550 5.1.1 <billing@acme.example>: Recipient address rejected","sg_event_id":"c1"},
		{"email":"ops@beta.example","event":"spamreport","sg_event_id":"c2"},
		{"email":"ap@gamma.example","event":"bounce","type":"blocked","reason":"452 4.2.2 mailbox full","sg_event_id":"c3"},
		{"email":"pay@delta.example","event":"unsubscribe","sg_event_id":"c4"},
		{"email":"stranger@nowhere.example","event":"bounce","type":"bounce","reason":"550 no such user","sg_event_id":"c5"}
	]`)
	if status, answer := m.postRaw(t, "/email/events", "application/json", body, nil); status != http.StatusOK {
		t.Fatalf("batch = %d %s", status, answer)
	}
	want := map[string]string{
		"billing@acme.example": "hard bounce: 550 5.1.1 <billing@acme.example>: Recipient address rejected",
		"ops@beta.example":     "complaint",
		"ap@gamma.example":     "", "pay@delta.example": "", "quiet@eps.example": "",
	}
	got := m.customerFlags(t)
	for email, flag := range want {
		if got[email] != flag {
			t.Errorf("customer %s: mail flag %q, want %q", email, got[email], flag)
		}
	}
	if len(got) != len(want) {
		t.Errorf("customers = %v: an event created or removed one", got)
	}
	// Outreach is as before: each hard bounce, complaint and unsubscribe
	// suppresses its address, and the stranger's lead is bounced.
	s := m.suppressions(t)
	if len(s) != 4 || s["billing@acme.example"] != "bounced/sendgrid:bounce" || s["ops@beta.example"] != "complaint/sendgrid:spamreport" ||
		s["pay@delta.example"] != "unsubscribed/sendgrid:unsubscribe" || s["stranger@nowhere.example"] != "bounced/sendgrid:bounce" {
		t.Errorf("suppressions = %v", s)
	}
	if st := m.leadStatus(t, stranger.ID); st != db.LeadBounced {
		t.Errorf("the stranger's lead = %s, want bounced", st)
	}

	// A later event keeps the first flag (the operator sees the first cause).
	m.clock.Advance(time.Hour)
	later := []byte(`[{"email":"billing@acme.example","event":"spamreport","sg_event_id":"c6"},{"email":"other@nowhere.example","event":"spamreport","sg_event_id":"c7"}]`)
	if status, _ := m.postRaw(t, "/email/events", "application/json", later, nil); status != http.StatusOK {
		t.Fatalf("later batch = %d", status)
	}
	var c db.Customer
	if err := m.store.Bun().NewSelect().Model(&c).Where("contact_email = ?", "billing@acme.example").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if c.MailFlag != want["billing@acme.example"] || c.MailFlaggedAt == nil || !c.MailFlaggedAt.Equal(testNow) {
		t.Errorf("after a second event: flag %q at %v, want the first at %s", c.MailFlag, c.MailFlaggedAt, testNow)
	}
	if after := m.customerFlags(t); len(after) != len(want) || after["ops@beta.example"] != "complaint" || after["quiet@eps.example"] != "" {
		t.Errorf("customers after the second batch = %v", after)
	}
}
