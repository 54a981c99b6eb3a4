package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// liveStream is one open stream of a limits test; cancel closes it.
type liveStream struct {
	msgs   <-chan sseMessage
	cancel context.CancelFunc
}

// tryStream opens path as the client at ip (through the trusted proxy
// header) with c's cookies. On 200 it returns the open stream (its first
// message read); otherwise the status, Retry-After and body.
func (f *fixture) tryStream(t *testing.T, c *http.Client, path, ip string) (*liveStream, int, string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(testClientIPHeader, ip)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		cancel()
		return nil, resp.StatusCode, resp.Header.Get("Retry-After"), string(body)
	}
	t.Cleanup(func() { resp.Body.Close() })
	st := &liveStream{msgs: readSSE(resp), cancel: cancel}
	nextMessage(t, st.msgs)
	return st, http.StatusOK, "", ""
}

// syncLog is a log the server writes from its connection goroutines while
// the test reads it.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// releases reports each stream the hub lets go of.
func releases(hub *Hub) <-chan struct{} {
	c := make(chan struct{}, 64)
	hub.setOnRelease(func() { c <- struct{}{} })
	return c
}

func waitRelease(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("the hub did not let go of a closed stream")
	}
}

// TestLiveStreamsCappedPerAddress: one anonymous address cannot hold more
// than LiveStreams.PerAddress streams of the public dashboard (nor of a
// portal); past it, a clear 429 with Retry-After. Other addresses are
// served, and a slot frees when a stream ends.
func TestLiveStreamsCappedPerAddress(t *testing.T) {
	bus := agents.NewBus()
	var hub *Hub
	logs := &syncLog{}
	f := newFixture(t, map[string]string{"DASHBOARD_PUBLIC": "true"}, func(d *Deps) {
		hub = NewHub(bus)
		d.Live, d.ClientIPHeader, d.Logger = hub, testClientIPHeader, slog.New(slog.NewTextHandler(logs, nil))
	})
	f.seed(t)
	released := releases(hub)
	limit := hub.streamLimits().PerAddress
	if limit != 8 {
		t.Fatalf("default per-address limit = %d, want 8", limit)
	}
	const abuser = "203.0.113.50"
	var open []*liveStream
	portal := f.portalClient(t, f.token)
	for i := range limit {
		// The public dashboard and a portal share the address's budget.
		path, client := "/events/dashboard", http.DefaultClient
		if i%4 == 3 {
			path, client = "/events/portal", portal
		}
		st, status, _, body := f.tryStream(t, client, path, abuser)
		if st == nil {
			t.Fatalf("stream %d = %d %s", i+1, status, body)
		}
		open = append(open, st)
	}
	for _, path := range []string{"/events/dashboard", "/events/dashboard?page=2-o1", "/events/portal"} {
		st, status, retry, body := f.tryStream(t, portal, path, abuser)
		if st != nil || status != http.StatusTooManyRequests || retry == "" || !strings.Contains(body, "Too many live streams from this address") {
			t.Errorf("%s past the limit = %d (Retry-After %q) %q, want 429 with Retry-After", path, status, retry, body)
		}
	}
	// The same /64 is the same client; the next /64 and other addresses are not.
	if st, status, _, _ := f.tryStream(t, http.DefaultClient, "/events/dashboard", "2001:db8:5:5::1"); st == nil {
		t.Fatalf("IPv6 client = %d", status)
	}
	for i := range limit - 1 {
		if st, status, _, _ := f.tryStream(t, http.DefaultClient, "/events/dashboard", fmt.Sprintf("2001:db8:5:5::%x", i+2)); st == nil {
			t.Fatalf("IPv6 stream %d = %d", i+2, status)
		}
	}
	if st, status, _, _ := f.tryStream(t, http.DefaultClient, "/events/dashboard", "2001:db8:5:5:ffff::9"); status != http.StatusTooManyRequests {
		t.Errorf("same /64, one stream too many = %d (open: %v), want 429", status, st != nil)
	}
	if st, status, _, _ := f.tryStream(t, http.DefaultClient, "/events/dashboard", "198.51.100.99"); st == nil {
		t.Errorf("another address = %d, want its stream", status)
	}

	// One stream ends: its slot is free again.
	open[0].cancel()
	waitRelease(t, released)
	if st, status, _, body := f.tryStream(t, http.DefaultClient, "/events/dashboard", abuser); st == nil {
		t.Errorf("after one stream closed = %d %s, want a stream", status, body)
	}
	if st, status, _, _ := f.tryStream(t, http.DefaultClient, "/events/dashboard", abuser); status != http.StatusTooManyRequests {
		t.Errorf("and then one more = %d (open: %v), want 429", status, st != nil)
	}
	if !strings.Contains(logs.String(), "live stream refused") {
		t.Error("refusals are not logged")
	}
}

// TestLiveStreamsCappedPerUser: a signed-in user holds at most
// LiveStreams.PerUser streams, from however many addresses and sessions (a
// correct password opens any number of sessions); another user is counted
// on their own.
func TestLiveStreamsCappedPerUser(t *testing.T) {
	bus := agents.NewBus()
	var hub *Hub
	f := newFixture(t, nil, func(d *Deps) { hub = NewHub(bus); d.Live = hub; d.ClientIPHeader = testClientIPHeader })
	f.seed(t)
	released := releases(hub)
	u := f.signInAs(t, db.RoleAdmin)
	limit := hub.streamLimits().PerUser
	if limit != 16 {
		t.Fatalf("default per-user limit = %d, want 16", limit)
	}
	var open []*liveStream
	for i := range limit {
		path := []string{"/events/admin", "/events/dashboard", "/events/admin?q=acme"}[i%3]
		st, status, _, body := f.tryStream(t, f.client, path, fmt.Sprintf("192.0.2.%d", i+1))
		if st == nil {
			t.Fatalf("stream %d = %d %s", i+1, status, body)
		}
		open = append(open, st)
	}
	st, status, retry, body := f.tryStream(t, f.client, "/events/admin", "198.51.100.1")
	if st != nil || status != http.StatusTooManyRequests || retry == "" || !strings.Contains(body, "Too many live streams for this account") {
		t.Errorf("past the user's limit = %d (Retry-After %q) %q, want 429", status, retry, body)
	}
	again := f.signIn(t, u.Email)
	if st, status, _, _ := f.tryStream(t, again, "/events/admin", "198.51.100.1"); st != nil || status != http.StatusTooManyRequests {
		t.Errorf("another session of the same user = %d, want 429", status)
	}
	f.createUser(t, "second-admin@example.com", db.RoleAdmin)
	other := f.signIn(t, "second-admin@example.com")
	if st, status, _, _ := f.tryStream(t, other, "/events/admin", "198.51.100.1"); st == nil {
		t.Errorf("another user = %d, want their stream", status)
	}
	open[5].cancel()
	waitRelease(t, released)
	if st, status, _, _ := f.tryStream(t, f.client, "/events/admin", "198.51.100.1"); st == nil {
		t.Errorf("after one stream closed = %d, want a stream", status)
	}
}

// TestLiveStreamsCappedOverall: streams without a session take at most
// half of LiveStreams.Max, so anonymous readers never shut the operators
// out; past Max any new stream is refused with 503 and Retry-After until
// one closes.
func TestLiveStreamsCappedOverall(t *testing.T) {
	bus := agents.NewBus()
	var hub *Hub
	f := newFixture(t, map[string]string{"DASHBOARD_PUBLIC": "true", "LIVE_STREAMS_MAX": "4"},
		func(d *Deps) { hub = NewHub(bus); d.Live = hub; d.ClientIPHeader = testClientIPHeader })
	f.seed(t)
	released := releases(hub)
	var open []*liveStream
	for i := range 2 {
		st, status, _, _ := f.tryStream(t, http.DefaultClient, "/events/dashboard", fmt.Sprintf("192.0.2.%d", i+1))
		if st == nil {
			t.Fatalf("anonymous stream %d = %d", i+1, status)
		}
		open = append(open, st)
	}
	st, status, retry, body := f.tryStream(t, http.DefaultClient, "/events/dashboard", "198.51.100.1")
	if st != nil || status != http.StatusServiceUnavailable || retry == "" || !strings.Contains(body, "busy") {
		t.Errorf("an anonymous stream past half the maximum = %d (Retry-After %q) %q, want 503", status, retry, body)
	}
	f.signInAs(t, db.RoleAdmin)
	for i := range 2 {
		if st, status, _, body := f.tryStream(t, f.client, "/events/admin", "198.51.100.9"); st == nil {
			t.Fatalf("operator stream %d beside the anonymous ones = %d %s", i+1, status, body)
		}
	}
	st, status, retry, body = f.tryStream(t, f.client, "/events/admin", "198.51.100.9")
	if st != nil || status != http.StatusServiceUnavailable || retry == "" || !strings.Contains(body, "busy") {
		t.Errorf("one stream past the maximum = %d (Retry-After %q) %q, want 503", status, retry, body)
	}
	open[1].cancel()
	waitRelease(t, released)
	if st, status, _, _ := f.tryStream(t, http.DefaultClient, "/events/dashboard", "198.51.100.1"); st == nil {
		t.Errorf("after one stream closed = %d, want a stream", status)
	}
	if hub.Clients() != 4 {
		t.Errorf("clients = %d, want 4", hub.Clients())
	}
}
