package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// What one notification carries (message.Kind).
const (
	kindEvents   = "events"   // events published on the sender's bus
	kindOwner    = "owner"    // the sender owns the agents now (a snapshot of its agent states follows)
	kindResign   = "resign"   // the sender stopped owning the agents (it shuts down)
	kindSync     = "sync"     // the sender asks the owner for its owner message and snapshot
	kindCommand  = "command"  // an admin action for the owner
	kindAnswer   = "answer"   // the owner's answer to a command
	kindSettings = "settings" // the autopilot's settings changed in the store
)

// Commands a standby forwards to the owner (command.Op).
const (
	opRun       = "run"
	opRestart   = "restart"
	opStop      = "stop"
	opStart     = "start"
	opCrash     = "crash"
	opFullCycle = "full_cycle"
)

// message is one notification's payload, as JSON. From is the instance that
// sent it: an instance ignores its own (PostgreSQL delivers a notification
// to the sender's listening session too).
type message struct {
	From    string         `json:"from"`
	Kind    string         `json:"kind"`
	Events  []agents.Event `json:"events,omitempty"`
	Command *command       `json:"command,omitempty"`
	Answer  *answer        `json:"answer,omitempty"`
}

// command is an admin action forwarded to the owner.
type command struct {
	ID      string `json:"id"` // random: the answer names it
	Op      string `json:"op"`
	Agent   string `json:"agent,omitempty"`
	Trigger string `json:"trigger,omitempty"`
	// TimeoutMS is the asker's Ask timeout (opRun).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// answer is the owner's reply: To is the asking instance.
type answer struct {
	To      string       `json:"to"`
	ID      string       `json:"id"`
	Results []wireResult `json:"results,omitempty"` // one for opRun; every stage for opFullCycle
	Err     *wireError   `json:"err,omitempty"`
}

// wireResult is an agents.RunResult as it crosses.
type wireResult struct {
	Agent   string        `json:"agent"`
	RunID   int64         `json:"run_id,omitempty"`
	Outcome string        `json:"outcome,omitempty"`
	Counts  agents.Counts `json:"counts,omitempty"`
	Err     *wireError    `json:"err,omitempty"`
}

// wireError is an error as it crosses: its text, and the sentinel it wraps
// by name, so that the asking instance's web layer words it as the owner's
// would (errors.Is on agents.ErrStopped and the others still holds).
type wireError struct {
	Text     string `json:"text"`
	Sentinel string `json:"sentinel,omitempty"`
}

// sentinels are the errors the web layer tells apart, in the order they are
// tried (ErrNoAnswer before ErrBusy, which it wraps).
var sentinels = []struct {
	name string
	err  error
}{
	{"unknown_agent", agents.ErrUnknownAgent},
	{"stopped", agents.ErrStopped},
	{"backoff", agents.ErrBackoff},
	{"no_answer", agents.ErrNoAnswer},
	{"busy", agents.ErrBusy},
	{"panicked", agents.ErrPanicked},
	{"not_running", agents.ErrNotRunning},
	{"cycle_running", agents.ErrCycleRunning},
	{"deadline", context.DeadlineExceeded},
	{"canceled", context.Canceled},
}

// maxErrorText bounds an error's text on the wire.
const maxErrorText = 500

func encodeError(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Text: clip(err.Error(), maxErrorText)}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			w.Sentinel = s.name
			break
		}
	}
	return w
}

// remoteError is an error the owner answered with.
type remoteError struct {
	text     string
	sentinel error
}

func (e *remoteError) Error() string { return e.text }
func (e *remoteError) Unwrap() error { return e.sentinel }

func (w *wireError) decode() error {
	if w == nil {
		return nil
	}
	e := &remoteError{text: w.Text}
	for _, s := range sentinels {
		if s.name == w.Sentinel {
			e.sentinel = s.err
		}
	}
	return e
}

func encodeResult(r agents.RunResult) wireResult {
	return wireResult{Agent: r.Agent, RunID: r.RunID, Outcome: r.Outcome, Counts: r.Counts, Err: encodeError(r.Err)}
}

func (w wireResult) decode() agents.RunResult {
	return agents.RunResult{Agent: w.Agent, RunID: w.RunID, Outcome: w.Outcome, Counts: w.Counts, Err: w.Err.decode()}
}

// Bounds that keep one event well inside a notification: the live views
// re-read the database on every event, so a clipped message costs nothing
// but the text of a standby's card (the cycle log keeps it whole).
const (
	maxStack   = 2000
	maxText    = 1000
	maxSubject = 200
	// maxEvent leaves room for the message's envelope.
	maxEvent = db.MaxNotifyPayload - 200
)

// encodeEvent is e as JSON, clipped to fit a notification: a state's stack
// and error always (several states share one), a message and subject when
// the event is too long.
func encodeEvent(e agents.Event) (json.RawMessage, error) {
	if e.State != nil {
		st := *e.State
		st.Stack, st.LastError = clip(st.Stack, maxStack), clip(st.LastError, maxText)
		e.State = &st
	}
	b, err := json.Marshal(e)
	if err != nil || len(b) <= maxEvent {
		return b, err
	}
	e.Message, e.Subject = clip(e.Message, maxText), clip(e.Subject, maxSubject)
	if b, err = json.Marshal(e); err != nil || len(b) <= maxEvent {
		return b, err
	}
	// Still too long (a flood of counters): the kind, agent and time are
	// what the receivers need.
	return json.Marshal(agents.Event{Kind: e.Kind, Agent: e.Agent, At: e.At, Outcome: e.Outcome, Subject: e.Subject})
}

// clip shortens s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
