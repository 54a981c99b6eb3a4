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
	"github.com/hossagent/hossagent/app/config"
)

// Live updates, rendered once per audience. The Hub listens to the agents'
// event bus. Every open stream watches one view: the admin control room
// with its search and table pages, the dashboard for one kind of reader and
// page, or one client's portal. An event marks every view stale; each view
// then renders its fragments once, from the database, and hands the same
// bytes to all of its streams. Rendering is coalesced (a burst of events is
// one render) and spaced by renderGap, so a view costs at most a few renders
// a second however many events arrive and however many readers watch it.
//
// Access is checked per stream without a database round trip per stream
// per event: before a view hands out a render, and once a second for idle
// views, the readers' sessions and portal links are checked in one batched
// query (see Hub.check); a stream whose reader lost access ends.
//
// Streams are bounded too (config.LiveStreams): per client address for
// the readers without a session (the public dashboard, portals), per
// session for signed-in readers, and in all. A stream past its owner's
// limit is refused with 429, past the total (or past maxViews) with 503,
// each with Retry-After (refuseStream); a stream's slot is freed when it
// ends.

const (
	heartbeatEvery = 15 * time.Second
	writeTimeout   = 10 * time.Second
	// renderGap spaces out the renders of one view, so a burst of events
	// costs one render, while keeping updates well within a second.
	renderGap = 150 * time.Millisecond
	// accessSweepEvery is how often idle streams' access is checked again:
	// a revoked session ends its streams within about this long.
	accessSweepEvery = 750 * time.Millisecond
	// renderTimeout bounds one render of a view.
	renderTimeout = 10 * time.Second
	// sessionTouchEvery is how often live readers' sessions are marked as
	// seen (a reader watching a live page is not idle).
	sessionTouchEvery = time.Minute
	// refreshEvery re-renders every view even without an event, so figures
	// that move with the clock (overdue money, "3 min ago") stay true; an
	// update carries only what changed.
	refreshEvery = time.Minute
	// maxViews bounds the distinct views (an event costs one render per
	// view), and maxAnonymousViews the share the public dashboard's
	// readers, who choose their pages, may take of it. A stream that would
	// open one more is refused with 503 (its client retries).
	maxViews          = 512
	maxAnonymousViews = 64
	// renderSlots is how many views render at once: each render holds a
	// database connection, and the agents need theirs.
	renderSlots = 2
	// maxRetryGap bounds the back-off of a view whose renders keep failing.
	maxRetryGap = 5 * time.Second
	// reconnectRetry is the SSE retry: field every stream starts with, the
	// browser's first wait before it reconnects (the pages' htmx-config caps
	// the back-off after it at liveReconnectMax, views/layout.templ), so a
	// restarted server has its pages live again within about a second.
	reconnectRetry = "retry: 500\n\n"
	// sessionEnded is the last message of a stream whose reader lost access
	// (signed out, session expired, portal link revoked): a named event with
	// no data, which the page shows as "session ended" and which closes the
	// stream for good (hx-sse:close), where a plain end would reconnect.
	sessionEnded = "event: session-ended\n\n"
)

// Why a stream is refused. The first two are about the client (429: it
// holds too many already), the last two about the server (503: busy).
var (
	errStreamsPerAddress = errors.New("too many live streams from this address")
	errStreamsPerUser    = errors.New("too many live streams for this account")
	errTooManyStreams    = errors.New("too many live streams are open")
	errTooManyViews      = errors.New("too many live views are open")
)

// fragment is one live region: the id of its root element and its component.
type fragment struct {
	id string
	c  templ.Component
}

// fragments renders a view's live regions. It is called once per render
// for every stream of the view, so it must depend on nothing but the view.
type fragments func(ctx context.Context) ([]fragment, error)

// reader is who a stream is for, as the access check sees it: a session
// (and whether it must be an admin's) or a portal link, by hash.
type reader struct {
	session   string // SHA-256 of the session cookie; "" when anonymous
	admin     bool   // the session must still be an admin's
	portal    string // SHA-256 of the portal token
	anonymous bool   // the public dashboard: nothing to check
}

// AccessCheck reports which readers may still watch their streams; it is
// called with every distinct reader of a batch of streams at once.
type AccessCheck func(ctx context.Context, readers []reader, touch bool) (map[reader]bool, error)

// Hub fans engine events out to the open SSE streams, by view.
type Hub struct {
	mu    sync.Mutex
	views map[string]*liveView
	done  chan struct{}
	count atomic.Int64
	seq   atomic.Int64
	// Renders counts view renders (metrics, and the proof that one event
	// costs one render per view, not per stream).
	renders atomic.Int64
	// changes counts markAll calls: a page rendered before the latest one
	// is stale (pagecache.go).
	changes atomic.Uint64
	check   atomic.Pointer[AccessCheck]
	now     func() time.Time
	// slots bounds concurrent renders (renderSlots).
	slots chan struct{}
	// guarded by mu: how many views anonymous readers opened.
	anonymousViews int
	// guarded by mu: open streams without a session (public dashboard,
	// portals) that take an owner's slot; at most half of LiveStreams.Max.
	sessionless int
	// guarded by mu: the stream limits (config.LiveStreams), the open
	// streams per owner (a client address or a user, see streamOwner),
	// and a test's hook run each time a stream lets go of its slot.
	limits    config.LiveStreams
	owners    map[string]int
	onRelease func()
}

// liveView is one audience: its render, its streams, and the latest bytes.
type liveView struct {
	key       string
	render    fragments
	anonymous bool // opened by a public-dashboard reader (maxAnonymousViews)
	wake      chan struct{}
	// guarded by Hub.mu
	streams map[*stream]struct{}
	pending time.Time // when the oldest event not yet rendered arrived
	last    []byte    // the latest full render, while no event made it stale
	// sent is each fragment's HTML as last handed to the streams; only
	// serveView's goroutine touches it. An update carries only the
	// fragments that differ from it.
	sent map[string]string
	// failures counts renders that failed in a row (serveView only): the
	// retries back off, so a lasting error is not logged every renderGap.
	failures int
}

// stream is one open SSE response.
type stream struct {
	who   reader
	owner string      // whose slot it holds (Hub.owners); "" for none
	out   chan []byte // capacity 1: a slow stream gets the latest render only
	ended chan struct{}
	once  sync.Once
	// needsFull marks a stream that has no full picture yet (it joined
	// while the view was stale): its next message is the full render.
	needsFull atomic.Bool
}

func (st *stream) end() { st.once.Do(func() { close(st.ended) }) }

// deliver hands the stream its next message without ever waiting: the
// update when the stream has written everything before it, else the full
// render in place of the message it has not written yet (an update alone
// would lose the changes of the one it replaces). A stream without a full
// picture yet gets full.
func (st *stream) deliver(update, full []byte, stampedFull func() []byte) {
	msg := update
	if st.needsFull.Swap(false) {
		msg = full
	}
	if msg == nil {
		return
	}
	for range 2 {
		select {
		case st.out <- msg:
			return
		default:
		}
		select {
		case <-st.out:
			msg = stampedFull()
		default:
		}
	}
}

// NewHub starts a hub fed by the bus; it ends, closing every stream, when
// the bus closes (at shutdown).
func NewHub(bus *agents.Bus) *Hub {
	h := &Hub{views: map[string]*liveView{}, done: make(chan struct{}), now: time.Now, slots: make(chan struct{}, renderSlots),
		limits: config.DefaultLiveStreams(), owners: map[string]int{}}
	// Subscribed before NewHub returns, so no event published after it is
	// missed.
	go h.run(bus, bus.Subscribe(256))
	go h.sweep()
	go h.refresh()
	return h
}

// setStreamLimits sets the stream limits (the Server does, from its
// configuration; a limit left at 0 keeps its default); streams already open
// keep their slots.
func (h *Hub) setStreamLimits(l config.LiveStreams) {
	def := config.DefaultLiveStreams()
	if l.PerAddress < 1 {
		l.PerAddress = def.PerAddress
	}
	if l.PerUser < 1 {
		l.PerUser = def.PerUser
	}
	if l.Max < 1 {
		l.Max = def.Max
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.limits = l
}

// streamLimits are the stream limits in force.
func (h *Hub) streamLimits() config.LiveStreams {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.limits
}

// setOnRelease installs a hook run (outside the hub's lock) each time a
// stream ends and frees its slot; tests wait on it.
func (h *Hub) setOnRelease(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onRelease = f
}

// setAccessCheck installs how readers are checked (the Server does, with
// its store and clock). Without one, every reader keeps its stream.
func (h *Hub) setAccessCheck(c AccessCheck) { h.check.Store(&c) }

func (h *Hub) run(bus *agents.Bus, sub *agents.Subscription) {
	defer close(h.done)
	for {
		for range sub.C {
			h.markAll()
		}
		if !sub.Dropped() {
			return // the bus closed
		}
		// The bus dropped the hub for falling behind: events were missed,
		// so every view re-renders, and the hub listens again.
		sub = bus.Subscribe(256)
		h.markAll()
	}
}

// refresh marks every view stale each refreshEvery.
func (h *Hub) refresh() {
	tick := time.NewTicker(refreshEvery)
	defer tick.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-tick.C:
			h.markAll()
		}
	}
}

// markAll makes every view stale and wakes it. It never blocks: a view
// already woken renders once for all the events that arrived meanwhile.
func (h *Hub) markAll() {
	h.changes.Add(1)
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.views {
		if v.pending.IsZero() {
			v.pending = now
		}
		v.last = nil
		v.poke()
	}
}

func (v *liveView) poke() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// Clients is the number of open streams (for metrics and tests).
func (h *Hub) Clients() int64 { return h.count.Load() }

// Renders is how many view renders the hub has done.
func (h *Hub) Renders() int64 { return h.renders.Load() }

// subscribe adds a stream to the view key (created with render when it is
// the first) and returns it with the view's latest render, or nil when the
// view must render first (it is then woken, and the stream gets that render).
// owner is whose slot the stream takes (streamOwner; "" takes none, for
// the hub's own benchmarks). It refuses a stream past the owner's limit
// (errStreamsPerAddress, errStreamsPerUser), past LiveStreams.Max
// (errTooManyStreams), or one that would open a new view past maxViews (or
// maxAnonymousViews).
func (h *Hub) subscribe(key string, render fragments, who reader, owner string) (*stream, []byte, error) {
	st := &stream{who: who, owner: owner, out: make(chan []byte, 1), ended: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if owner != "" {
		if who.session != "" && h.owners[owner] >= h.limits.PerUser {
			return nil, nil, errStreamsPerUser
		}
		if who.session == "" && h.owners[owner] >= h.limits.PerAddress {
			return nil, nil, errStreamsPerAddress
		}
	}
	if h.count.Load() >= int64(h.limits.Max) {
		return nil, nil, errTooManyStreams
	}
	if who.session == "" && owner != "" && h.sessionless >= max(1, h.limits.Max/2) {
		return nil, nil, errTooManyStreams
	}
	v, ok := h.views[key]
	if !ok {
		if len(h.views) >= maxViews || (who.anonymous && h.anonymousViews >= maxAnonymousViews) {
			return nil, nil, errTooManyViews
		}
		v = &liveView{key: key, render: render, anonymous: who.anonymous, wake: make(chan struct{}, 1),
			streams: map[*stream]struct{}{}, sent: map[string]string{}}
		h.views[key] = v
		if v.anonymous {
			h.anonymousViews++
		}
		go h.serveView(v)
	}
	v.streams[st] = struct{}{}
	h.count.Add(1)
	if owner != "" {
		h.owners[owner]++
		if who.session == "" {
			h.sessionless++
		}
	}
	if v.last == nil {
		st.needsFull.Store(true)
		v.poke()
	}
	return st, v.last, nil
}

// unsubscribe removes a stream and frees its slot; the last one out ends
// its view.
func (h *Hub) unsubscribe(key string, st *stream) {
	h.mu.Lock()
	released := h.release(key, st)
	hook := h.onRelease
	h.mu.Unlock()
	if released && hook != nil {
		hook()
	}
}

// release is unsubscribe under h.mu; it reports whether st held a slot.
func (h *Hub) release(key string, st *stream) bool {
	v, ok := h.views[key]
	if !ok {
		return false
	}
	_, held := v.streams[st]
	if held {
		delete(v.streams, st)
		h.count.Add(-1)
		if st.owner != "" {
			if h.owners[st.owner]--; h.owners[st.owner] <= 0 {
				delete(h.owners, st.owner)
			}
			if st.who.session == "" {
				h.sessionless--
			}
		}
	}
	if len(v.streams) == 0 {
		delete(h.views, key)
		if v.anonymous {
			h.anonymousViews--
		}
		close(v.wake) // ends serveView
	}
	return held
}

// serveView renders v each time it is woken, at most once per renderGap.
func (h *Hub) serveView(v *liveView) {
	for {
		select {
		case _, ok := <-v.wake:
			if !ok {
				return
			}
		case <-h.done:
			return
		}
		h.renderView(v)
		select {
		case <-time.After(retryGap(v.failures)):
		case <-h.done:
			return
		}
	}
}

// retryGap is how long a view waits before its next render: renderGap,
// doubled for each render that failed in a row, up to maxRetryGap.
func retryGap(failures int) time.Duration {
	gap := renderGap
	for range min(failures, 6) {
		gap *= 2
	}
	return min(gap, maxRetryGap)
}

// renderView renders v once and hands the bytes to every stream whose
// reader may still see them: the fragments that changed since the last
// render (nothing at all when none did), or the full render to a stream
// that has none yet. A render or access check that fails keeps the change
// pending and wakes the view again, so it is retried after renderGap.
func (h *Hub) renderView(v *liveView) {
	h.mu.Lock()
	published := v.pending
	v.pending = time.Time{}
	h.mu.Unlock()

	select { // a render slot: at most renderSlots views read the database at once
	case h.slots <- struct{}{}:
	case <-h.done:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), renderTimeout)
	parts, err := renderParts(ctx, v.render)
	cancel()
	<-h.slots
	h.renders.Add(1)
	if err != nil {
		v.failures++
		h.retry(v, published) // logged by the render
		return
	}
	v.failures = 0
	h.mu.Lock()
	streams := make([]*stream, 0, len(v.streams))
	for st := range v.streams {
		streams = append(streams, st)
	}
	h.mu.Unlock()
	checkCtx, cancelCheck := context.WithTimeout(context.Background(), renderTimeout)
	allowed, checked := h.allowed(checkCtx, streams, false)
	cancelCheck()
	if !checked {
		// Whether the readers may still see it is unknown: hold it.
		h.retry(v, published)
		return
	}

	full := h.message(parts)
	var changed []part
	for _, p := range parts {
		if v.sent[p.id] != p.html {
			changed = append(changed, p)
			v.sent[p.id] = p.html
		}
	}
	var update []byte
	if len(changed) > 0 {
		update = stamp(h.message(changed), published)
	}
	h.mu.Lock()
	if v.pending.IsZero() {
		v.last = full // nothing changed while rendering: new streams may reuse it
	}
	h.mu.Unlock()
	// A full render that replaces an update a slow stream has not written
	// yet carries the update's stamp, so the load tool still times it
	// (copied only if some stream needs it).
	stampedFull := sync.OnceValue(func() []byte { return stamp(full, published) })
	for _, st := range streams {
		if allowed(st) {
			st.deliver(update, full, stampedFull)
		} else {
			st.end()
		}
	}
}

// retry puts a change that could not be handed out back as pending and
// wakes the view (serveView waits renderGap first).
func (h *Hub) retry(v *liveView, published time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v.pending.IsZero() {
		v.pending = published
		if published.IsZero() {
			v.pending = h.now()
		}
	}
	v.last = nil
	if h.views[v.key] == v { // not closed by its last stream meanwhile
		v.poke()
	}
}

// sweep checks every stream's reader again each accessSweepEvery, so a
// stream of an idle view ends soon after its session or link does; once a
// minute it also marks the live readers' sessions as seen.
func (h *Hub) sweep() {
	tick := time.NewTicker(accessSweepEvery)
	defer tick.Stop()
	lastTouch := time.Time{}
	for {
		select {
		case <-h.done:
			return
		case <-tick.C:
		}
		h.mu.Lock()
		var streams []*stream
		for _, v := range h.views {
			for st := range v.streams {
				streams = append(streams, st)
			}
		}
		h.mu.Unlock()
		if len(streams) == 0 {
			continue
		}
		touch := h.now().Sub(lastTouch) >= sessionTouchEvery
		if touch {
			lastTouch = h.now()
		}
		ctx, cancel := context.WithTimeout(context.Background(), renderTimeout)
		allowed, checked := h.allowed(ctx, streams, touch)
		cancel()
		if !checked {
			continue
		}
		for _, st := range streams {
			if !allowed(st) {
				st.end()
			}
		}
	}
}

// allowed checks the distinct readers of streams in one call to the access
// check. checked is false when the check itself failed (the database is
// busy): the caller then neither hands out nor ends anything, and the next
// check decides.
func (h *Hub) allowed(ctx context.Context, streams []*stream, touch bool) (allowed func(*stream) bool, checked bool) {
	all := func(*stream) bool { return true }
	check := h.check.Load()
	if check == nil {
		return all, true
	}
	seen := map[reader]bool{}
	var readers []reader
	for _, st := range streams {
		if !st.who.anonymous && !seen[st.who] {
			seen[st.who] = true
			readers = append(readers, st.who)
		}
	}
	if len(readers) == 0 {
		return all, true
	}
	ok, err := (*check)(ctx, readers, touch)
	if err != nil {
		return nil, false
	}
	return func(st *stream) bool { return st.who.anonymous || ok[st.who] }, true
}

// part is one rendered fragment.
type part struct{ id, html string }

// renderParts renders each fragment of a view.
func renderParts(ctx context.Context, render fragments) ([]part, error) {
	frags, err := render(ctx)
	if err != nil {
		return nil, err
	}
	parts := make([]part, len(frags))
	var buf bytes.Buffer
	for i, f := range frags {
		buf.Reset()
		if err := f.c.Render(ctx, &buf); err != nil {
			return nil, err
		}
		parts[i] = part{id: f.id, html: buf.String()}
	}
	return parts, nil
}

// message is one SSE message of parts: each wrapped in <hx-partial>
// targeting its own id, every line a data: line.
func (h *Hub) message(parts []part) []byte {
	var html strings.Builder
	for _, p := range parts {
		// A morph, not a replacement: the nodes that did not change stay, so
		// a live update keeps the reader's focus, typing, scroll position and
		// selection (assets/js/live.js keeps open <details> and restores what
		// a morph cannot).
		fmt.Fprintf(&html, `<hx-partial hx-target="#%s" hx-swap="outerMorph">`, p.id)
		html.WriteString(p.html)
		html.WriteString("</hx-partial>")
	}
	var msg bytes.Buffer
	msg.Grow(html.Len() + html.Len()/8 + 32)
	msg.WriteString("id: " + strconv.FormatInt(h.seq.Add(1), 10) + "\n")
	// SSE ends a line at \r, \n or \r\n: every one becomes a data: line of
	// its own, so no text (an imported name, an LLM result) can end the
	// message early or inject a field.
	text := strings.ReplaceAll(strings.ReplaceAll(html.String(), "\r\n", "\n"), "\r", "\n")
	for line := range strings.SplitSeq(text, "\n") {
		msg.WriteString("data: ")
		msg.WriteString(line)
		msg.WriteByte('\n')
	}
	msg.WriteByte('\n')
	return msg.Bytes()
}

// stamp prefixes a message with the time the change it shows was published,
// as an SSE comment (browsers ignore it; the load tool measures the delay
// from it). A render without a change behind it (a new stream's first
// refresh) carries none.
func stamp(body []byte, published time.Time) []byte {
	if published.IsZero() {
		return body
	}
	prefix := ": published " + strconv.FormatInt(published.UnixNano(), 10) + "\n"
	return append([]byte(prefix), body...)
}

// serveStream runs one SSE stream on the view key until the client leaves,
// the server shuts down, the reader loses access or a write fails. The first
// message is a full refresh of every fragment (the view's latest render, or
// a fresh one), which is also how a reconnecting client catches up on what
// it missed (whatever its Last-Event-ID).
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, key string, who reader, render fragments) {
	if s.hub == nil {
		http.Error(w, "live updates are not running", http.StatusServiceUnavailable)
		return
	}
	st, first, err := s.hub.subscribe(key, s.logRenderErrors(render), who, s.streamOwner(r, who))
	if err != nil {
		s.refuseStream(w, r, err)
		return
	}
	defer s.hub.unsubscribe(key, st)
	rc := http.NewResponseController(w)
	// The server's write timeout (if any) must not cut a long-lived stream;
	// each write below gets its own deadline instead.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte(reconnectRetry)) || (first != nil && !write(first)) {
		return
	}
	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.hub.done:
			return
		case <-st.ended:
			// The reader lost access (signed out, link revoked): say so, so
			// the page shows it instead of reconnecting into a 401.
			write([]byte(sessionEnded))
			return
		case <-heartbeat.C:
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		case msg := <-st.out:
			if !write(msg) {
				return
			}
		}
	}
}

// logRenderErrors logs a view's failed render once (not once per stream).
func (s *Server) logRenderErrors(render fragments) fragments {
	return func(ctx context.Context) ([]fragment, error) {
		frags, err := render(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("rendering live update", "err", err)
		}
		return frags, err
	}
}
