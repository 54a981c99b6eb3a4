package searchapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/agents/clocktest"
)

// rig is the part of package agents' outreach rig these tests use: a
// context and the shared hand-moved clock behind the provider's Env.
type rig struct {
	ctx   context.Context
	clock *clocktest.Clock
}

func newRig(*testing.T) *rig {
	return &rig{ctx: context.Background(), clock: clocktest.New(agentstest.Epoch)}
}

func (r *rig) env() agents.Env { return agents.Env{Now: r.clock.Now} }

// searchAPI is a fake search API whose answers a test scripts.
type searchAPI struct {
	calls  atomic.Int32
	answer func(call int, w http.ResponseWriter, r *http.Request)

	mu       sync.Mutex
	lastAuth string
	lastURL  *url.URL
}

func newSearchAPI(t *testing.T, answer func(call int, w http.ResponseWriter, r *http.Request)) (*searchAPI, *httptest.Server) {
	s := &searchAPI{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.lastAuth, s.lastURL = r.Header.Get("Authorization"), r.URL
		s.mu.Unlock()
		s.answer(int(s.calls.Add(1)), w, r)
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func (r *rig) searchProvider(url string, sleeps *agentstest.Sleeps, timeout time.Duration) *Leads {
	return New(r.env(), Options{
		URL: url + "/search?source=test", Key: "sekrit", Niche: "marketing agencies", Geography: "Texas",
		MinCompanySize: 10, MaxCompanySize: 50, Timeout: timeout, Sleep: sleeps.Sleep,
	})
}

func TestSearchAPIArrayFormAuthAndQuery(t *testing.T) {
	r := newRig(t)
	api, srv := newSearchAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `[{"company_name":"Acme","contact_name":"Jane Roe","email":"jane@acme.example","website":"https://acme.example","niche":"branding"},
			{"company":"Beta","contact":"Bo","url":"beta.example","industry":"SaaS","email":42}, 7, null]`)
	})
	p := r.searchProvider(srv.URL, &agentstest.Sleeps{}, 0)
	cands, err := p.Candidates(r.ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []agents.LeadCandidate{
		{Name: "Jane Roe", Email: "jane@acme.example", Company: "Acme", Website: "https://acme.example", Niche: "branding"},
		{Name: "Bo", Company: "Beta", Website: "beta.example", Niche: "SaaS"},
	}
	if fmt.Sprint(cands) != fmt.Sprint(want) {
		t.Fatalf("candidates = %+v\nwant %+v", cands, want)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.lastAuth != "Bearer sekrit" {
		t.Errorf("Authorization = %q", api.lastAuth)
	}
	q := api.lastURL.Query()
	if q.Get("query") != "marketing agencies in Texas 10-50 employees" || q.Get("limit") != "5" || q.Get("source") != "test" {
		t.Errorf("query parameters = %v", q)
	}
	if msg, _ := p.LastError(); msg != "" || p.LastSuccess().IsZero() {
		t.Errorf("LastError = %q, LastSuccess = %v", msg, p.LastSuccess())
	}
}

func TestSearchAPIResultsFormAndDefaultNiche(t *testing.T) {
	r := newRig(t)
	_, srv := newSearchAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"results":[{"company":"A","email":"a@a.example"},{"company":"B","email":"b@b.example"},{"company":"C","email":"c@c.example"}]}`)
	})
	cands, err := r.searchProvider(srv.URL, &agentstest.Sleeps{}, 0).Candidates(r.ctx, 2)
	if err != nil || len(cands) != 2 || cands[1].Company != "B" || cands[0].Niche != "marketing agencies" {
		t.Fatalf("Candidates = %+v, %v", cands, err)
	}
}

func TestSearchAPIRetriesServerErrorsWithBackoff(t *testing.T) {
	r := newRig(t)
	api, srv := newSearchAPI(t, func(call int, w http.ResponseWriter, _ *http.Request) {
		switch call {
		case 1:
			http.Error(w, "boom", http.StatusInternalServerError)
		case 2:
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			io.WriteString(w, `[{"company":"A","email":"a@a.example"}]`)
		}
	})
	s := &agentstest.Sleeps{}
	cands, err := r.searchProvider(srv.URL, s, 0).Candidates(r.ctx, 3)
	if err != nil || len(cands) != 1 || api.calls.Load() != 3 {
		t.Fatalf("Candidates = %+v, %v after %d calls", cands, err, api.calls.Load())
	}
	if fmt.Sprint(s.Slept()) != "[500ms 1s]" {
		t.Errorf("backoff slept %v, want [500ms 1s]", s.Slept())
	}
}

// countingTransport counts the requests the client sends, whether or not
// they reach the server (an attempt cut by its timeout while dialling is
// still an attempt).
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(req)
}

// TestSearchAPIFailuresAreReportedAndKept gives every answer but the
// timeout a generous attempt timeout, so that no verdict depends on how fast
// a loaded machine moves a megabyte: the size limit is judged on the bytes
// (or the declared length), never on the clock. Only the timeout case uses a
// short timeout, and its attempts are counted by the client, which makes
// them whether or not the server saw them in time.
func TestSearchAPIFailuresAreReportedAndKept(t *testing.T) {
	overLimit := `[` + strings.Repeat(`{"company":"A"},`, searchAPIMaxBody/16) + `{}]` // 1 MiB + 3 bytes
	for _, tc := range []struct {
		name    string
		answer  func(w http.ResponseWriter, r *http.Request)
		timeout time.Duration
		calls   int32
		want    string
	}{
		{"persistent 503", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }, 0, 3, "503"},
		{"401 is not retried", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "bad key", http.StatusUnauthorized) }, 0, 1, "bad key"},
		{"garbage JSON", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `[{"company": `) }, 0, 1, "not valid JSON"},
		{"not JSON at all", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `<html>`) }, 0, 1, "not JSON"},
		{"object without results", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"error":"no"}`) }, 0, 1, "no \"results\""},
		{"body over 1 MiB", func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, overLimit) // chunked: cut by the limit reader
		}, 0, 1, "larger than"},
		{"body over 1 MiB, declared", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(overLimit)))
			io.WriteString(w, overLimit) // refused on its declared length
		}, 0, 1, "declared"},
		{"timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, 50 * time.Millisecond, 3, "deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			api, srv := newSearchAPI(t, func(_ int, w http.ResponseWriter, req *http.Request) { tc.answer(w, req) })
			timeout := tc.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			transport := &countingTransport{}
			p := r.searchProvider(srv.URL, &agentstest.Sleeps{}, timeout)
			p.opts.Client = &http.Client{Transport: transport}
			_, err := p.Candidates(r.ctx, 3)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if got := transport.n.Load(); got != tc.calls {
				t.Errorf("attempts = %d, want %d", got, tc.calls)
			}
			if got := api.calls.Load(); got > tc.calls || (tc.timeout == 0 && got != tc.calls) {
				t.Errorf("server saw %d calls, want %d", got, tc.calls)
			}
			msg, at := p.LastError()
			if msg != err.Error() || !at.Equal(r.clock.Now()) {
				t.Errorf("LastError = %q at %v", msg, at)
			}
			if strings.Contains(msg, "sekrit") {
				t.Errorf("the API key leaked into the error: %s", msg)
			}
		})
	}
}
