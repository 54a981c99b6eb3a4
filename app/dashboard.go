package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/a-h/templ"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// dashboard renders the owner's dashboard: money, pipeline, recent work. Any
// signed-in operator may read it; with DASHBOARD_PUBLIC=true anyone may, but
// then without personal data (see withoutPersonalData).
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r.Context())
	if u == nil && !s.cfg.DashboardPublic {
		s.signInRequired(w, r)
		return
	}
	meta := s.metaFor(r, "Dashboard")
	page := cursorParam(r, "page")
	// Built from the parsed page, not the raw query: the page is shared by
	// every reader of its audience and page.
	meta.LiveURL = "/events/dashboard?"
	if c := page.String(); c != "" {
		meta.LiveURL += url.Values{"page": {c}}.Encode()
	}
	s.renderCached(w, r, "dashboard|"+meta.SignedIn+"|"+audienceOf(u)+"|"+page.String(), func() (templ.Component, error) {
		p, err := s.dashboardData(r.Context(), meta, u, page)
		return views.Dashboard(p), err
	})
}

// audienceOf names the kind of reader a dashboard is for.
func audienceOf(u *db.User) string {
	if u == nil {
		return "public"
	}
	return u.Role
}

// dashboardEvents streams the dashboard's live regions to the same readers
// the page has, scrubbed the same way for anonymous readers. Every reader of
// one kind (public, viewer, admin) on one page watches the same view.
func (s *Server) dashboardEvents(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r.Context())
	if u == nil && !s.cfg.DashboardPublic {
		http.Error(w, "sign in required", http.StatusUnauthorized)
		return
	}
	page := cursorParam(r, "page")
	key := "dashboard:" + audienceOf(u) + "?page=" + page.String()
	meta := s.meta("Dashboard")
	s.serveStream(w, r, key, sessionReader(r, false), func(ctx context.Context) ([]fragment, error) {
		meta.Now = s.now().UTC()
		p, err := s.dashboardData(ctx, meta, u, page)
		if err != nil {
			return nil, err
		}
		return []fragment{
			{"dash-cards", views.DashboardCards(p)},
			{"dash-trends", views.DashboardTrends(p)},
			{"dash-pipeline", views.DashboardPipeline(p)},
			{"dash-work", views.DashboardWork(p)},
			{"dash-invoices", views.DashboardInvoices(p)},
			{"dash-leads", views.DashboardLeads(p)},
		}, nil
	})
}

// dashboardData reads every figure and table of the dashboard.
func (s *Server) dashboardData(ctx context.Context, meta views.Meta, u *db.User, page db.Cursor) (views.DashboardPage, error) {
	p := views.DashboardPage{Meta: meta, ShowAdmin: u != nil && u.Role == db.RoleAdmin}
	stats, err := s.store.Stats(ctx)
	if err != nil {
		return p, err
	}
	p.Stats = statsView(stats)
	if err := s.dashboardCharts(ctx, &p); err != nil {
		return p, err
	}
	work, _, err := s.store.ListTasks(ctx, db.ListQuery{Status: db.TaskDone, PerPage: 10})
	if err != nil {
		return p, err
	}
	p.RecentWork = viewsOf(work, taskRowView)
	invoices, _, err := s.store.ListInvoices(ctx, db.ListQuery{PerPage: 10})
	if err != nil {
		return p, err
	}
	p.Invoices = invoiceRowViews(invoices, meta.Now)
	leads, leadsPage, err := s.store.ListLeads(ctx, db.ListQuery{Cursor: page, PerPage: 15})
	if err != nil {
		return p, err
	}
	p.Leads, p.LeadsPage = viewsOf(leads, leadView), pageView(leadsPage)
	if u == nil {
		withoutPersonalData(&p)
	}
	return p, nil
}

// withoutPersonalData strips from the page what an anonymous visitor of the
// public dashboard must not get: everything about a person or a single
// conversation. Company names, industries, stages, task kinds, amounts and
// invoice numbers stay. Gone are lead contacts (name, e-mail, website,
// domain) and when each lead was contacted, answered or converted; task
// descriptions, results and errors (they carry the client's brief); and
// invoice payers and Stripe payment links. The rows are scrubbed rather than
// the template told to hide columns, so nothing leaks if a column is added.
func withoutPersonalData(p *views.DashboardPage) {
	for i := range p.Leads {
		l := &p.Leads[i]
		l.Name, l.Email, l.Website, l.DomainKey = "", "", "", nil
		l.ContactedAt, l.RespondedAt, l.ConvertedAt = nil, nil, nil
	}
	for i := range p.RecentWork {
		t := &p.RecentWork[i]
		t.Description, t.Result, t.LastError = "", "", ""
	}
	for i := range p.Invoices {
		inv := &p.Invoices[i]
		inv.PayerEmail, inv.PayerName = "", ""
		inv.PaymentURL, inv.StripePaymentLinkID, inv.StripePriceID = "", "", ""
	}
}

// dashboardCharts reads the money over time in the default currency: the
// money collected per day (a range of invoices_paid_at) and the open money
// by due day (a range of the kept totals), over the last two periods.
func (s *Server) dashboardCharts(ctx context.Context, p *views.DashboardPage) error {
	cur := p.Meta.Currency
	from, to := views.ChartRange(p.Meta.Now)
	paid, err := s.store.RevenueByDay(ctx, cur, from, to)
	if err != nil {
		return err
	}
	open, err := s.store.OpenByDueDay(ctx, cur, from, to)
	if err != nil {
		return err
	}
	p.Revenue = views.DailyMoneyChart("chart-revenue", "Revenue: money collected per day ("+strings.ToUpper(cur)+")", cur, p.Meta.Now, dayCents(paid))
	p.Outstanding = views.DailyMoneyChart("chart-outstanding", "Outstanding: open money by the day it fell due ("+strings.ToUpper(cur)+")", cur, p.Meta.Now, dayCents(open))
	return nil
}

// dayCents is the store's daily money for the views.
func dayCents(days []db.DayTotal) []views.DayCents {
	out := make([]views.DayCents, len(days))
	for i, d := range days {
		out[i] = views.DayCents{Day: d.Day, Cents: d.Cents}
	}
	return out
}
