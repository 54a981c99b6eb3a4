package app

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// GET /metrics: the Prometheus view of the business and of its agents.
// Every figure is read when Prometheus scrapes (one Stats query and one
// cycle log summary), never kept in counters the handlers must remember to
// bump: the database and the engine are the truth, the metrics a window on
// them. The figures include money, so the route sits behind the API's
// authentication (a bearer token, or an admin's session).

// metricsStoreTimeout bounds the database reads of one scrape, well inside
// Prometheus's default 10 s scrape timeout.
const metricsStoreTimeout = 3 * time.Second

// metricsHandler builds the registry of this server's router: the business
// collector and Go's runtime and process collectors. No global registry is
// used, so two servers in one process (tests) never collide.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newBusinessCollector(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	opts := promhttp.HandlerOpts{}
	if s.log != nil {
		opts.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelError)
	}
	prom := promhttp.HandlerFor(reg, opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store") // private figures
		prom.ServeHTTP(w, r)
	})
}

// businessCollector reads the engine, the store and the live hub at scrape
// time.
type businessCollector struct {
	s *Server

	agentRuns, agentFailures, agentRestarts, agentUp, agentState *prometheus.Desc

	cyclesRecorded, cycleFailuresRecorded, cycleLastDuration, cycleLastStart *prometheus.Desc

	storeUp                                   *prometheus.Desc
	leads, customers, tasks, invoices, emails *prometheus.Desc
	revenue, outstanding, overdue, profit     *prometheus.Desc
	sseClients                                *prometheus.Desc
}

func newBusinessCollector(s *Server) *businessCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("hossagent_"+name, help, labels, nil)
	}
	return &businessCollector{
		s: s,

		agentRuns:     desc("agent_runs_total", "Cycles the agent started since the process started.", "agent"),
		agentFailures: desc("agent_failures_total", "Cycles of the agent that failed or panicked since the process started.", "agent"),
		agentRestarts: desc("agent_restarts_total", "Times the supervisor started the agent again since the process started.", "agent"),
		agentUp:       desc("agent_up", "1 when the agent is idle or running, 0 when it is backing off, crashed or stopped.", "agent"),
		agentState:    desc("agent_state", "1 for the state the agent is in, 0 for the others.", "agent", "state"),

		cyclesRecorded:        desc("cycles_recorded_total", "Cycles of the agent in the cycle log, across restarts.", "agent"),
		cycleFailuresRecorded: desc("cycle_failures_recorded_total", "Failed or panicked cycles of the agent in the cycle log, across restarts.", "agent"),
		cycleLastDuration:     desc("cycle_last_duration_seconds", "How long the agent's latest finished cycle took.", "agent"),
		cycleLastStart:        desc("cycle_last_start_timestamp_seconds", "When the agent's latest cycle started, in Unix seconds.", "agent"),

		storeUp:   desc("store_up", "1 when this scrape could read the database, 0 when it could not (the store figures are then missing)."),
		leads:     desc("leads", "Leads by status.", "status"),
		customers: desc("customers", "Customers by status.", "status"),
		tasks:     desc("tasks", "Tasks by status.", "status"),
		invoices:  desc("invoices", "Invoices by status.", "status"),
		emails:    desc("emails", "Outbox e-mails by outcome: queued, sending, sent, dry_run, failed, suppressed.", "status"),

		revenue:     desc("revenue_cents", "Paid invoices, in cents.", "currency"),
		outstanding: desc("outstanding_cents", "Open invoices, in cents.", "currency"),
		overdue:     desc("overdue_cents", "Open invoices past their due date, in cents.", "currency"),
		profit:      desc("profit_cents", "Profit: reward of done tasks less the cost of done and failed ones and of the LLM sorting replies, in cents.", "currency"),

		sseClients: desc("sse_clients", "Open live-update (SSE) streams."),
	}
}

// Describe sends every descriptor, so the registry checks what Collect sends.
func (c *businessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.agentRuns, c.agentFailures, c.agentRestarts, c.agentUp, c.agentState,
		c.cyclesRecorded, c.cycleFailuresRecorded, c.cycleLastDuration, c.cycleLastStart,
		c.storeUp, c.leads, c.customers, c.tasks, c.invoices, c.emails,
		c.revenue, c.outstanding, c.overdue, c.profit, c.sseClients,
	} {
		ch <- d
	}
}

// Collect reads the figures of one scrape.
func (c *businessCollector) Collect(ch chan<- prometheus.Metric) {
	c.collectAgents(ch)
	ctx, cancel := context.WithTimeout(context.Background(), metricsStoreTimeout)
	defer cancel()
	up := c.collectStore(ctx, ch)
	ch <- prometheus.MustNewConstMetric(c.storeUp, prometheus.GaugeValue, boolFloat(up))
	var clients int64
	if c.s.hub != nil {
		clients = c.s.hub.Clients()
	}
	ch <- prometheus.MustNewConstMetric(c.sseClients, prometheus.GaugeValue, float64(clients))
}

// collectAgents reports the engine's supervisors; without an engine there
// are none.
func (c *businessCollector) collectAgents(ch chan<- prometheus.Metric) {
	if c.s.agents == nil {
		return
	}
	for _, st := range c.s.agents.States() {
		ch <- prometheus.MustNewConstMetric(c.agentRuns, prometheus.CounterValue, float64(st.Runs), st.Name)
		ch <- prometheus.MustNewConstMetric(c.agentFailures, prometheus.CounterValue, float64(st.Failures), st.Name)
		ch <- prometheus.MustNewConstMetric(c.agentRestarts, prometheus.CounterValue, float64(st.Restarts), st.Name)
		up := st.State == agents.StateIdle || st.State == agents.StateRunning
		ch <- prometheus.MustNewConstMetric(c.agentUp, prometheus.GaugeValue, boolFloat(up), st.Name)
		// Every state is sent for every agent, so a change of state moves
		// the 1 between series instead of creating one.
		states := apiAgentStateNames
		if !slices.Contains(states, st.State) {
			states = append(slices.Clone(states), st.State)
		}
		for _, state := range states {
			ch <- prometheus.MustNewConstMetric(c.agentState, prometheus.GaugeValue, boolFloat(state == st.State), st.Name, state)
		}
	}
}

// collectStore reports the cycle log and the business figures; it returns
// false, having logged why, when the database could not be read.
func (c *businessCollector) collectStore(ctx context.Context, ch chan<- prometheus.Metric) bool {
	runs, err := c.s.store.AgentRunSummaries(ctx)
	if err != nil {
		c.s.log.Error("metrics: reading the cycle log", "err", err)
		return false
	}
	for agent, sum := range runs {
		ch <- prometheus.MustNewConstMetric(c.cyclesRecorded, prometheus.CounterValue, float64(sum.Runs), agent)
		ch <- prometheus.MustNewConstMetric(c.cycleFailuresRecorded, prometheus.CounterValue, float64(sum.Failures), agent)
		if sum.Last == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.cycleLastStart, prometheus.GaugeValue, unixSeconds(sum.Last.StartedAt), agent)
		// A cycle still running has no duration yet; the series is absent
		// until the first one finishes.
		if sum.Last.FinishedAt != nil {
			ch <- prometheus.MustNewConstMetric(c.cycleLastDuration, prometheus.GaugeValue, sum.Last.Duration().Seconds(), agent)
		}
	}
	stats, err := c.s.store.Stats(ctx)
	if err != nil {
		c.s.log.Error("metrics: reading the business figures", "err", err)
		return false
	}
	sendCounts(ch, c.leads, db.LeadStatuses, stats.LeadsByStatus)
	sendCounts(ch, c.customers, []string{db.CustomerActive, db.CustomerPaused, db.CustomerClosed}, stats.CustomersByStatus)
	sendCounts(ch, c.tasks, db.TaskStatuses, stats.TasksByStatus)
	sendCounts(ch, c.invoices, db.InvoiceStatuses, stats.InvoicesByStatus)
	sendCounts(ch, c.emails, db.MessageStatuses, stats.MessagesByStatus)
	money := map[*prometheus.Desc]db.Totals{
		c.revenue: stats.Revenue, c.outstanding: stats.Outstanding, c.overdue: stats.Overdue, c.profit: stats.Profit,
	}
	currencies := currenciesOf(stats.Revenue, stats.Outstanding, stats.Overdue, stats.Profit)
	for d, totals := range money {
		for _, currency := range currencies {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(totals.In(currency).Cents), currency)
		}
	}
	return true
}

// sendCounts sends one series per status: every known status (zero when no
// row has it, so dashboards see a stable set) and any other the rows hold.
func sendCounts(ch chan<- prometheus.Metric, d *prometheus.Desc, known []string, counts map[string]int64) {
	for _, status := range known {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(counts[status]), status)
	}
	var other []string
	for status := range counts {
		if !slices.Contains(known, status) {
			other = append(other, status)
		}
	}
	sort.Strings(other)
	for _, status := range other {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(counts[status]), status)
	}
}

// currenciesOf lists every currency any of the totals holds, so each money
// series is sent in each of them (zero where there is none): an overdue
// figure that drops to nothing reads 0, not a missing series. Cents stay
// exact as float64 up to 2^53, some ninety trillion dollars.
func currenciesOf(totals ...db.Totals) []string {
	var out []string
	for _, t := range totals {
		for _, m := range t {
			if !slices.Contains(out, m.Currency) {
				out = append(out, m.Currency)
			}
		}
	}
	sort.Strings(out)
	return out
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
