package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// actionFixture is the real router with, when cycles are given, a real agent
// engine running those stand-in cycles and a real coordinator (autopilot
// off, its ticker never ticking) on the test store.
type actionFixture struct {
	*fixture
	server *Server
	engine *agents.Engine
	events *agents.Subscription // every engine event since the start
}

type actionOptions struct {
	env    map[string]string
	cycles map[string]agents.Cycle // nil: no engine
	deps   func(*Deps)
}

func neverTicks(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }

func newActionFixture(t *testing.T, o actionOptions) *actionFixture {
	t.Helper()
	cfg, _, err := config.Load(func(k string) string { return o.env[k] })
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktest.New(testNow)
	store := openTestStore(t, db.WithClock(clock.Now), db.WithGuard(DeliverabilityGuard(cfg.Email)))
	bus := agents.NewBus()
	t.Cleanup(bus.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := Deps{Config: cfg, Store: store, Logger: quiet, Now: clock.Now, Live: NewHub(bus)}
	f := &actionFixture{}
	if o.cycles != nil {
		f.engine = agents.NewEngine(agents.EngineConfig{Store: store, Events: bus, Logger: quiet, Now: time.Now,
			Cycles: o.cycles, Partial: true, AllowCrashInjection: cfg.IsDevelopment()})
		coordinator := agents.NewCoordinator(agents.CoordinatorConfig{Engine: f.engine, Store: store, Events: bus, Logger: quiet,
			Now: time.Now, Ticker: neverTicks, Enabled: false, Interval: 5 * time.Minute})
		f.engine.Add(coordinator)
		f.events = bus.Subscribe(10000)
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- f.engine.Serve(ctx) }()
		t.Cleanup(func() {
			cancel()
			select {
			case <-served:
			case <-time.After(10 * time.Second):
				t.Error("engine did not stop")
			}
		})
		f.waitAllIdle(t, len(o.cycles))
		deps.Agents, deps.Autopilot = f.engine, coordinator
	}
	if o.deps != nil {
		o.deps(&deps)
	}
	f.server = New(deps)
	srv := httptest.NewServer(f.server.Handler())
	t.Cleanup(srv.Close)
	f.fixture = &fixture{srv: srv, store: store, logs: &bytes.Buffer{}, clock: clock, client: newClient(t)}
	return f
}

// waitAllIdle reads engine events until n agents have reported idle.
func (f *actionFixture) waitAllIdle(t *testing.T, n int) {
	t.Helper()
	idle := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(idle) < n {
		select {
		case ev := <-f.events.C:
			if ev.Kind == agents.EventAgentState && ev.State.State == agents.StateIdle {
				idle[ev.Agent] = true
			}
		case <-deadline:
			t.Fatalf("agents did not start: %d of %d idle", len(idle), n)
		}
	}
}

// waitFor reads engine events until agent's state satisfies ok.
func (f *actionFixture) waitFor(t *testing.T, agent string, ok func(agents.AgentState) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-f.events.C:
			if ev.Kind == agents.EventAgentState && ev.Agent == agent && ok(*ev.State) {
				return
			}
		case <-deadline:
			st, _ := f.engine.State(agent)
			t.Fatalf("agent %s never reached the awaited state (now %+v)", agent, st)
		}
	}
}

func isIdle(st agents.AgentState) bool { return st.State == agents.StateIdle }

// cardFact is the value next to label on an agent's card.
func cardFact(doc *goquery.Document, agent, label string) string {
	dt := doc.Find("#agent-" + agent + " dt").FilterFunction(func(_ int, s *goquery.Selection) bool { return text(s) == label })
	return text(dt.Next())
}

// act POSTs an action the way htmx does: signed in, same origin, HX-Request.
// It returns the status and the text of the result fragment.
func (f *actionFixture) act(t *testing.T, path string, form url.Values) (int, string, *goquery.Document) {
	t.Helper()
	resp, doc := f.post(t, f.client, path, form, map[string]string{"Origin": f.srv.URL, "HX-Request": "true"})
	return resp.StatusCode, text(doc.Find(".result")), doc
}

// okCycle counts its runs.
func okCycle(n *atomic.Int64) agents.Cycle {
	return agents.CycleFunc(func(context.Context) (agents.Counts, error) {
		n.Add(1)
		return agents.Counts{"done": 1}, nil
	})
}

func countRows(t *testing.T, store *db.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := store.Bun().NewRaw(query, args...).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAgentRunAction(t *testing.T) {
	var runs atomic.Int64
	f := newActionFixture(t, actionOptions{cycles: map[string]agents.Cycle{agents.Ops: okCycle(&runs)}})
	f.signInAs(t, db.RoleAdmin)

	status, result, doc := f.act(t, "/admin/agents/ops/run", nil)
	if status != http.StatusOK || !strings.Contains(result, "ops ran: done=1") || doc.Find(".result.ok").Length() != 1 {
		t.Fatalf("run = %d %q", status, result)
	}
	if runs.Load() != 1 {
		t.Errorf("cycle ran %d times", runs.Load())
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM agent_runs WHERE agent = 'ops' AND trigger = 'manual' AND outcome = 'ok'"); n != 1 {
		t.Errorf("manual ok runs of ops in the cycle log = %d", n)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = 'agent.run' AND target = 'ops' AND actor = 'admin@hossagent.test'"); n != 1 {
		t.Errorf("audit entries for the run = %d", n)
	}
	// Without htmx the form POST comes back to the control room.
	resp, _ := f.post(t, f.client, "/admin/agents/ops/run", nil, map[string]string{"Origin": f.srv.URL})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin" {
		t.Errorf("plain POST = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The card carries the buttons, named for their agent and aimed at the
	// card's own result slot, which live updates keep (hx-preserve).
	_, page, _ := f.get(t, "/admin")
	for _, action := range []string{"run", "restart", "stop"} {
		b := page.Find(`#agent-ops button[data-action="` + action + `"]`)
		if b.Length() != 1 || b.AttrOr("hx-post", "") != "/admin/agents/ops/"+action ||
			b.AttrOr("hx-disable", "") != "this" || b.AttrOr("hx-target", "") != "#agent-ops-result" ||
			!strings.EqualFold(b.AttrOr("aria-label", ""), strings.ToUpper(action[:1])+action[1:]+" Ops") {
			t.Errorf("%s button: %d found, hx-post %q", action, b.Length(), b.AttrOr("hx-post", ""))
		}
	}
	if slot := page.Find("#agent-ops #agent-ops-result.action-slot"); slot.Length() != 1 || slot.AttrOr("hx-preserve", "x") == "x" {
		t.Errorf("the ops card needs its own preserved result slot")
	}
	if page.Find("#agent-billing button").Length() != 0 {
		t.Errorf("an agent the engine does not run got buttons")
	}
}

func TestAgentRunLongCycleAnswersRunning(t *testing.T) {
	release, finished := make(chan struct{}), make(chan struct{})
	slow := agents.CycleFunc(func(ctx context.Context) (agents.Counts, error) {
		defer close(finished)
		<-release
		return nil, nil
	})
	f := newActionFixture(t, actionOptions{cycles: map[string]agents.Cycle{agents.Ops: slow}})
	f.server.runWait = 50 * time.Millisecond // the cycle waits for release, so it always takes longer
	f.signInAs(t, db.RoleAdmin)
	status, result, _ := f.act(t, "/admin/agents/ops/run", nil)
	if status != http.StatusAccepted || !strings.Contains(result, "running — see the cycle log") {
		t.Errorf("slow run = %d %q", status, result)
	}
	close(release)
	<-finished
	f.waitFor(t, agents.Ops, isIdle)
}

func TestAgentStopStartRestart(t *testing.T) {
	var runs atomic.Int64
	f := newActionFixture(t, actionOptions{cycles: map[string]agents.Cycle{agents.Ops: okCycle(&runs)}})
	f.signInAs(t, db.RoleAdmin)

	if status, result, _ := f.act(t, "/admin/agents/ops/stop", nil); status != http.StatusOK || !strings.Contains(result, "ops stopped") {
		t.Fatalf("stop = %d %q", status, result)
	}
	_, page, _ := f.get(t, "/admin")
	if got := text(page.Find("#agent-ops .badge").First()); got != "stopped" {
		t.Errorf("stopped card state = %q", got)
	}
	if page.Find(`#agent-ops button[data-action="start"]`).Length() != 1 || page.Find(`#agent-ops button[data-action="stop"]`).Length() != 0 {
		t.Errorf("a stopped agent must offer Start instead of Stop")
	}
	status, result, doc := f.act(t, "/admin/agents/ops/run", nil)
	if status != http.StatusConflict || result != "ops is stopped: start it first." || doc.Find(".result.bad").Length() != 1 {
		t.Errorf("run while stopped = %d %q", status, result)
	}
	if runs.Load() != 0 {
		t.Errorf("a stopped agent ran its cycle")
	}

	if status, result, _ := f.act(t, "/admin/agents/ops/start", nil); status != http.StatusOK || !strings.Contains(result, "ops started") {
		t.Fatalf("start = %d %q", status, result)
	}
	f.waitFor(t, agents.Ops, isIdle)
	if status, result, _ := f.act(t, "/admin/agents/ops/run", nil); status != http.StatusOK || !strings.Contains(result, "ops ran") {
		t.Errorf("run after start = %d %q", status, result)
	}

	before, _ := f.engine.State(agents.Ops)
	if status, result, _ := f.act(t, "/admin/agents/ops/restart", nil); status != http.StatusOK || !strings.Contains(result, "restarted") {
		t.Fatalf("restart = %d %q", status, result)
	}
	f.waitFor(t, agents.Ops, func(st agents.AgentState) bool {
		return st.State == agents.StateIdle && st.Restarts == before.Restarts+1
	})
	_, page, _ = f.get(t, "/admin")
	if got := cardFact(page, agents.Ops, "Restarts"); got != strconv.FormatInt(before.Restarts+1, 10) {
		t.Errorf("card restarts after restart = %q, want %d", got, before.Restarts+1)
	}
	if st, _ := f.engine.State(agents.Ops); st.State != agents.StateIdle {
		t.Errorf("state after restart = %s", st.State)
	}
	for _, action := range []string{"stop", "start", "restart"} {
		if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = ? AND target = 'ops'", "agent."+action); n != 1 {
			t.Errorf("audit entries for %s = %d", action, n)
		}
	}
}

func TestCrashInjectionInDevelopment(t *testing.T) {
	var runs atomic.Int64
	f := newActionFixture(t, actionOptions{cycles: map[string]agents.Cycle{agents.Ops: okCycle(&runs)}})
	f.signInAs(t, db.RoleAdmin)
	_, page, _ := f.get(t, "/admin")
	if page.Find(`#agent-ops button[data-action="crash"]`).Length() != 1 {
		t.Fatalf("no crash button in DEVELOPMENT")
	}
	if status, result, _ := f.act(t, "/admin/agents/ops/crash", nil); status != http.StatusOK || !strings.Contains(result, "panicked now") {
		t.Fatalf("crash = %d %q", status, result)
	}
	var seen []string
	f.waitFor(t, agents.Ops, func(st agents.AgentState) bool { seen = append(seen, st.State); return isIdle(st) })
	if len(seen) < 2 || seen[0] != agents.StateCrashed {
		t.Errorf("states after the crash = %v, want crashed then idle", seen)
	}
	_, page, _ = f.get(t, "/admin")
	// Restarted, the agent has recovered: the panic stays on the card, grey
	// (not .bad), with its time.
	if got := text(page.Find("#agent-ops p.last-error.recovered:not(.bad)")); !strings.Contains(got, "injected crash") ||
		page.Find("#agent-ops p.last-error time[datetime]").Length() != 1 {
		t.Errorf("card's last error after the crash = %q", got)
	}
	if got := cardFact(page, agents.Ops, "Restarts"); got != "1" {
		t.Errorf("card restarts after the crash = %q", got)
	}
	if page.Find("#agent-ops details pre").Length() != 1 {
		t.Errorf("the crash's stack is not on the card")
	}
	if status, result, _ := f.act(t, "/admin/agents/ops/run", nil); status != http.StatusOK || !strings.Contains(result, "ops ran") {
		t.Errorf("run after the crash = %d %q", status, result)
	}
}

func TestCrashRouteAbsentOutsideDevelopment(t *testing.T) {
	var runs atomic.Int64
	f := newActionFixture(t, actionOptions{env: map[string]string{"RELEASE_MODE": "STAGING"},
		cycles: map[string]agents.Cycle{agents.Ops: okCycle(&runs)}})
	f.signInAs(t, db.RoleAdmin)
	if status, _, _ := f.act(t, "/admin/agents/ops/crash", nil); status != http.StatusNotFound {
		t.Errorf("crash in STAGING = %d, want 404", status)
	}
	_, page, _ := f.get(t, "/admin")
	if page.Find(`button[data-action="crash"]`).Length() != 0 || page.Find(`#agent-ops button[data-action="run"]`).Length() != 1 {
		t.Errorf("STAGING: crash button shown or run button missing")
	}
	if st, _ := f.engine.State(agents.Ops); st.State != agents.StateIdle || st.Restarts != 0 {
		t.Errorf("ops after the refused crash = %+v", st)
	}
}

func TestUnknownAgentAndNoEngine(t *testing.T) {
	var runs atomic.Int64
	f := newActionFixture(t, actionOptions{cycles: map[string]agents.Cycle{agents.Ops: okCycle(&runs)}})
	f.signInAs(t, db.RoleAdmin)
	status, result, doc := f.act(t, "/admin/agents/"+url.PathEscape("<b>nobody</b>")+"/run", nil)
	if status != http.StatusNotFound || !strings.Contains(result, `There is no agent named "<b>nobody</b>"`) || doc.Find("b").Length() != 0 {
		t.Errorf("unknown agent = %d %q", status, result)
	}
	// An agent of the pipeline the engine does not run.
	if status, result, _ := f.act(t, "/admin/agents/billing/run", nil); status != http.StatusNotFound || !strings.Contains(result, "no agent named") {
		t.Errorf("agent outside the engine = %d %q", status, result)
	}

	bare := newActionFixture(t, actionOptions{})
	bare.signInAs(t, db.RoleAdmin)
	if status, result, _ := bare.act(t, "/admin/agents/ops/run", nil); status != http.StatusServiceUnavailable || !strings.Contains(result, "not running") {
		t.Errorf("run without an engine = %d %q", status, result)
	}
	if status, result, _ := bare.act(t, "/admin/cycle", nil); status != http.StatusServiceUnavailable || !strings.Contains(result, "autopilot is not running") {
		t.Errorf("full cycle without a coordinator = %d %q", status, result)
	}
	_, page, _ := bare.get(t, "/admin")
	if page.Find("#agent-ops button, #autopilot-switch").Length() != 0 {
		t.Errorf("controls shown without an engine")
	}
}

func TestAutopilotActions(t *testing.T) {
	var runs atomic.Int64
	f := newActionFixture(t, actionOptions{cycles: allCycles(func(string) agents.Cycle { return okCycle(&runs) })})
	f.signInAs(t, db.RoleAdmin)
	setting := func(key string) string {
		v, err := f.store.Setting(context.Background(), key, "unset")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	status, result, _ := f.act(t, "/admin/autopilot/interval", url.Values{"interval": {" 90s "}})
	if status != http.StatusOK || !strings.Contains(result, "1m30s") || setting(agents.SettingAutopilotInterval) != "1m30s" {
		t.Fatalf("interval 90s = %d %q, stored %q", status, result, setting(agents.SettingAutopilotInterval))
	}
	for _, bad := range []string{"", "soon", "5", "0s", "999ms", "25h", "-1m", strings.Repeat("9", 500) + "h"} {
		status, result, _ := f.act(t, "/admin/autopilot/interval", url.Values{"interval": {bad}})
		if status != http.StatusUnprocessableEntity || !strings.Contains(result, "between 1s and 24h") {
			t.Errorf("interval %.20q = %d %q", bad, status, result)
		}
	}
	if got := setting(agents.SettingAutopilotInterval); got != "1m30s" {
		t.Errorf("an invalid interval changed the stored one to %q", got)
	}
	if status, result, _ := f.act(t, "/admin/autopilot", url.Values{"enabled": {"maybe"}}); status != http.StatusUnprocessableEntity || !strings.Contains(result, "on or off") {
		t.Errorf("enabled=maybe = %d %q", status, result)
	}
	if got := setting(agents.SettingAutopilotEnabled); got != "unset" && got != "false" {
		t.Errorf("an invalid switch stored %q", got)
	}

	// The header shows the controls; the interval input survives live updates.
	_, page, _ := f.get(t, "/admin")
	sw := page.Find("#admin-status #autopilot-switch")
	if sw.AttrOr("value", "") != "on" || sw.AttrOr("hx-post", "") != "/admin/autopilot" || sw.AttrOr("hx-disable", "") != "this" {
		t.Errorf("switch while off: value %q", sw.AttrOr("value", ""))
	}
	if in := page.Find("#admin-status #autopilot-interval"); in.AttrOr("value", "") != "1m30s" || in.AttrOr("hx-preserve", "x") == "x" {
		t.Errorf("interval input value %q, hx-preserve set: %v", in.AttrOr("value", ""), in.AttrOr("hx-preserve", "x") != "x")
	}
	if page.Find(`#admin-status #run-full-cycle[hx-post="/admin/cycle"]`).Length() != 1 {
		t.Errorf("RUN FULL CYCLE NOW missing from the header")
	}

	status, result, _ = f.act(t, "/admin/autopilot", url.Values{"enabled": {"on"}})
	if status != http.StatusOK || !strings.Contains(result, "Autopilot ON: a full cycle every 1m30s") || setting(agents.SettingAutopilotEnabled) != "true" {
		t.Fatalf("switch on = %d %q, stored %q", status, result, setting(agents.SettingAutopilotEnabled))
	}
	_, page, _ = f.get(t, "/admin")
	if got := text(page.Find("#admin-status dl")); !strings.Contains(got, "ON") || page.Find("#autopilot-switch").AttrOr("value", "") != "off" {
		t.Errorf("status after switching on = %q", got)
	}
	if status, _, _ := f.act(t, "/admin/autopilot", url.Values{"enabled": {"off"}}); status != http.StatusOK || setting(agents.SettingAutopilotEnabled) != "false" {
		t.Errorf("switch off = %d, stored %q", status, setting(agents.SettingAutopilotEnabled))
	}
	for _, want := range []string{"autopilot.interval", "autopilot.switch"} {
		if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = ?", want); n == 0 {
			t.Errorf("no audit entry %s", want)
		}
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = 'autopilot.interval'"); n != 1 {
		t.Errorf("refused intervals were audited: %d entries", n)
	}
}

func allCycles(c func(name string) agents.Cycle) map[string]agents.Cycle {
	m := map[string]agents.Cycle{}
	for _, n := range agents.Pipeline {
		m[n] = c(n)
	}
	return m
}

func TestFullCycleAction(t *testing.T) {
	entered, gate, billed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var leadRuns atomic.Int64
	last := agents.Pipeline[len(agents.Pipeline)-1] // the full cycle's last stage
	f := newActionFixture(t, actionOptions{cycles: allCycles(func(name string) agents.Cycle {
		return agents.CycleFunc(func(ctx context.Context) (agents.Counts, error) {
			switch name {
			case agents.LeadSource:
				if leadRuns.Add(1) == 1 {
					close(entered)
					<-gate
				}
			case last:
				defer close(billed)
			}
			return agents.Counts{"done": 1}, nil
		})
	})})
	f.signInAs(t, db.RoleAdmin)

	status, result, _ := f.act(t, "/admin/cycle", nil)
	if status != http.StatusAccepted || !strings.Contains(result, "Full cycle started") {
		t.Fatalf("full cycle = %d %q", status, result)
	}
	<-entered // the first stage holds the cycle open
	status, result, _ = f.act(t, "/admin/cycle", nil)
	if status != http.StatusConflict || !strings.Contains(result, "A full cycle is already running") {
		t.Errorf("second full cycle = %d %q", status, result)
	}
	close(gate)
	<-billed
	f.waitFor(t, last, isIdle)
	for _, name := range agents.Pipeline {
		if n := countRows(t, f.store, "SELECT COUNT(*) FROM agent_runs WHERE agent = ? AND trigger = 'manual'", name); n != 1 {
			t.Errorf("manual runs of %s = %d, want 1", name, n)
		}
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action = 'cycle.run'"); n != 1 {
		t.Errorf("audit entries for the full cycle = %d", n)
	}
}

// actionPaths are every control-room action.
var actionPaths = []string{
	"/admin/agents/ops/run", "/admin/agents/ops/restart", "/admin/agents/ops/stop", "/admin/agents/ops/start",
	"/admin/agents/ops/crash", "/admin/autopilot", "/admin/autopilot/interval", "/admin/cycle",
	"/admin/outreach/requeue-dry-run", "/admin/outreach/caps",
}

func TestActionsAreAdminSameOriginPOSTs(t *testing.T) {
	f := newActionFixture(t, actionOptions{})
	f.createUser(t, "viewer@hossagent.test", db.RoleViewer)
	viewer := f.signIn(t, "viewer@hossagent.test")
	f.signInAs(t, db.RoleAdmin)
	caps := url.Values{"per_cycle": {"1"}, "per_hour": {"1"}, "per_day": {"1"}}
	for _, path := range actionPaths {
		resp, _, _ := f.get(t, path)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
			t.Errorf("GET %s = %d (Allow %q), want 405", path, resp.StatusCode, resp.Header.Get("Allow"))
		}
		resp, _ = f.post(t, newClient(t), path, caps, map[string]string{"Origin": f.srv.URL})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous POST %s = %d, want 401", path, resp.StatusCode)
		}
		resp, _ = f.post(t, viewer, path, caps, map[string]string{"Origin": f.srv.URL})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s = %d, want 403", path, resp.StatusCode)
		}
		resp, doc := f.post(t, f.client, path, caps, map[string]string{"Origin": "https://evil.example", "HX-Request": "true"})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(text(doc.Selection), "another site") {
			t.Errorf("cross-origin POST %s = %d, want 403", path, resp.StatusCode)
		}
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM settings"); n != 0 {
		t.Errorf("a refused request stored %d settings", n)
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM audit_log WHERE action NOT IN ('login', 'logout')"); n != 0 {
		t.Errorf("refused requests were audited as actions: %d", n)
	}
}

func TestActionFormIsBounded(t *testing.T) {
	f := newActionFixture(t, actionOptions{})
	f.signInAs(t, db.RoleAdmin)
	big := url.Values{"per_cycle": {strings.Repeat("1", maxActionForm*2)}, "per_hour": {"1"}, "per_day": {"1"}}
	status, result, _ := f.act(t, "/admin/outreach/caps", big)
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(result, "too large") {
		t.Errorf("oversized form = %d %q", status, result)
	}
}
