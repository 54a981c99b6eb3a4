package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// apiPage is a list answer, decoded with numbers kept as written so the
// tests can tell 1234 from 12.34.
type apiPage struct {
	Data    []map[string]any `json:"data"`
	Page    json.Number      `json:"page"`
	PerPage json.Number      `json:"per_page"`
	Total   json.Number      `json:"total"`
}

// apiList GETs a list with a bearer token and decodes it; any status but
// 200 fails the test.
func (f *fixture) apiList(t *testing.T, path, bearer string) apiPage {
	t.Helper()
	resp, body := f.apiCall(t, f.client, http.MethodGet, path, bearer)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, body)
	}
	assertAPIHeaders(t, resp)
	var p apiPage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	if p.Data == nil {
		t.Fatalf("GET %s: data is not a list: %s", path, body)
	}
	return p
}

func assertAPIHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
}

// apiError decodes an error answer and checks its status.
func apiErrorOf(t *testing.T, resp *http.Response, body []byte, status int) string {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d (%s)", resp.StatusCode, status, body)
	}
	assertAPIHeaders(t, resp)
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("error body %s: %v", body, err)
	}
	return e.Error
}

// newAPIToken stores a live token and returns it.
func (f *fixture) newAPIToken(t *testing.T, name string) (*db.APIToken, string) {
	t.Helper()
	tok, plain, err := f.store.CreateAPIToken(context.Background(), name, "admin@hossagent.test", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return tok, plain
}

// seedLeads adds n leads to the seeded three; every third is contacted and
// every fifth works in the "Dentist" niche.
func (f *fixture) seedLeads(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		niche := "agency"
		if i%5 == 0 {
			niche = "Dentist"
		}
		l, err := f.store.CreateLead(ctx, nil, db.NewLead{
			Name: "Contact", Email: fmt.Sprintf("c%d@lead%d.example", i, i), Company: fmt.Sprintf("Lead Co %02d", i),
			Source: "synthetic", Niche: niche, DomainKey: fmt.Sprintf("lead%d.example", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := f.store.Bun().NewUpdate().Table("leads").Set("status = ?", db.LeadContacted).Set("contacted_at = ?", testNow).
				Where("id = ?", l.ID).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func jsonNum(t *testing.T, v any) string {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	return n.String()
}

func TestAPIListsArePagedWithTotals(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	f.seedLeads(t, 57) // 60 leads: 19 contacted, 12 dentists, 4 both
	_, token := f.newAPIToken(t, "test")

	p := f.apiList(t, "/api/v1/leads", token)
	if p.Page != "1" || p.PerPage != json.Number(fmt.Sprint(apiDefaultPerPage)) || p.Total != "60" || len(p.Data) != apiDefaultPerPage {
		t.Errorf("default page: page %s per_page %s total %s, %d rows", p.Page, p.PerPage, p.Total, len(p.Data))
	}
	seen := map[string]bool{}
	for page := 1; page <= 3; page++ {
		p := f.apiList(t, fmt.Sprintf("/api/v1/leads?per_page=25&page=%d", page), token)
		want := []int{25, 25, 10}[page-1]
		if len(p.Data) != want || p.Total != "60" || p.Page != json.Number(fmt.Sprint(page)) || p.PerPage != "25" {
			t.Errorf("page %d: %d rows, total %s", page, len(p.Data), p.Total)
		}
		for _, l := range p.Data {
			seen[jsonNum(t, l["id"])] = true
		}
	}
	if len(seen) != 60 {
		t.Errorf("three pages of 25 held %d distinct leads, want 60", len(seen))
	}
	if p := f.apiList(t, "/api/v1/leads?per_page=25&page=9", token); len(p.Data) != 0 || p.Total != "60" {
		t.Errorf("past the end: %d rows, total %s", len(p.Data), p.Total)
	}
	if p := f.apiList(t, "/api/v1/leads?per_page=200", token); len(p.Data) != 60 || p.PerPage != "200" {
		t.Errorf("per_page=200: %d rows", len(p.Data))
	}

	// Filters: the status and the search narrow the total, not just the page.
	if p := f.apiList(t, "/api/v1/leads?status=contacted&per_page=5", token); p.Total != "19" || len(p.Data) != 5 {
		t.Errorf("status=contacted: total %s, %d rows", p.Total, len(p.Data))
	}
	if p := f.apiList(t, "/api/v1/leads?q=dentist", token); p.Total != "12" {
		t.Errorf("q=dentist: total %s", p.Total)
	}
	if p := f.apiList(t, "/api/v1/leads?q=northwind", token); p.Total != "1" || p.Data[0]["company"] != "Northwind Partners" {
		t.Errorf("q=northwind: %+v", p)
	}
	if p := f.apiList(t, "/api/v1/leads?q=dentist&status=contacted", token); p.Total != "4" {
		t.Errorf("q and status together: total %s", p.Total)
	}
}

func TestAPIRefusesBadParameters(t *testing.T) {
	f := newFixture(t, nil)
	_, token := f.newAPIToken(t, "test")
	for _, path := range []string{
		"/api/v1/leads?page=0", "/api/v1/leads?page=-1", "/api/v1/leads?page=x", "/api/v1/leads?page=1.5",
		"/api/v1/leads?per_page=0", "/api/v1/leads?per_page=201", "/api/v1/tasks?per_page=abc",
		"/api/v1/leads?status=paid", "/api/v1/invoices?status=new", "/api/v1/runs?status=%3Cscript%3E",
		"/api/v1/agents?page=0",
	} {
		resp, body := f.apiCall(t, f.client, http.MethodGet, path, token)
		if msg := apiErrorOf(t, resp, body, http.StatusBadRequest); !strings.Contains(msg, "must be") {
			t.Errorf("GET %s: message %q", path, msg)
		}
	}
	resp, body := f.apiCall(t, f.client, http.MethodGet, "/api/v1/nothing", token)
	apiErrorOf(t, resp, body, http.StatusNotFound)
}

func TestAPIRecordShapes(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	_, token := f.newAPIToken(t, "test")

	tasks := f.apiList(t, "/api/v1/tasks?q=market", token)
	if tasks.Total != "1" {
		t.Fatalf("tasks q=market: total %s", tasks.Total)
	}
	task := tasks.Data[0]
	for field, want := range map[string][2]string{"reward": {"15000", "usd"}, "cost": {"1234", "usd"}, "profit": {"13766", "usd"}} {
		m, ok := task[field].(map[string]any)
		if !ok || len(m) != 2 || jsonNum(t, m["cents"]) != want[0] || m["currency"] != want[1] {
			t.Errorf("task %s = %#v, want {cents: %s, currency: %s}", field, task[field], want[0], want[1])
		}
	}
	if task["company"] != evil || task["completed_at"] != testNow.Add(-time.Hour).Format(time.RFC3339) {
		t.Errorf("task = %+v", task)
	}
	if task["lease_expires_at"] != nil {
		t.Errorf("lease_expires_at = %v, want null", task["lease_expires_at"])
	}

	invoices := f.apiList(t, "/api/v1/invoices?status=open", token)
	if invoices.Total != "1" {
		t.Fatalf("open invoices: total %s", invoices.Total)
	}
	inv := invoices.Data[0]
	if amount, _ := inv["amount"].(map[string]any); amount == nil || jsonNum(t, amount["cents"]) != "15000" || amount["currency"] != "usd" {
		t.Errorf("invoice amount = %#v", inv["amount"])
	}
	if inv["number"] != "INV-000001" || inv["overdue"] != false || jsonNum(t, inv["line_count"]) != "1" || inv["payment_url"] != "https://buy.stripe.com/test_abc" {
		t.Errorf("invoice = %+v", inv)
	}
	if inv["due_at"] != testNow.Add(14*24*time.Hour).Format(time.RFC3339) {
		t.Errorf("due_at = %v", inv["due_at"])
	}
	f.clock.Advance(15 * 24 * time.Hour)
	if inv := f.apiList(t, "/api/v1/invoices?status=open", token).Data[0]; inv["overdue"] != true {
		t.Errorf("overdue after the due date = %v", inv["overdue"])
	}
	if p := f.apiList(t, "/api/v1/invoices?q=INV-000002", token); p.Total != "1" || p.Data[0]["status"] != db.InvoicePaid {
		t.Errorf("invoice search: %+v", p)
	}

	// Customers: no secret leaves, and the times are UTC.
	resp, body := f.apiCall(t, f.client, http.MethodGet, "/api/v1/customers", token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("customers = %d", resp.StatusCode)
	}
	c, err := f.store.CustomerByPortalToken(context.Background(), f.token)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{c.PortalTokenHash, f.token, "hash", "password"} {
		if bytes.Contains(body, []byte(secret)) {
			t.Errorf("customers answer holds %q: %s", secret, body)
		}
	}
	customers := f.apiList(t, "/api/v1/customers?status=active", token)
	if customers.Total != "1" || customers.Data[0]["contact_email"] != "x@evil.example" || jsonNum(t, customers.Data[0]["task_count"]) != "2" {
		t.Errorf("customers = %+v", customers)
	}
	if created, _ := customers.Data[0]["created_at"].(string); !strings.HasSuffix(created, "Z") {
		t.Errorf("created_at %q is not RFC 3339 UTC", created)
	}
	if p := f.apiList(t, "/api/v1/customers?status=closed", token); p.Total != "0" || len(p.Data) != 0 {
		t.Errorf("closed customers: %+v", p)
	}
}

func TestAPISingleRecords(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	_, token := f.newAPIToken(t, "test")
	record := func(path string) map[string]any {
		t.Helper()
		resp, body := f.apiCall(t, f.client, http.MethodGet, path, token)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, resp.StatusCode, body)
		}
		assertAPIHeaders(t, resp)
		var r struct {
			Data map[string]any `json:"data"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&r); err != nil || r.Data == nil {
			t.Fatalf("GET %s: %v %s", path, err, body)
		}
		return r.Data
	}
	open := f.apiList(t, "/api/v1/invoices?status=open", token).Data[0]
	inv := record("/api/v1/invoices/" + jsonNum(t, open["id"]))
	lines, _ := inv["lines"].([]any)
	if inv["number"] != "INV-000001" || len(lines) != 1 {
		t.Fatalf("invoice = %+v", inv)
	}
	line, _ := lines[0].(map[string]any)
	if amount, _ := line["amount"].(map[string]any); amount == nil || jsonNum(t, amount["cents"]) != "15000" || amount["currency"] != "usd" || line["task_kind"] != "market_research" {
		t.Errorf("line = %+v", line)
	}
	if c := record("/api/v1/customers/" + jsonNum(t, inv["customer_id"])); c["company"] != evil || c["portal_token_revoked_at"] != nil {
		t.Errorf("customer = %+v", c)
	}
	if task := record("/api/v1/tasks/" + jsonNum(t, line["task_id"])); task["kind"] != "market_research" || task["company"] != evil {
		t.Errorf("task = %+v", task)
	}
	leadID := jsonNum(t, f.apiList(t, "/api/v1/leads?q=northwind", token).Data[0]["id"])
	if l := record("/api/v1/leads/" + leadID); l["email"] != "n@northwind.example" || l["contacted_at"] != nil {
		t.Errorf("lead = %+v", l)
	}
	for _, path := range []string{"/api/v1/invoices/999", "/api/v1/leads/x", "/api/v1/tasks/0", "/api/v1/customers/-3"} {
		resp, body := f.apiCall(t, f.client, http.MethodGet, path, token)
		apiErrorOf(t, resp, body, http.StatusNotFound)
	}
}

// apiAgentsStub is an engine that only reports states.
type apiAgentsStub struct{ states []agents.AgentState }

func (a apiAgentsStub) Ready(context.Context) error           { return nil }
func (a apiAgentsStub) States() []agents.AgentState           { return a.states }
func (a apiAgentsStub) Restart(context.Context, string) error { return nil }
func (a apiAgentsStub) Stop(context.Context, string) error    { return nil }
func (a apiAgentsStub) Start(context.Context, string) error   { return nil }
func (a apiAgentsStub) InjectPanic(context.Context, string) error {
	return nil
}
func (a apiAgentsStub) Ask(context.Context, string, string, time.Duration) (agents.RunResult, error) {
	return agents.RunResult{}, nil
}

func TestAPIAgentsAndRuns(t *testing.T) {
	// Without an engine the agent list is empty, not an error.
	bare := newFixture(t, nil)
	_, token := bare.newAPIToken(t, "test")
	if p := bare.apiList(t, "/api/v1/agents", token); len(p.Data) != 0 || p.Total != "0" {
		t.Errorf("agents without an engine: %+v", p)
	}

	stub := apiAgentsStub{states: []agents.AgentState{
		{Name: agents.LeadSource, State: agents.StateIdle, Runs: 4, LastRunAt: testNow, LastOutcome: db.RunOK},
		{Name: agents.BizDev, State: agents.StateCrashed, Runs: 3, Failures: 2, Restarts: 1, LastError: "smtp down"},
		{Name: agents.Billing, State: agents.StateIdle},
	}}
	f := newFixture(t, nil, func(d *Deps) { d.Agents = stub })
	_, token = f.newAPIToken(t, "test")
	p := f.apiList(t, "/api/v1/agents", token)
	if p.Total != "3" || len(p.Data) != 3 || p.Data[0]["name"] != agents.LeadSource || p.Data[0]["last_run_at"] != testNow.Format(time.RFC3339) {
		t.Fatalf("agents = %+v", p)
	}
	if p.Data[2]["last_run_at"] != nil {
		t.Errorf("never-run agent last_run_at = %v, want null", p.Data[2]["last_run_at"])
	}
	crashed := f.apiList(t, "/api/v1/agents?status=crashed", token)
	if crashed.Total != "1" || crashed.Data[0]["last_error"] != "smtp down" || jsonNum(t, crashed.Data[0]["restarts"]) != "1" {
		t.Errorf("crashed agents = %+v", crashed)
	}
	if p := f.apiList(t, "/api/v1/agents?per_page=2&page=2", token); p.Total != "3" || len(p.Data) != 1 || p.Data[0]["name"] != agents.Billing {
		t.Errorf("agents page 2 = %+v", p)
	}

	ctx := context.Background()
	for i := range 30 {
		run, err := f.store.StartRun(ctx, agents.Ops, db.TriggerAutopilot)
		if err != nil {
			t.Fatal(err)
		}
		outcome, message := db.RunOK, "done"
		if i%10 == 0 {
			outcome, message = db.RunFailed, "executor timed out"
		}
		if err := f.store.FinishRun(ctx, run, outcome, message, map[string]int{"tasks": i}); err != nil {
			t.Fatal(err)
		}
	}
	runs := f.apiList(t, "/api/v1/runs?per_page=20", token)
	if runs.Total != "30" || len(runs.Data) != 20 {
		t.Fatalf("runs: total %s, %d rows", runs.Total, len(runs.Data))
	}
	counts, _ := runs.Data[0]["counts"].(map[string]any)
	if counts == nil || runs.Data[0]["agent"] != agents.Ops || runs.Data[0]["finished_at"] == nil {
		t.Errorf("run = %+v", runs.Data[0])
	}
	failed := f.apiList(t, "/api/v1/runs?status=failed", token)
	if failed.Total != "3" || failed.Data[0]["message"] != "executor timed out" {
		t.Errorf("failed runs = %+v", failed)
	}
	if p := f.apiList(t, "/api/v1/runs?q=timed", token); p.Total != "3" {
		t.Errorf("runs q=timed: total %s", p.Total)
	}
}

func TestAPIAuthentication(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	tok, token := f.newAPIToken(t, "ci")

	// No credentials, a wrong scheme, a bad token: 401 with the challenge.
	for _, header := range []string{"", "Basic YWRtaW46cHc=", "Bearer", "Bearer hoss_not-a-token", "Bearer " + token + "x"} {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/leads", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := newClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		apiErrorOf(t, resp, body, http.StatusUnauthorized)
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
			t.Errorf("Authorization %q: WWW-Authenticate = %q", header, ch)
		}
		if bytes.Contains(body, []byte("Acme")) {
			t.Errorf("Authorization %q: data leaked", header)
		}
	}
	// Unknown API paths do not tell an anonymous caller what exists.
	resp, body := f.apiCall(t, newClient(t), http.MethodGet, "/api/v1/nothing", "")
	apiErrorOf(t, resp, body, http.StatusUnauthorized)

	// A live token reads, and its use is recorded.
	if p := f.apiList(t, "/api/v1/leads", token); p.Total != "3" {
		t.Errorf("bearer: total %s", p.Total)
	}
	tokens, _, err := f.store.ListAPITokens(context.Background(), db.ListQuery{})
	if err != nil || len(tokens) != 1 || tokens[0].LastUsedAt == nil || !tokens[0].LastUsedAt.Equal(testNow) {
		t.Errorf("last used not recorded: %+v %v", tokens, err)
	}

	// Only GET: a POST to a route is 405, with the token accepted.
	resp, body = f.apiCall(t, f.client, http.MethodPost, "/api/v1/leads", token)
	apiErrorOf(t, resp, body, http.StatusMethodNotAllowed)
	if resp.Header.Get("Allow") != "GET" {
		t.Errorf("Allow = %q", resp.Header.Get("Allow"))
	}

	// A revoked token stops at once.
	if _, _, err := f.store.RevokeAPIToken(context.Background(), tok.ID, testNow); err != nil {
		t.Fatal(err)
	}
	resp, body = f.apiCall(t, f.client, http.MethodGet, "/api/v1/leads", token)
	apiErrorOf(t, resp, body, http.StatusUnauthorized)

	// An admin's session reads without a token; a viewer's does not.
	f.signInAs(t, db.RoleAdmin)
	resp, body = f.apiCall(t, f.client, http.MethodGet, "/api/v1/invoices", "")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("INV-000001")) {
		t.Errorf("admin session: %d %s", resp.StatusCode, body)
	}
	f.signInAs(t, db.RoleViewer)
	resp, body = f.apiCall(t, f.client, http.MethodGet, "/api/v1/invoices", "")
	if msg := apiErrorOf(t, resp, body, http.StatusForbidden); bytes.Contains(body, []byte("INV-000001")) || msg == "" {
		t.Errorf("viewer session: %s", body)
	}
	// A viewer holding a live token reads with the token.
	_, other := f.newAPIToken(t, "second")
	if resp, _ := f.apiCall(t, f.client, http.MethodGet, "/api/v1/invoices", other); resp.StatusCode != http.StatusOK {
		t.Errorf("viewer session with a token = %d", resp.StatusCode)
	}
}
