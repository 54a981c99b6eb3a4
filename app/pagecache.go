package app

import (
	"bytes"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"
)

// Rendered pages, kept between changes. The dashboard and the control room
// are the same bytes for every reader of one audience (role, page, search)
// until something changes, so a view reads the database and renders once
// per change, not once per request. A change is anything that wakes the
// live views (an engine event, an admin action) and any state-changing
// request; pages also expire after pageMaxAge of wall-clock time, so
// relative times ("3 min ago") stay true and a change made outside this
// process shows within it.

const (
	// pageMaxAge bounds how long a rendered page is reused.
	pageMaxAge = time.Second
	// pageCacheSize bounds the kept pages (searches make many keys); past
	// it the cache starts over.
	pageCacheSize = 256
)

// pageCache holds rendered pages by key.
type pageCache struct {
	hub     *Hub          // its change count; nil disables the cache
	changes atomic.Uint64 // state-changing requests served
	wall    func() time.Time

	mu    sync.Mutex
	pages map[string]cachedPage
}

type cachedPage struct {
	hubChanges, changes uint64
	at                  time.Time
	body                []byte
}

func newPageCache(hub *Hub) *pageCache {
	return &pageCache{hub: hub, wall: time.Now, pages: map[string]cachedPage{}}
}

// version is the change counts a page rendered now reflects.
func (c *pageCache) version() (hub, changes uint64) {
	return c.hub.changes.Load(), c.changes.Load()
}

// get returns the page stored under key when nothing changed since.
func (c *pageCache) get(key string) ([]byte, bool) {
	if c.hub == nil {
		return nil, false
	}
	hub, changes := c.version()
	c.mu.Lock()
	p, ok := c.pages[key]
	c.mu.Unlock()
	if !ok || p.hubChanges != hub || p.changes != changes || c.wall().Sub(p.at) >= pageMaxAge {
		return nil, false
	}
	return p.body, true
}

// put stores a page rendered at the given version.
func (c *pageCache) put(key string, hub, changes uint64, at time.Time, body []byte) {
	if c.hub == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pages) >= pageCacheSize {
		clear(c.pages)
	}
	c.pages[key] = cachedPage{hubChanges: hub, changes: changes, at: at, body: body}
}

// invalidateOnChange counts every request that may change state (anything
// but GET and HEAD), once it is served: a page rendered while it ran is not
// reused after.
func (c *pageCache) invalidateOnChange(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			c.changes.Add(1)
		}
	})
}

// renderCached serves the page under key from the cache, or renders the
// component page builds and keeps it. A failed build is answered by fail.
func (s *Server) renderCached(w http.ResponseWriter, r *http.Request, key string, page func() (templ.Component, error)) {
	if body, ok := s.pages.get(key); ok {
		writeHTML(w, http.StatusOK, body)
		return
	}
	hub, changes := uint64(0), uint64(0)
	if s.pages.hub != nil {
		hub, changes = s.pages.version()
	}
	at := s.pages.wall()
	c, err := page()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		s.renderFailed(w, r, err)
		return
	}
	s.pages.put(key, hub, changes, at, buf.Bytes())
	writeHTML(w, http.StatusOK, buf.Bytes())
}

// writeHTML writes a rendered page.
func writeHTML(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
