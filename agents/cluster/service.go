// Package cluster runs HossAgent's agents on one of several instances that
// share a PostgreSQL database (issue 14), and gives every instance the same
// control room.
//
// One owner for everything: the engine — the coordinator and every agent
// together — is owned by the instance holding one advisory lock
// (db.OwnerLock), so that a full cycle's stages all run in one process and
// "each agent is owned by exactly one instance" holds with the same owner
// for all. The others stand by: they serve HTTP, try the lock every
// TryEvery, and take the engine over when the owner's session ends (it
// died, or PostgreSQL dropped it after its network was cut: see
// db.ClusterConn.DeadAfter). Only the new owner settles the work its
// predecessor left in flight (agents.RecoverAfterCrash): a standby never
// does, which would reset the owner's live claims.
//
// An owner that loses its lock (its session fails a ping) stops its engine
// at once and Run returns ErrOwnershipLost: an engine is not served twice
// (its supervisor tree is built once), so the process exits and its
// platform starts it again, as a standby.
//
// Every instance is an AgentControl and an AutopilotControl for the web
// layer (structurally: this package does not import app). On the owner they
// are the local engine and coordinator; on a standby the agent actions go
// to the owner as commands over NOTIFY and wait for its answer, the
// autopilot's settings are written to the store and the owner told to
// reload them, and States are the owner's, kept from its agent_state events
// and its snapshots. Every event published through an Outbox crosses to the
// other instances' buses, so their live views see every change.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// Events this package publishes on the instance's own bus (never across):
// the live views re-render on them.
const (
	// EventOwnerChanged: another instance (or this one) owns the agents
	// now, or none does; Message is the owner's id.
	EventOwnerChanged = "owner_changed"
	// EventSettingsChanged: an instance changed the autopilot's settings.
	EventSettingsChanged = "settings_changed"
)

// ErrOwnershipLost ends Run when the owner's lock session failed: the
// engine was stopped and the process should end (and be started again).
var ErrOwnershipLost = errors.New("cluster: this instance lost the agents' lock")

// ErrNoOwner refuses a standby's action while no instance owns the agents
// (between an owner's death and the takeover).
var ErrNoOwner = fmt.Errorf("%w: no instance owns the agents at the moment (a takeover takes a few seconds)", agents.ErrNotRunning)

// errLostBeforeServing: the lock went during the takeover's wait, before
// the engine ran.
var errLostBeforeServing = errors.New("cluster: lock lost before the engine ran")

// errNoAnswer is a forwarded command's timeout.
var errNoAnswer = errors.New("cluster: no answer")

// Config builds a Service.
type Config struct {
	Store *db.DB
	// Instance is this instance's id (db.ValidInstanceID).
	Instance string
	// Engine and Coordinator are this instance's, served only while it owns
	// them; the coordinator is in the engine's tree.
	Engine      *agents.Engine
	Coordinator *agents.Coordinator
	// Outbox is the Publisher the engine, the coordinator and the web layer
	// were given; received events go to its bus.
	Outbox *Outbox
	Logger *slog.Logger
	Now    func() time.Time
	// TryEvery is how often a standby tries the lock and the owner pings
	// its session (default 1 s).
	TryEvery time.Duration
	// Takeover bounds how long the agents stay without an owner after the
	// owner died or was cut off (default 10 s, at least 4 s): PostgreSQL
	// drops a silent session after half of it, and the new owner waits
	// TryEvery plus the ping timeout (an eighth of it) before it runs
	// anything, by when a cut-off owner has noticed and begun to stop
	// (see takeoverWait for what that does and does not cover).
	Takeover time.Duration
	// CommandTimeout bounds a forwarded stop, start, restart or crash
	// (default 15 s: the engine's stop timeout is 10 s).
	CommandTimeout time.Duration
	// FullCycleTimeout bounds how long a standby waits for a forwarded full
	// cycle's results (default 2 h); the cycle goes on regardless.
	FullCycleTimeout time.Duration
	// Recover settles what a previous owner left in flight, once this
	// instance took the lock and before its engine runs (default
	// agents.RecoverAfterCrash with Store and Logger).
	Recover func(ctx context.Context, now time.Time) error
	// Reload maps event kinds (agents.EventSequencesEdited, …) to what this
	// instance reloads when another instance publishes one: its copies of
	// what an admin edited there. Each runs before the event reaches the
	// bus, so that the re-render it causes shows the new copy.
	Reload map[string]func(context.Context) error
	// SnapshotEvery is how often the owner sends its agent states anyway,
	// correcting a standby that missed an event (default 15 s).
	SnapshotEvery time.Duration
}

// Service is one instance's part of the cluster.
type Service struct {
	cfg Config
	bus *agents.Bus
	log *slog.Logger

	// owning is true while this instance serves the engine (after the
	// takeover's wait and recovery, until it stops).
	owning atomic.Bool

	mu      sync.Mutex
	owner   string                       // the owner as last known; "" none
	states  map[string]agents.AgentState // the owner's, as a standby last heard them
	pending map[string]chan answer       // commands waiting for their answer
	running bool                         // Run was called
	// resigned: the last owner stopped cleanly (it released the lock after
	// its engine stopped), so a takeover need not wait for it.
	resigned bool
	// kick makes a standby try the lock now (the owner resigned).
	kick chan struct{}
}

// New builds the service; Run starts it.
func New(c Config) *Service {
	if c.TryEvery <= 0 {
		c.TryEvery = time.Second
	}
	if c.Takeover <= 0 {
		c.Takeover = 10 * time.Second
	}
	c.Takeover = max(c.Takeover, 4*time.Second)
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 15 * time.Second
	}
	if c.FullCycleTimeout <= 0 {
		c.FullCycleTimeout = 2 * time.Hour
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = 15 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Recover == nil {
		c.Recover = func(ctx context.Context, now time.Time) error {
			return agents.RecoverAfterCrash(ctx, c.Store, now, c.Logger)
		}
	}
	return &Service{cfg: c, bus: c.Outbox.bus, log: c.Logger.With("instance", c.Instance),
		states: map[string]agents.AgentState{}, pending: map[string]chan answer{}, kick: make(chan struct{}, 1)}
}

// pingTimeout bounds the owner's ping of its lock session.
func (s *Service) pingTimeout() time.Duration { return max(500*time.Millisecond, s.cfg.Takeover/8) }

// takeoverWait is how long a new owner waits before it runs anything: a
// predecessor that is alive but cut off notices its loss within one ping
// period and one ping timeout and cancels its engine then. A cycle it had
// in flight may take a few seconds more to end (the engine's stop timeout);
// what it writes then cannot double an e-mail or a bill (the recovery has
// flagged its messages in flight for review, task attempts are numbered,
// a task is on one invoice line at most), but a call it makes outside the
// database then, such as creating a Stripe payment link, may be made by
// both. It only arises when the owner's lock session alone is lost while
// the process lives on.
func (s *Service) takeoverWait() time.Duration { return s.cfg.TryEvery + s.pingTimeout() }

func (s *Service) conn() db.ClusterConn {
	return db.ClusterConn{Instance: s.cfg.Instance, DeadAfter: s.cfg.Takeover / 2}
}

// Instance is this instance's id.
func (s *Service) Instance() string { return s.cfg.Instance }

// Owner is the id of the instance that owns the agents as this one knows
// it, or "" while none does. This instance is the owner once it serves the
// engine: while it holds the lock but waits to take over, it says "".
func (s *Service) Owner() string {
	s.mu.Lock()
	owner := s.owner
	s.mu.Unlock()
	if owner == s.cfg.Instance && !s.owning.Load() {
		return ""
	}
	return owner
}

// Owning reports whether this instance serves the engine now.
func (s *Service) Owning() bool { return s.owning.Load() }

// Run listens to the other instances, stands by and, once this instance
// takes the lock, serves the engine until ctx ends (nil) or the lock is
// lost (ErrOwnershipLost). It is called once.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	again := s.running
	s.running = true
	s.mu.Unlock()
	if again {
		return errors.New("cluster: Run called twice")
	}
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	listening := make(chan struct{})
	var once sync.Once
	wg.Go(func() {
		err := s.cfg.Store.Listen(bg, db.Listener{
			Conn:   s.conn(),
			Handle: s.receive,
			Connected: func() {
				first := false
				once.Do(func() { close(listening); first = true })
				// Whatever was sent while this listener was away is lost:
				// ask the owner for its states, re-read what other
				// instances may have changed meanwhile (the autopilot's
				// settings, the edited copies), and re-render.
				s.cfg.Outbox.enqueue(message{Kind: kindSync})
				if !first {
					s.reloadAll()
				}
				s.bus.Publish(agents.Event{Kind: EventOwnerChanged, At: s.cfg.Now().UTC(), Message: s.Owner()})
			},
			Error:      func(err error) { s.log.Warn("cluster: listening to the other instances", "err", err) },
			RetryEvery: s.cfg.TryEvery,
		})
		if err != nil && bg.Err() == nil {
			s.log.Error("cluster: listener stopped", "err", err)
		}
	})
	wg.Go(func() { s.send(bg) })
	// An owner must hear commands from its first moment: listen first.
	select {
	case <-listening:
	case <-ctx.Done():
		return nil
	}
	lock, err := s.cfg.Store.NewOwnerLock(s.conn())
	if err != nil {
		return err
	}
	defer lock.Close()
	tick := time.NewTicker(s.cfg.TryEvery)
	defer tick.Stop()
	for {
		held, err := lock.Try(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("cluster: cannot try the agents' lock", "err", err)
		case held:
			if err := s.own(ctx, lock); !errors.Is(err, errLostBeforeServing) {
				return err
			}
			// Lost during the takeover's wait: no engine ran here, so this
			// instance simply stands by again.
		default:
			s.refreshOwner(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.kick:
		}
	}
}

// refreshOwner asks PostgreSQL who holds the lock.
func (s *Service) refreshOwner(ctx context.Context) {
	h, ok, err := s.cfg.Store.LockOwner(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cluster: cannot read who owns the agents", "err", err)
		}
		return
	}
	if !ok {
		h.Instance = ""
	}
	if s.setOwner(h.Instance) && h.Instance != "" {
		s.cfg.Outbox.enqueue(message{Kind: kindSync})
	}
}

// setOwner records who owns the agents and reports whether that changed;
// a change forgets the previous owner's states.
func (s *Service) setOwner(id string) bool {
	s.mu.Lock()
	changed := s.owner != id
	if changed {
		s.owner = id
		s.states = map[string]agents.AgentState{}
		s.resigned = false
	}
	s.mu.Unlock()
	if changed {
		s.log.Info("cluster: the agents' owner changed", "owner", id)
		s.bus.Publish(agents.Event{Kind: EventOwnerChanged, At: s.cfg.Now().UTC(), Message: id})
	}
	return changed
}

// own serves the engine while the lock holds.
func (s *Service) own(ctx context.Context, lock *db.OwnerLock) error {
	took := s.cfg.Now()
	s.mu.Lock()
	pause := s.takeoverWait()
	if s.resigned && s.owner == "" {
		pause = 0 // the previous owner stopped its engine before it let go
	}
	s.mu.Unlock()
	s.setOwner(s.cfg.Instance)
	s.log.Info("cluster: this instance holds the agents' lock; taking them over", "wait", pause)
	wait := time.NewTimer(pause)
	select {
	case <-ctx.Done():
		wait.Stop()
		return s.resign(lock)
	case <-wait.C:
	}
	if err := s.ping(ctx, lock); err != nil {
		s.log.Warn("cluster: the agents' lock was lost before the takeover; standing by again", "err", err)
		s.setOwner("")
		return errLostBeforeServing
	}
	// The predecessor is gone or has stopped: what it left in flight is
	// settled before anything runs, here and only here.
	if err := s.cfg.Recover(ctx, s.cfg.Now()); err != nil {
		lock.Close()
		return err
	}
	// The copies this standby kept of what admins edit may have missed a
	// notification: read them again before they drive anything. (The
	// coordinator reads the autopilot's settings as it starts.)
	s.reloadAll()
	s.setOwner(s.cfg.Instance)
	engineCtx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()
	done := make(chan error, 1)
	go func() { done <- s.cfg.Engine.Serve(engineCtx) }()
	s.owning.Store(true)
	s.log.Info("cluster: this instance owns the agents", "took", s.cfg.Now().Sub(took).Round(time.Millisecond))
	s.bus.Publish(agents.Event{Kind: EventOwnerChanged, At: s.cfg.Now().UTC(), Message: s.cfg.Instance})
	s.announce()
	tick := time.NewTicker(s.cfg.TryEvery)
	defer tick.Stop()
	snapshot := time.NewTicker(s.cfg.SnapshotEvery)
	defer snapshot.Stop()
	for {
		select {
		case <-ctx.Done():
			s.owning.Store(false)
			stopEngine()
			<-done
			return s.resign(lock)
		case err := <-done:
			// The engine ended by itself: without it this instance must not
			// hold the lock, which would keep the agents from every other.
			s.owning.Store(false)
			lock.Close()
			if err == nil {
				err = errors.New("the engine stopped")
			}
			return fmt.Errorf("cluster: agents engine: %w", err)
		case <-tick.C:
			if err := s.ping(ctx, lock); err != nil && ctx.Err() == nil {
				s.owning.Store(false)
				stopEngine() // at once: another instance takes over soon
				<-done
				return s.lost(err)
			}
		case <-snapshot.C:
			s.announce()
		}
	}
}

func (s *Service) ping(ctx context.Context, lock *db.OwnerLock) error {
	pctx, cancel := context.WithTimeout(ctx, s.pingTimeout())
	defer cancel()
	return lock.Ping(pctx)
}

func (s *Service) lost(err error) error {
	s.log.Error("cluster: the agents' lock is lost; the engine is stopped and this instance must restart", "err", err)
	s.setOwner("")
	return fmt.Errorf("%w: %v", ErrOwnershipLost, err)
}

// resign releases the lock at shutdown and tells the others at once, so
// that one of them takes over without waiting for a failed ping.
func (s *Service) resign(lock *db.OwnerLock) error {
	lock.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.notify(ctx, message{Kind: kindResign}); err != nil {
		s.log.Warn("cluster: cannot tell the other instances this one stops", "err", err)
	}
	return nil
}

// announce tells the others that this instance owns the agents, with every
// agent's state.
func (s *Service) announce() {
	s.cfg.Outbox.enqueue(message{Kind: kindOwner})
	now := s.cfg.Now().UTC()
	// One message per agent: a message's events go in one notification,
	// and the states of all agents with a stack or two need several
	// (batch packs as many as fit).
	states := s.cfg.Engine.States()
	for i := range states {
		s.cfg.Outbox.enqueue(message{Kind: kindEvents, Events: []agents.Event{
			{Kind: agents.EventAgentState, Agent: states[i].Name, At: now, State: &states[i]}}})
	}
}

// receive handles one notification of another instance.
func (s *Service) receive(payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		s.log.Warn("cluster: unreadable notification", "err", err)
		return
	}
	if m.From == s.cfg.Instance {
		return // this instance's own, already on its bus
	}
	switch m.Kind {
	case kindEvents:
		for _, e := range m.Events {
			if e.Kind == agents.EventAgentState && e.State != nil {
				s.noteState(m.From, *e.State)
			}
			if reload := s.cfg.Reload[e.Kind]; reload != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := reload(ctx); err != nil {
					s.log.Error("cluster: cannot reload after another instance's edit", "event", e.Kind, "from", m.From, "err", err)
				}
				cancel()
			}
			// To the bus only, never to the Outbox: no echo.
			s.bus.Publish(e)
		}
	case kindOwner:
		// Not while this instance holds the lock (serving, or in its
		// takeover wait): a late announcement of the predecessor must not
		// name it the owner again.
		s.mu.Lock()
		holding := s.owner == s.cfg.Instance
		s.mu.Unlock()
		if !s.owning.Load() && !holding {
			s.setOwner(m.From)
		}
	case kindResign:
		s.mu.Lock()
		was := s.owner == m.From
		s.mu.Unlock()
		if was {
			s.setOwner("")
			s.mu.Lock()
			s.resigned = true
			s.mu.Unlock()
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	case kindSync:
		if s.owning.Load() {
			s.announce()
		}
	case kindCommand:
		if s.owning.Load() && m.Command != nil {
			go s.execute(m.From, *m.Command)
		}
	case kindAnswer:
		if m.Answer != nil && m.Answer.To == s.cfg.Instance {
			s.mu.Lock()
			ch := s.pending[m.Answer.ID]
			s.mu.Unlock()
			if ch != nil {
				select {
				case ch <- *m.Answer:
				default: // answered twice: the first one counts
				}
			}
		}
	case kindSettings:
		if s.owning.Load() {
			s.cfg.Coordinator.ReloadAutopilot()
		}
		s.bus.Publish(agents.Event{Kind: EventSettingsChanged, At: s.cfg.Now().UTC()})
	}
}

// reloadAll re-reads everything other instances may have changed without
// this one hearing of it: after its listener reconnected, and when it takes
// the agents over. Each reload is bounded; a failure is logged.
func (s *Service) reloadAll() {
	if s.owning.Load() {
		s.cfg.Coordinator.ReloadAutopilot()
	}
	for kind, reload := range s.cfg.Reload {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := reload(ctx); err != nil {
			s.log.Error("cluster: cannot reload what other instances edit", "event", kind, "err", err)
		}
		cancel()
	}
}

// noteState keeps an agent state the owner published.
func (s *Service) noteState(from string, st agents.AgentState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from == s.owner {
		s.states[st.Name] = st
	}
}

// notify sends m at once (commands, answers), stamped with this instance.
func (s *Service) notify(ctx context.Context, m message) error {
	m.From = s.cfg.Instance
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return s.cfg.Store.Notify(ctx, string(b))
}

// send drains the Outbox in order, packing consecutive events into one
// notification up to its size limit.
func (s *Service) send(ctx context.Context) {
	var next *message
	for {
		var m message
		if next != nil {
			m, next = *next, nil
		} else {
			select {
			case <-ctx.Done():
				return
			case m = <-s.cfg.Outbox.queue:
			}
		}
		var payload []byte
		if m.Kind == kindEvents {
			payload, next = s.batch(m)
		} else {
			m.From = s.cfg.Instance
			payload, _ = json.Marshal(m)
		}
		if payload == nil {
			continue
		}
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.cfg.Store.Notify(nctx, string(payload))
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("cluster: cannot tell the other instances", "kind", m.Kind, "err", err)
		}
	}
}

// batch encodes m's events and those queued right behind it while they fit
// one notification; next is a queued message that did not.
func (s *Service) batch(m message) (payload []byte, next *message) {
	var raws []json.RawMessage
	size := 100 + len(s.cfg.Instance) // the envelope
	add := func(evs []agents.Event) bool {
		enc := make([]json.RawMessage, 0, len(evs))
		n := 0
		for _, e := range evs {
			b, err := encodeEvent(e)
			if err != nil {
				s.log.Warn("cluster: unencodable event", "kind", e.Kind, "err", err)
				continue
			}
			enc, n = append(enc, b), n+len(b)+1
		}
		if len(raws) > 0 && size+n > db.MaxNotifyPayload {
			return false
		}
		raws, size = append(raws, enc...), size+n
		return true
	}
	add(m.Events) // one message's events always fit: the Outbox queues one event a message, announce one state each
	for more := true; more; {
		select {
		case n := <-s.cfg.Outbox.queue:
			if n.Kind != kindEvents || !add(n.Events) {
				next, more = &n, false
			}
		default:
			more = false
		}
	}
	if len(raws) == 0 {
		return nil, next
	}
	payload, _ = json.Marshal(struct {
		From   string            `json:"from"`
		Kind   string            `json:"kind"`
		Events []json.RawMessage `json:"events"`
	}{s.cfg.Instance, kindEvents, raws})
	return payload, next
}

// execute runs a command another instance forwarded, and answers it.
func (s *Service) execute(from string, c command) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.FullCycleTimeout)
	defer cancel()
	e := s.cfg.Engine
	ans := answer{To: from, ID: c.ID}
	var err error
	switch c.Op {
	case opRun:
		var res agents.RunResult
		res, err = e.Ask(ctx, c.Agent, c.Trigger, time.Duration(c.TimeoutMS)*time.Millisecond)
		ans.Results = []wireResult{encodeResult(res)}
	case opRestart:
		err = e.Restart(ctx, c.Agent)
	case opStop:
		err = e.Stop(ctx, c.Agent)
	case opStart:
		err = e.Start(ctx, c.Agent)
	case opCrash:
		err = e.InjectPanic(ctx, c.Agent)
	case opFullCycle:
		var results []agents.RunResult
		results, err = s.cfg.Coordinator.RunFullCycle(ctx)
		for _, r := range results {
			ans.Results = append(ans.Results, encodeResult(r))
		}
	default:
		err = fmt.Errorf("cluster: unknown command %q", c.Op)
	}
	ans.Err = encodeError(err)
	nctx, ncancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ncancel()
	if err := s.notify(nctx, message{Kind: kindAnswer, Answer: &ans}); err != nil {
		s.log.Warn("cluster: cannot answer a command", "op", c.Op, "from", from, "err", err)
	}
}

// forward sends a command to the owner and waits up to wait for its answer.
func (s *Service) forward(ctx context.Context, c command, wait time.Duration) (answer, error) {
	s.mu.Lock()
	owner := s.owner
	s.mu.Unlock()
	if owner == "" || owner == s.cfg.Instance {
		// No owner, or this instance holds the lock but does not run the
		// engine yet (the takeover's wait).
		return answer{}, ErrNoOwner
	}
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return answer{}, err
	}
	c.ID = hex.EncodeToString(id[:])
	ch := make(chan answer, 1)
	s.mu.Lock()
	s.pending[c.ID] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, c.ID)
		s.mu.Unlock()
	}()
	if err := s.notify(ctx, message{Kind: kindCommand, Command: &c}); err != nil {
		return answer{}, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case a := <-ch:
		return a, a.Err.decode()
	case <-timer.C:
		return answer{}, fmt.Errorf("%w: the owner %s did not answer within %s", errNoAnswer, owner, wait)
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
}
