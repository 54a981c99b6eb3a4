package app

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

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
// older one is a replay; stripe-go checks only age, so a header signed for a
// far future time would otherwise be replayable until then). A valid
// signature proves only that some Stripe account sent the event: the ledger
// applies it only when it provably belongs to this install, and records the
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
	ev, err := verifyStripeEvent(body, r.Header.Get("Stripe-Signature"), secret, s.now())
	if err != nil {
		s.refuseStripeEvent(w, body, err)
		return
	}
	var out db.PaymentOutcome
	e, err := agents.PaymentEventFromStripe(&ev)
	switch {
	case err != nil && ev.ID == "":
		s.log.Warn("stripe webhook refused: signed event without an id", "type", ev.Type)
		webhookReply(w, http.StatusBadRequest, "event without an id")
		return
	case err != nil:
		out, err = s.payments.Unreadable(r.Context(), ev.ID, string(ev.Type), err)
	default:
		out, err = s.payments.Apply(r.Context(), e)
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

// webhookTolerance is how far a signature's timestamp may lie from the
// server's clock, in either direction (Stripe's own default).
const webhookTolerance = webhook.DefaultTolerance

// verifyStripeEvent checks header's signature of payload against secret,
// then its timestamp against now, then reads the event (in stripe-go's API
// version). The signature is checked first, so the timestamp it covers can
// be trusted.
func verifyStripeEvent(payload []byte, header, secret string, now time.Time) (stripe.Event, error) {
	if err := webhook.ValidatePayloadIgnoringTolerance(payload, header, secret); err != nil {
		return stripe.Event{}, err
	}
	at, ok := signatureTime(header)
	if !ok {
		return stripe.Event{}, webhook.ErrInvalidHeader
	}
	if d := now.Sub(at); d > webhookTolerance || d < -webhookTolerance {
		return stripe.Event{}, webhook.ErrTooOld
	}
	return webhook.ConstructEventWithOptions(payload, header, secret, webhook.ConstructEventOptions{IgnoreTolerance: true})
}

// signatureTime is the t= of a Stripe-Signature header, read as stripe-go
// reads it (the last t= wins), which is the time the valid signature covers.
func signatureTime(header string) (time.Time, bool) {
	var at time.Time
	ok := false
	for pair := range strings.SplitSeq(header, ",") {
		k, v, found := strings.Cut(pair, "=")
		if !found || k != "t" {
			continue
		}
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		at, ok = time.Unix(sec, 0), true
	}
	return at, ok
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
		s.log.Warn("stripe webhook refused: signature timestamp outside the 300 s tolerance, before or after this server's clock (a replay, or a wrong clock)")
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
