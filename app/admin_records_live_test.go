package app

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

func TestCutRegions(t *testing.T) {
	page := `<!doctype html><html><body><div id="a"><p>one<br>two</p><input id="b" value="x"><div><span>in</span></div></div>` +
		`<section id="c" class="panel"><h2>C</h2><img src="x"></section><p id="d">d</p></body></html>`
	got := cutRegions([]byte(page), []string{"a", "c", "b", "missing"})
	want := map[string]string{
		"a": `<div id="a"><p>one<br>two</p><input id="b" value="x"><div><span>in</span></div></div>`,
		"c": `<section id="c" class="panel"><h2>C</h2><img src="x"></section>`,
	}
	if len(got) != len(want) {
		t.Errorf("regions = %q, want %q", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("region %s = %q, want %q", id, got[id], w)
		}
	}
}

// The invoice page's stream sends its regions, cut from the page as a
// reload shows it, and after an action the fields and the actions' state
// both say what the invoice now is.
func TestRecordStreamFollowsTheRecord(t *testing.T) {
	bus := agents.NewBus()
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	var inv db.Invoice
	if err := f.store.Bun().NewSelect().Model(&inv).Where("status = 'open'").Limit(1).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(inv.ID, 10)
	_, doc, _ := f.get(t, "/admin/invoices/"+id)
	if live, _ := doc.Find("#live").Attr("hx-sse:connect"); live != "/events/admin/invoice/"+id {
		t.Errorf("invoice page connects to %q", live)
	}
	_, msgs := openStream(t, f.client, f.srv.URL+"/events/admin/invoice/"+id)
	first := nextMessage(t, msgs)
	for _, region := range recordLiveRegions["invoice"] {
		partial(t, first, region)
	}
	if got := text(partial(t, first, "record-fields").Find("dd .badge").First()); got != "open" {
		t.Errorf("status in the stream = %q, want open", got)
	}
	if strings.Contains(first.data, `id="invoice-actions"`) {
		t.Error("the stream carries the whole actions panel (with its result slot)")
	}

	if status, result, _ := f.invoiceAct(t, "/admin/invoices/"+id+"/mark-paid", "cash in hand"); status != http.StatusOK {
		t.Fatalf("mark paid = %d %q", status, result)
	}
	m := nextMessage(t, msgs)
	if got := text(partial(t, m, "record-fields").Find("dd .badge").First()); got != "paid" {
		t.Errorf("status after the action = %q, want paid", got)
	}
	if got := text(partial(t, m, "invoice-actions-state")); !strings.Contains(got, "is paid") {
		t.Errorf("actions' state after the action = %q", got)
	}

	for _, kind := range []string{"lead", "customer", "task"} {
		_, doc, _ := f.get(t, "/admin/"+kind+"s/1")
		live, _ := doc.Find("#live").Attr("hx-sse:connect")
		if !strings.HasPrefix(live, "/events/admin/"+kind+"/1") {
			t.Errorf("%s page connects to %q", kind, live)
			continue
		}
		_, msgs := openStream(t, f.client, f.srv.URL+live)
		m := nextMessage(t, msgs)
		for _, region := range recordLiveRegions[kind] {
			partial(t, m, region)
		}
	}
	for _, path := range []string{"/events/admin/invoice/999999", "/events/admin/nope/1", "/events/admin/invoice/01"} {
		if resp, _, _ := f.get(t, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s = %d, want 404", path, resp.StatusCode)
		}
	}
}

// A stream starts with a short retry (the page reconnects fast) and, when
// its reader signs out, ends with the session-ended event, not silently.
func TestStreamEndsWithSessionEnded(t *testing.T) {
	bus := agents.NewBus()
	f := newFixture(t, nil, func(d *Deps) { d.Live = NewHub(bus) })
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/events/admin", nil)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, len(reconnectRetry))
	if _, err := io.ReadFull(resp.Body, head); err != nil || string(head) != "retry: 500\n\n" {
		t.Fatalf("stream starts %q (%v)", head, err)
	}
	if resp, _ := f.post(t, f.client, "/logout", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	rest, err := io.ReadAll(resp.Body) // the stream ends by itself
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	if r := string(rest); r != "event: session-ended\n\n" && !strings.HasSuffix(r, "\n\nevent: session-ended\n\n") {
		t.Errorf("the stream ended with %q, want the session-ended event", tail(string(rest), 80))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Without a session, an htmx request (even a GET) and a stream are 401,
// never a redirect to the sign-in page (which would land in a panel or in
// the stream); a page view still goes to the sign-in form.
func TestSignedOutHtmxRequestsAre401(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		path   string
		header map[string]string
		want   int
	}{
		{"/admin", nil, http.StatusSeeOther},
		{"/admin", map[string]string{"HX-Request": "true"}, http.StatusUnauthorized},
		{"/admin/invoices/1", map[string]string{"HX-Request": "true"}, http.StatusUnauthorized},
		{"/events/admin", map[string]string{"Accept": "text/event-stream"}, http.StatusUnauthorized},
		{"/events/admin/invoice/1", nil, http.StatusUnauthorized},
	}
	for _, c := range cases {
		resp, _ := f.do(t, f.client, http.MethodGet, c.path, nil, c.header)
		if resp.StatusCode != c.want {
			t.Errorf("GET %s %v = %d, want %d", c.path, c.header, resp.StatusCode, c.want)
		}
	}
}
