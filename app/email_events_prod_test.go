package app

import (
	"github.com/hossagent/hossagent/db"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// prodInboundSecret is an inbound secret PRODUCTION accepts (32 characters
// or more).
const prodInboundSecret = "inbound-0123456789abcdef-0123456789abcdef"

// productionEnv is a PRODUCTION configuration that starts, plus extra.
func productionEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"RELEASE_MODE":         "PRODUCTION",
		"BASE_URL":             "https://ops.hossagent.io",
		"EMAIL_FROM":           "outreach@mail.hossagent.io",
		"EMAIL_INBOUND_SECRET": prodInboundSecret,
	}
	maps.Copy(env, extra)
	return env
}

// unsubscribeBatch is one event that would suppress victim@target.example.
var unsubscribeBatch = []byte(`[{"email":"victim@target.example","event":"unsubscribe","sg_event_id":"u1"}]`)

// TestSendGridEventsUnsignedRefusedInProduction: in PRODUCTION an unsigned
// batch never suppresses anyone, whatever EMAIL_MODE: without a
// verification key the endpoint is off (404, signed or not: there is no key
// to check a signature with), with one the signature is required (403) and
// a signed batch applies.
func TestSendGridEventsUnsignedRefusedInProduction(t *testing.T) {
	key, public := mailSigningKey(t)
	ts := strconv.FormatInt(testNow.Unix(), 10)
	signed := mailSign(t, key, ts, unsubscribeBatch)
	smtp := map[string]string{"EMAIL_MODE": "SMTP", "SMTP_HOST": "smtp.mail.hossagent.io", "COMPANY_POSTAL_ADDRESS": "1 Main St, Springfield",
		"LEAD_SOURCE": "search_api", "LEAD_SEARCH_API_URL": "https://leads.hossagent.io/search"}
	withKey := map[string]string{"SENDGRID_WEBHOOK_VERIFICATION_KEY": public}
	for name, env := range map[string]map[string]string{"DRY_RUN": nil, "SMTP": smtp} {
		t.Run(name+" without a key", func(t *testing.T) {
			m := newMailRig(t, productionEnv(env))
			m.lead(t, "victim@target.example", db.LeadContacted)
			for what, h := range map[string]map[string]string{"unsigned": nil, "signed": signed} {
				if status, answer := m.postRaw(t, "/email/events", "application/json", unsubscribeBatch, h); status != http.StatusNotFound {
					t.Errorf("%s batch = %d %s, want 404", what, status, answer)
				}
			}
			if s := m.suppressions(t); len(s) != 0 {
				t.Errorf("an event was applied: %v", s)
			}
			if strings.Contains(m.logs.String(), "accepts unsigned events") {
				t.Error("the start-up log says unsigned events are accepted")
			}
		})
		t.Run(name+" with a key", func(t *testing.T) {
			e := maps.Clone(env)
			if e == nil {
				e = map[string]string{}
			}
			maps.Copy(e, withKey)
			m := newMailRig(t, productionEnv(e))
			m.lead(t, "victim@target.example", db.LeadContacted)
			if status, answer := m.postRaw(t, "/email/events", "application/json", unsubscribeBatch, nil); status != http.StatusForbidden {
				t.Errorf("unsigned batch = %d %s, want 403", status, answer)
			}
			if s := m.suppressions(t); len(s) != 0 {
				t.Fatalf("an unsigned event was applied: %v", s)
			}
			if status, answer := m.postRaw(t, "/email/events", "application/json", unsubscribeBatch, signed); status != http.StatusOK {
				t.Errorf("signed batch = %d %s, want 200", status, answer)
			}
			if s := m.suppressions(t); s["victim@target.example"] != "unsubscribed/sendgrid:unsubscribe" {
				t.Errorf("the signed batch was not applied: %v", s)
			}
		})
	}
}

// TestSendGridEventsReplayRefused: a signed batch whose signature
// timestamp is more than sendgrid.EventWindow from the server's clock, in
// the past (a captured batch replayed) or in the future, is refused and
// changes nothing; within the window it applies.
func TestSendGridEventsReplayRefused(t *testing.T) {
	key, public := mailSigningKey(t)
	for _, env := range []map[string]string{
		productionEnv(map[string]string{"SENDGRID_WEBHOOK_VERIFICATION_KEY": public}),
		{"SENDGRID_WEBHOOK_VERIFICATION_KEY": public}, // DEVELOPMENT: a key, so signatures are checked
	} {
		m := newMailRig(t, env)
		m.lead(t, "victim@target.example", db.LeadContacted)
		at := func(d time.Duration) map[string]string {
			return mailSign(t, key, strconv.FormatInt(testNow.Add(d).Unix(), 10), unsubscribeBatch)
		}
		for name, d := range map[string]time.Duration{
			"11 minutes old": -11 * time.Minute, "a day old": -24 * time.Hour, "a year old": -365 * 24 * time.Hour,
			"11 minutes ahead": 11 * time.Minute, "a year ahead": 365 * 24 * time.Hour,
		} {
			if status, answer := m.postRaw(t, "/email/events", "application/json", unsubscribeBatch, at(d)); status != http.StatusForbidden {
				t.Errorf("%s: batch %s = %d %s, want 403", env["RELEASE_MODE"], name, status, answer)
			}
		}
		for name, h := range map[string]map[string]string{
			"not a number": mailSign(t, key, "soon", unsubscribeBatch),
			"huge":         mailSign(t, key, "99999999999999999999999", unsubscribeBatch),
			"negative":     mailSign(t, key, "-5", unsubscribeBatch),
		} {
			if status, _ := m.postRaw(t, "/email/events", "application/json", unsubscribeBatch, h); status != http.StatusForbidden {
				t.Errorf("timestamp %s = %d, want 403", name, status)
			}
		}
		if s := m.suppressions(t); len(s) != 0 {
			t.Fatalf("a stale batch was applied: %v", s)
		}
		if status, _ := m.postRaw(t, "/email/events", "application/json", unsubscribeBatch, at(-9*time.Minute)); status != http.StatusOK {
			t.Errorf("batch 9 minutes old = %d, want 200", status)
		}
		if s := m.suppressions(t); s["victim@target.example"] != "unsubscribed/sendgrid:unsubscribe" {
			t.Errorf("fresh batch not applied: %v", s)
		}
		// The window follows the injected clock.
		m.clock.Advance(time.Hour)
		if status, _ := m.postRaw(t, "/email/events", "application/json", unsubscribeBatch, at(50*time.Minute)); status != http.StatusOK {
			t.Errorf("batch 10 minutes old by the advanced clock = %d, want 200", status)
		}
	}
}
