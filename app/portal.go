package app

import (
	"cmp"
	"context"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// The client portal. A client holds a link (an e-mailed one, or the one an
// operator rotated in the admin); opening it exchanges it for a portal
// session cookie (portal_session.go) and the portal is at /portal, with no
// secret in the address bar. Without a session /portal is the sign-in page,
// where a client asks for a fresh link by e-mail.

// portal renders the client's portal, or the sign-in page without a
// session.
func (s *Server) portal(w http.ResponseWriter, r *http.Request) {
	if !s.allowPortalVisit(w, r) {
		return
	}
	c, _, err := s.portalSession(w, r)
	if err != nil {
		if codeOf(err) != codeNotFound {
			s.fail(w, r, err)
			return
		}
		s.portalSignIn(w, r, http.StatusOK, views.PortalSignInPage{Heading: "Sign in to your client portal",
			Message: "Your portal opens from the link in our e-mails.", Form: true})
		return
	}
	meta := s.meta(c.Company)
	meta.LiveURL = "/events/portal"
	p, err := s.portalData(r.Context(), meta, c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	noStore(w)
	s.render(w, r, http.StatusOK, views.Portal(p))
}

// portalEvents streams a client's portal regions; a payment landing shows
// without a reload. Every open portal of one client watches one view; the
// session is checked again with each render (in one batch for all
// readers), so a revoked link or an ended session stops updating at once.
func (s *Server) portalEvents(w http.ResponseWriter, r *http.Request) {
	if !s.allowPortalVisit(w, r) {
		return
	}
	c, token, err := s.portalSession(w, r)
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

// portalData reads one client's account: the headline, open invoices,
// payment history and recent work.
func (s *Server) portalData(ctx context.Context, meta views.Meta, c *db.Customer) (views.PortalHomePage, error) {
	p := views.PortalHomePage{Meta: meta, Customer: portalCustomerView(*c), Provider: s.portalProvider()}
	summary, err := s.store.CustomerSummary(ctx, c.ID)
	if err != nil {
		return p, err
	}
	p.Summary = accountSummaryView(summary)
	p.Headline = views.PortalHeadline{Due: summary.Outstanding, DueBy: summary.EarliestDue, Overdue: summary.Overdue, OpenCount: summary.OpenCount}
	if summary.EarliestDue != nil && meta.Now.After(*summary.EarliestDue) {
		p.Headline.OverdueDays = daysOverdue(*summary.EarliestDue, meta.Now)
	}
	open, _, err := s.store.ListCustomerInvoices(ctx, c.ID, db.ListQuery{Status: db.InvoiceOpen, PerPage: 50})
	if err != nil {
		return p, err
	}
	p.Outstanding = viewsOf(open, func(i db.InvoiceRow) views.PortalInvoiceRow { return portalInvoiceRow(i.Invoice, meta.Now) })
	slices.SortStableFunc(p.Outstanding, func(a, b views.PortalInvoiceRow) int {
		return cmp.Compare(unixOr(a.DueAt), unixOr(b.DueAt))
	})
	history, _, err := s.store.ListCustomerInvoices(ctx, c.ID, db.ListQuery{Statuses: []string{db.InvoicePaid, db.InvoiceRefunded}, PerPage: 50})
	if err != nil {
		return p, err
	}
	p.History = viewsOf(history, func(i db.InvoiceRow) views.PortalInvoiceRow { return portalInvoiceRow(i.Invoice, meta.Now) })
	work, _, err := s.store.ListCustomerTasks(ctx, c.ID, db.ListQuery{PerPage: 20})
	if err != nil {
		return p, err
	}
	p.Work = viewsOf(work, func(t db.TaskRow) views.PortalWorkItem {
		return views.PortalWorkItem{Title: s.kindTitles(t.Kind), Description: t.Description, Status: t.Status,
			ResultHTML: renderDeliverable(t.Result), CompletedAt: t.CompletedAt}
	})
	return p, nil
}

// unixOr orders optional times, a missing one last.
func unixOr(t *time.Time) int64 {
	if t == nil {
		return math.MaxInt64
	}
	return t.Unix()
}

// portalInvoiceRow is an invoice as its client sees it at now.
func portalInvoiceRow(i db.Invoice, now time.Time) views.PortalInvoiceRow {
	v := views.PortalInvoiceRow{
		ID: i.ID, Label: i.NumberOrDraft(), Amount: i.Amount(), Status: i.Status, Overdue: i.Overdue(now),
		PaymentURL: i.PaymentURL, IssuedAt: i.IssuedAt, DueAt: i.DueAt, PaidAt: i.PaidAt,
		HasReceipt: i.Status == db.InvoicePaid || i.Status == db.InvoiceRefunded,
	}
	if v.Overdue {
		v.OverdueDays = daysOverdue(*i.DueAt, now)
	}
	return v
}

// daysOverdue is how many days, begun, have passed since due: one the
// moment it is past.
func daysOverdue(due, now time.Time) int {
	return max(1, int(math.Ceil(now.Sub(due).Hours()/24)))
}

// portalProvider is who the business is, from the configuration.
func (s *Server) portalProvider() views.PortalProvider {
	co := s.cfg.Company
	p := views.PortalProvider{Name: co.Name, BillingEmail: co.BillingEmail}
	for line := range strings.SplitSeq(strings.ReplaceAll(co.PostalAddress, "\r\n", "\n"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			p.PostalAddress = append(p.PostalAddress, line)
		}
	}
	return p
}

// noStore keeps a client's page out of every cache: it holds their money.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
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
