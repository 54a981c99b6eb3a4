package app

import (
	"bytes"
	"context"
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
	// pageCacheSize and pageCacheBytes bound the kept pages (searches and
	// pages make many keys); past either the cache starts over.
	pageCacheSize  = 256
	pageCacheBytes = 4 << 20
)

// pageCache holds rendered pages by key.
type pageCache struct {
	hub     *Hub          // its change count; nil disables the cache
	changes atomic.Uint64 // state-changing requests served
	wall    func() time.Time

	mu       sync.Mutex
	pages    map[string]cachedPage
	bytes    int // the kept pages' size
	inflight map[string]*pageRender
}

// pageRender is one render of a page in progress; readers of the same page
// at the same version wait for it instead of rendering it again (at the
// moment a page goes stale, every reader would otherwise render it at once).
type pageRender struct {
	hubChanges, changes uint64
	done                chan struct{}
	body                []byte // nil when the render failed
}

type cachedPage struct {
	hubChanges, changes uint64
	at                  time.Time
	body                []byte
}

func newPageCache(hub *Hub) *pageCache {
	return &pageCache{hub: hub, wall: time.Now, pages: map[string]cachedPage{}, inflight: map[string]*pageRender{}}
}

// version is the change counts a page rendered now reflects.
func (c *pageCache) version() (hub, changes uint64) {
	return c.hub.changes.Load(), c.changes.Load()
}

// get returns the page stored under key when nothing changed since; else,
// when another reader is rendering it at the current version, it waits for
// that render. Otherwise the caller renders: lead is then non-nil, and the
// caller must finish it.
func (c *pageCache) get(ctx context.Context, key string) (body []byte, lead *pageRender) {
	if c.hub == nil {
		return nil, nil
	}
	hub, changes := c.version()
	c.mu.Lock()
	p, ok := c.pages[key]
	if ok && p.hubChanges == hub && p.changes == changes && c.wall().Sub(p.at) < pageMaxAge {
		c.mu.Unlock()
		return p.body, nil
	}
	if run, ok := c.inflight[key]; ok && run.hubChanges == hub && run.changes == changes {
		c.mu.Unlock()
		select {
		case <-run.done:
		case <-ctx.Done():
			return nil, nil // this reader left; render() will notice
		}
		if run.body != nil {
			return run.body, nil
		}
		return nil, nil // the other render failed: render alone
	}
	run := &pageRender{hubChanges: hub, changes: changes, done: make(chan struct{})}
	c.inflight[key] = run
	c.mu.Unlock()
	return nil, run
}

// finish ends the render lead of key with its result (nil when it failed),
// keeping the page and waking the readers that waited for it.
func (c *pageCache) finish(key string, lead *pageRender, at time.Time, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[key] == lead {
		delete(c.inflight, key)
	}
	lead.body = body
	close(lead.done)
	if body == nil {
		return
	}
	if len(c.pages) >= pageCacheSize || c.bytes+len(body) > pageCacheBytes {
		clear(c.pages)
		c.bytes = 0
	}
	if old, ok := c.pages[key]; ok {
		c.bytes -= len(old.body)
	}
	c.pages[key] = cachedPage{hubChanges: lead.hubChanges, changes: lead.changes, at: at, body: body}
	c.bytes += len(body)
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
	body, lead := s.pages.get(r.Context(), key)
	if body != nil {
		writeHTML(w, http.StatusOK, body)
		return
	}
	at := s.pages.wall()
	finished := false
	finish := func(body []byte) {
		if lead != nil && !finished {
			finished = true
			s.pages.finish(key, lead, at, body)
		}
	}
	// Deferred too, so that readers waiting for this render are released
	// even if it panics.
	defer finish(nil)
	c, err := page()
	if err != nil {
		finish(nil)
		s.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		finish(nil)
		s.renderFailed(w, r, err)
		return
	}
	// Released before this reader's own write: a slow client never holds
	// up the others.
	finish(buf.Bytes())
	writeHTML(w, http.StatusOK, buf.Bytes())
}

// writeHTML writes a rendered page.
func writeHTML(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
