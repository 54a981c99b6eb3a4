package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// Live updates. One Hub listens to the agents' event bus and marks every
// open stream "dirty"; each stream then re-renders its surface's fragments
// from the database and sends them as one SSE message of <hx-partial>
// elements. Marking never blocks (a stream already dirty stays dirty once),
// so bursts coalesce, the bus is never held up, and a stream that cannot
// write within writeTimeout is dropped.

const (
	heartbeatEvery = 15 * time.Second
	writeTimeout   = 10 * time.Second
	// minRenderGap spaces out re-renders of one stream, so a burst of events
	// costs one render, while keeping updates well within a second.
	minRenderGap = 150 * time.Millisecond
)

// Hub fans engine events out to the open SSE streams.
type Hub struct {
	mu      sync.Mutex
	streams map[*stream]struct{}
	done    chan struct{}
	count   atomic.Int64
	seq     atomic.Int64
}

type stream struct {
	dirty chan struct{}
}

// NewHub starts a hub fed by the bus; it ends, closing every stream, when
// the bus closes (at shutdown).
func NewHub(bus *agents.Bus) *Hub {
	h := &Hub{streams: map[*stream]struct{}{}, done: make(chan struct{})}
	go h.run(bus)
	return h
}

func (h *Hub) run(bus *agents.Bus) {
	defer close(h.done)
	for {
		sub := bus.Subscribe(256)
		for range sub.C {
			h.markAll()
		}
		if !sub.Dropped() {
			return // the bus closed
		}
		// The bus dropped the hub for falling behind: events were missed,
		// so every stream re-renders, and the hub listens again.
		h.markAll()
	}
}

func (h *Hub) markAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams {
		select {
		case s.dirty <- struct{}{}:
		default: // already dirty: one render will cover both events
		}
	}
}

// Clients is the number of open streams (for metrics and tests).
func (h *Hub) Clients() int64 { return h.count.Load() }

func (h *Hub) add() *stream {
	s := &stream{dirty: make(chan struct{}, 1)}
	h.mu.Lock()
	h.streams[s] = struct{}{}
	h.mu.Unlock()
	h.count.Add(1)
	return s
}

func (h *Hub) remove(s *stream) {
	h.mu.Lock()
	delete(h.streams, s)
	h.mu.Unlock()
	h.count.Add(-1)
}

// errStreamEnded ends a stream whose reader may no longer see it.
var errStreamEnded = errors.New("the reader of this stream lost access")

// stillAllowed checks again, before each update, that the operator who
// opened the stream is still signed in (and still an admin when admin is
// set): a stream must not outlive its session.
func (s *Server) stillAllowed(ctx context.Context, r *http.Request, admin bool) error {
	c, err := r.Cookie(sessionCookieName)
	if err != nil {
		return errStreamEnded
	}
	u, err := s.store.SessionUser(ctx, db.HashToken(c.Value), s.now())
	switch {
	case errors.Is(err, db.ErrNotFound):
		return errStreamEnded
	case err != nil:
		return err
	case admin && u.Role != db.RoleAdmin:
		return errStreamEnded
	}
	return nil
}

// fragment is one live region: the id of its root element and its component.
type fragment struct {
	id string
	c  templ.Component
}

// fragments renders a surface's live regions for one client.
type fragments func(ctx context.Context) ([]fragment, error)

// serveStream runs one SSE stream until the client leaves, the server shuts
// down or a write fails. The first message is a full refresh of every
// fragment, which is also how a reconnecting client catches up on what it
// missed (whatever its Last-Event-ID).
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, render fragments) {
	if s.hub == nil {
		http.Error(w, "live updates are not running", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	// The server's write timeout (if any) must not cut a long-lived stream;
	// each write below gets its own deadline instead.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	st := s.hub.add()
	defer s.hub.remove(st)
	ctx := r.Context()
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	send := func() bool {
		msg, err := s.renderMessage(ctx, render)
		if errors.Is(err, errStreamEnded) || errors.Is(err, db.ErrNotFound) {
			return false // the reader lost access (signed out, token revoked)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("rendering live update", "err", err)
			}
			return ctx.Err() == nil // keep the stream; try again on the next event
		}
		return write(msg)
	}
	if !write([]byte("retry: 1000\n\n")) || !send() {
		return
	}
	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.hub.done:
			return
		case <-heartbeat.C:
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		case <-st.dirty:
			if !send() {
				return
			}
			select { // let a burst settle into one render
			case <-time.After(minRenderGap):
			case <-ctx.Done():
				return
			}
		}
	}
}

// renderMessage renders the fragments into one SSE message: each fragment
// wrapped in <hx-partial> targeting its own id, every line a data: line.
func (s *Server) renderMessage(ctx context.Context, render fragments) ([]byte, error) {
	frags, err := render(ctx)
	if err != nil {
		return nil, err
	}
	var html bytes.Buffer
	for _, f := range frags {
		fmt.Fprintf(&html, `<hx-partial hx-target="#%s" hx-swap="outerHTML">`, f.id)
		if err := f.c.Render(ctx, &html); err != nil {
			return nil, err
		}
		html.WriteString("</hx-partial>")
	}
	var msg bytes.Buffer
	msg.WriteString("id: " + strconv.FormatInt(s.hub.seq.Add(1), 10) + "\n")
	for _, line := range strings.Split(html.String(), "\n") {
		msg.WriteString("data: ")
		msg.WriteString(strings.TrimRight(line, "\r"))
		msg.WriteByte('\n')
	}
	msg.WriteByte('\n')
	return msg.Bytes(), nil
}
