package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// TestOneEventRendersOncePerView opens many streams on three views (the
// control room, the same control room under a search, and the dashboard),
// publishes one event, and proves that every stream gets the update, that
// the streams of one view get the same bytes, and that the event cost one
// render per view, not one per stream.
func TestOneEventRendersOncePerView(t *testing.T) {
	bus := agents.NewBus()
	var hub *Hub
	// One session holds all 40 streams here.
	f := newFixture(t, map[string]string{"LIVE_STREAMS_PER_USER": "40"}, func(d *Deps) { hub = NewHub(bus); d.Live = hub })
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	paths := map[string]int{"/events/admin": 20, "/events/admin?q=northwind": 5, "/events/dashboard": 15}
	streams := map[string][]<-chan sseMessage{}
	for path, n := range paths {
		for range n {
			_, msgs := openStream(t, f.client, f.srv.URL+path)
			nextMessage(t, msgs) // the full refresh
			streams[path] = append(streams[path], msgs)
		}
	}
	if hub.Clients() != 40 {
		t.Fatalf("clients = %d, want 40", hub.Clients())
	}
	before := hub.Renders()
	f.payOpenInvoices(t)
	bus.Publish(agents.Event{Kind: agents.EventMoneyChanged, Agent: agents.Billing})
	for path, list := range streams {
		var first string
		for i, msgs := range list {
			m := nextMessage(t, msgs)
			if !strings.Contains(m.data, "$249.00") {
				t.Fatalf("%s stream %d: update without the new revenue", path, i)
			}
			if i == 0 {
				first = m.id + m.data
			} else if m.id+m.data != first {
				t.Errorf("%s stream %d got other bytes than stream 0", path, i)
			}
		}
	}
	if got := hub.Renders() - before; got != int64(len(paths)) {
		t.Errorf("one event cost %d renders for %d views, want one per view", got, len(paths))
	}
}

// TestStreamUpdateCarriesItsPublishTime: an update says when the change it
// shows was published (an SSE comment the load tool reads); the first full
// refresh of a new stream carries none.
func TestStreamUpdateCarriesItsPublishTime(t *testing.T) {
	bus := agents.NewBus()
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	f.signInAs(t, db.RoleViewer)
	resp, err := f.client.Get(f.srv.URL + "/events/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 256)
	go func() {
		defer close(lines)
		buf := make([]byte, 64<<10)
		var rest string
		for {
			n, err := resp.Body.Read(buf)
			rest += string(buf[:n])
			for {
				i := strings.IndexByte(rest, '\n')
				if i < 0 {
					break
				}
				lines <- rest[:i]
				rest = rest[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	waitLine := func(prefix string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before a %q line", prefix)
				}
				if strings.HasPrefix(l, ": published ") && prefix == "data: " {
					t.Fatalf("the first refresh carries a publish stamp: %q", l)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-deadline:
				t.Fatalf("no %q line", prefix)
			}
		}
	}
	waitLine("data: ") // the first refresh, unstamped
	sent := time.Now()
	f.payOpenInvoices(t)
	bus.Publish(agents.Event{Kind: agents.EventMoneyChanged})
	stampLine := waitLine(": published ")
	var ns int64
	if _, err := fmt.Sscan(strings.TrimPrefix(stampLine, ": published "), &ns); err != nil {
		t.Fatalf("stamp %q: %v", stampLine, err)
	}
	if at := time.Unix(0, ns); at.Before(sent.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("stamp %v is not the publish time (sent %v)", at, sent)
	}
}

// TestRevokedSessionEndsIdleStreams: with no event at all, a stream ends
// soon after its session is deleted (the hub's sweep checks readers again).
func TestRevokedSessionEndsIdleStreams(t *testing.T) {
	bus := agents.NewBus()
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	_, msgs := openStream(t, f.client, f.srv.URL+"/events/admin")
	nextMessage(t, msgs)
	if _, err := f.store.Bun().NewDelete().Table("sessions").Where("1 = 1").Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case m, ok := <-msgs:
		if ok {
			t.Fatalf("stream sent an update after its session ended: %.80s", m.data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream stayed open after its session was deleted")
	}
}

// TestClientThatLeavesIsNotAnError: a page whose client went away while it
// rendered is neither logged as an error nor answered with 500.
func TestClientThatLeavesIsNotAnError(t *testing.T) {
	logs := &bytes.Buffer{}
	s := &Server{log: slog.New(slog.NewTextHandler(logs, nil)), now: func() time.Time { return testNow }}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/admin", nil)
	rec := httptest.NewRecorder()
	leaving := templ.ComponentFunc(func(ctx context.Context, _ io.Writer) error { return ctx.Err() })
	s.render(rec, req, http.StatusOK, leaving)
	if rec.Code == http.StatusInternalServerError || rec.Body.Len() != 0 {
		t.Errorf("a client that left got %d %q", rec.Code, rec.Body.String())
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("logged as an error:\n%s", logs.String())
	}
}

// TestUpdatesCarryOnlyWhatChanged: after a payment the dashboard update
// holds the regions that changed and none of the others, and an event that
// changes nothing the view shows sends nothing.
func TestUpdatesCarryOnlyWhatChanged(t *testing.T) {
	bus := agents.NewBus()
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	_, msgs := openStream(t, f.client, f.srv.URL+"/events/dashboard")
	if first := nextMessage(t, msgs); strings.Count(first.data, "<hx-partial") != 6 {
		t.Fatalf("first message has %d regions, want all 6", strings.Count(first.data, "<hx-partial"))
	}
	bus.Publish(agents.Event{Kind: agents.EventDataChanged}) // nothing changed
	f.payOpenInvoices(t)
	bus.Publish(agents.Event{Kind: agents.EventMoneyChanged})
	update := nextMessage(t, msgs) // the first message after the empty event
	if got := text(partial(t, update, "dash-cards")); !strings.Contains(got, "$249.00") {
		t.Fatalf("first update = %q: the event that changed nothing sent a message", got)
	}
	partial(t, update, "dash-invoices")
	// The payment lands on today's bar of the revenue chart.
	if got := text(partial(t, update, "dash-trends")); !strings.Contains(got, "Last 30 days $249.00") {
		t.Errorf("revenue chart after the payment = %q", got)
	}
	for _, id := range []string{"dash-pipeline", "dash-leads"} {
		if strings.Contains(update.data, `hx-target="#`+id+`"`) {
			t.Errorf("update carries the unchanged region #%s", id)
		}
	}
}

// TestFailedRenderIsRetried: a view whose render fails (a busy database)
// keeps its change and renders again on its own, without another event.
func TestFailedRenderIsRetried(t *testing.T) {
	bus := agents.NewBus()
	defer bus.Close()
	hub := NewHub(bus)
	var calls atomic.Int64
	render := func(context.Context) ([]fragment, error) {
		if calls.Add(1) == 2 {
			return nil, errors.New("database is busy")
		}
		n := calls.Load()
		return []fragment{{"n", templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
			_, err := fmt.Fprintf(w, `<p id="n">%d</p>`, n)
			return err
		})}}, nil
	}
	st, _, err := hub.subscribe("retry", render, reader{anonymous: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	recv := func() string {
		t.Helper()
		select {
		case m := <-st.out:
			return string(m)
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
		}
		return ""
	}
	recv() // the first render
	bus.Publish(agents.Event{Kind: agents.EventDataChanged})
	if m := recv(); !strings.Contains(m, ": published ") || !strings.Contains(m, `<p id="n">3</p>`) {
		t.Errorf("after a failed render the retry sent %q", m)
	}
}

// TestLiveViewsAreBounded: the public dashboard's readers choose their
// pages, and so how many views an event renders; past maxAnonymousViews a
// new one is refused (503) while the views already open keep working.
func TestLiveViewsAreBounded(t *testing.T) {
	bus := agents.NewBus()
	// Every stream here comes from one address (127.0.0.1): the limit per
	// address is raised so that only the views' limit is tested.
	f := newFixture(t, map[string]string{"DASHBOARD_PUBLIC": "true", "LIVE_STREAMS_PER_ADDRESS": "100"}, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	for i := range maxAnonymousViews {
		_, msgs := openStream(t, http.DefaultClient, fmt.Sprintf("%s/events/dashboard?page=2-o%d", f.srv.URL, i+1))
		nextMessage(t, msgs)
	}
	resp, err := http.Get(f.srv.URL + "/events/dashboard?page=2-o999")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("one view too many = %d (Retry-After %q), want 503", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// A stream on a view that is already open still joins it.
	_, msgs := openStream(t, http.DefaultClient, f.srv.URL+"/events/dashboard?page=2-o1")
	nextMessage(t, msgs)
}
