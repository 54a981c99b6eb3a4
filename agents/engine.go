package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/thejerf/suture/v4"

	"github.com/hossagent/hossagent/db"
)

// Errors an Ask can end with. Each wraps the agent's name in its message.
var (
	ErrUnknownAgent = errors.New("unknown agent")
	ErrStopped      = errors.New("agent is stopped")
	ErrBackoff      = errors.New("agent is backing off after repeated crashes")
	ErrBusy         = errors.New("agent is busy")
	// ErrNoAnswer is ErrBusy after the request reached the mailbox: the
	// agent took it (or is running a cycle) and did not answer in time.
	ErrNoAnswer   = fmt.Errorf("%w: no answer", ErrBusy)
	ErrPanicked   = errors.New("agent panicked while running the cycle")
	ErrNotRunning = errors.New("the agent engine is not running")
	// ErrNoCycle refuses an engine that would leave an agent of the
	// Registry without a cycle.
	ErrNoCycle = errors.New("no cycle for the agent")
)

// Supervision tunes the per-agent supervisors. Zero values take suture's
// defaults (5 failures decaying over 30 s, then 15 s of backoff).
type Supervision struct {
	FailureThreshold float64
	FailureDecay     float64 // seconds
	FailureBackoff   time.Duration
	StopTimeout      time.Duration
	CycleTimeout     time.Duration // bound on one cycle (default 10 min)
	MailboxSize      int           // default 16
}

// Engine is the supervisor tree: one child supervisor per agent (suture's
// backoff is per supervisor, so one flapping agent never stalls its
// siblings), each running one actor that drains the agent's mailbox.
type Engine struct {
	root   *suture.Supervisor
	slots  map[string]*slot
	order  []string
	store  *db.DB
	bus    Publisher
	log    *slog.Logger
	now    func() time.Time
	spec   Supervision
	crash  bool // development only: InjectPanic is allowed
	mu     sync.Mutex
	active bool
	err    error // the config refused: Serve returns it at once
}

// EngineConfig is what New builds the engine from.
type EngineConfig struct {
	Store  *db.DB
	Events Publisher
	Logger *slog.Logger
	Now    func() time.Time
	Spec   Supervision
	// Cycles maps agents of the Registry to their cycles; the engine runs
	// them in Registry order. A cycle for a name outside the Registry is
	// refused (Err).
	Cycles map[string]Cycle
	// Partial runs only the cycles given, for tests that run one or two
	// agents. Without it (as main runs the app) an agent of the Registry
	// without a cycle is refused (Err), so that none is left out silently.
	Partial bool
	// AllowCrashInjection enables InjectPanic (RELEASE_MODE=DEVELOPMENT).
	AllowCrashInjection bool
}

// NewEngine builds the tree; Serve starts it. A config the engine refuses
// (see EngineConfig.Cycles and Partial) gives an engine that runs no
// agent: Err says why, and Serve returns that error at once.
func NewEngine(c EngineConfig) *Engine {
	if c.Spec.CycleTimeout == 0 {
		c.Spec.CycleTimeout = 10 * time.Minute
	}
	if c.Spec.MailboxSize == 0 {
		c.Spec.MailboxSize = 16
	}
	if c.Spec.StopTimeout == 0 {
		c.Spec.StopTimeout = 10 * time.Second
	}
	e := &Engine{
		slots: map[string]*slot{}, store: c.Store, bus: c.Events, log: c.Logger,
		now: c.Now, spec: c.Spec, crash: c.AllowCrashInjection,
	}
	e.root = suture.New("hossagent", suture.Spec{EventHook: e.hook, Timeout: c.Spec.StopTimeout})
	if e.err = checkCycles(c.Cycles, !c.Partial); e.err != nil {
		return e
	}
	for _, name := range Pipeline {
		cycle, ok := c.Cycles[name]
		if !ok {
			continue // not run by this engine: only when Partial
		}
		s := &slot{
			name:    name,
			cycle:   cycle,
			mailbox: make(chan message, c.Spec.MailboxSize),
			state:   AgentState{Name: name, State: StateStopped},
		}
		s.sup = suture.New("agent:"+name, suture.Spec{
			EventHook:        e.hook,
			FailureThreshold: c.Spec.FailureThreshold,
			FailureDecay:     c.Spec.FailureDecay,
			FailureBackoff:   c.Spec.FailureBackoff,
			Timeout:          c.Spec.StopTimeout,
		})
		e.root.Add(s.sup)
		e.slots[name] = s
		e.order = append(e.order, name)
		// Added now, run once Serve starts: messages sent before then wait
		// in the mailbox instead of being refused.
		e.startSlot(s)
	}
	return e
}

// checkCycles holds cycles against the Registry: every cycle names one of
// its agents, and with requireAll every agent has a cycle.
func checkCycles(cycles map[string]Cycle, requireAll bool) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(cycles)) {
		if _, ok := Lookup(name); !ok {
			errs = append(errs, fmt.Errorf("agents: a cycle for %w %q: add it to agents.Registry", ErrUnknownAgent, name))
		} else if cycles[name] == nil {
			errs = append(errs, fmt.Errorf("agents: %w %q: its cycle is nil", ErrNoCycle, name))
		}
	}
	for _, a := range Registry {
		if _, ok := cycles[a.Name]; requireAll && !ok {
			errs = append(errs, fmt.Errorf("agents: %w %q (%s): give it one in the engine's Cycles", ErrNoCycle, a.Name, a.Title))
		}
	}
	return errors.Join(errs...)
}

// Err is why the engine refused its config, or nil.
func (e *Engine) Err() error { return e.err }

// Add puts another service (the coordinator) under the root supervisor.
func (e *Engine) Add(svc suture.Service) { e.root.Add(svc) }

// AddIsolated puts a service (the replies watcher) under a supervisor of
// its own below the root, so that its crashes and their backoff never
// stall the agents or the coordinator.
func (e *Engine) AddIsolated(name string, svc suture.Service) {
	sup := suture.New(name, suture.Spec{
		EventHook:        e.hook,
		FailureThreshold: e.spec.FailureThreshold,
		FailureDecay:     e.spec.FailureDecay,
		FailureBackoff:   e.spec.FailureBackoff,
		Timeout:          e.spec.StopTimeout,
	})
	sup.Add(svc)
	e.root.Add(sup)
}

// Serve runs the tree until ctx ends; every agent starts idle.
func (e *Engine) Serve(ctx context.Context) error {
	if e.err != nil {
		return e.err
	}
	e.setActive(true)
	defer e.setActive(false)
	err := e.root.Serve(ctx)
	for _, name := range e.order {
		e.slots[name].update(func(st *AgentState) { st.State = StateStopped })
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

func (e *Engine) setActive(v bool) {
	e.mu.Lock()
	e.active = v
	e.mu.Unlock()
}

// Ready reports whether the tree is running, for /readyz.
func (e *Engine) Ready(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.active {
		return ErrNotRunning
	}
	return nil
}

// Names lists the agents in pipeline order.
func (e *Engine) Names() []string { return append([]string(nil), e.order...) }

// States snapshots every agent's state, in pipeline order.
func (e *Engine) States() []AgentState {
	out := make([]AgentState, 0, len(e.order))
	for _, name := range e.order {
		out = append(out, e.slots[name].snapshot())
	}
	return out
}

// State snapshots one agent's state.
func (e *Engine) State(name string) (AgentState, error) {
	s, err := e.slot(name)
	if err != nil {
		return AgentState{}, err
	}
	return s.snapshot(), nil
}

func (e *Engine) slot(name string) (*slot, error) {
	s, ok := e.slots[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownAgent, name)
	}
	return s, nil
}

// RunResult is what a cycle run reports back to whoever asked for it.
type RunResult struct {
	Agent   string
	RunID   int64
	Outcome string // db.RunOK, db.RunFailed, db.RunPanicked
	Counts  Counts
	Err     error
}

// Ask puts a "run a cycle" message in the agent's mailbox and waits for the
// reply, for at most timeout in all. It never blocks forever: a stopped or
// backing-off agent is refused at once, and a busy one times out with
// ErrBusy.
func (e *Engine) Ask(ctx context.Context, name, trigger string, timeout time.Duration) (RunResult, error) {
	s, err := e.slot(name)
	if err != nil {
		return RunResult{}, err
	}
	return e.ask(ctx, s, message{kind: msgRun, trigger: trigger}, timeout)
}

// Ping asks the agent to answer through its mailbox, proving its actor is
// alive and free.
func (e *Engine) Ping(ctx context.Context, name string, timeout time.Duration) error {
	s, err := e.slot(name)
	if err != nil {
		return err
	}
	_, err = e.ask(ctx, s, message{kind: msgPing}, timeout)
	return err
}

// InjectPanic makes the agent panic on its next message, so operators can
// watch a restart. It exists only when crash injection was allowed.
func (e *Engine) InjectPanic(ctx context.Context, name string) error {
	if !e.crash {
		return errors.New("crash injection is only available in RELEASE_MODE=DEVELOPMENT")
	}
	s, err := e.slot(name)
	if err != nil {
		return err
	}
	if err := e.refuse(s); err != nil {
		return err
	}
	select {
	case s.mailbox <- message{kind: msgCrash, reply: make(chan RunResult, 1)}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	default:
		return fmt.Errorf("agent %s: %w (mailbox full)", s.name, ErrBusy)
	}
}

// refuse answers at once for an agent that cannot take work: stopped (no
// actor) or backing off. An actor still starting up takes messages; they
// wait in its mailbox.
func (e *Engine) refuse(s *slot) error {
	if !s.hasService() {
		return fmt.Errorf("agent %s: %w", s.name, ErrStopped)
	}
	switch s.snapshot().State {
	case StateBackoff:
		return fmt.Errorf("agent %s: %w; it restarts by itself shortly", s.name, ErrBackoff)
	}
	return nil
}

func (e *Engine) ask(ctx context.Context, s *slot, m message, timeout time.Duration) (RunResult, error) {
	if err := e.refuse(s); err != nil {
		return RunResult{Agent: s.name}, err
	}
	m.reply = make(chan RunResult, 1) // buffered: a late reply never blocks the actor
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case s.mailbox <- m:
	case <-timer.C:
		return RunResult{Agent: s.name}, fmt.Errorf("agent %s: %w: its mailbox stayed full for %s", s.name, ErrBusy, timeout)
	case <-ctx.Done():
		return RunResult{Agent: s.name}, ctx.Err()
	}
	select {
	case r := <-m.reply:
		return r, r.Err
	case <-timer.C:
		return RunResult{Agent: s.name}, fmt.Errorf("agent %s: %w within %s", s.name, ErrNoAnswer, timeout)
	case <-ctx.Done():
		return RunResult{Agent: s.name}, ctx.Err()
	}
}

// Restart replaces the agent's actor with a fresh service value (a stopped
// value is never reused). Queued messages stay in the mailbox.
func (e *Engine) Restart(ctx context.Context, name string) error {
	s, err := e.slot(name)
	if err != nil {
		return err
	}
	if err := e.removeSlot(s); err != nil {
		return err
	}
	e.startSlot(s)
	e.logRestart(ctx, s.name)
	return nil
}

// Stop removes the agent's actor; it answers nothing until Start.
func (e *Engine) Stop(ctx context.Context, name string) error {
	s, err := e.slot(name)
	if err != nil {
		return err
	}
	if err := e.removeSlot(s); err != nil {
		return err
	}
	s.update(func(st *AgentState) { st.State = StateStopped })
	e.publishState(s)
	return nil
}

// Start adds a fresh actor for a stopped agent.
func (e *Engine) Start(ctx context.Context, name string) error {
	s, err := e.slot(name)
	if err != nil {
		return err
	}
	if s.hasService() {
		return nil
	}
	e.startSlot(s)
	return nil
}

func (e *Engine) startSlot(s *slot) {
	s.mu.Lock()
	s.gen++
	a := &actor{engine: e, slot: s, gen: s.gen}
	s.token = s.sup.Add(a)
	s.added = true
	s.mu.Unlock()
}

func (e *Engine) removeSlot(s *slot) error {
	s.mu.Lock()
	token, added := s.token, s.added
	s.added = false
	s.mu.Unlock()
	if !added {
		return nil
	}
	err := s.sup.RemoveAndWait(token, e.spec.StopTimeout)
	if err != nil && !errors.Is(err, suture.ErrSupervisorNotRunning) {
		return fmt.Errorf("agent %s: unable to stop: %w", s.name, err)
	}
	return nil
}

func (e *Engine) logRestart(ctx context.Context, name string) {
	run, err := e.store.StartRun(ctx, name, db.TriggerRestart)
	if err == nil {
		err = e.store.FinishRun(ctx, run, db.RunOK, "agent restarted with a fresh actor", nil)
	}
	if err != nil {
		e.log.Error("recording restart", "agent", name, "err", err)
	}
}

func (e *Engine) publishState(s *slot) {
	if e.bus == nil {
		return
	}
	st := s.snapshot()
	e.bus.Publish(Event{Kind: EventAgentState, Agent: s.name, At: e.now().UTC(), State: &st})
}
