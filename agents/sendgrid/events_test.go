package sendgrid

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// sendGridKey is a signing key like SendGrid's, with its public half in the
// form SendGrid shows it (base64 DER).
func sendGridKey(t *testing.T, curve elliptic.Curve) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, base64.StdEncoding.EncodeToString(der)
}

func signSendGrid(t *testing.T, key *ecdsa.PrivateKey, timestamp string, body []byte) string {
	t.Helper()
	h := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func TestSendGridEventVerifier(t *testing.T) {
	key, public := sendGridKey(t, elliptic.P256())
	v, err := NewEventVerifier(public)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"email":"a@acme.example","event":"bounce","type":"bounce"}]`)
	const ts = "1764244800"
	now := time.Unix(1764244800, 0)
	good := signSendGrid(t, key, ts, body)
	if err := v.Verify(good, ts, body, now); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	other, _ := sendGridKey(t, elliptic.P256())
	for name, c := range map[string]struct{ sig, ts, body string }{
		"missing signature": {"", ts, string(body)},
		"missing timestamp": {good, "", string(body)},
		"other timestamp":   {good, "1764244801", string(body)},
		"altered body":      {good, ts, `[{"email":"b@acme.example","event":"bounce","type":"bounce"}]`},
		"other key":         {signSendGrid(t, other, ts, body), ts, string(body)},
		"not base64":        {"%%%", ts, string(body)},
		"garbage":           {base64.StdEncoding.EncodeToString([]byte("not a signature")), ts, string(body)},
	} {
		if err := v.Verify(c.sig, c.ts, []byte(c.body), now); !errors.Is(err, agents.ErrEventSignature) {
			t.Errorf("%s: err = %v, want agents.ErrEventSignature", name, err)
		}
	}
	for name, c := range map[string]struct{ sig, ts string }{
		"not a number": {signSendGrid(t, key, "soon", body), "soon"},
		"negative":     {signSendGrid(t, key, "-1", body), "-1"},
		"too large":    {signSendGrid(t, key, "99999999999999999999", body), "99999999999999999999"},
	} {
		if err := v.Verify(c.sig, c.ts, body, now); !errors.Is(err, agents.ErrEventSignature) {
			t.Errorf("timestamp %s: err = %v, want agents.ErrEventSignature", name, err)
		}
	}
}

// A genuine signature on a batch signed more than EventWindow
// before or after now is a replay (or a clock far off): agents.ErrEventStale. At
// the window's edge it is accepted.
func TestSendGridEventVerifierRefusesStaleBatches(t *testing.T) {
	key, public := sendGridKey(t, elliptic.P256())
	v, err := NewEventVerifier(public)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"email":"a@acme.example","event":"unsubscribe"}]`)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for name, c := range map[string]struct {
		offset time.Duration
		stale  bool
	}{
		"now": {0, false}, "at the window, past": {-EventWindow, false}, "at the window, ahead": {EventWindow, false},
		"a second past the window": {-EventWindow - time.Second, true}, "a second ahead of it": {EventWindow + time.Second, true},
		"a year old": {-365 * 24 * time.Hour, true}, "a year ahead": {365 * 24 * time.Hour, true},
	} {
		ts := strconv.FormatInt(now.Add(c.offset).Unix(), 10)
		err := v.Verify(signSendGrid(t, key, ts, body), ts, body, now)
		if c.stale && !errors.Is(err, agents.ErrEventStale) || !c.stale && err != nil {
			t.Errorf("%s: err = %v, stale %v", name, err, c.stale)
		}
	}
	ts := "0"
	if err := v.Verify(signSendGrid(t, key, ts, body), ts, body, now); !errors.Is(err, agents.ErrEventStale) {
		t.Errorf("timestamp 0: %v", err)
	}
}

func TestSendGridVerificationKeyForms(t *testing.T) {
	_, public := sendGridKey(t, elliptic.P256())
	der, _ := base64.StdEncoding.DecodeString(public)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	for name, k := range map[string]string{"base64 DER": public, "with spaces": " " + public + "\n", "PEM": pemKey} {
		if _, err := NewEventVerifier(k); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	_, p384 := sendGridKey(t, elliptic.P384())
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	for name, k := range map[string]string{
		"empty": "", "not base64": "not a key!", "not DER": base64.StdEncoding.EncodeToString([]byte("hello")),
		"P-384": p384, "Ed25519": base64.StdEncoding.EncodeToString(edDER),
	} {
		if _, err := NewEventVerifier(k); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestParseSendGridEvents(t *testing.T) {
	body := []byte(`[
		{"email":"Hard@Acme.example","event":"bounce","type":"bounce","sg_event_id":"e1"},
		{"email":"soft@acme.example","event":"bounce","type":"blocked"},
		{"email":"old@acme.example","event":"bounce"},
		{"email":"d1@acme.example","event":"dropped","reason":"Bounced Address"},
		{"email":"d2@acme.example","event":"dropped","reason":"Spam Reporting Address"},
		{"email":"d3@acme.example","event":"dropped","reason":"Unsubscribed Address"},
		{"email":"d4@acme.example","event":"dropped","reason":"Invalid"},
		{"email":"d5@acme.example","event":"dropped","reason":"Spam Content (if Spam Checker app is enabled)"},
		{"email":"spam@acme.example","event":"spamreport"},
		{"email":"u@acme.example","event":"unsubscribe"},
		{"email":"g@acme.example","event":"group_unsubscribe","asm_group_id":1},
		{"email":"x@acme.example","event":"delivered"},
		{"email":"Jane <y@acme.example>","event":"open","useragent":"x"},
		{"email":"not an email address","event":"dropped","reason":"Invalid"},
		{"event":"spamreport"}
	]`)
	events, err := ParseEvents(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ addr, suppress string }{
		{"hard@acme.example", db.SuppressBounced}, {"soft@acme.example", ""}, {"old@acme.example", db.SuppressBounced},
		{"d1@acme.example", db.SuppressBounced}, {"d2@acme.example", db.SuppressComplaint}, {"d3@acme.example", db.SuppressUnsubscribed},
		{"d4@acme.example", db.SuppressBounced}, {"d5@acme.example", ""},
		{"spam@acme.example", db.SuppressComplaint}, {"u@acme.example", db.SuppressUnsubscribed}, {"g@acme.example", db.SuppressUnsubscribed},
		{"x@acme.example", ""}, {"y@acme.example", ""}, {"", ""}, {"", ""},
	}
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d", len(events), len(want))
	}
	for i, w := range want {
		if events[i].Address != w.addr || events[i].Suppress != w.suppress {
			t.Errorf("event %d (%s) = %q/%q, want %q/%q", i, events[i].Kind, events[i].Address, events[i].Suppress, w.addr, w.suppress)
		}
	}
	if events[0].ID != "e1" || events[3].Detail != "Bounced Address" {
		t.Errorf("id/detail not kept: %+v %+v", events[0], events[3])
	}
	for _, bad := range []string{``, `{`, `{"event":"bounce"}`, `[1,2]`, `["bounce"]`} {
		if _, err := ParseEvents([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A hard bounce carries SendGrid's reason into the client flag; a spam
// report is a complaint; a soft bounce, an unsubscribe or a delivery flags
// no client.
func TestSendGridEventsClientFlags(t *testing.T) {
	events, err := ParseEvents([]byte(`[
		{"email":"billing@acme.example","event":"bounce","type":"bounce","reason":"550 5.1.1 The email account that you tried to reach does not exist."},
		{"email":"billing@acme.example","event":"spamreport"},
		{"email":"billing@acme.example","event":"dropped","reason":"Bounced Address"},
		{"email":"billing@acme.example","event":"bounce","type":"blocked","reason":"452 mailbox full"},
		{"email":"billing@acme.example","event":"unsubscribe"},
		{"email":"billing@acme.example","event":"delivered"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"hard bounce: 550 5.1.1 The email account that you tried to reach does not exist.",
		"complaint", "hard bounce: Bounced Address", "", "", "",
	}
	for i, w := range want {
		if got := events[i].ClientFlag(); got != w {
			t.Errorf("event %d (%s) flag = %q, want %q", i, events[i].Kind, got, w)
		}
	}
}
