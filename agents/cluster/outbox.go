package cluster

import (
	"sync/atomic"

	"github.com/hossagent/hossagent/agents"
)

// queueSize bounds the events waiting to cross. Past it an event still
// reaches this instance's bus but not the others': their live views miss
// one re-render trigger (the next event, or the minute's refresh, renders
// them from the database), and the owner's periodic snapshot corrects the
// agent states a standby shows.
const queueSize = 4096

// Outbox is the events' Publisher on PostgreSQL: what the engine, the
// coordinator and the web layer publish goes to this instance's bus, as on
// SQLite, and is queued to cross to the other instances (the Service sends
// it). Events received from the others go to the bus alone, never back
// through an Outbox: that is what makes an echo impossible.
type Outbox struct {
	bus     *agents.Bus
	queue   chan message
	dropped atomic.Int64
}

// NewOutbox publishes on bus, and queues for the Service that sends.
func NewOutbox(bus *agents.Bus) *Outbox {
	return &Outbox{bus: bus, queue: make(chan message, queueSize)}
}

// Publish hands e to this instance's subscribers and queues it for the
// others. It never blocks.
func (o *Outbox) Publish(e agents.Event) {
	o.bus.Publish(e)
	o.enqueue(message{Kind: kindEvents, Events: []agents.Event{e}})
}

// PublishToPeers queues e for the other instances only: this one acted on
// it already (agents.PeerPublisher).
func (o *Outbox) PublishToPeers(e agents.Event) {
	o.enqueue(message{Kind: kindEvents, Events: []agents.Event{e}})
}

// enqueue queues m for the sender, or drops it when the queue is full.
func (o *Outbox) enqueue(m message) {
	select {
	case o.queue <- m:
	default:
		o.dropped.Add(1)
	}
}

// Dropped counts the messages that found the queue full.
func (o *Outbox) Dropped() int64 { return o.dropped.Load() }
