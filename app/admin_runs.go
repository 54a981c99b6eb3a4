package app

import (
	"context"
	"net/http"
	"net/url"
	"slices"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// The cycle log and the audit log, each on its own page (/admin/runs,
// /admin/audit), paged by keyset cursor (?c=): a page shows the rows
// older than its cursor's row, so it stays put while new rows arrive, and
// its live updates (the page's stream carries the same query) keep it.

// runsPerPage is how many runs a page of /admin/runs shows; the control
// room's panel shows the latest controlRoomRuns with a link to the page.
const (
	runsPerPage      = 50
	controlRoomRuns  = 20
	controlRoomAudit = 20
	auditPerPage     = 50
)

// runsParams are /admin/runs's filters and cursor, validated.
type runsParams struct {
	agent, outcome string
	cursor         db.Cursor
	problem        string // why a filter was refused ("" when none was)
}

// runAgents are the agents the cycle log may be filtered by: every agent
// of the registry and the coordinator, which logs skipped stages.
func runAgents() []string {
	names := make([]string, 0, len(agents.Registry)+1)
	for _, a := range agents.Registry {
		names = append(names, a.Name)
	}
	return append(names, agents.CoordinatorName)
}

// runsParamsOf reads the filters: an agent of runAgents and an outcome of
// db.RunOutcomeFilters, or none; anything else is refused (the page says
// so, unfiltered, with 400).
func runsParamsOf(r *http.Request) runsParams {
	q := r.URL.Query()
	p := runsParams{cursor: cursorParam(r, "c")}
	if a := q.Get("agent"); a != "" {
		if slices.Contains(runAgents(), a) {
			p.agent = a
		} else {
			p.problem = "There is no agent of that name: showing every agent."
		}
	}
	if o := q.Get("outcome"); o != "" {
		if slices.Contains(db.RunOutcomeFilters, o) {
			p.outcome = o
		} else {
			p.problem += " The outcome must be one of " + joinWords(db.RunOutcomeFilters) + ": showing every outcome."
		}
	}
	if p.problem != "" {
		p.cursor = db.Cursor{} // a cursor of another filter is not this one's
	}
	return p
}

// key is the params in one canonical form, naming the live view.
func (p runsParams) key() string {
	return url.Values{"agent": {p.agent}, "outcome": {p.outcome}, "c": {p.cursor.String()}}.Encode()
}

// query is the params as the page's links carry them.
func (p runsParams) query() url.Values {
	v := url.Values{}
	for k, val := range map[string]string{"agent": p.agent, "outcome": p.outcome, "c": p.cursor.String()} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return v
}

func joinWords(words []string) string {
	out := ""
	for i, w := range words {
		switch {
		case i == 0:
		case i == len(words)-1:
			out += " or "
		default:
			out += ", "
		}
		out += w
	}
	return out
}

// adminRuns is the cycle log's own page.
func (s *Server) adminRuns(w http.ResponseWriter, r *http.Request) {
	params := runsParamsOf(r)
	meta := s.metaFor(r, "Cycle log")
	meta.LiveURL = "/events/admin/runs?" + params.query().Encode()
	p, err := s.runsData(r.Context(), meta, params)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if params.problem != "" {
		status = http.StatusBadRequest
	}
	s.render(w, r, status, views.AdminRunsPage(p))
}

// adminRunsEvents streams the cycle log page's table as its reader sees
// it: the same filters and cursor.
func (s *Server) adminRunsEvents(w http.ResponseWriter, r *http.Request) {
	params := runsParamsOf(r)
	meta := s.meta("Cycle log")
	s.serveStream(w, r, "runs?"+params.key(), sessionReader(r, true), func(ctx context.Context) ([]fragment, error) {
		meta.Now = s.now().UTC()
		p, err := s.runsData(ctx, meta, params)
		if err != nil {
			return nil, err
		}
		return []fragment{{"runs-log", views.RunsLog(p)}}, nil
	})
}

func (s *Server) runsData(ctx context.Context, meta views.Meta, params runsParams) (views.RunsPage, error) {
	runs, pg, err := s.store.ListAgentRuns(ctx, db.ListQuery{Agent: params.agent, Status: params.outcome, Cursor: params.cursor, PerPage: runsPerPage})
	if err != nil {
		return views.RunsPage{}, err
	}
	return views.RunsPage{
		Meta: meta, Runs: viewsOf(runs, agentRunView), Page: pageView(pg),
		Agent: params.agent, Outcome: params.outcome, Problem: params.problem,
		Agents: runAgents(), Outcomes: db.RunOutcomeFilters,
	}, nil
}

// auditParams are /admin/audit's search and cursor.
type auditParams struct {
	search string
	cursor db.Cursor
}

func auditParamsOf(r *http.Request) auditParams {
	return auditParams{search: searchParam(r, "q"), cursor: cursorParam(r, "c")}
}

func (p auditParams) query() url.Values {
	v := url.Values{}
	if p.search != "" {
		v.Set("q", p.search)
	}
	if c := p.cursor.String(); c != "" {
		v.Set("c", c)
	}
	return v
}

// adminAudit is the audit log's own page, with its search.
func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) {
	params := auditParamsOf(r)
	meta := s.metaFor(r, "Audit log")
	meta.LiveURL = "/events/admin/audit?" + params.query().Encode()
	p, err := s.auditData(r.Context(), meta, params)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.AdminAuditPage(p))
}

// adminAuditEvents streams the audit page's table as its reader sees it.
func (s *Server) adminAuditEvents(w http.ResponseWriter, r *http.Request) {
	params := auditParamsOf(r)
	meta := s.meta("Audit log")
	s.serveStream(w, r, "audit?"+params.query().Encode(), sessionReader(r, true), func(ctx context.Context) ([]fragment, error) {
		meta.Now = s.now().UTC()
		p, err := s.auditData(ctx, meta, params)
		if err != nil {
			return nil, err
		}
		return []fragment{{"audit-log", views.AuditLog(p)}}, nil
	})
}

func (s *Server) auditData(ctx context.Context, meta views.Meta, params auditParams) (views.AuditPage, error) {
	entries, pg, err := s.store.ListAudit(ctx, db.ListQuery{Search: params.search, Cursor: params.cursor, PerPage: auditPerPage})
	if err != nil {
		return views.AuditPage{}, err
	}
	return views.AuditPage{
		Meta: meta, Entries: viewsOf(entries, auditView), Page: pageView(pg), Search: params.search,
		Window: pg.Window, WindowEnded: pg.WindowEnded,
	}, nil
}
