package agents

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/thejerf/suture/v4"

	"github.com/hossagent/hossagent/db"
)

type messageKind int

const (
	msgRun   messageKind = iota // run one cycle
	msgPing                     // answer at once: the actor is alive and free
	msgCrash                    // panic (development crash injection)
)

// message is one request in an agent's mailbox. reply is buffered (1) so the
// actor never blocks on an asker that gave up.
type message struct {
	kind    messageKind
	trigger string
	reply   chan RunResult
}

// slot is the registry entry of one agent. It outlives every actor value:
// the mailbox and the counters survive restarts.
type slot struct {
	name    string
	cycle   Cycle
	mailbox chan message
	sup     *suture.Supervisor

	mu    sync.Mutex
	state AgentState
	token suture.ServiceToken
	added bool
	// held is a message taken from the mailbox by an actor that was being
	// stopped; the next actor handles it first, so nothing queued is lost.
	held []message
	gen  int64 // generation of the current actor value
}

func (s *slot) snapshot() AgentState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.Mailbox = len(s.mailbox) + len(s.held)
	return st
}

func (s *slot) update(f func(*AgentState)) {
	s.mu.Lock()
	f(&s.state)
	s.mu.Unlock()
}

func (s *slot) hasService() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.added
}

// actor is one service value serving an agent's mailbox. A new value is made
// for every start and restart by an admin; suture restarts the same value
// after a panic.
type actor struct {
	engine *Engine
	slot   *slot
	gen    int64
	starts int
}

// String names the service in suture's events.
func (a *actor) String() string { return "agent:" + a.slot.name }

// Serve drains the mailbox until the context ends.
func (a *actor) Serve(ctx context.Context) error {
	a.starts++
	restarted := a.starts > 1 || a.gen > 1
	a.slot.update(func(st *AgentState) {
		st.State = StateIdle
		if restarted {
			st.Restarts++
		}
	})
	a.engine.publishState(a.slot)
	for _, m := range a.slot.takeHeld() {
		a.handle(ctx, m)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-a.slot.mailbox:
			if ctx.Err() != nil {
				// Stopping: select picked the message over the cancellation.
				a.slot.hold(m)
				return ctx.Err()
			}
			a.handle(ctx, m)
		}
	}
}

func (s *slot) hold(m message) {
	s.mu.Lock()
	s.held = append(s.held, m)
	s.mu.Unlock()
}

func (s *slot) takeHeld() []message {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held
	s.held = nil
	return h
}

func (a *actor) handle(ctx context.Context, m message) {
	switch m.kind {
	case msgPing:
		m.reply <- RunResult{Agent: a.slot.name}
	case msgCrash:
		a.crashed(nil, "injected crash (development)", debug.Stack())
		m.reply <- RunResult{Agent: a.slot.name, Outcome: db.RunPanicked, Err: fmt.Errorf("agent %s: %w", a.slot.name, ErrPanicked)}
		panic("injected crash (development): agent " + a.slot.name)
	default:
		a.runCycle(ctx, m)
	}
}

// runCycle runs one cycle and records it in the cycle log. A panic is
// recorded with its stack, answered as an error, and then re-raised so that
// suture restarts the agent; the message that caused it is consumed, never
// retried.
func (a *actor) runCycle(ctx context.Context, m message) {
	e, s := a.engine, a.slot
	trigger := m.trigger
	if trigger == "" {
		trigger = db.TriggerManual
	}
	run, err := e.store.StartRun(ctx, s.name, trigger)
	if err != nil {
		m.reply <- RunResult{Agent: s.name, Outcome: db.RunFailed, Err: err}
		return
	}
	s.update(func(st *AgentState) {
		st.State = StateRunning
		st.Runs++
		st.LastRunAt = run.StartedAt
	})
	e.publishState(s)
	e.publish(Event{Kind: EventCycleStarted, Agent: s.name, Message: trigger})

	defer func() {
		v := recover()
		if v == nil {
			return
		}
		stack := debug.Stack()
		msg := fmt.Sprint(v)
		a.finish(run, db.RunPanicked, "panic: "+msg+"\n"+string(stack), nil)
		a.crashed(run, msg, stack)
		m.reply <- RunResult{Agent: s.name, RunID: run.ID, Outcome: db.RunPanicked,
			Err: fmt.Errorf("agent %s: %w: %s", s.name, ErrPanicked, msg)}
		panic(v)
	}()

	cctx, cancel := context.WithTimeout(ctx, e.spec.CycleTimeout)
	counts, err := s.cycle.Run(cctx)
	cancel()
	res := RunResult{Agent: s.name, RunID: run.ID, Outcome: db.RunOK, Counts: counts}
	if err != nil {
		res.Outcome, res.Err = db.RunFailed, fmt.Errorf("agent %s: %w", s.name, err)
		a.finish(run, db.RunFailed, err.Error(), counts)
	} else {
		a.finish(run, db.RunOK, summarize(counts), counts)
	}
	s.update(func(st *AgentState) {
		st.State = StateIdle
		st.LastOutcome = res.Outcome
		if err != nil {
			st.Failures++
			st.LastError, st.Stack, st.LastErrorAt = err.Error(), "", e.now().UTC()
		}
	})
	e.publishState(s)
	m.reply <- res
}

// finish records the run's end. It uses a fresh context: a cycle cancelled
// by a stop must still be logged.
func (a *actor) finish(run *db.AgentRun, outcome, message string, counts Counts) {
	e := a.engine
	if err := e.store.FinishRun(context.Background(), run, outcome, message, counts); err != nil {
		e.log.Error("recording run", "agent", a.slot.name, "err", err)
	}
	e.publish(Event{Kind: EventCycleFinished, Agent: a.slot.name, Outcome: outcome, Message: firstLine(message), Counts: counts})
}

// crashed marks the agent crashed before suture restarts it, so watchers
// always see crashed → (backoff →) idle in that order.
func (a *actor) crashed(run *db.AgentRun, msg string, stack []byte) {
	s := a.slot
	s.update(func(st *AgentState) {
		st.State = StateCrashed
		st.Failures++
		st.LastOutcome = db.RunPanicked
		st.LastError, st.Stack, st.LastErrorAt = "panic: "+msg, string(stack), a.engine.now().UTC()
	})
	if run == nil {
		a.engine.logPanic(s.name, msg, stack)
	}
	a.engine.publishState(s)
}

// logPanic records a panic that happened outside a cycle run.
func (e *Engine) logPanic(name, msg string, stack []byte) {
	ctx := context.Background()
	run, err := e.store.StartRun(ctx, name, db.TriggerManual)
	if err == nil {
		err = e.store.FinishRun(ctx, run, db.RunPanicked, "panic: "+msg+"\n"+string(stack), nil)
	}
	if err != nil {
		e.log.Error("recording panic", "agent", name, "err", err)
	}
}

// hook turns suture's events into agent states: a supervisor entering
// backoff makes its agent "backoff"; the restarted actor marks itself idle.
func (e *Engine) hook(ev suture.Event) {
	switch ev := ev.(type) {
	case suture.EventBackoff:
		if s := e.slotOfSupervisor(ev.SupervisorName); s != nil {
			s.update(func(st *AgentState) { st.State = StateBackoff })
			e.publishState(s)
			e.log.Warn("agent backing off after repeated crashes", "agent", s.name)
		}
	case suture.EventResume:
		if s := e.slotOfSupervisor(ev.SupervisorName); s != nil {
			e.log.Info("agent resuming after backoff", "agent", s.name)
		}
	case suture.EventServicePanic:
		e.log.Error("agent panicked", "agent", strings.TrimPrefix(ev.ServiceName, "agent:"),
			"panic", ev.PanicMsg, "restarting", ev.Restarting, "failures", ev.CurrentFailures)
	case suture.EventServiceTerminate:
		e.log.Warn("agent service ended", "service", ev.ServiceName, "err", fmt.Sprint(ev.Err), "restarting", ev.Restarting)
	case suture.EventStopTimeout:
		e.log.Error("agent did not stop in time", "service", ev.ServiceName)
	}
}

func (e *Engine) slotOfSupervisor(name string) *slot {
	return e.slots[strings.TrimPrefix(name, "agent:")]
}

func (e *Engine) publish(ev Event) {
	if e.bus == nil {
		return
	}
	ev.At = e.now().UTC()
	e.bus.Publish(ev)
}

// summarize renders the non-zero counts as "created=3 duplicate=1" in a
// stable order, or "nothing to do".
func summarize(c Counts) string {
	keys := make([]string, 0, len(c))
	for k, v := range c {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "nothing to do"
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, c[k])
	}
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
