package agents

import (
	"context"
	"errors"
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
)

// staticLeads is a provider that returns fixed candidates.
type staticLeads struct {
	cands []LeadCandidate
	err   error
	asked []int
}

func (s *staticLeads) Name() string { return "static" }

func (s *staticLeads) Candidates(_ context.Context, n int) ([]LeadCandidate, error) {
	s.asked = append(s.asked, n)
	return s.cands, s.err
}

func TestLeadSourceWithNothingToDo(t *testing.T) {
	r := newOutreachRig(t)
	p := &staticLeads{}
	wantOutreachCounts(t, r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 10})),
		Counts{"created": 0, "duplicate": 0, "invalid": 0})
	if r.events.count(EventDataChanged) != 0 {
		t.Errorf("published data_changed with nothing created")
	}
	r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 0}))
	if len(p.asked) != 1 || p.asked[0] != 10 {
		t.Errorf("provider asked for %v, want [10] (a cap of 0 asks for nothing)", p.asked)
	}
}

func TestLeadSourceDedupesInTheDatabase(t *testing.T) {
	r := newOutreachRig(t)
	p := &staticLeads{cands: []LeadCandidate{
		{Name: "Jane", Email: " Jane@Acme.com ", Company: "Acme"},
		{Name: "Jane again", Email: "jane@acme.com", Company: "Acme Inc"},        // same e-mail
		{Name: "Bob", Email: "bob@mail.acme.com", Company: "Acme"},               // same domain key
		{Name: "Ann", Email: "ann@gmail.com", Company: "Ann's Studio"},           // free mail
		{Name: "Cid", Email: "cid@gmail.com", Company: "Cid & Co"},               // free mail too: not a duplicate
		{Name: "Dee", Email: "dee@gmail.com", Website: "https://www.acme.com/x"}, // free mail, known company website
		{Website: "https://bakery.co.uk/about", Company: "Bakery"},               // website only
		{Name: "Nobody", Company: "Ghost"},                                       // neither e-mail nor website
		{Email: "not-an-address", Company: "Broken"},
		{Email: "eve@example", Company: "No dot"},
	}}
	counts := r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 20}))
	wantOutreachCounts(t, counts, Counts{"created": 4, "duplicate": 3, "invalid": 3})
	if r.events.count(EventDataChanged) != 1 {
		t.Errorf("data_changed events = %d, want 1", r.events.count(EventDataChanged))
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE email LIKE '%@gmail.com' AND domain_key IS NULL"); n != 2 {
		t.Errorf("gmail leads without domain key = %d, want 2", n)
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE domain_key = 'bakery.co.uk' AND email IS NULL AND source = 'static'"); n != 1 {
		t.Errorf("website-only lead missing")
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE email = 'jane@acme.com' AND domain_key = 'acme.com'"); n != 1 {
		t.Errorf("normalised e-mail lead missing")
	}
	// Run again: everything is now a duplicate or still invalid.
	wantOutreachCounts(t, r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 20})),
		Counts{"created": 0, "duplicate": 7, "invalid": 3})
}

func TestLeadSourceTakesAtMostMaxPerCycleAndReportsProviderErrors(t *testing.T) {
	r := newOutreachRig(t)
	var cands []LeadCandidate
	for i := range 5 {
		cands = append(cands, LeadCandidate{Email: fmt.Sprintf("x@c%d.example", i), Company: "C"})
	}
	p := &staticLeads{cands: cands}
	wantOutreachCounts(t, r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 3})), Counts{"created": 3})

	p.err = errors.New("quota exceeded")
	if _, err := NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 3}).Run(r.ctx); err == nil || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("Run with a failing provider: %v", err)
	}
}

func TestPrepareLead(t *testing.T) {
	for _, tc := range []struct {
		in             LeadCandidate
		email, key, co string
		bad            string
	}{
		{in: LeadCandidate{Email: "MAILTO:A.B@Sub.Acme.CO.UK", Company: "Acme"}, email: "a.b@sub.acme.co.uk", key: "acme.co.uk", co: "Acme"},
		{in: LeadCandidate{Email: "a@yahoo.co.uk", Company: "A"}, email: "a@yahoo.co.uk", key: "", co: "A"},
		{in: LeadCandidate{Website: "www.Shop.example"}, key: "shop.example", co: "shop.example"},
		{in: LeadCandidate{Email: "x@proton.me"}, bad: "no company"},
		{in: LeadCandidate{Company: "X"}, bad: "neither"},
		{in: LeadCandidate{Email: "a..b@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "a@b@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "a@co.uk", Company: "X"}, bad: "no registrable domain"},
		{in: LeadCandidate{Website: "http://10.0.0.1/", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Website: "ftp://files.example", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Email: "a@x.com", Company: strings.Repeat("x", 400)}, bad: "longer"},
		// Names are cleaned; addresses with anything but their syntax are refused.
		{in: LeadCandidate{Email: "a@x.com", Company: " Ac\x00me\tCorp\n\u2028Ltd \xff"}, email: "a@x.com", key: "x.com", co: "Acme Corp Ltd \uFFFD"},
		{in: LeadCandidate{Email: "ja\x00ne@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "jané@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "a@x.com\r\nBcc: b@y.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "\"a b\"@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Website: "https://acme.example/a b", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Website: "https://acme.example/\x00", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Website: "https://acme.example/\xff", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Website: "www.00", Company: "X"}, bad: "website"}, // found by FuzzLeadSearchResponse
		{in: LeadCandidate{Email: "a@b.123", Company: "X"}, bad: "not a valid address"},
		// A page on a shared host gives no company domain.
		{in: LeadCandidate{Email: "a@gmail.com", Website: "https://facebook.com/acme", Company: "Acme"}, email: "a@gmail.com", key: "", co: "Acme"},
	} {
		got, err := PrepareLead(tc.in, "t")
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("PrepareLead(%+v) error = %v, want %q", tc.in, err, tc.bad)
			}
			continue
		}
		if err != nil || got.Email != tc.email || got.DomainKey != tc.key || got.Company != tc.co {
			t.Errorf("PrepareLead(%+v) = %+v, %v; want email %q key %q company %q", tc.in, got, err, tc.email, tc.key, tc.co)
		}
	}
}

func TestSyntheticLeadsAreFictitiousAndMostlyFresh(t *testing.T) {
	r := newOutreachRig(t)
	p := NewSyntheticLeads(r.rnd)
	cands, err := p.Candidates(r.ctx, 200)
	if err != nil || len(cands) != 200 {
		t.Fatalf("Candidates = %d, %v", len(cands), err)
	}
	niches := map[string]bool{}
	for _, pack := range PackNames() {
		for _, n := range PackNiches(pack) {
			niches[n] = true
		}
	}
	for _, c := range cands {
		in, err := PrepareLead(c, p.Name())
		if err != nil {
			t.Fatalf("candidate %+v is invalid: %v", c, err)
		}
		if !strings.HasSuffix(in.DomainKey, ".example") && !strings.HasSuffix(in.DomainKey, ".test") {
			t.Fatalf("candidate %+v is not on a reserved domain", c)
		}
		if !strings.HasSuffix(c.Website, in.DomainKey) || c.Name == "" || c.Company == "" || !niches[c.Niche] {
			t.Fatalf("implausible candidate %+v", c)
		}
	}
	lc := NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 50})
	first, second := r.run(lc), r.run(lc)
	if first["created"] < 48 || second["created"] < 48 || first["invalid"]+second["invalid"] != 0 {
		t.Fatalf("two synthetic cycles: %v then %v; want mostly fresh leads", first, second)
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE source = 'synthetic'"); n != first["created"]+second["created"] {
		t.Fatalf("stored %d synthetic leads", n)
	}
	if got, _ := p.Candidates(r.ctx, -1); len(got) != 0 {
		t.Errorf("Candidates(-1) = %d", len(got))
	}
}

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

func (r *outreachRig) searchProvider(url string, sleeps *outreachSleeps, timeout time.Duration) *SearchAPILeads {
	return NewSearchAPILeads(r.env(), SearchAPIOptions{
		URL: url + "/search?source=test", Key: "sekrit", Niche: "marketing agencies", Geography: "Texas",
		MinCompanySize: 10, MaxCompanySize: 50, Timeout: timeout, Sleep: sleeps.Sleep,
	})
}

func TestSearchAPIArrayFormAuthAndQuery(t *testing.T) {
	r := newOutreachRig(t)
	api, srv := newSearchAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `[{"company_name":"Acme","contact_name":"Jane Roe","email":"jane@acme.example","website":"https://acme.example","niche":"branding"},
			{"company":"Beta","contact":"Bo","url":"beta.example","industry":"SaaS","email":42}, 7, null]`)
	})
	p := r.searchProvider(srv.URL, &outreachSleeps{}, 0)
	cands, err := p.Candidates(r.ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []LeadCandidate{
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
	r := newOutreachRig(t)
	_, srv := newSearchAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"results":[{"company":"A","email":"a@a.example"},{"company":"B","email":"b@b.example"},{"company":"C","email":"c@c.example"}]}`)
	})
	cands, err := r.searchProvider(srv.URL, &outreachSleeps{}, 0).Candidates(r.ctx, 2)
	if err != nil || len(cands) != 2 || cands[1].Company != "B" || cands[0].Niche != "marketing agencies" {
		t.Fatalf("Candidates = %+v, %v", cands, err)
	}
}

func TestSearchAPIRetriesServerErrorsWithBackoff(t *testing.T) {
	r := newOutreachRig(t)
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
	s := &outreachSleeps{}
	cands, err := r.searchProvider(srv.URL, s, 0).Candidates(r.ctx, 3)
	if err != nil || len(cands) != 1 || api.calls.Load() != 3 {
		t.Fatalf("Candidates = %+v, %v after %d calls", cands, err, api.calls.Load())
	}
	if fmt.Sprint(s.slept) != "[500ms 1s]" {
		t.Errorf("backoff slept %v, want [500ms 1s]", s.slept)
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
			r := newOutreachRig(t)
			api, srv := newSearchAPI(t, func(_ int, w http.ResponseWriter, req *http.Request) { tc.answer(w, req) })
			timeout := tc.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			transport := &countingTransport{}
			p := r.searchProvider(srv.URL, &outreachSleeps{}, timeout)
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

func TestImportLeadsCSV(t *testing.T) {
	r := newOutreachRig(t)
	r.addLead("", "known@old.example", "Old", "")
	file := "\uFEFFWebsite, EMAIL ,Company,name,Niche,phone\n" +
		"https://one.example,ann@one.example,One,Ann,agency,555\n" +
		",known@old.example,Old again,,,\n" + // duplicate e-mail
		",,Nothing,,,\n" + // neither
		"two.example,,Two,,saas\n" + // website only, short row
		"\"three.example\",bad address,Three,,,\n" +
		"https://www.one.example,other@one.example,One Again,,,\n" // duplicate domain
	rep, err := ImportLeadsCSV(r.ctx, r.store, strings.NewReader(file), "", outreachStart)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 2 || rep.Duplicate != 2 || rep.Invalid != 2 || len(rep.Rows) != 6 || !rep.At.Equal(outreachStart) {
		t.Fatalf("report = %+v", rep)
	}
	wantRows := []CSVRow{
		{2, "created", ""}, {3, "duplicate", "a lead with this e-mail exists"}, {4, "invalid", "neither e-mail nor website"},
		{5, "created", ""}, {6, "invalid", ""}, {7, "duplicate", "a lead from this company domain exists"},
	}
	for i, w := range wantRows {
		got := rep.Rows[i]
		if got.Row != w.Row || got.Status != w.Status || (w.Reason != "" && got.Reason != w.Reason) || (got.Status != "created" && got.Reason == "") {
			t.Errorf("row %d = %+v, want %+v", i, got, w)
		}
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE source = 'csv' AND ((email = 'ann@one.example' AND niche = 'agency' AND name = 'Ann') OR (website = 'two.example' AND niche = 'saas'))"); n != 2 {
		t.Errorf("imported leads with their columns: %d, want 2", n)
	}
}

func TestImportLeadsCSVRefusesBadFilesWhole(t *testing.T) {
	big := "email\n" + strings.Repeat("x@y.example\n", MaxCSVRows+1)
	huge := "email,company\n" + strings.Repeat(strings.Repeat("a", 1000)+",b\n", 1100)
	for name, file := range map[string]string{
		"empty":           "",
		"no header":       "ann@one.example,One\n",
		"duplicate email": "email,Email\na@b.example,c@d.example\n",
		"too many rows":   big,
		"too large":       huge,
	} {
		t.Run(name, func(t *testing.T) {
			r := newOutreachRig(t)
			_, err := ImportLeadsCSV(r.ctx, r.store, strings.NewReader(file), "csv", outreachStart)
			if !errors.Is(err, ErrInvalidCSV) {
				t.Fatalf("error = %v, want ErrInvalidCSV", err)
			}
			if n := r.count("SELECT COUNT(*) FROM leads"); n != 0 {
				t.Fatalf("%d leads stored from a refused file", n)
			}
		})
	}
	// Exactly at the row limit is fine.
	r := newOutreachRig(t)
	var b strings.Builder
	b.WriteString("email\n")
	for i := range MaxCSVRows {
		fmt.Fprintf(&b, "p%d@c%d.example\n", i, i)
	}
	rep, err := ImportLeadsCSV(r.ctx, r.store, strings.NewReader(b.String()), "csv", outreachStart)
	if err != nil || rep.Created != MaxCSVRows {
		t.Fatalf("import at the limit = %d created, %v", rep.Created, err)
	}
}
