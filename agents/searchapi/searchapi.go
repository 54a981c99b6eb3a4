// Package searchapi is HossAgent's lead search API adapter: the
// agents.LeadProvider that asks an external search API for prospects
// (LEAD_SOURCE=search_api) and reports its health to the admin panel.
package searchapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hossagent/hossagent/agents"
)

// Options configure the search API lead provider (LEAD_SEARCH_API_* and
// LEAD_* settings).
type Options struct {
	URL, Key         string
	Niche, Geography string
	MinCompanySize   int // 0: no lower bound
	MaxCompanySize   int // 0: no upper bound
	// Timeout bounds each request; 0 means 10 s.
	Timeout time.Duration
	// Client makes the requests; nil means a plain http.Client.
	Client *http.Client
	// Sleep waits between attempts; nil means agents.SleepContext. Tests pass a
	// recorder so that they never sleep.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Search API limits.
const (
	searchAPIAttempts     = 3
	searchAPIFirstBackoff = 500 * time.Millisecond
	searchAPIMaxBody      = 1 << 20 // 1 MiB
)

// Leads asks an external search API for prospects:
// GET URL?query=…&limit=… with a bearer key. The response is a JSON array or
// {"results": [...]}, and each item is read leniently. Network errors, 5xx
// and 429 answers are retried with exponential backoff; the last error is
// kept for the admin's health panel. Safe for concurrent use.
type Leads struct {
	env  agents.Env
	opts Options

	mu          sync.Mutex
	lastErr     string
	lastErrAt   time.Time
	lastSuccess time.Time
}

// New returns the search API provider. env supplies the clock that stamps
// its errors.
func New(env agents.Env, opts Options) *Leads {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Sleep == nil {
		opts.Sleep = agents.SleepContext
	}
	return &Leads{env: env, opts: opts}
}

// Name is "search_api", the lead source recorded on its leads.
func (s *Leads) Name() string { return "search_api" }

// LastError is the latest failure and when it happened ("" and the zero
// time when there was none). It is kept after a later success, which
// LastSuccess tells apart.
func (s *Leads) LastError() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr, s.lastErrAt
}

// LastSuccess is when the API last answered usefully.
func (s *Leads) LastSuccess() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSuccess
}

// Query is the search phrase sent to the API: the niche, "in <geography>"
// when set, and a company-size phrase ("10-50 employees").
func (s *Leads) Query() string {
	parts := []string{strings.TrimSpace(s.opts.Niche)}
	if g := strings.TrimSpace(s.opts.Geography); g != "" {
		parts = append(parts, "in "+g)
	}
	lo, hi := s.opts.MinCompanySize, s.opts.MaxCompanySize
	switch {
	case lo > 0 && hi > 0:
		parts = append(parts, fmt.Sprintf("%d-%d employees", lo, hi))
	case lo > 0:
		parts = append(parts, fmt.Sprintf("%d+ employees", lo))
	case hi > 0:
		parts = append(parts, fmt.Sprintf("up to %d employees", hi))
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

// Candidates asks the API for up to n prospects.
func (s *Leads) Candidates(ctx context.Context, n int) ([]agents.LeadCandidate, error) {
	if n <= 0 {
		return nil, nil
	}
	body, err := s.fetch(ctx, n)
	if err == nil {
		var cands []agents.LeadCandidate
		if cands, err = parseSearchResults(body, n); err == nil {
			s.mu.Lock()
			s.lastSuccess = s.now()
			s.mu.Unlock()
			for i := range cands {
				// The API was asked about the configured niche; an item
				// that does not say otherwise belongs to it.
				cands[i].Niche = orDefault(cands[i].Niche, s.opts.Niche)
			}
			return cands, nil
		}
	}
	s.mu.Lock()
	s.lastErr, s.lastErrAt = err.Error(), s.now()
	s.mu.Unlock()
	return nil, err
}

// orDefault is s trimmed, or def when s is blank.
func orDefault(s, def string) string {
	if s = strings.TrimSpace(s); s == "" {
		return def
	}
	return s
}

func (s *Leads) now() time.Time {
	if s.env.Now == nil {
		return time.Time{}
	}
	return s.env.Now()
}

// retryableError is a failure worth another attempt.
type retryableError struct{ err error }

func (e retryableError) Error() string { return e.err.Error() }
func (e retryableError) Unwrap() error { return e.err }

// fetch makes up to three attempts and returns the body of the first
// successful answer.
func (s *Leads) fetch(ctx context.Context, n int) ([]byte, error) {
	backoff := searchAPIFirstBackoff
	for attempt := 1; ; attempt++ {
		body, err := s.attempt(ctx, n)
		var retry retryableError
		if err == nil {
			return body, nil
		}
		if !errors.As(err, &retry) || attempt == searchAPIAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("search API (attempt %d of %d): %w", attempt, searchAPIAttempts, err)
		}
		if serr := s.opts.Sleep(ctx, backoff); serr != nil {
			return nil, fmt.Errorf("search API: %w (stopped before retrying: %v)", err, serr)
		}
		backoff *= 2
	}
}

// attempt makes one request under its own timeout.
func (s *Leads) attempt(ctx context.Context, n int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	u, err := url.Parse(s.opts.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	q := u.Query()
	q.Set("query", s.Query())
	q.Set("limit", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if s.opts.Key != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.Key)
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, retryableError{err}
	}
	defer resp.Body.Close()
	// A declared length over the limit is refused before any byte is read;
	// an undeclared one is cut by the limit reader at one byte past the
	// limit, so a huge answer is never read whole, however it is sent.
	if resp.StatusCode == http.StatusOK && resp.ContentLength > searchAPIMaxBody {
		return nil, fmt.Errorf("answer is larger than %d bytes (%d declared)", searchAPIMaxBody, resp.ContentLength)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, searchAPIMaxBody+1))
	if err != nil {
		return nil, retryableError{fmt.Errorf("reading the answer: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("answered %s: %s", resp.Status, searchSnippet(body))
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, retryableError{err}
		}
		return nil, err
	}
	if len(body) > searchAPIMaxBody {
		return nil, fmt.Errorf("answer is larger than %d bytes", searchAPIMaxBody)
	}
	return body, nil
}

// searchSnippet is the start of an error body, on one line of valid text
// (it is logged and shown in the health panel), at most 200 bytes and an
// ellipsis.
func searchSnippet(b []byte) string {
	return truncateText(agents.CleanText(string(b[:min(len(b), 4*200)])), 200)
}

// truncateText cuts s to at most n bytes on a character boundary, marking
// the cut with an ellipsis.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// maxSearchField bounds a field read from an answer. Longer ones are cut
// (and then refused by agents.PrepareLead, whose limit is lower): a 1 MiB
// company name is never carried further.
const maxSearchField = 1024

// parseSearchResults reads a JSON array of items, or an object holding them
// under "results", and returns the first limit candidates (all when limit
// is 0 or less): an answer of a million tiny items costs no more than the
// leads asked for. An item that is not an object is skipped.
func parseSearchResults(body []byte, limit int) ([]agents.LeadCandidate, error) {
	body = bytes.TrimSpace(body)
	var items []json.RawMessage
	switch {
	case len(body) > 0 && body[0] == '[':
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("search API: answer is not valid JSON: %w", err)
		}
	case len(body) > 0 && body[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, fmt.Errorf("search API: answer is not valid JSON: %w", err)
		}
		raw, ok := obj["results"]
		if !ok {
			return nil, fmt.Errorf("search API: answer has no \"results\": %s", searchSnippet(body))
		}
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("search API: \"results\" is not an array: %w", err)
		}
	default:
		return nil, fmt.Errorf("search API: answer is not JSON: %s", searchSnippet(body))
	}
	if limit <= 0 || limit > len(items) {
		limit = len(items)
	}
	cands := make([]agents.LeadCandidate, 0, limit)
	for _, raw := range items {
		if len(cands) == limit {
			break
		}
		var it map[string]json.RawMessage
		if json.Unmarshal(raw, &it) != nil || it == nil {
			continue
		}
		cands = append(cands, agents.LeadCandidate{
			Company: searchField(it, true, "company_name", "company"),
			Name:    searchField(it, true, "contact_name", "contact"),
			Email:   searchField(it, false, "email"),
			Website: searchField(it, false, "website", "url"),
			Niche:   searchField(it, true, "niche", "industry"),
		})
	}
	return cands, nil
}

// searchField is the first of keys that holds a non-empty string, trimmed
// and at most maxSearchField bytes; other types (numbers, null, objects)
// are ignored rather than failing the batch. A name-like field (clean) is
// made one line of valid text without control characters
// (agents.CleanText); an e-mail or a website is left as it came, for
// agents.PrepareLead to refuse when it is not one: cleaning an address could
// turn it into someone else's.
func searchField(item map[string]json.RawMessage, clean bool, keys ...string) string {
	for _, k := range keys {
		var v string
		if raw, ok := item[k]; ok && json.Unmarshal(raw, &v) == nil {
			if clean {
				v = agents.CleanText(v)
			}
			if v = strings.TrimSpace(v); v != "" {
				return strings.TrimSpace(truncateText(v, maxSearchField))
			}
		}
	}
	return ""
}
