package app

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// portal renders a client's portal. The token in the URL is the only
// credential: it is looked up by its hash, and an unknown or revoked token
// gets the same plain 404 as any missing page.
func (s *Server) portal(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.store.CustomerByPortalToken(ctx, chi.URLParam(r, "token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := views.PortalPage{Meta: s.meta(c.Company), Customer: *c}
	if p.Summary, err = s.store.CustomerSummary(ctx, c.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Outstanding, _, err = s.store.ListCustomerInvoices(ctx, c.ID, db.ListQuery{Status: db.InvoiceOpen, PerPage: 50}); err != nil {
		s.fail(w, r, err)
		return
	}
	var all []db.InvoiceRow
	if all, _, err = s.store.ListCustomerInvoices(ctx, c.ID, db.ListQuery{PerPage: 50}); err != nil {
		s.fail(w, r, err)
		return
	}
	for _, inv := range all {
		if inv.Status == db.InvoicePaid || inv.Status == db.InvoiceRefunded {
			p.History = append(p.History, inv)
		}
	}
	if p.Work, _, err = s.store.ListCustomerTasks(ctx, c.ID, db.ListQuery{PerPage: 20}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.Portal(p))
}
