package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// sleeps records the waits between attempts instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testNow is the clock of the HTTP-date tests.
var testNow = time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC)

// recorded is an executor pointed at f with the client's own retry timing
// (no MaxRetryDelay), its waits recorded rather than slept.
func (f *fakeOpenAI) recorded(change func(*Options)) (*Executor, *sleeps) {
	f.t.Helper()
	e := f.executor(func(o *Options) {
		o.MaxRetryDelay = 0
		if change != nil {
			change(o)
		}
	})
	s := &sleeps{}
	e.sleep, e.now = s.sleep, func() time.Time { return testNow }
	return e, s
}

// failThenAnswer answers the first n-1 requests with status and headers,
// then a completion.
func failThenAnswer(failures, status int, header map[string]string) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= failures {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			writeJSON(w, status, apiErrorJSON("try again", "server_error", ""))
			return
		}
		writeJSON(w, http.StatusOK, completionJSON("Answered.", 10, 10))
	}
}

func TestOpenAIExecutorRetriesEveryRetryableStatus(t *testing.T) {
	for _, status := range []int{408, 409, 429, 500, 502, 503, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFakeOpenAI(t, failThenAnswer(2, status, nil))
			e, s := f.recorded(nil)
			out, err := e.Execute(context.Background(), openAITestInput)
			if err != nil || !strings.Contains(out.Result, "Answered.") {
				t.Fatalf("Execute = %q, %v", out.Result, err)
			}
			if n := len(f.seen()); n != 3 || len(s.waits()) != 2 {
				t.Errorf("%d requests, %d waits; want 3 and 2", n, len(s.waits()))
			}
		})
	}
	for _, status := range []int{400, 401, 403, 404, 422} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFakeOpenAI(t, failThenAnswer(2, status, nil))
			e, s := f.recorded(nil)
			if _, err := e.Execute(context.Background(), openAITestInput); err == nil {
				t.Errorf("Execute succeeded after a %d", status)
			}
			if n := len(f.seen()); n != 1 || len(s.waits()) != 0 {
				t.Errorf("%d requests, %d waits; want 1 and 0 (no retry)", n, len(s.waits()))
			}
		})
	}
}

func TestOpenAIExecutorHonoursRetryAfter(t *testing.T) {
	for _, c := range []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"seconds", map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{"zero", map[string]string{"Retry-After": "0"}, 0},
		{"HTTP-date", map[string]string{"Retry-After": testNow.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{"HTTP-date in the past", map[string]string{"Retry-After": testNow.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{"milliseconds", map[string]string{"Retry-After-Ms": "250"}, 250 * time.Millisecond},
		{"milliseconds first", map[string]string{"Retry-After-Ms": "1200", "Retry-After": "2"}, 1200 * time.Millisecond},
		{"at the two-minute cap", map[string]string{"Retry-After": "120"}, 2 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeOpenAI(t, failThenAnswer(1, http.StatusTooManyRequests, c.header))
			e, s := f.recorded(nil)
			if _, err := e.Execute(context.Background(), openAITestInput); err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if w := s.waits(); len(w) != 1 || w[0] != c.want || len(f.seen()) != 2 {
				t.Errorf("waits %v over %d requests, want [%s] and 2", w, len(f.seen()), c.want)
			}
		})
	}
}

func TestOpenAIExecutorStopsWhenRetryAfterIsBeyondTheCap(t *testing.T) {
	for _, c := range []struct {
		name     string
		maxDelay time.Duration
		header   map[string]string
	}{
		{"seconds beyond two minutes", 0, map[string]string{"Retry-After": "121"}},
		{"HTTP-date beyond two minutes", 0, map[string]string{"Retry-After": testNow.Add(time.Hour).Format(http.TimeFormat)}},
		{"milliseconds beyond two minutes", 0, map[string]string{"Retry-After-Ms": "120001"}},
		{"overflow", 0, map[string]string{"Retry-After": "1e400"}},
		{"beyond MaxRetryDelay", 10 * time.Second, map[string]string{"Retry-After": "11"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeOpenAI(t, failThenAnswer(1, http.StatusTooManyRequests, c.header))
			e, s := f.recorded(func(o *Options) { o.MaxRetryDelay = c.maxDelay })
			_, err := e.Execute(context.Background(), openAITestInput)
			want := "openai: rate limited (429 Too Many Requests) after 1 attempt: try again"
			if err == nil || err.Error() != want {
				t.Errorf("error = %v, want %q", err, want)
			}
			if n := len(f.seen()); n != 1 || len(s.waits()) != 0 {
				t.Errorf("%d requests, waits %v; want 1 and none", n, s.waits())
			}
		})
	}
	f := newFakeOpenAI(t, failThenAnswer(1, http.StatusTooManyRequests, map[string]string{"Retry-After": "10"}))
	e, s := f.recorded(func(o *Options) { o.MaxRetryDelay = 10 * time.Second })
	if _, err := e.Execute(context.Background(), openAITestInput); err != nil || len(s.waits()) != 1 || s.waits()[0] != 10*time.Second {
		t.Errorf("Retry-After at MaxRetryDelay: %v, waits %v; want one wait of 10s", err, s.waits())
	}
}

// wantBackoff checks each wait is the exponential step, capped, less at
// most a quarter of jitter.
func wantBackoff(t *testing.T, got []time.Duration, steps ...time.Duration) {
	t.Helper()
	if len(got) != len(steps) {
		t.Fatalf("waits %v, want %d", got, len(steps))
	}
	for i, d := range got {
		if d > steps[i] || d < steps[i]-steps[i]/4 {
			t.Errorf("wait %d = %s, want %s less at most 25%%", i+1, d, steps[i])
		}
	}
}

func TestOpenAIExecutorBacksOffExponentially(t *testing.T) {
	always500 := func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusInternalServerError, apiErrorJSON("boom", "server_error", ""))
	}
	f := newFakeOpenAI(t, always500)
	e, s := f.recorded(func(o *Options) { o.MaxRetries = 6 })
	_, err := e.Execute(context.Background(), openAITestInput)
	if err == nil || !strings.Contains(err.Error(), "after 7 attempts") || len(f.seen()) != 7 {
		t.Errorf("error = %v after %d requests, want 7 attempts", err, len(f.seen()))
	}
	wantBackoff(t, s.waits(), 500*time.Millisecond, time.Second, 2*time.Second, 4*time.Second, 8*time.Second, 8*time.Second)

	f = newFakeOpenAI(t, always500)
	e, s = f.recorded(func(o *Options) { o.MaxRetries, o.MaxRetryDelay = 5, 3*time.Second })
	_, _ = e.Execute(context.Background(), openAITestInput)
	wantBackoff(t, s.waits(), 500*time.Millisecond, time.Second, 2*time.Second, 3*time.Second, 3*time.Second)

	// A Retry-After the client cannot read is ignored, not obeyed.
	for _, v := range []string{"soon", "-1", "NaN", "Inf"} {
		f = newFakeOpenAI(t, failThenAnswer(1, http.StatusServiceUnavailable, map[string]string{"Retry-After": v}))
		e, s = f.recorded(nil)
		if _, err := e.Execute(context.Background(), openAITestInput); err != nil {
			t.Fatalf("Retry-After %q: %v", v, err)
		}
		wantBackoff(t, s.waits(), 500*time.Millisecond)
	}
}

func TestOpenAIExecutorFollowsXShouldRetry(t *testing.T) {
	f := newFakeOpenAI(t, failThenAnswer(5, http.StatusInternalServerError, map[string]string{"x-should-retry": "false"}))
	e, _ := f.recorded(nil)
	if _, err := e.Execute(context.Background(), openAITestInput); err == nil || len(f.seen()) != 1 {
		t.Errorf("500 with x-should-retry false: %v after %d requests, want an error after 1", err, len(f.seen()))
	}
	f = newFakeOpenAI(t, failThenAnswer(2, http.StatusBadRequest, map[string]string{"x-should-retry": "true"}))
	e, _ = f.recorded(nil)
	if _, err := e.Execute(context.Background(), openAITestInput); err != nil || len(f.seen()) != 3 {
		t.Errorf("400 with x-should-retry true: %v after %d requests, want the answer after 3", err, len(f.seen()))
	}
}

func TestOpenAIExecutorRetriesADroppedConnection(t *testing.T) {
	f := newFakeOpenAI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			_ = conn.Close()
			return
		}
		writeJSON(w, http.StatusOK, completionJSON("After the reconnect.", 10, 10))
	})
	e, s := f.recorded(nil)
	out, err := e.Execute(context.Background(), openAITestInput)
	if err != nil || !strings.Contains(out.Result, "After the reconnect.") || len(f.seen()) != 2 {
		t.Errorf("Execute = %q, %v after %d requests; want the second answer", out.Result, err, len(f.seen()))
	}
	wantBackoff(t, s.waits(), 500*time.Millisecond)
}

func TestOpenAIExecutorStopsWaitingWhenItsContextEnds(t *testing.T) {
	f := newFakeOpenAI(t, failThenAnswer(1, http.StatusTooManyRequests, map[string]string{"Retry-After": "60"}))
	e := f.executor(func(o *Options) { o.MaxRetryDelay = 0 }) // the real sleep
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.Execute(ctx, openAITestInput)
	if err == nil || err.Error() != "openai: interrupted after 1 attempt: context deadline exceeded" {
		t.Errorf("error = %v, want interrupted after 1 attempt", err)
	}
	if d := time.Since(start); d > 10*time.Second || len(f.seen()) != 1 {
		t.Errorf("returned after %s and %d requests; want soon after the deadline, 1 request", d, len(f.seen()))
	}
}

// paddedCompletion is a completion of exactly size bytes.
func paddedCompletion(t *testing.T, size int) string {
	t.Helper()
	body := completionJSON("", 10, 10)
	body = completionJSON(strings.Repeat("a", size-len(body)), 10, 10)
	if len(body) != size {
		t.Fatalf("padded completion has %d bytes, want %d", len(body), size)
	}
	return body
}

func TestOpenAIExecutorCapsTheAnswerBody(t *testing.T) {
	for _, c := range []struct {
		name   string
		size   int
		status int
		ok     bool
	}{
		{"exactly the cap", maxBody, http.StatusOK, true},
		{"one byte over", maxBody + 1, http.StatusOK, false},
		{"error answer over", maxBody + 1, http.StatusBadRequest, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := paddedCompletion(t, c.size)
			f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, _ *http.Request) { writeJSON(w, c.status, body) })
			out, err := f.executor(nil).Execute(context.Background(), openAITestInput)
			if c.ok {
				if err != nil || !strings.Contains(out.Result, "aaaa") {
					t.Errorf("Execute = %d bytes, %v; want the answer", len(out.Result), err)
				}
				return
			}
			want := fmt.Sprintf("openai: the API's answer is larger than %d bytes", maxBody)
			if err == nil || err.Error() != want {
				t.Errorf("error = %v, want %q", err, want)
			}
		})
	}
	// A body without a length, streamed without end, is cut at the cap too:
	// the client stops reading there (what the server manages to write is
	// the cap plus what the sockets buffer), rather than at its timeout.
	var written atomic.Int64
	f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"`)
		chunk := strings.Repeat("b", 64<<10)
		for r.Context().Err() == nil {
			n, err := io.WriteString(w, chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	start := time.Now()
	if _, err := f.executor(nil).Execute(context.Background(), openAITestInput); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("endless body: error = %v, want the cap", err)
	}
	if n, d := written.Load(), time.Since(start); n > 64<<20 || d > 4*time.Second {
		t.Errorf("endless body: the server wrote %d bytes over %s before the client stopped", n, d)
	}
}

func TestOpenAIExecutorJoinsTheBaseURL(t *testing.T) {
	for _, c := range []struct{ base, path string }{
		{"/v1", "/v1/chat/completions"},
		{"/v1/", "/v1/chat/completions"},
		{"", "/chat/completions"},
		{"/", "/chat/completions"},
		{"/openai/deployments/x/v1", "/openai/deployments/x/v1/chat/completions"},
	} {
		var mu sync.Mutex
		var got string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = r.Method + " " + r.URL.Path
			mu.Unlock()
			writeJSON(w, http.StatusOK, completionJSON("Joined.", 1, 1))
		}))
		e, err := New(Options{APIKey: fakeOpenAIKey, Model: "m", BaseURL: "  " + srv.URL + c.base + " "})
		if err != nil {
			t.Fatalf("New(%q): %v", c.base, err)
		}
		_, err = e.Execute(context.Background(), openAITestInput)
		mu.Lock()
		seen := got
		mu.Unlock()
		if err != nil || seen != "POST "+c.path {
			t.Errorf("base %q: %q, %v; want POST %s", c.base, seen, err, c.path)
		}
		srv.Close()
	}
	e, err := New(Options{APIKey: "k", Model: "m"})
	if err != nil || e.url != "https://api.openai.com/v1/chat/completions" {
		t.Errorf("default endpoint %q, %v", e.url, err)
	}
	for _, base := range []string{"api.openai.com/v1", "http://", "://x", "file:///v1"} {
		if _, err := New(Options{APIKey: "k", Model: "m", BaseURL: base}); err == nil || !strings.Contains(err.Error(), "is not an http(s) URL") {
			t.Errorf("base URL %q: error %v, want it refused", base, err)
		}
	}
}

func TestOpenAIExecutorSendsTheChatCompletionsRequest(t *testing.T) {
	var mu sync.Mutex
	var raw map[string]json.RawMessage
	var header http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		header = r.Header.Clone()
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			t.Errorf("request body: %v", err)
		}
		writeJSON(w, http.StatusOK, completionJSON("Shaped.", 1, 1))
	}))
	defer srv.Close()
	e, err := New(Options{APIKey: fakeOpenAIKey, Model: "gpt-4o-mini", BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Execute(context.Background(), openAITestInput); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(raw) != 2 || string(raw["model"]) != `"gpt-4o-mini"` {
		t.Errorf("request body keys %v, model %s; want exactly model and messages", keys(raw), raw["model"])
	}
	var msgs []map[string]string
	if err := json.Unmarshal(raw["messages"], &msgs); err != nil || len(msgs) != 2 ||
		len(msgs[0]) != 2 || msgs[0]["role"] != "system" || msgs[0]["content"] != systemPrompt ||
		len(msgs[1]) != 2 || msgs[1]["role"] != "user" || msgs[1]["content"] != userPrompt(openAITestInput) {
		t.Errorf("messages = %s (%v)", raw["messages"], err)
	}
	if header.Get("Authorization") != "Bearer "+fakeOpenAIKey || header.Get("Content-Type") != "application/json" || header.Get("Accept") != "application/json" {
		t.Errorf("headers %v", header)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestOpenAIExecutorUsesTheGivenHTTPClientWithItsOwnTimeout(t *testing.T) {
	f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, completionJSON("Through the custom client.", 1, 1))
	})
	var through int
	client := &http.Client{
		Timeout: time.Nanosecond, // replaced by Options.Timeout
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			through++
			return http.DefaultTransport.RoundTrip(r)
		}),
	}
	out, err := f.executor(func(o *Options) { o.HTTPClient = client }).Execute(context.Background(), openAITestInput)
	if err != nil || through != 1 || !strings.Contains(out.Result, "Through the custom client.") {
		t.Errorf("Execute = %q, %v, %d requests through the client; want the answer through it", out.Result, err, through)
	}
	if client.Timeout != time.Nanosecond {
		t.Errorf("the caller's client was changed: timeout %s", client.Timeout)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestOpenAIExecutorExplainsErrorAnswersOfEveryShape(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
		status           int
	}{
		{"HTML page", "<html><body>502 Bad Gateway</body></html>", "openai: server error (502 Bad Gateway) after 3 attempts", http.StatusBadGateway},
		{"string error", `{"error":"model is overloaded"}`, "openai: server error (503 Service Unavailable) after 3 attempts: model is overloaded", http.StatusServiceUnavailable},
		{"key in the message", apiErrorJSON("bad key "+fakeOpenAIKey, "invalid_request_error", ""), "openai: the API refused the key (403 Forbidden; check OPENAI_API_KEY): bad key [API key]", http.StatusForbidden},
		{"other 4xx", `{}`, "openai: request refused (422 Unprocessable Entity)", http.StatusUnprocessableEntity},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, _ *http.Request) { writeJSON(w, c.status, c.body) })
			_, err := f.executor(nil).Execute(context.Background(), openAITestInput)
			if err == nil || err.Error() != c.want {
				t.Errorf("error = %v, want %q", err, c.want)
			}
		})
	}
}

func TestOpenAIExecutorKeepsTheResultValidUTF8(t *testing.T) {
	// Invalid bytes inside the JSON string become U+FFFD; a cut never splits
	// a character.
	body := strings.Replace(completionJSON("caf\u00e9 PLACEHOLDER", 10, 10), "PLACEHOLDER", "\xff\xfe ok", 1)
	f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, body) })
	out, err := f.executor(nil).Execute(context.Background(), openAITestInput)
	if err != nil || !utf8.ValidString(out.Result) || !strings.Contains(out.Result, "café \ufffd\ufffd ok") {
		t.Errorf("Execute = %q, %v; want valid UTF-8 with replacement characters", out.Result, err)
	}
	if got := clip("añb", 2); got != "añ" {
		t.Errorf("clip = %q", got)
	}
}

func TestOpenAIExecutorNotesAnAnswerCutAtTheOutputLimit(t *testing.T) {
	body := strings.Replace(completionJSON("Half a brief", 10, 10), `"finish_reason":"stop"`, `"finish_reason":"length"`, 1)
	f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, body) })
	out, err := f.executor(nil).Execute(context.Background(), openAITestInput)
	want := Label("gpt-4o-mini") + "\n\nHalf a brief\n\n[The model stopped at its output limit; this deliverable may be incomplete.]\n"
	if err != nil || out.Result != want {
		t.Errorf("Execute = %q, %v; want %q", out.Result, err, want)
	}
}

func TestOpenAIExecutorKeepsTheKeyOnTheAPIsOrigin(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		writeJSON(w, http.StatusOK, completionJSON("Stolen.", 1, 1))
	}))
	defer other.Close()
	f := newFakeOpenAI(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/v1/chat/completions", http.StatusTemporaryRedirect)
	})
	_, err := f.executor(nil).Execute(context.Background(), openAITestInput)
	if err == nil || !strings.Contains(err.Error(), "redirected to another origin, which is refused (1 attempt)") || strings.Contains(err.Error(), fakeOpenAIKey) {
		t.Errorf("error = %v, want the redirect refused", err)
	}
	if n := elsewhere.Load(); n != 0 || len(f.seen()) != 1 {
		t.Errorf("%d requests reached the other origin, %d the API; want 0 and 1 (no retry)", n, len(f.seen()))
	}

	// Within the origin, a redirect is followed with the key and the body.
	f = newFakeOpenAI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			http.Redirect(w, r, "/v1/chat/completions", http.StatusPermanentRedirect)
			return
		}
		writeJSON(w, http.StatusOK, completionJSON("Moved, same origin.", 1, 1))
	})
	out, err := f.executor(nil).Execute(context.Background(), openAITestInput)
	if err != nil || !strings.Contains(out.Result, "Moved, same origin.") {
		t.Errorf("Execute = %q, %v", out.Result, err)
	}
	if reqs := f.seen(); len(reqs) != 2 || reqs[1].Authorization != "Bearer "+fakeOpenAIKey || len(reqs[1].Messages) != 2 {
		t.Errorf("redirected request: %+v", reqs)
	}
}
