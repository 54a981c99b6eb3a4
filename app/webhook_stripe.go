package app

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/hossagent/hossagent/agents"
)

// maxWebhookBody bounds a Stripe event. Checkout Session and Charge events
// are a few KiB.
const maxWebhookBody = 64 << 10

// stripeWebhook takes Stripe's events (POST /stripe/webhook). Stripe is the
// only caller that can sign them, so nothing is trusted before
// webhook.ConstructEvent has checked the signature against
// STRIPE_WEBHOOK_SECRET and the timestamp against its 300 s tolerance
// (a replayed event is older). The answer tells Stripe what to do next:
//   - 2xx: delivered (applied, a duplicate, or a type HossAgent ignores);
//   - 400/413: never valid, do not bother (Stripe retries anyway, which shows
//     the failures in its dashboard);
//   - 500: our failure, retry later (nothing was recorded);
//   - 503: webhooks are not configured here.
func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	secret := s.cfg.Stripe.WebhookSecret
	if secret == "" {
		s.log.Warn("stripe webhook refused: STRIPE_WEBHOOK_SECRET is not set, so no event can be verified")
		webhookReply(w, http.StatusServiceUnavailable, "webhook signing secret not configured")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		if tooBig := new(http.MaxBytesError); errors.As(err, &tooBig) {
			s.log.Warn("stripe webhook refused: body too large", "limit", maxWebhookBody)
			webhookReply(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		webhookReply(w, http.StatusBadRequest, "unreadable body")
		return
	}
	ev, err := webhook.ConstructEvent(body, r.Header.Get("Stripe-Signature"), secret)
	if err != nil {
		s.refuseStripeEvent(w, body, err)
		return
	}
	e, err := agents.PaymentEventFromStripe(&ev)
	if err != nil {
		s.log.Error("stripe webhook: signed event unreadable", "event", ev.ID, "type", ev.Type, "err", err)
		webhookReply(w, http.StatusBadRequest, "unreadable event")
		return
	}
	out, err := s.payments.Apply(r.Context(), e)
	if err != nil {
		s.log.Error("stripe webhook: event not applied, Stripe will retry", "event", ev.ID, "type", ev.Type, "err", err)
		webhookReply(w, http.StatusInternalServerError, "not applied; retry later")
		return
	}
	if out.Duplicate {
		webhookReply(w, http.StatusOK, "duplicate")
		return
	}
	webhookReply(w, http.StatusOK, out.Outcome)
}

// refuseStripeEvent answers an event that failed verification, saying in
// the log why. An event in another API version passed the signature check:
// that is the operator's configuration, not an attack, and the log says
// how to fix it.
func (s *Server) refuseStripeEvent(w http.ResponseWriter, body []byte, err error) {
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		s.log.Warn("stripe webhook refused: no Stripe-Signature header")
		webhookReply(w, http.StatusBadRequest, "unsigned")
	case errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNoValidSignature):
		s.log.Warn("stripe webhook refused: signature does not match STRIPE_WEBHOOK_SECRET", "err", err)
		webhookReply(w, http.StatusBadRequest, "bad signature")
	case errors.Is(err, webhook.ErrTooOld):
		s.log.Warn("stripe webhook refused: signature timestamp outside the 300 s tolerance (a replay, or a wrong clock)")
		webhookReply(w, http.StatusBadRequest, "timestamp outside tolerance")
	default:
		var head struct {
			ID         string `json:"id"`
			APIVersion string `json:"api_version"`
		}
		if json.Unmarshal(body, &head) == nil && head.APIVersion != stripe.APIVersion {
			s.log.Error("stripe webhook refused: event in another API version; recreate the webhook endpoint in Stripe with API version "+
				stripe.APIVersion+" (the version stripe-go v76 reads)", "event", head.ID, "event_api_version", head.APIVersion)
			webhookReply(w, http.StatusBadRequest, "API version "+head.APIVersion+" not supported; use "+stripe.APIVersion)
			return
		}
		s.log.Warn("stripe webhook refused: signed but unreadable", "err", err)
		webhookReply(w, http.StatusBadRequest, "unreadable event")
	}
}

// webhookReply answers Stripe with a short JSON note it shows in its
// dashboard next to the delivery.
func webhookReply(w http.ResponseWriter, status int, note string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"received": status < 300, "note": note})
}
