package app

import (
	"net/http"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// dashboard renders the owner's dashboard: money, pipeline, recent work.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := views.DashboardPage{Meta: s.meta("Dashboard"), ShowAdmin: true}
	var err error
	if p.Stats, err = s.store.Stats(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.RecentWork, _, err = s.store.ListTasks(ctx, db.ListQuery{Status: db.TaskDone, PerPage: 10}); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Invoices, _, err = s.store.ListInvoices(ctx, db.ListQuery{PerPage: 10}); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Leads, p.LeadsPage, err = s.store.ListLeads(ctx, db.ListQuery{Page: pageParam(r, "page"), PerPage: 15}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.Dashboard(p))
}
