package app

import (
	"net/http"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// agentTitles names the five agents in pipeline order, as the cycle log
// records them.
var agentTitles = []struct{ name, title string }{
	{"lead_source", "Lead source"},
	{"bizdev", "BizDev"},
	{"onboarding", "Onboarding"},
	{"ops", "Ops"},
	{"billing", "Billing"},
}

// admin renders the control room.
//
// Sign-in does not exist yet, and the control room shows personal data
// (lead contacts). Until it does, the page is served only in DEVELOPMENT.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.IsDevelopment() {
		s.renderError(w, r, http.StatusForbidden, "Sign-in required",
			"The control room is only open in RELEASE_MODE=DEVELOPMENT until operator sign-in is enabled.")
		return
	}
	ctx := r.Context()
	q := searchParam(r, "q")
	p := views.AdminPage{
		Meta:              s.meta("Control room"),
		ReleaseMode:       s.cfg.ReleaseMode,
		AutopilotEnabled:  s.cfg.AutopilotEnabled,
		AutopilotInterval: s.cfg.AutopilotInterval,
		EmailMode:         s.cfg.Email.Mode,
		LeadSource:        s.cfg.Leads.Source,
		StripeEnabled:     s.cfg.Stripe.Enabled,
		Search:            q,
	}
	var err error
	fail := func() { s.fail(w, r, err) }
	if p.Stats, err = s.store.Stats(ctx); err != nil {
		fail()
		return
	}
	summaries, err := s.store.AgentRunSummaries(ctx)
	if err != nil {
		fail()
		return
	}
	for _, a := range agentTitles {
		sum := summaries[a.name]
		card := views.AgentCard{Name: a.name, Title: a.title, State: "idle", LastRun: sum.Last, Runs: sum.Runs, Failures: sum.Failures}
		if sum.Last != nil && (sum.Last.Outcome == db.RunFailed || sum.Last.Outcome == db.RunPanicked) {
			card.LastError = sum.Last.Message
		}
		p.Agents = append(p.Agents, card)
	}
	if p.Runs, _, err = s.store.ListAgentRuns(ctx, db.ListQuery{PerPage: 20}); err != nil {
		fail()
		return
	}
	if p.Leads, p.LeadsPage, err = s.store.ListLeads(ctx, db.ListQuery{Search: q, Page: pageParam(r, "lp")}); err != nil {
		fail()
		return
	}
	if p.Customers, p.CustomersPage, err = s.store.ListCustomers(ctx, db.ListQuery{Search: q, Page: pageParam(r, "cp")}); err != nil {
		fail()
		return
	}
	if p.Tasks, p.TasksPage, err = s.store.ListTasks(ctx, db.ListQuery{Search: q, Page: pageParam(r, "tp")}); err != nil {
		fail()
		return
	}
	if p.Invoices, p.InvoicesPage, err = s.store.ListInvoices(ctx, db.ListQuery{Search: q, Page: pageParam(r, "ip")}); err != nil {
		fail()
		return
	}
	if p.Audit, _, err = s.store.ListAudit(ctx, db.ListQuery{PerPage: 20}); err != nil {
		fail()
		return
	}
	s.render(w, r, http.StatusOK, views.Admin(p))
}
