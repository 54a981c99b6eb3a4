package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The nearest-rank percentiles of 1..100 ms are the obvious ones.
func TestPercentiles(t *testing.T) {
	var s Sample
	for i := 100; i >= 1; i-- { // added out of order: Summary sorts
		s.Add(time.Duration(i) * time.Millisecond)
	}
	got := s.Summary()
	want := Summary{Count: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("Summary = %+v, want %+v", got, want)
	}
	one := summarize([]time.Duration{7})
	if one.P50 != 7 || one.P99 != 7 || one.Max != 7 {
		t.Errorf("one value: %+v", one)
	}
	if (summarize(nil) != Summary{}) {
		t.Error("an empty sample has no percentiles")
	}
	ten := summarize([]time.Duration{10, 1, 9, 2, 8, 3, 7, 4, 6, 5})
	if ten.P50 != 5 || ten.P90 != 9 || ten.P99 != 10 {
		t.Errorf("1..10: %+v", ten)
	}
}

// sseServer emits: the retry line, an unstamped full refresh, a message
// stamped an hour ago with a data line longer than the reader's buffer, a
// heartbeat, and a message stamped a minute ago; then it ends the stream.
func sseServer(t *testing.T) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		long := strings.Repeat("x", 100<<10)
		fmt.Fprint(w, "retry: 1000\n\n")
		fmt.Fprint(w, "data: <hx-partial>first</hx-partial>\n\n")
		fmt.Fprintf(w, ": published %d\ndata: %s\r\ndata: more\n\n", time.Now().Add(-time.Hour).UnixNano(), long)
		fmt.Fprint(w, ": heartbeat\n\n")
		fmt.Fprintf(w, ": published %d\ndata: <hx-partial>b</hx-partial>\n\n", time.Now().Add(-time.Minute).UnixNano())
	}))
}

// The stamp is read off each message and the delay measured from it.
func TestStreamMeasuresPublishDelay(t *testing.T) {
	srv := sseServer(t)
	defer srv.Close()
	st := &streamStats{path: "/events/dashboard", clients: 1}
	if err := streamOnce(context.Background(), srv.Client(), srv.URL, st); err != nil {
		t.Fatal(err)
	}
	r := st.report()
	if r.Connects != 1 || r.Messages != 3 || r.Unstamped != 1 || r.Heartbeats != 1 || r.Delay.Count != 2 {
		t.Fatalf("report %+v", r)
	}
	// Measured after the server wrote them: at least the stamped age, and
	// not much more (generous, never flaky).
	if r.Delay.Max < time.Hour || r.Delay.Max > time.Hour+time.Minute {
		t.Errorf("hour-old message measured %v", r.Delay.Max)
	}
	if r.Delay.P50 < time.Minute || r.Delay.P50 > 2*time.Minute {
		t.Errorf("minute-old message measured %v", r.Delay.P50)
	}
}

func TestParseLine(t *testing.T) {
	var ev event
	parseLine([]byte(": published 1700000000123456789"), &ev)
	if !ev.stamped || ev.stamp != 1700000000123456789 {
		t.Errorf("stamp not read: %+v", ev)
	}
	ev = event{}
	parseLine([]byte(": published soon"), &ev)
	if ev.stamped {
		t.Error("a malformed stamp was read")
	}
}

// fakeApp is a sign-in, pages that need its cookie, failing routes, a
// live stream and metrics: enough of HossAgent to drive the whole tool.
func fakeApp(t *testing.T) *httptest.Server {
	t.Helper()
	return newFakeApp(t, 1000).srv
}

// fake is fakeApp with what its live streams saw: each sign-in is a new
// session, and a session holds at most perSession streams (429 past it),
// as HossAgent's LIVE_STREAMS_PER_USER.
type fake struct {
	srv        *httptest.Server
	perSession int

	mu       sync.Mutex
	sessions int
	open     map[string]int // open streams per session
	most     int            // the most streams one session held at once
	refused  int
}

func newFakeApp(t *testing.T, perSession int) *fake {
	t.Helper()
	f := &fake{perSession: perSession, open: map[string]int{}}
	signedIn := func(r *http.Request) bool {
		c, err := r.Cookie("hossagent_session")
		return err == nil && strings.HasPrefix(c.Value, "s3cret-")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<form>") })
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("email") != "ops@example.com" || r.PostFormValue("password") != "pw" {
			http.Error(w, "wrong", http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.sessions++
		token := fmt.Sprintf("s3cret-%d", f.sessions)
		f.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "hossagent_session", Value: token, Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
	})
	page := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !signedIn(r) {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			w.WriteHeader(status)
		}
	}
	mux.HandleFunc("GET /{$}", page(http.StatusOK))
	mux.HandleFunc("GET /api/v1/leads", page(http.StatusOK))
	mux.HandleFunc("GET /admin", page(http.StatusInternalServerError))
	mux.HandleFunc("GET /api/v1/invoices", page(http.StatusNotFound))
	mux.HandleFunc("POST /admin/agents/lead_source/run", page(http.StatusOK))
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.2345e+07\n")
	})
	mux.HandleFunc("GET /events/dashboard", func(w http.ResponseWriter, r *http.Request) {
		if !signedIn(r) {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		c, _ := r.Cookie("hossagent_session")
		f.mu.Lock()
		if f.open[c.Value] >= f.perSession {
			f.refused++
			f.mu.Unlock()
			w.Header().Set("Retry-After", "30")
			http.Error(w, "Too many live streams for this session", http.StatusTooManyRequests)
			return
		}
		f.open[c.Value]++
		f.most = max(f.most, f.open[c.Value])
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.open[c.Value]--
			f.mu.Unlock()
		}()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, ": published %d\ndata: x\n\n", time.Now().UnixNano())
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	f.srv = httptest.NewServer(mux)
	return f
}

// The streams are spread over sessions of -streams-per-session each, so a
// server's per-session limit holds; a tool asking for more per session
// than the server allows reports the refusals.
func TestStreamsSpreadOverSessions(t *testing.T) {
	f := newFakeApp(t, 2)
	defer f.srv.Close()
	var out, errOut bytes.Buffer
	args := []string{"-url", f.srv.URL, "-email", "ops@example.com", "-password", "pw", "-rps", "0", "-duration", "300ms",
		"-sse-dashboard", "5", "-streams-per-session", "2", "-change-every", "0", "-rss-every", "0", "-json"}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	sessions, most, refused := f.sessions, f.most, f.refused
	f.mu.Unlock()
	if sessions != 3 || most != 2 || refused != 0 || len(rep.SSE) != 1 || rep.SSE[0].Errors != 0 || rep.SSE[0].Connects != 5 {
		t.Errorf("5 streams, 2 a session: %d sessions, at most %d streams on one, %d refused; report %+v", sessions, most, refused, rep.SSE)
	}

	g := newFakeApp(t, 2)
	defer g.srv.Close()
	out.Reset()
	args = []string{"-url", g.srv.URL, "-email", "ops@example.com", "-password", "pw", "-rps", "0", "-duration", "300ms",
		"-sse-dashboard", "3", "-streams-per-session", "3", "-change-every", "0", "-rss-every", "0", "-json"}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	rep = Report{}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.SSE) != 1 || rep.SSE[0].Refused == 0 || !strings.Contains(strings.Join(rep.Warnings, "\n"), "LIVE_STREAMS_PER_USER") {
		t.Errorf("over the server's limit: SSE %+v, warnings %q", rep.SSE, rep.Warnings)
	}
}

// Each request is timed, and a failure or a non-2xx answer is an error.
func TestRequestCountsErrors(t *testing.T) {
	srv := fakeApp(t)
	defer srv.Close()
	ctx := context.Background()
	c := newClient(newTransport(4), newJar(), 5*time.Second)
	home := &route{name: "dashboard", path: "/"}
	request(ctx, c, srv.URL, home) // not signed in: a 303 to /login
	if err := signIn(ctx, c, srv.URL, "ops@example.com", "pw"); err != nil {
		t.Fatal(err)
	}
	request(ctx, c, srv.URL, home)
	admin := &route{name: "admin", path: "/admin"}
	request(ctx, c, srv.URL, admin)
	gone := &route{name: "gone", path: "/"}
	request(ctx, c, "http://127.0.0.1:1", gone) // nothing listens
	for _, tc := range []struct {
		r             *route
		count, errors int64
	}{{home, 2, 1}, {admin, 1, 1}, {gone, 1, 1}} {
		rr := tc.r.report()
		if int64(rr.Latency.Count) != tc.count || rr.Errors != tc.errors {
			t.Errorf("%s: %d requests, %d errors; want %d, %d", tc.r.name, rr.Latency.Count, rr.Errors, tc.count, tc.errors)
		}
	}
	if err := signIn(ctx, c, srv.URL, "ops@example.com", "wrong"); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("bad password: %v", err)
	}
}

// A short whole run against the fake app: signed in, every route's
// errors counted, the live stream and the RSS read.
func TestRunReportsJSON(t *testing.T) {
	srv := fakeApp(t)
	defer srv.Close()
	var out, errOut bytes.Buffer
	args := []string{"-url", srv.URL, "-email", "ops@example.com", "-password", "pw", "-rps", "200", "-duration", "500ms",
		"-sse-dashboard", "2", "-change-every", "100ms", "-rss-every", "100ms", "-json"}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	total := 0
	for _, r := range rep.Routes {
		total += r.Latency.Count
		failing := r.Route == "admin" || r.Route == "invoices"
		if failing && int(r.Errors) != r.Latency.Count || !failing && r.Errors != 0 {
			t.Errorf("%s: %d errors in %d requests", r.Route, r.Errors, r.Latency.Count)
		}
	}
	if total == 0 {
		t.Error("no request was sent")
	}
	if rep.RSSPeak != 12345000 || rep.RSSFinal != 12345000 {
		t.Errorf("RSS peak %d final %d", rep.RSSPeak, rep.RSSFinal)
	}
	if len(rep.SSE) != 1 || rep.SSE[0].Errors != 0 || rep.SSE[0].Clients != 2 {
		t.Errorf("SSE report %+v", rep.SSE)
	}
	if rep.Changes.Route != "change" || rep.Changes.Errors != 0 {
		t.Errorf("changes %+v", rep.Changes)
	}

	if code := run(context.Background(), []string{"-url", srv.URL, "-email", "ops@example.com", "-password", "no"}, &out, &errOut); code != 1 {
		t.Errorf("wrong password: exit %d", code)
	}
	if code := run(context.Background(), []string{"-rps", "-1", "-email", "a", "-password", "b"}, &out, &errOut); code != 2 {
		t.Errorf("bad flags: exit %d", code)
	}
}

func TestParseRSS(t *testing.T) {
	n, err := parseVmRSS([]byte("Name:\thossagent\nVmPeak:\t 9000 kB\nVmRSS:\t   51234 kB\n"))
	if err != nil || n != 51234<<10 {
		t.Errorf("VmRSS = %d, %v", n, err)
	}
	if _, err := parseMetricsRSS(strings.NewReader("go_goroutines 7\n")); err == nil {
		t.Error("metrics without RSS read as a value")
	}
}
