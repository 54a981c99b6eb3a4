package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"
)

// Sample collects durations from many goroutines.
type Sample struct {
	mu sync.Mutex
	ds []time.Duration
}

// Add records one duration.
func (s *Sample) Add(d time.Duration) {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
}

// Summary is the distribution of a sample.
type Summary struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary sorts a copy of the sample and reads its percentiles.
func (s *Sample) Summary() Summary {
	s.mu.Lock()
	ds := slices.Clone(s.ds)
	s.mu.Unlock()
	return summarize(ds)
}

// summarize reads the percentiles of ds, which it sorts.
func summarize(ds []time.Duration) Summary {
	slices.Sort(ds)
	if len(ds) == 0 {
		return Summary{}
	}
	return Summary{Count: len(ds), P50: percentile(ds, 50), P90: percentile(ds, 90), P99: percentile(ds, 99), Max: ds[len(ds)-1]}
}

// percentile is the nearest-rank p-th percentile of sorted: the smallest
// value that at least p percent of the sample is less than or equal to.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// RouteReport is what one route of the mixed traffic measured.
type RouteReport struct {
	Route   string  `json:"route"`
	Path    string  `json:"path"`
	Errors  int64   `json:"errors"`
	Dropped int64   `json:"dropped"`
	Latency Summary `json:"latency"`
}

// SSEReport is what the live-update clients of one stream measured.
type SSEReport struct {
	Path       string  `json:"path"`
	Clients    int     `json:"clients"`
	Connects   int64   `json:"connects"`
	Errors     int64   `json:"errors"`
	Refused    int64   `json:"refused"` // of the errors, 429/503 answers (the server's stream limits)
	Messages   int64   `json:"messages"`
	Unstamped  int64   `json:"unstamped"`
	Heartbeats int64   `json:"heartbeats"`
	Delay      Summary `json:"publish_to_client"`
}

// Report is the whole run's outcome.
type Report struct {
	URL        string        `json:"url"`
	Duration   time.Duration `json:"duration_ns"`
	RPS        int           `json:"rps"`
	Routes     []RouteReport `json:"routes"`
	SSE        []SSEReport   `json:"sse"`
	Changes    RouteReport   `json:"changes"`
	RSSSource  string        `json:"rss_source,omitempty"`
	RSSPeak    int64         `json:"rss_peak_bytes,omitempty"`
	RSSFinal   int64         `json:"rss_final_bytes,omitempty"`
	RSSSamples int           `json:"rss_samples"`
	Warnings   []string      `json:"warnings,omitempty"`
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as aligned plain text.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "load on %s for %s at %d requests/s\n\n", r.URL, r.Duration.Round(time.Millisecond), r.RPS)
	fmt.Fprintf(w, "%-12s %8s %7s %8s %9s %9s %9s %9s\n", "route", "count", "errors", "dropped", "p50", "p90", "p99", "max")
	for _, rr := range append(slices.Clone(r.Routes), r.Changes) {
		if rr.Route == "" {
			continue
		}
		l := rr.Latency
		fmt.Fprintf(w, "%-12s %8d %7d %8d %9s %9s %9s %9s\n", rr.Route, l.Count, rr.Errors, rr.Dropped, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
	}
	if len(r.SSE) > 0 {
		fmt.Fprintf(w, "\n%-18s %7s %8s %6s %8s %9s %9s %9s %9s %9s\n", "live stream", "clients", "connects", "errors", "messages", "unstamped", "p50", "p90", "p99", "max")
		for _, s := range r.SSE {
			d := s.Delay
			fmt.Fprintf(w, "%-18s %7d %8d %6d %8d %9d %9s %9s %9s %9s\n", s.Path, s.Clients, s.Connects, s.Errors, s.Messages, s.Unstamped, ms(d.P50), ms(d.P90), ms(d.P99), ms(d.Max))
		}
		fmt.Fprintln(w, "(live delays: arrival minus the server's \": published\" stamp, per message per client)")
	}
	if r.RSSSamples > 0 {
		fmt.Fprintf(w, "\nserver RSS (%s, %d samples): peak %s, final %s\n", r.RSSSource, r.RSSSamples, mib(r.RSSPeak), mib(r.RSSFinal))
	}
	for _, warn := range r.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
}

// ms formats a duration in milliseconds with a useful precision.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// mib formats bytes in MiB.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
