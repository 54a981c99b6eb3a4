package stripe

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	stripeapi "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/hossagent/hossagent/agents"
)

// SignatureHeader is the header Stripe signs its webhook deliveries in.
const SignatureHeader = "Stripe-Signature"

// WebhookTolerance is how far a signature's timestamp may lie from the
// server's clock, in either direction (Stripe's own default, 300 s).
const WebhookTolerance = webhook.DefaultTolerance

// APIVersion is the Stripe API version the events must be in: the one
// stripe-go v76 reads.
const APIVersion = stripeapi.APIVersion

// Webhook reads Stripe's webhook deliveries (agents.PaymentEvents). The
// zero value is ready; it holds no state.
type Webhook struct{}

// Read checks the Stripe-Signature of payload against secret, then its
// timestamp against now (more than WebhookTolerance away, before or after,
// is refused: an older one is a replay, and stripe-go checks only age, so a
// header signed for a far future time would otherwise be replayable until
// then), then reads the event in stripe-go's API version. The signature is
// checked first, so the timestamp it covers can be trusted. The errors are
// agents.ErrPaymentEventUnsigned, ErrPaymentEventSignature and
// ErrPaymentEventStale (each wrapping stripe-go's), an
// *agents.PaymentEventVersionError for a signed event in another API
// version, or another for a signed delivery that is not an event.
func (Webhook) Read(h http.Header, payload []byte, secret string, now time.Time) (agents.SignedPaymentEvent, error) {
	ev, err := verifyEvent(payload, h.Get(SignatureHeader), secret, now)
	if err != nil {
		return agents.SignedPaymentEvent{}, webhookError(payload, err)
	}
	out := agents.SignedPaymentEvent{ID: ev.ID, Type: string(ev.Type)}
	out.Payment, out.Err = PaymentEvent(&ev)
	return out, nil
}

// verifyEvent checks header's signature of payload against secret, then its
// timestamp against now, then reads the event (in stripe-go's API version).
func verifyEvent(payload []byte, header, secret string, now time.Time) (stripeapi.Event, error) {
	if err := webhook.ValidatePayloadIgnoringTolerance(payload, header, secret); err != nil {
		return stripeapi.Event{}, err
	}
	at, ok := signatureTime(header)
	if !ok {
		return stripeapi.Event{}, webhook.ErrInvalidHeader
	}
	if d := now.Sub(at); d > WebhookTolerance || d < -WebhookTolerance {
		return stripeapi.Event{}, webhook.ErrTooOld
	}
	return webhook.ConstructEventWithOptions(payload, header, secret, webhook.ConstructEventOptions{IgnoreTolerance: true})
}

// webhookError files a failed verification under the port's errors. One
// that is none of stripe-go's signature errors passed the signature check:
// an event in another API version is the operator's configuration, not an
// attack, and its error says which version it is in.
func webhookError(payload []byte, err error) error {
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return fmt.Errorf("%w: %w", agents.ErrPaymentEventUnsigned, err)
	case errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNoValidSignature):
		return fmt.Errorf("%w: %w", agents.ErrPaymentEventSignature, err)
	case errors.Is(err, webhook.ErrTooOld):
		return fmt.Errorf("%w: %w", agents.ErrPaymentEventStale, err)
	}
	var head struct {
		ID         string `json:"id"`
		APIVersion string `json:"api_version"`
	}
	if json.Unmarshal(payload, &head) == nil && head.APIVersion != stripeapi.APIVersion {
		return &agents.PaymentEventVersionError{EventID: head.ID, Version: head.APIVersion, Want: stripeapi.APIVersion, Err: err}
	}
	return err
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
