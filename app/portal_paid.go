package app

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// /paid is where Stripe's payment links send the payer back, with the
// Checkout Session's id (the link's redirect is
// BASE_URL/paid?session_id={CHECKOUT_SESSION_ID}). The page says which
// invoice was paid once the webhook has landed; until then it says Stripe
// is confirming the payment (of which invoice, when an event of the
// session already names it) and reloads itself every paidRefreshEvery, at
// most paidMaxRefreshes times. Either way it leads back to /portal.

const (
	paidRefreshEvery = 3 // seconds
	paidMaxRefreshes = 20
	// maxSessionIDLen bounds a Checkout Session id (Stripe's are about 66
	// characters).
	maxSessionIDLen = 255
)

func (s *Server) paid(w http.ResponseWriter, r *http.Request) {
	if !s.allowPortalVisit(w, r) {
		return
	}
	p := views.PaidPage{Meta: s.meta("Thank you"), Provider: s.portalProvider(), State: "thanks"}
	noStore(w)
	id := r.URL.Query().Get("session_id")
	if !validSessionID(id) {
		s.render(w, r, http.StatusOK, views.Paid(p))
		return
	}
	pay, err := s.store.CheckoutSessionPayment(r.Context(), id)
	switch {
	case errors.Is(err, db.ErrNotFound):
		p.State = "confirming"
	case err != nil:
		s.fail(w, r, err)
		return
	case pay.Invoice != nil:
		row := portalInvoiceRow(*pay.Invoice, s.now().UTC())
		p.Invoice = &row
		p.State = "confirming"
		if pay.Invoice.Status == db.InvoicePaid || pay.Invoice.Status == db.InvoiceRefunded {
			p.State = "paid"
		}
	default:
		p.State = "confirming"
	}
	if p.State == "confirming" {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			n = 0
		}
		if n < paidMaxRefreshes {
			p.RefreshURL = "/paid?" + url.Values{"session_id": {id}, "n": {strconv.Itoa(n + 1)}}.Encode()
			p.RefreshSeconds = paidRefreshEvery
			w.Header().Set("Refresh", strconv.Itoa(paidRefreshEvery)+"; url="+p.RefreshURL)
		} else {
			p.GaveUp = true
		}
	}
	s.render(w, r, http.StatusOK, views.Paid(p))
}

// validSessionID reports whether id looks like a Checkout Session id:
// "cs_" then letters, digits and '_', at most maxSessionIDLen in all.
func validSessionID(id string) bool {
	if len(id) < 4 || len(id) > maxSessionIDLen || id[:3] != "cs_" {
		return false
	}
	for _, c := range id[3:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
