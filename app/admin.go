package app

import (
	"net/http"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// agentTitles names the five agents in pipeline order.
var agentTitles = []struct{ name, title string }{
	{agents.LeadSource, "Lead source"},
	{agents.BizDev, "BizDev"},
	{agents.Onboarding, "Onboarding"},
	{agents.Ops, "Ops"},
	{agents.Billing, "Billing"},
}

// admin renders the control room. Only admins reach it (requireAdmin).
func (s *Server) admin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := searchParam(r, "q")
	p := views.AdminPage{
		Meta:              s.metaFor(r, "Control room"),
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
	p.Agents = s.agentCards(summaries)
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

// agentCards merges the live engine states (when the engine runs) with the
// persisted cycle log, so cards survive a restart of the process.
func (s *Server) agentCards(summaries map[string]db.RunSummary) []views.AgentCard {
	live := map[string]agents.AgentState{}
	if s.agents != nil {
		for _, st := range s.agents.States() {
			live[st.Name] = st
		}
	}
	cards := make([]views.AgentCard, 0, len(agentTitles))
	for _, a := range agentTitles {
		sum := summaries[a.name]
		card := views.AgentCard{Name: a.name, Title: a.title, State: agents.StateStopped, LastRun: sum.Last, Runs: sum.Runs, Failures: sum.Failures}
		if sum.Last != nil && (sum.Last.Outcome == db.RunFailed || sum.Last.Outcome == db.RunPanicked) {
			card.LastError = sum.Last.Message
		}
		if st, ok := live[a.name]; ok {
			card.State, card.Restarts = st.State, st.Restarts
			if st.LastError != "" {
				card.LastError, card.Stack = st.LastError, st.Stack
			}
		}
		cards = append(cards, card)
	}
	return cards
}
