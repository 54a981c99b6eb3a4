package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// admin renders the control room. Only admins reach it (requireAdmin).
func (s *Server) admin(w http.ResponseWriter, r *http.Request) {
	meta := s.metaFor(r, "Control room")
	meta.LiveURL = "/events/admin?" + r.URL.Query().Encode()
	params := adminParamsOf(r)
	s.renderCached(w, r, "admin|"+meta.SignedIn+"|"+meta.LiveURL+"|"+params.key(), func() (templ.Component, error) {
		p, err := s.adminData(r.Context(), meta, params)
		return views.Admin(p), err
	})
}

// adminEvents streams the control room's live regions, with the tables as
// the operator's search and pages show them. Operators on the same search
// and pages watch the same view.
func (s *Server) adminEvents(w http.ResponseWriter, r *http.Request) {
	params := adminParamsOf(r)
	meta := s.meta("Control room")
	s.serveStream(w, r, "admin?"+params.key(), sessionReader(r, true), func(ctx context.Context) ([]fragment, error) {
		meta.Now = s.now().UTC()
		return s.adminFragments(ctx, meta, params)
	})
}

// adminFragments renders the control room's live regions.
func (s *Server) adminFragments(ctx context.Context, meta views.Meta, params adminParams) ([]fragment, error) {
	p, err := s.adminData(ctx, meta, params)
	if err != nil {
		return nil, err
	}
	return []fragment{
		{"admin-status", views.AdminStatus(p)},
		{"admin-cards", views.AdminCards(p)},
		{"admin-agents", views.AdminAgents(p)},
		{"admin-runs", views.AdminRuns(p)},
		{"admin-leads", views.AdminLeads(p)},
		{"admin-customers", views.AdminCustomers(p)},
		{"admin-tasks", views.AdminTasks(p)},
		{"admin-invoices", views.AdminInvoices(p)},
		{"admin-audit", views.AdminAudit(p)},
		{"admin-email-health", views.AdminEmailHealth(p)},
		{"admin-leads-health", views.AdminLeadsHealth(p)},
		{"admin-stripe-health", views.AdminStripeHealth(p)},
		{"admin-client-mail", views.AdminClientMail(p)},
	}, nil
}

// adminParams are the control room's search term and table pages.
type adminParams struct {
	search                            string
	leads, customers, tasks, invoices db.Cursor
}

// key is the params in one canonical form, naming the live view they show.
func (q adminParams) key() string {
	return url.Values{"q": {q.search}, "lp": {q.leads.String()}, "cp": {q.customers.String()},
		"tp": {q.tasks.String()}, "ip": {q.invoices.String()}}.Encode()
}

func adminParamsOf(r *http.Request) adminParams {
	return adminParams{
		search: searchParam(r, "q"),
		leads:  cursorParam(r, "lp"), customers: cursorParam(r, "cp"),
		tasks: cursorParam(r, "tp"), invoices: cursorParam(r, "ip"),
	}
}

// adminData reads everything the control room shows.
func (s *Server) adminData(ctx context.Context, meta views.Meta, q adminParams) (views.AdminPage, error) {
	p := views.AdminPage{
		Meta:              meta,
		ReleaseMode:       s.cfg.ReleaseMode,
		AutopilotEnabled:  s.cfg.AutopilotEnabled,
		AutopilotInterval: s.cfg.AutopilotInterval,
		EmailMode:         s.cfg.Email.Mode,
		LeadSource:        s.cfg.Leads.Source,
		StripeEnabled:     s.cfg.Stripe.Enabled,
		Search:            q.search,
		SearchIndexed:     db.SearchUsesIndex(q.search),
		AutopilotControls: s.autopilot != nil,
	}
	var err error
	if s.autopilot != nil {
		if p.AutopilotEnabled, p.AutopilotInterval, err = s.autopilot.Autopilot(ctx); err != nil {
			return p, err
		}
	}
	stats, err := s.store.Stats(ctx)
	if err != nil {
		return p, err
	}
	p.Stats = statsView(stats)
	summaries, err := s.store.AgentRunSummaries(ctx)
	if err != nil {
		return p, err
	}
	recent, err := s.store.RecentRuns(ctx, agentNames(), sparkRuns)
	if err != nil {
		return p, err
	}
	p.Agents = s.agentCards(summaries, recent)
	runs, _, err := s.store.ListAgentRuns(ctx, db.ListQuery{PerPage: controlRoomRuns})
	if err != nil {
		return p, err
	}
	p.Runs = viewsOf(runs, agentRunView)
	leads, leadsPage, err := s.store.ListLeads(ctx, db.ListQuery{Search: q.search, Cursor: q.leads})
	if err != nil {
		return p, err
	}
	p.Leads, p.LeadsPage = viewsOf(leads, leadView), pageView(leadsPage)
	if err = s.markDraftSteps(ctx, p.Leads); err != nil {
		return p, err
	}
	customers, customersPage, err := s.store.ListCustomers(ctx, db.ListQuery{Search: q.search, Cursor: q.customers})
	if err != nil {
		return p, err
	}
	p.Customers, p.CustomersPage = viewsOf(customers, customerRowView), pageView(customersPage)
	tasks, tasksPage, err := s.store.ListTasks(ctx, db.ListQuery{Search: q.search, Cursor: q.tasks})
	if err != nil {
		return p, err
	}
	p.Tasks, p.TasksPage = viewsOf(tasks, taskRowView), pageView(tasksPage)
	invoices, invoicesPage, err := s.store.ListInvoices(ctx, db.ListQuery{Search: q.search, Cursor: q.invoices})
	if err != nil {
		return p, err
	}
	p.Invoices, p.InvoicesPage = invoiceRowViews(invoices, meta.Now), pageView(invoicesPage)
	audit, _, err := s.store.ListAudit(ctx, db.ListQuery{PerPage: controlRoomAudit})
	if err != nil {
		return p, err
	}
	p.Audit = viewsOf(audit, auditView)
	if err = s.healthData(ctx, &p); err != nil {
		return p, err
	}
	if p.ClientMail, err = s.clientMailControl(ctx); err != nil {
		return p, err
	}
	return p, nil
}

// agentCards is one card per agent of agents.Registry, in its order and
// with its title: the live engine states (when the engine runs) merged with
// the persisted cycle log, so cards survive a restart of the process.
func (s *Server) agentCards(summaries map[string]db.RunSummary, recent map[string][]db.RunPoint) []views.AgentCard {
	live := map[string]agents.AgentState{}
	if s.agents != nil {
		for _, st := range s.agents.States() {
			live[st.Name] = st
		}
	}
	// With several instances one owns every agent (and the coordinator):
	// each card names it.
	var owner *views.AgentOwner
	if own, ok := s.agents.(AgentOwnership); ok {
		owner = &views.AgentOwner{Instance: own.Owner(), Here: own.Owner() == own.Instance()}
	}
	cards := make([]views.AgentCard, 0, len(agents.Registry))
	for _, a := range agents.Registry {
		sum := summaries[a.Name]
		card := views.AgentCard{Name: a.Name, Title: a.Title, State: agents.StateStopped, Runs: sum.Runs, Failures: sum.Failures, Owner: owner}
		card.Spark = views.AgentSparkline(a.Name, a.Title, sparks(recent[a.Name]))
		if sum.Last != nil {
			last := agentRunView(*sum.Last)
			card.LastRun = &last
		}
		if sum.Last != nil && (sum.Last.Outcome == db.RunFailed || sum.Last.Outcome == db.RunPanicked) {
			card.LastError, card.Stack, _ = strings.Cut(sum.Last.Message, "\n")
			card.LastErrorAt = sum.Last.StartedAt
			if sum.Last.FinishedAt != nil {
				card.LastErrorAt = *sum.Last.FinishedAt
			}
		}
		if st, ok := live[a.Name]; ok {
			// Only an agent the engine runs gets buttons; crash injection
			// exists in development alone.
			card.Controls, card.CrashInjection = true, s.cfg.IsDevelopment()
			card.State, card.Restarts = st.State, st.Restarts
			if st.LastError != "" {
				card.LastError, card.Stack, card.LastErrorAt = st.LastError, st.Stack, st.LastErrorAt
			}
			// A panic is history once the supervisor restarted the agent
			// (idle or running again), and any error is once a later cycle
			// ended well.
			healthy := st.State == agents.StateIdle || st.State == agents.StateRunning
			card.Recovered = card.LastError != "" && healthy &&
				(st.LastOutcome == db.RunOK || st.LastOutcome == db.RunPanicked)
			if st.State == agents.StateRunning && !st.LastRunAt.IsZero() {
				card.RunningSince, card.Running = st.LastRunAt, s.now().Sub(st.LastRunAt)
			}
		}
		cards = append(cards, card)
	}
	return cards
}

// sparkRuns is how many of an agent's latest runs its card draws.
const sparkRuns = 20

// agentNames are the names of agents.Registry, in its order.
func agentNames() []string {
	names := make([]string, len(agents.Registry))
	for i, a := range agents.Registry {
		names[i] = a.Name
	}
	return names
}

// sparks are runs as points of a sparkline: a run still going has no
// duration yet; failed, panicked and interrupted runs are failures.
func sparks(runs []db.RunPoint) []views.Spark {
	out := make([]views.Spark, len(runs))
	for i, r := range runs {
		sp := views.Spark{Label: r.StartedAt.UTC().Format(time.DateTime), Outcome: r.Outcome,
			Failed: r.Outcome == db.RunFailed || r.Outcome == db.RunPanicked || r.Outcome == db.RunInterrupted}
		if r.FinishedAt != nil {
			sp.Duration = max(0, r.FinishedAt.Sub(r.StartedAt))
		}
		out[i] = sp
	}
	return out
}
