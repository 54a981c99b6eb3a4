package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// The control room's actions: agents (run, restart, stop, start, crash in
// development), the autopilot (switch, interval, full cycle now) and
// outreach (re-queue dry-run leads, e-mail caps). Every one is a POST in the
// admin-only group, so requireAdmin and the cross-origin check apply; each
// is audited. With htmx the answer is a one-line result swapped next to the
// button (every status swaps in htmx 4); a plain form POST gets a 303 back
// to /admin, or a plain error page when the action was refused.

const (
	// maxActionForm bounds an action's form body: a few short fields.
	maxActionForm = 4 << 10
	// defaultRunWait is how long a manual run holds its request. A cycle that
	// takes longer keeps running; the operator is told to follow the log.
	defaultRunWait = 5 * time.Second
	// maxEmailCap bounds each e-mail cap an admin may store.
	maxEmailCap = 100000
	// minInterval and maxInterval bound the autopilot interval.
	minInterval = time.Second
	maxInterval = 24 * time.Hour
)

// actionResult is what an action answers: the status of an htmx answer,
// its colour (ok, warn, bad) and one readable sentence.
type actionResult struct {
	status int
	kind   string
	text   string
}

func actionDone(text string) actionResult { return actionResult{http.StatusOK, "ok", text} }

func actionAccepted(text string) actionResult {
	return actionResult{http.StatusAccepted, "ok", text}
}

func actionRefused(status int, text string) actionResult {
	return actionResult{status, "bad", text}
}

// answerAction sends an action's result: the fragment to htmx, otherwise a 303
// back to the control room, or a plain error page for a refusal.
func (s *Server) answerAction(w http.ResponseWriter, r *http.Request, res actionResult) {
	if isHXRequest(r) {
		s.render(w, r, res.status, views.AdminActionResult(res.kind, res.text))
		return
	}
	if res.status < http.StatusBadRequest {
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	s.renderError(w, r, res.status, http.StatusText(res.status), res.text)
}

// postOnly lets only POST through to a control-room action and answers
// any other method 405 (actionMethodNotAllowed). The actions are
// registered for every method, so that the /admin/* catch-all does not
// answer their other methods 404.
func (s *Server) postOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			s.actionMethodNotAllowed(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) actionMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	s.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This address does not accept "+r.Method+" requests.")
}

// readControlForm parses a bounded form body; false means it answered.
func (s *Server) readControlForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxActionForm)
	if err := r.ParseForm(); err != nil {
		s.answerAction(w, r, actionRefused(http.StatusBadRequest, "The form could not be read: it is too large or malformed."))
		return false
	}
	return true
}

// refreshLive re-renders every open live stream: actions that change what
// the control room shows without an engine event (settings, caps, leads).
func (s *Server) refreshLive() {
	if s.hub != nil {
		s.hub.markAll()
	}
	s.tellPeers(agents.EventControlChanged)
}

// tellPeers sends an event of kind to the other instances sharing the
// database, so that they reload and re-render too; alone, it does nothing.
func (s *Server) tellPeers(kind string) {
	if s.peers != nil {
		s.peers.PublishToPeers(agents.Event{Kind: kind, At: s.now().UTC()})
	}
}

// agentOf reads and checks the {name} of an agent route; false means it
// answered.
func (s *Server) agentOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := chi.URLParam(r, "name")
	if unescaped, err := url.PathUnescape(name); err == nil {
		name = unescaped // chi routes on the raw path when it has escapes
	}
	_, known := agents.Lookup(name)
	switch {
	case !known:
		s.answerAction(w, r, actionRefused(http.StatusNotFound, fmt.Sprintf("There is no agent named %q.", clipEcho(name, 40))))
		return "", false
	case s.agents == nil:
		s.answerAction(w, r, actionRefused(http.StatusServiceUnavailable, "The agent engine is not running in this process."))
		return "", false
	}
	return name, true
}

// agentRun asks the agent for one cycle, triggered "manual", and waits up
// to runWait for its answer; a longer cycle keeps running in the agent.
func (s *Server) agentRun(w http.ResponseWriter, r *http.Request) {
	name, ok := s.agentOf(w, r)
	if !ok {
		return
	}
	res, err := s.agents.Ask(context.WithoutCancel(r.Context()), name, db.TriggerManual, s.runWait)
	out := s.runAnswer(name, res, err)
	s.audit(r, "agent.run", name, out.text)
	s.answerAction(w, r, out)
}

// runAnswer turns an Ask's outcome into a sentence.
func (s *Server) runAnswer(name string, res agents.RunResult, err error) actionResult {
	switch {
	case err == nil:
		return actionDone(fmt.Sprintf("%s ran: %s (run #%d).", name, countsText(res.Counts), res.RunID))
	case res.Outcome == db.RunFailed || res.Outcome == db.RunPanicked:
		// The cycle ran and failed: the action itself worked, the card and
		// the cycle log show the same error.
		return actionResult{http.StatusOK, "bad", fmt.Sprintf("%s %s: %v", name, res.Outcome, err)}
	case codeOf(err) == codeRunning:
		// The message is in the mailbox or the cycle is under way.
		return actionAccepted(fmt.Sprintf("%s: running — see the cycle log.", name))
	}
	return s.agentRefusal(name, err)
}

// agentRefusal explains why the engine refused an action. A known refusal's
// status is its sentinel's category (codeOf), not that of whatever wraps it,
// so a refusal is never answered with a 2xx or a store error's status; the
// sentence names the agent and what to do. Anything else is a 500.
func (s *Server) agentRefusal(name string, err error) actionResult {
	for _, why := range agentRefusals {
		if errors.Is(err, why.err) {
			return actionRefused(errorStatus(why.err), fmt.Sprintf(why.text, name))
		}
	}
	s.log.Error("agent action failed", "agent", name, "err", err)
	status, _ := errorAnswer(codeInternal)
	return actionRefused(status, name+": the action failed; the error is in the server log.")
}

// agentRefusals word the engine's refusals, the agent's name in %s (%q
// for an unknown one); the first that matches the error says it.
var agentRefusals = []struct {
	err  error
	text string
}{
	{agents.ErrStopped, "%s is stopped: start it first."},
	{agents.ErrBackoff, "%s is backing off after repeated crashes; it restarts by itself shortly."},
	{agents.ErrBusy, "%s is busy: its mailbox is full. Try again once the queued runs are done."},
	{agents.ErrUnknownAgent, "There is no agent named %q in the engine."},
}

// agentAction runs one engine call on the agent of the route.
func (s *Server) agentAction(w http.ResponseWriter, r *http.Request, action string, call func(AgentControl, context.Context, string) error, success string) {
	name, ok := s.agentOf(w, r)
	if !ok {
		return
	}
	// The change completes even if the operator's browser goes away.
	out := actionDone(name + " " + success)
	if err := call(s.agents, context.WithoutCancel(r.Context()), name); err != nil {
		out = s.agentRefusal(name, err)
	}
	s.audit(r, "agent."+action, name, out.text)
	s.answerAction(w, r, out)
}

func (s *Server) agentRestart(w http.ResponseWriter, r *http.Request) {
	s.agentAction(w, r, "restart", AgentControl.Restart, "restarted with a fresh actor.")
}

func (s *Server) agentStop(w http.ResponseWriter, r *http.Request) {
	s.agentAction(w, r, "stop", AgentControl.Stop, "stopped: it takes no work until started.")
}

func (s *Server) agentStart(w http.ResponseWriter, r *http.Request) {
	s.agentAction(w, r, "start", AgentControl.Start, "started.")
}

func (s *Server) agentCrash(w http.ResponseWriter, r *http.Request) {
	s.agentAction(w, r, "crash", AgentControl.InjectPanic, "panicked now, as asked; its supervisor restarts it: watch its card.")
}

// countsText renders a cycle's counts as "created=3 duplicate=1".
func countsText(c agents.Counts) string {
	if len(c) == 0 {
		return "nothing to do"
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Itoa(c[k])
	}
	return strings.Join(parts, " ")
}

// clipEcho shortens an echoed input to n runes.
func clipEcho(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// autopilotSwitch turns the autopilot on or off. The form says which
// ("on" or "off"), never "toggle".
func (s *Server) autopilotSwitch(w http.ResponseWriter, r *http.Request) {
	if !s.readControlForm(w, r) || !s.hasAutopilot(w, r) {
		return
	}
	var enabled bool
	switch strings.ToLower(strings.TrimSpace(r.PostForm.Get("enabled"))) {
	case "on", "true", "1":
		enabled = true
	case "off", "false", "0":
	default:
		s.answerAction(w, r, actionRefused(http.StatusUnprocessableEntity, "Choose on or off for the autopilot."))
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if err := s.autopilot.SetAutopilot(ctx, enabled, 0); err != nil {
		s.log.Error("autopilot switch failed", "err", err)
		s.answerAction(w, r, actionRefused(http.StatusInternalServerError, "The autopilot could not be switched; the error is in the server log."))
		return
	}
	state := "off"
	out := actionDone("Autopilot OFF: agents run only when asked.")
	if enabled {
		state = "on"
		out = actionDone("Autopilot ON.")
		if _, iv, err := s.autopilot.Autopilot(ctx); err == nil {
			out = actionDone("Autopilot ON: a full cycle every " + iv.String() + ", the first one now.")
		}
	}
	s.audit(r, "autopilot.switch", "autopilot", state)
	s.refreshLive()
	s.answerAction(w, r, out)
}

// autopilotInterval stores a new interval (a Go duration, 1s to 24h) and
// keeps the switch as it is.
func (s *Server) autopilotInterval(w http.ResponseWriter, r *http.Request) {
	if !s.readControlForm(w, r) || !s.hasAutopilot(w, r) {
		return
	}
	iv, problem := parseInterval(r.PostForm.Get("interval"))
	if problem != "" {
		s.answerAction(w, r, actionRefused(http.StatusUnprocessableEntity, problem))
		return
	}
	ctx := context.WithoutCancel(r.Context())
	enabled, _, err := s.autopilot.Autopilot(ctx)
	if err == nil {
		err = s.autopilot.SetAutopilot(ctx, enabled, iv)
	}
	if err != nil {
		s.log.Error("autopilot interval not saved", "err", err)
		s.answerAction(w, r, actionRefused(http.StatusInternalServerError, "The interval could not be saved; the error is in the server log."))
		return
	}
	s.audit(r, "autopilot.interval", "autopilot", iv.String())
	s.refreshLive()
	s.answerAction(w, r, actionDone("Autopilot interval set to "+iv.String()+"."))
}

// parseInterval reads the autopilot interval, or says what is wrong with it.
func parseInterval(v string) (time.Duration, string) {
	v = strings.TrimSpace(v)
	const hint = "Use a Go duration between 1s and 24h, such as 90s, 5m or 1h30m."
	if v == "" {
		return 0, "Enter an interval. " + hint
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Sprintf("%q is not a duration. %s", clipEcho(v, 20), hint)
	}
	if d < minInterval || d > maxInterval {
		return 0, fmt.Sprintf("%s is out of range. %s", d, hint)
	}
	return d, ""
}

// fullCycle starts every agent of the pipeline in the background and
// answers at once; the cycle log and the cards follow it live. Should another cycle slip in
// between the check and the start, the coordinator refuses the second one
// itself (ErrCycleRunning), and a cycle runs either way.
func (s *Server) fullCycle(w http.ResponseWriter, r *http.Request) {
	if !s.readControlForm(w, r) || !s.hasAutopilot(w, r) {
		return
	}
	if s.autopilot.Running() {
		s.answerAction(w, r, actionRefused(http.StatusConflict, "A full cycle is already running; follow it in the cycle log."))
		return
	}
	ctx := context.WithoutCancel(r.Context())
	go func() {
		results, err := s.autopilot.RunFullCycle(ctx)
		if err != nil {
			s.log.Info("full cycle not started", "err", err)
			return
		}
		failed := 0
		for _, res := range results {
			if res.Err != nil {
				failed++
			}
		}
		s.log.Info("full cycle finished", "stages", len(results), "failed", failed)
		s.refreshLive()
	}()
	s.audit(r, "cycle.run", "full cycle", "started")
	s.answerAction(w, r, actionAccepted("Full cycle started: lead source, BizDev, Onboarding, Ops, Billing. Follow it in the cycle log."))
}

// hasAutopilot answers 503 when no coordinator runs in this process.
func (s *Server) hasAutopilot(w http.ResponseWriter, r *http.Request) bool {
	if s.autopilot == nil {
		s.answerAction(w, r, actionRefused(http.StatusServiceUnavailable, "The autopilot is not running in this process."))
		return false
	}
	return true
}
