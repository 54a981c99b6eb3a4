package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/agents/sendgrid"
	"github.com/hossagent/hossagent/agents/stripe"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// The app's test fixture and its request helper, shared by every test of
// the package: newFixture serves the real router over a fresh SQLite file,
// and every request a test sends goes through fixture.do (get, post,
// postRaw, htmxPost, apiCall and portalGet are its common shapes).

type fixture struct {
	srv    *httptest.Server
	server *Server // Wait: the work requests leave behind them
	store  *db.DB
	logs   *bytes.Buffer
	clock  *testClock
	client *http.Client // anonymous until signIn replaces it
	token  string       // the seeded customer's portal token
}

// openTestStore opens a migrated store on a fresh file, closed when the
// test ends.
func openTestStore(t *testing.T, opts ...db.Option) *db.DB {
	t.Helper()
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// newFixture serves the real router over a fresh SQLite file. opts may add
// dependencies (an agent engine, the live hub) before the server is built.
func newFixture(t *testing.T, env map[string]string, opts ...func(*Deps)) *fixture {
	t.Helper()
	cfg, _, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktest.New(testNow)
	store := openTestStore(t, db.WithClock(clock.Now))
	logs := &bytes.Buffer{}
	// The adapters main wires whatever the configuration: Stripe's webhook
	// reader and SendGrid's event webhook reader.
	deps := Deps{Config: cfg, Store: store, Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: clock.Now,
		PaymentEvents: stripe.Webhook{}, MailEvents: sendgrid.Events{}}
	for _, o := range opts {
		o(&deps)
	}
	s := New(deps)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(s.Wait) // before the store closes
	return &fixture{srv: srv, server: s, store: store, logs: logs, clock: clock, client: newClient(t)}
}

// newClient is a browser stand-in: it keeps cookies and does not follow
// redirects, so tests see each 303.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// do sends one request to the fixture's server through c (the anonymous
// client or a signed-in one), with body and headers, and returns the
// answer with its whole body read.
func (f *fixture) do(t *testing.T, c *http.Client, method, path string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// parseHTML parses an answer's page.
func parseHTML(t *testing.T, body []byte) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// get GETs path with the fixture's client and parses the page.
func (f *fixture) get(t *testing.T, path string) (*http.Response, *goquery.Document, string) {
	t.Helper()
	resp, body := f.do(t, f.client, http.MethodGet, path, nil, nil)
	return resp, parseHTML(t, body), string(body)
}

// post sends a form with extra headers and parses the answer.
func (f *fixture) post(t *testing.T, c *http.Client, path string, form url.Values, header map[string]string) (*http.Response, *goquery.Document) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range header {
		h[k] = v
	}
	resp, body := f.do(t, c, http.MethodPost, path, strings.NewReader(form.Encode()), h)
	return resp, parseHTML(t, body)
}

// postRaw posts body with the given Content-Type from this origin.
func (f *fixture) postRaw(t *testing.T, c *http.Client, path, ctype string, body []byte) (*http.Response, *goquery.Document) {
	t.Helper()
	resp, b := f.do(t, c, http.MethodPost, path, bytes.NewReader(body), map[string]string{"Content-Type": ctype, "Origin": f.srv.URL})
	return resp, parseHTML(t, b)
}

// htmxPost is a POST as the htmx button sends it (same origin,
// HX-Request); it returns the raw fragment.
func (f *fixture) htmxPost(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, body := f.do(t, f.client, http.MethodPost, path, strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": f.srv.URL, "HX-Request": "true"})
	return resp, string(body)
}

// apiCall sends method path through c, with a bearer token when given, and
// returns the answer and its body.
func (f *fixture) apiCall(t *testing.T, c *http.Client, method, path, bearer string) (*http.Response, []byte) {
	t.Helper()
	var h map[string]string
	if bearer != "" {
		h = map[string]string{"Authorization": "Bearer " + bearer}
	}
	return f.do(t, c, method, path, nil, h)
}

// portalGet GETs path as the client at ip and returns the status, the
// Retry-After header and the body.
func (f *fixture) portalGet(t *testing.T, path, ip string) (int, string, string) {
	t.Helper()
	resp, body := f.do(t, f.client, http.MethodGet, path, nil, map[string]string{testClientIPHeader: ip})
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(body)
}

// auditCount is how many audit entries have action.
func (f *fixture) auditCount(t *testing.T, action string) int {
	t.Helper()
	n, err := f.store.Bun().NewSelect().Model((*db.AuditEntry)(nil)).Where("action = ?", action).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}
