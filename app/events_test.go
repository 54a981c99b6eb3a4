package app

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// sseMessage is one parsed server-sent event.
type sseMessage struct {
	id   string
	data string
}

// readSSE parses messages from an event stream onto a channel until it ends.
func readSSE(resp *http.Response) <-chan sseMessage {
	out := make(chan sseMessage, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		var m sseMessage
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if len(data) > 0 {
					m.data = strings.Join(data, "\n")
					out <- m
				}
				m, data = sseMessage{}, nil
			case strings.HasPrefix(line, "id: "):
				m.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return out
}

func nextMessage(t *testing.T, c <-chan sseMessage) sseMessage {
	t.Helper()
	select {
	case m, ok := <-c:
		if !ok {
			t.Fatal("stream ended")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the stream")
	}
	return sseMessage{}
}

func partial(t *testing.T, m sseMessage, id string) *goquery.Selection {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	sel := doc.Find(`hx-partial[hx-target="#` + id + `"]`)
	if sel.Length() != 1 {
		t.Fatalf("message has %d partials for #%s:\n%s", sel.Length(), id, m.data)
	}
	if got, _ := sel.Attr("hx-swap"); got != "outerMorph" {
		t.Errorf("partial #%s swap = %q", id, got)
	}
	return sel
}

func openStream(t *testing.T, c *http.Client, url string) (*http.Response, <-chan sseMessage) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp, readSSE(resp)
}

// The dashboard stream sends a full refresh at once (also what a
// reconnecting client gets), then re-renders the money card after an
// engine event, and closes when the bus closes at shutdown.
func TestDashboardStreamUpdatesLiveAndClosesOnShutdown(t *testing.T) {
	bus := agents.NewBus()
	var hub *Hub
	f := newFixture(t, nil, func(d *Deps) { hub = NewHub(bus); d.Live = hub })
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)

	_, doc, _ := f.get(t, "/")
	if live, _ := doc.Find("#live").Attr("hx-sse:connect"); live != "/events/dashboard?" {
		t.Errorf("dashboard connects to %q", live)
	}
	resp, msgs := openStream(t, f.client, f.srv.URL+"/events/dashboard")
	first := nextMessage(t, msgs)
	if first.id == "" {
		t.Error("message without id")
	}
	for _, id := range []string{"dash-cards", "dash-pipeline", "dash-work", "dash-invoices", "dash-leads"} {
		partial(t, first, id)
	}
	if got := text(partial(t, first, "dash-cards")); !strings.Contains(got, "$99.00") {
		t.Fatalf("revenue card = %q", got)
	}

	// Billing marks the open invoice paid; the agents publish money_changed.
	f.payOpenInvoices(t)
	bus.Publish(agents.Event{Kind: agents.EventMoneyChanged, Agent: agents.Billing})
	update := nextMessage(t, msgs)
	if got := selCardValue(partial(t, update, "dash-cards"), "Collected"); got != "$249.00" {
		t.Errorf("collected after payment = %q", got)
	}
	if hub.Clients() != 1 {
		t.Errorf("clients = %d", hub.Clients())
	}

	bus.Close()
	for range msgs { // the stream ends
	}
	_ = resp
	if hub.Clients() != 0 {
		t.Errorf("clients after shutdown = %d", hub.Clients())
	}
}

func TestStreamsKeepThePagesAccessRules(t *testing.T) {
	bus := agents.NewBus()
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// A stream is never redirected to the sign-in page (the page's script
	// would read that page as a stream): an anonymous one is refused 401.
	for path, want := range map[string]int{"/events/dashboard": http.StatusUnauthorized, "/events/admin": http.StatusUnauthorized,
		"/events/admin/invoice/1": http.StatusUnauthorized} {
		resp, err := noRedirect.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("Content-Type") == "text/event-stream" {
			t.Errorf("anonymous %s = %d %s, want %d", path, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
	}
	for _, cookie := range []string{"", "not-a-session", f.token} {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/events/portal", nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: portalCookieName, Value: cookie})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("portal stream with cookie %q = %d, want 404", cookie, resp.StatusCode)
		}
	}
	// A portal session streams the client's own regions.
	_, msgs := openStream(t, f.portalClient(t, f.token), f.srv.URL+"/events/portal")
	m := nextMessage(t, msgs)
	if got := text(partial(t, m, "portal-outstanding")); !strings.Contains(got, "INV-000001") {
		t.Errorf("portal outstanding = %q", got)
	}
	partial(t, m, "portal-summary")
}

func TestAdminStreamSendsEveryRegion(t *testing.T) {
	bus := agents.NewBus()
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	_, msgs := openStream(t, f.client, f.srv.URL+"/events/admin?q=northwind")
	m := nextMessage(t, msgs)
	for _, id := range []string{"admin-status", "admin-cards", "admin-agents", "admin-runs", "admin-leads", "admin-customers", "admin-tasks", "admin-invoices", "admin-audit"} {
		partial(t, m, id)
	}
	// The stream keeps the operator's search.
	if got := partial(t, m, "admin-leads").Find("tbody tr").Length(); got != 1 {
		t.Errorf("leads rows in the stream for q=northwind = %d, want 1", got)
	}
}

// A stream does not outlive its reader's access: after sign-out the admin
// stream ends at the next update, and so does a portal stream whose link
// was revoked.
func TestStreamsEndWhenAccessEnds(t *testing.T) {
	bus := agents.NewBus()
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	_, admin := openStream(t, f.client, f.srv.URL+"/events/admin")
	nextMessage(t, admin)
	_, portal := openStream(t, f.portalClient(t, f.token), f.srv.URL+"/events/portal")
	nextMessage(t, portal)

	if resp, _ := f.post(t, f.client, "/logout", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	var c db.Customer
	if err := f.store.Bun().NewSelect().Model(&c).Limit(1).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RevokePortalToken(context.Background(), c.ID, strings.NewReader(strings.Repeat("r", 64))); err != nil {
		t.Fatal(err)
	}
	bus.Publish(agents.Event{Kind: agents.EventDataChanged})
	for name, msgs := range map[string]<-chan sseMessage{"admin": admin, "portal": portal} {
		select {
		case m, ok := <-msgs:
			if ok {
				t.Errorf("%s stream sent an update after access ended: %.80s", name, m.data)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s stream stayed open after access ended", name)
		}
	}
}
