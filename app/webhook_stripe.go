package app

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// maxWebhookBody bounds a Stripe event. Checkout Session and Charge events
// are a few KiB.
const maxWebhookBody = 64 << 10

// stripeWebhook takes Stripe's events (POST /stripe/webhook). Stripe is the
// only caller that can sign them, so nothing is trusted before the signature
// has been checked against STRIPE_WEBHOOK_SECRET and its timestamp against
// the server's clock: more than 300 s away, before or after, is refused (an
// older one is a replay; Deps.PaymentEvents, agents/stripe.Webhook, checks
// both). A valid signature proves only that some Stripe account sent the
// event: the ledger applies it only when it provably belongs to this install, and records the
// rest as set aside. The answer tells Stripe what to do next:
//   - 2xx: delivered (applied, a duplicate, set aside, or a type HossAgent
//     ignores), and also an event that can never be applied (its object
//     unreadable, or its application failing for good): it is recorded as
//     unprocessable for the operator, not retried for days;
//   - 400/413: never valid, do not bother (Stripe retries anyway, which shows
//     the failures in its dashboard);
//   - 500: our passing failure (the database busy or gone, the request
//     cancelled: db.IsTransient), retry later (nothing was recorded);
//   - 503: webhooks are not configured here.
func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	secret := s.cfg.Stripe.WebhookSecret
	if secret == "" {
		s.log.Warn("stripe webhook refused: STRIPE_WEBHOOK_SECRET is not set, so no event can be verified")
		webhookReply(w, http.StatusServiceUnavailable, "webhook signing secret not configured")
		return
	}
	if s.paymentEvents == nil {
		s.log.Warn("stripe webhook refused: no reader of Stripe's events was wired (Deps.PaymentEvents)")
		webhookReply(w, http.StatusServiceUnavailable, "webhook not configured")
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
	ev, err := s.paymentEvents.Read(r.Header, body, secret, s.now())
	if err != nil {
		s.refuseStripeEvent(w, err)
		return
	}
	var out db.PaymentOutcome
	switch {
	case ev.Err != nil && ev.ID == "":
		s.log.Warn("stripe webhook refused: signed event without an id", "type", ev.Type)
		webhookReply(w, http.StatusBadRequest, "event without an id")
		return
	case ev.Err != nil:
		out, err = s.payments.Unreadable(r.Context(), ev.ID, ev.Type, ev.Err)
	default:
		out, err = s.payments.Apply(r.Context(), ev.Payment)
	}
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
func (s *Server) refuseStripeEvent(w http.ResponseWriter, err error) {
	var version *agents.PaymentEventVersionError
	switch {
	case errors.Is(err, agents.ErrPaymentEventUnsigned):
		s.log.Warn("stripe webhook refused: no Stripe-Signature header")
		webhookReply(w, http.StatusBadRequest, "unsigned")
	case errors.Is(err, agents.ErrPaymentEventSignature):
		s.log.Warn("stripe webhook refused: signature does not match STRIPE_WEBHOOK_SECRET", "err", err)
		webhookReply(w, http.StatusBadRequest, "bad signature")
	case errors.Is(err, agents.ErrPaymentEventStale):
		s.log.Warn("stripe webhook refused: signature timestamp outside the 300 s tolerance, before or after this server's clock (a replay, or a wrong clock)")
		webhookReply(w, http.StatusBadRequest, "timestamp outside tolerance")
	case errors.As(err, &version):
		s.log.Error("stripe webhook refused: event in another API version; recreate the webhook endpoint in Stripe with API version "+
			version.Want+" (the version stripe-go v76 reads)", "event", version.EventID, "event_api_version", version.Version)
		webhookReply(w, http.StatusBadRequest, "API version "+version.Version+" not supported; use "+version.Want)
	default:
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
