package stripe

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/hossagent/hossagent/agents"
)

// The webhook reader's own table: each delivery a caller can send, and the
// port error (or event) it must come out as. The app's webhook tests go
// through HTTP; these pin the adapter alone.
func TestWebhookRead(t *testing.T) {
	const secret = "whsec_test_reader"
	now := time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC)
	event := func(id, version string) []byte {
		b, err := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": version,
			"type": "checkout.session.completed", "created": now.Unix(),
			"data": map[string]any{"object": map[string]any{"id": "cs_1", "object": "checkout.session"}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sign := func(payload []byte, key string, at time.Time) http.Header {
		h := http.Header{}
		h.Set(SignatureHeader, webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: key, Timestamp: at}).Header)
		return h
	}
	good := event("evt_good", APIVersion)
	for _, c := range []struct {
		name    string
		header  http.Header
		payload []byte
		is      error
		version bool // an *agents.PaymentEventVersionError
	}{
		{"unsigned", http.Header{}, good, agents.ErrPaymentEventUnsigned, false},
		{"signed with another secret", sign(good, "whsec_other", now), good, agents.ErrPaymentEventSignature, false},
		{"body changed after signing", sign(good, secret, now), event("evt_forged", APIVersion), agents.ErrPaymentEventSignature, false},
		{"malformed header", http.Header{SignatureHeader: {"t=abc,v1=00"}}, good, agents.ErrPaymentEventSignature, false},
		{"signed too long ago", sign(good, secret, now.Add(-WebhookTolerance-time.Second)), good, agents.ErrPaymentEventStale, false},
		{"signed for the future", sign(good, secret, now.Add(WebhookTolerance+time.Second)), good, agents.ErrPaymentEventStale, false},
		{"another API version", sign(event("evt_old", "2020-08-27"), secret, now), event("evt_old", "2020-08-27"), nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Webhook{}.Read(c.header, c.payload, secret, now)
			if err == nil {
				t.Fatal("accepted")
			}
			if c.version {
				var v *agents.PaymentEventVersionError
				if !errors.As(err, &v) || v.EventID != "evt_old" || v.Version != "2020-08-27" || v.Want != APIVersion {
					t.Fatalf("err = %v, want a version error naming evt_old and both versions", err)
				}
				return
			}
			if !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want %v", err, c.is)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error echoes the secret: %v", err)
			}
		})
	}
	t.Run("signed now, at the edges of the tolerance", func(t *testing.T) {
		for _, at := range []time.Time{now, now.Add(-WebhookTolerance), now.Add(WebhookTolerance)} {
			got, err := Webhook{}.Read(sign(good, secret, at), good, secret, now)
			if err != nil {
				t.Fatalf("signed at %v: %v", at, err)
			}
			if got.ID != "evt_good" || got.Type != "checkout.session.completed" {
				t.Fatalf("read %+v", got)
			}
		}
	})
}
