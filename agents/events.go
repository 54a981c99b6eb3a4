package agents

import (
	"sync"
	"time"
)

// Event kinds published on the bus.
const (
	EventCycleStarted  = "cycle_started"
	EventCycleFinished = "cycle_finished"
	EventAgentState    = "agent_state"
	EventMoneyChanged  = "money_changed"
	EventDataChanged   = "data_changed" // leads, customers, tasks or invoices changed
	EventTickSkipped   = "tick_skipped"
)

// Event is one thing that happened in the engine, for live views.
type Event struct {
	Kind    string
	Agent   string // the agent concerned, if any
	At      time.Time
	Outcome string // for cycle_finished: ok, failed, panicked
	Message string
	Counts  Counts
	State   *AgentState // for agent_state
	Subject string      // what changed: "task 12", "invoice 3"
}

// Bus is the in-process event bus. Subscribers get a buffered channel; a
// subscriber whose buffer is full is dropped (its channel closed) instead of
// being waited for, so a slow web client never stalls an agent.
type Bus struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// Subscription is one listener on the bus.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	bus     *Bus
	dropped bool
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: map[*Subscription]struct{}{}} }

// Subscribe adds a listener with room for buffer pending events.
func (b *Bus) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, bus: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(c)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// Publish hands e to every subscriber that has room and drops the others.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped = true
			delete(b.subs, s)
			close(s.c)
		}
	}
}

// Dropped reports whether the bus dropped this subscriber for being slow.
// Valid after C is closed.
func (s *Subscription) Dropped() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.dropped
}

// Close removes the subscriber; its channel is closed.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	if _, ok := s.bus.subs[s]; ok {
		delete(s.bus.subs, s)
		close(s.c)
	}
}

// Close closes every subscription (at shutdown, so SSE streams end).
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.c)
	}
}

// Subscribers counts the current listeners.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
