package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// scrape GETs /metrics through c with a bearer token when given, expects
// 200 and parses the text exposition format.
func (f *fixture) scrape(t *testing.T, c *http.Client, bearer string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := f.apiCall(t, c, http.MethodGet, "/metrics", bearer)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	return families
}

// metricValue is the value of the series of family name whose labels are
// exactly labels (name=value pairs); ok is false when there is none.
func metricValue(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	fam := families[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !labelsAre(m.GetLabel(), labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func labelsAre(got []*dto.LabelPair, want []string) bool {
	if len(got)*2 != len(want) {
		return false
	}
	for i := 0; i < len(want); i += 2 {
		found := false
		for _, l := range got {
			if l.GetName() == want[i] && l.GetValue() == want[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// wantMetric fails the test unless the series exists with value want.
func wantMetric(t *testing.T, families map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metricValue(families, name, labels...)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// The metrics describe the money, so only an API token or an admin's
// session may read them; Prometheus is told how to authenticate.
func TestMetricsNeedAnAPITokenOrAnAdmin(t *testing.T) {
	f := newFixture(t, nil)

	resp, body := f.apiCall(t, f.client, http.MethodGet, "/metrics", "")
	apiErrorOf(t, resp, body, http.StatusUnauthorized)
	if got := resp.Header.Get("WWW-Authenticate"); got != bearerChallenge {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	resp, body = f.apiCall(t, f.client, http.MethodGet, "/metrics", db.APITokenPrefix+"not-a-real-token")
	apiErrorOf(t, resp, body, http.StatusUnauthorized)
	if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", got)
	}

	tok, plain := f.newAPIToken(t, "prometheus")
	if _, _, err := f.store.RevokeAPIToken(context.Background(), tok.ID, testNow); err != nil {
		t.Fatal(err)
	}
	resp, body = f.apiCall(t, f.client, http.MethodGet, "/metrics", plain)
	apiErrorOf(t, resp, body, http.StatusUnauthorized)

	viewer := f.signIn(t, f.createUser(t, "viewer@hossagent.test", db.RoleViewer).Email)
	resp, body = f.apiCall(t, viewer, http.MethodGet, "/metrics", "")
	apiErrorOf(t, resp, body, http.StatusForbidden)

	f.signInAs(t, db.RoleAdmin)
	if fams := f.scrape(t, f.client, ""); fams["hossagent_store_up"] == nil {
		t.Error("an admin's scrape lacks hossagent_store_up")
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", f.logs)
	}
}

// A scrape reads the store's figures as they are: counts by status (every
// known status present, zero or not), money per currency to the cent.
func TestMetricsReportTheBusiness(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	ctx := context.Background()
	var lead db.Lead
	if err := f.store.Bun().NewSelect().Model(&lead).OrderExpr("id").Limit(1).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, status := range []string{db.MessageSent, db.MessageDryRun, db.MessageDryRun, db.MessageFailed} {
		m := &db.Message{LeadID: lead.ID, ToAddr: "a@acme.example", Template: "intro", Subject: "Hello", Body: "Hi",
			Status: status, CreatedAt: testNow, UpdatedAt: testNow}
		if _, err := f.store.Bun().NewInsert().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_, plain := f.newAPIToken(t, "prometheus")

	fams := f.scrape(t, f.client, plain)
	wantMetric(t, fams, 1, "hossagent_store_up")
	wantMetric(t, fams, 3, "hossagent_leads", "status", db.LeadNew)
	wantMetric(t, fams, 0, "hossagent_leads", "status", db.LeadContacted)
	wantMetric(t, fams, 1, "hossagent_customers", "status", db.CustomerActive)
	wantMetric(t, fams, 2, "hossagent_tasks", "status", db.TaskDone)
	wantMetric(t, fams, 0, "hossagent_tasks", "status", db.TaskFailed)
	wantMetric(t, fams, 1, "hossagent_invoices", "status", db.InvoicePaid)
	wantMetric(t, fams, 1, "hossagent_invoices", "status", db.InvoiceOpen)
	wantMetric(t, fams, 1, "hossagent_emails", "status", db.MessageSent)
	wantMetric(t, fams, 2, "hossagent_emails", "status", db.MessageDryRun)
	wantMetric(t, fams, 1, "hossagent_emails", "status", db.MessageFailed)
	wantMetric(t, fams, 0, "hossagent_emails", "status", db.MessageSuppressed)
	wantMetric(t, fams, 0, "hossagent_emails", "status", db.MessageQueued)
	wantMetric(t, fams, 0, "hossagent_emails", "status", db.MessageSending)
	wantMetric(t, fams, 9900, "hossagent_revenue_cents", "currency", "usd")
	wantMetric(t, fams, 15000, "hossagent_outstanding_cents", "currency", "usd")
	wantMetric(t, fams, 0, "hossagent_overdue_cents", "currency", "usd") // issued today, due in 14 days
	wantMetric(t, fams, 13766+9800, "hossagent_profit_cents", "currency", "usd")
	// No live hub and no engine: zero streams, no agent series.
	wantMetric(t, fams, 0, "hossagent_sse_clients")
	if fams["hossagent_agent_runs_total"] != nil || fams["hossagent_cycles_recorded_total"] != nil {
		t.Error("agent series without an engine or a cycle log")
	}
	if fams["hossagent_revenue_cents"].GetType() != dto.MetricType_GAUGE {
		t.Errorf("revenue type = %v", fams["hossagent_revenue_cents"].GetType())
	}
	// Go's own runtime figures come along.
	if fams["go_goroutines"] == nil {
		t.Error("go_goroutines missing")
	}
}

// With a running engine, the agents' counters and states come from the
// supervisors, the last cycle's duration from the cycle log, and the SSE
// gauge counts the open streams.
func TestMetricsReportAgentsAndStreams(t *testing.T) {
	failing := agents.CycleFunc(func(context.Context) (agents.Counts, error) { return nil, errors.New("mailbox full") })
	cycles := map[string]agents.Cycle{agents.Ops: agents.CycleFunc(func(context.Context) (agents.Counts, error) {
		return agents.Counts{"checked": 1}, nil
	}), agents.BizDev: failing}
	f := newActionFixture(t, actionOptions{cycles: cycles})
	_, plain := f.newAPIToken(t, "prometheus")

	ctx := context.Background()
	if res, err := f.engine.Ask(ctx, agents.Ops, db.TriggerManual, 10*time.Second); err != nil || res.Outcome != db.RunOK {
		t.Fatalf("ops run = %+v, %v", res, err)
	}
	if res, _ := f.engine.Ask(ctx, agents.BizDev, db.TriggerManual, 10*time.Second); res.Outcome != db.RunFailed {
		t.Fatalf("bizdev run = %+v", res)
	}
	f.signInAs(t, db.RoleAdmin)
	_, stream := openStream(t, f.client, f.srv.URL+"/events/admin")
	nextMessage(t, stream) // the stream is counted before its first message

	fams := f.scrape(t, newClient(t), plain)
	wantMetric(t, fams, 1, "hossagent_agent_runs_total", "agent", agents.Ops)
	wantMetric(t, fams, 0, "hossagent_agent_failures_total", "agent", agents.Ops)
	wantMetric(t, fams, 0, "hossagent_agent_restarts_total", "agent", agents.Ops)
	wantMetric(t, fams, 1, "hossagent_agent_runs_total", "agent", agents.BizDev)
	wantMetric(t, fams, 1, "hossagent_agent_failures_total", "agent", agents.BizDev)
	wantMetric(t, fams, 1, "hossagent_agent_up", "agent", agents.Ops)
	wantMetric(t, fams, 1, "hossagent_agent_state", "agent", agents.Ops, "state", agents.StateIdle)
	wantMetric(t, fams, 0, "hossagent_agent_state", "agent", agents.Ops, "state", agents.StateCrashed)
	if fams["hossagent_agent_runs_total"].GetType() != dto.MetricType_COUNTER {
		t.Errorf("runs type = %v", fams["hossagent_agent_runs_total"].GetType())
	}
	wantMetric(t, fams, 1, "hossagent_cycles_recorded_total", "agent", agents.Ops)
	wantMetric(t, fams, 1, "hossagent_cycle_failures_recorded_total", "agent", agents.BizDev)
	// The store's clock stands still in tests, so every cycle took 0 s.
	wantMetric(t, fams, 0, "hossagent_cycle_last_duration_seconds", "agent", agents.Ops)
	wantMetric(t, fams, float64(testNow.Unix()), "hossagent_cycle_last_start_timestamp_seconds", "agent", agents.Ops)
	wantMetric(t, fams, 1, "hossagent_sse_clients")
}
