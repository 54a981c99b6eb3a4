package app

import (
	"context"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// portal renders a client's portal. The token in the URL is the only
// credential: it is looked up by its hash, and an unknown or revoked token
// gets the same plain 404 as any missing page.
func (s *Server) portal(w http.ResponseWriter, r *http.Request) {
	if !s.allowPortalVisit(w, r) {
		return
	}
	c, err := s.store.CustomerByPortalToken(r.Context(), chi.URLParam(r, "token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	meta := s.meta(c.Company)
	meta.LiveURL = "/events/portal/" + url.PathEscape(chi.URLParam(r, "token"))
	p, err := s.portalData(r.Context(), meta, c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.Portal(p))
}

// portalEvents streams a client's portal regions; a payment landing shows
// without a reload. Every open portal of one client watches one view; the
// link is checked again with each render (in one batch for all readers), so
// a revoked link stops updating at once.
func (s *Server) portalEvents(w http.ResponseWriter, r *http.Request) {
	if !s.allowPortalVisit(w, r) {
		return
	}
	token := chi.URLParam(r, "token")
	c, err := s.store.CustomerByPortalToken(r.Context(), token)
	if err != nil {
		s.notFound(w, r)
		return
	}
	id := c.ID
	meta := s.meta(c.Company)
	who := reader{portal: db.HashToken(token)}
	s.serveStream(w, r, "portal:"+strconv.FormatInt(id, 10), who, func(ctx context.Context) ([]fragment, error) {
		c, err := s.store.CustomerByID(ctx, id)
		if err != nil {
			return nil, err
		}
		meta.Now = s.now().UTC()
		p, err := s.portalData(ctx, meta, c)
		if err != nil {
			return nil, err
		}
		return []fragment{
			{"portal-summary", views.PortalSummary(p)},
			{"portal-outstanding", views.PortalOutstanding(p)},
			{"portal-history", views.PortalHistory(p)},
			{"portal-work", views.PortalWork(p)},
		}, nil
	})
}

// portalData reads one client's account: summary, open invoices, payment
// history and recent work.
func (s *Server) portalData(ctx context.Context, meta views.Meta, c *db.Customer) (views.PortalPage, error) {
	p := views.PortalPage{Meta: meta, Customer: portalCustomerView(*c)}
	summary, err := s.store.CustomerSummary(ctx, c.ID)
	if err != nil {
		return p, err
	}
	p.Summary = accountSummaryView(summary)
	open, _, err := s.store.ListCustomerInvoices(ctx, c.ID, db.ListQuery{Status: db.InvoiceOpen, PerPage: 50})
	if err != nil {
		return p, err
	}
	p.Outstanding = portalInvoiceViews(open, meta.Now)
	history, _, err := s.store.ListCustomerInvoices(ctx, c.ID, db.ListQuery{Statuses: []string{db.InvoicePaid, db.InvoiceRefunded}, PerPage: 50})
	if err != nil {
		return p, err
	}
	p.History = portalInvoiceViews(history, meta.Now)
	work, _, err := s.store.ListCustomerTasks(ctx, c.ID, db.ListQuery{PerPage: 20})
	if err != nil {
		return p, err
	}
	p.Work = viewsOf(work, portalTaskView)
	return p, nil
}

// Portal requests allowed per client address, pages and live streams
// together: a burst of portalBurst, refilled at portalPerMinute a minute.
// A client reads its portal in a few requests; guessing tokens takes
// billions, so a slow bucket costs clients nothing and guessers everything.
// Unknown tokens take from the bucket like known ones.
const (
	portalBurst      = 30
	portalPerMinute  = 60
	portalRefillEach = time.Minute / portalPerMinute
)

// allowPortalVisit takes one request from the client address's budget. Over
// budget, it answers 429 with Retry-After and reports false.
func (s *Server) allowPortalVisit(w http.ResponseWriter, r *http.Request) bool {
	ip := s.clientIP(r)
	if s.portalVisits.allow(clientKey(ip)) {
		return true
	}
	s.log.Warn("portal rate limited", "remote", ip)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(portalRefillEach.Seconds()))))
	s.renderError(w, r, http.StatusTooManyRequests, "Too many requests",
		"This address asked for portal pages too often. Wait a moment, then reload.")
	return false
}

// clientKey is the bucket of a client address (portal visits, sign-in
// failures, live streams). An IPv6 client usually holds a whole /64 and
// could walk through it, so the /64 is the client there.
func clientKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Unmap().Is4() {
		return ip
	}
	if p, err := addr.Prefix(64); err == nil {
		return p.String()
	}
	return ip
}

// paid is where Stripe's payment links send the payer back. The portal link
// cannot be the return address (only its token's hash is stored), so this
// page thanks the payer and points back to the portal link they used.
func (s *Server) paid(w http.ResponseWriter, r *http.Request) {
	page := views.ErrorPage{Meta: s.meta("Payment received"), Status: http.StatusOK, Heading: "Thank you — payment received",
		Message: "Stripe has your payment. Your invoice shows as paid in your client portal as soon as Stripe confirms it, usually within a minute. You can close this page and return to the portal link you were given."}
	s.render(w, r, http.StatusOK, views.Notice(page))
}
