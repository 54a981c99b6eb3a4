// Command loadgen puts a running HossAgent under load and reports what it
// measured: it signs in as an operator, keeps live-update (SSE) clients
// open on the dashboard and the control room, fires mixed page and API
// traffic on an open-loop schedule, triggers data changes, and samples the
// server's resident memory.
//
//	go run ./app/loadgen -url http://127.0.0.1:8080 -email E -password P \
//	    -sse-dashboard 200 -sse-admin 20 -rps 50 -duration 30s -change-every 1s
//
// The server holds at most LIVE_STREAMS_PER_USER streams per signed-in
// user (16 unless set) and LIVE_STREAMS_MAX in all, so for thousands of
// streams start the server with both above the number of streams (e.g.
// LIVE_STREAMS_PER_USER=6000 LIVE_STREAMS_MAX=10000) and pass
// -streams-per-session as high: the tool signs in once per
// -streams-per-session streams, as that many browsers would, and each
// sign-in costs the server a bcrypt.
//
// Live delays are the arrival time of each message minus the server's
// ": published <unix-ns>" stamp on it, per client, so the tool and the
// server should share a clock (the same machine). Standard library only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command's flags.
type options struct {
	url, email, password   string
	sseDashboard, sseAdmin int
	streamsPerUser         int
	rps, concurrency       int
	duration, timeout      time.Duration
	weights, portal        string
	changeEvery            time.Duration
	changePath             string
	pid                    int
	rssEvery               time.Duration
	json                   bool
	seed                   uint64
}

// parseOptions reads the flags; a usage error is returned as such.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the running server")
	fs.StringVar(&o.email, "email", os.Getenv("ADMIN_EMAIL"), "admin e-mail to sign in with (default $ADMIN_EMAIL)")
	fs.StringVar(&o.password, "password", os.Getenv("ADMIN_PASSWORD"), "admin password (default $ADMIN_PASSWORD)")
	fs.IntVar(&o.sseDashboard, "sse-dashboard", 0, "live clients on /events/dashboard")
	fs.IntVar(&o.sseAdmin, "sse-admin", 0, "live clients on /events/admin")
	fs.IntVar(&o.streamsPerUser, "streams-per-session", 16, "live clients per signed-in session: the server's LIVE_STREAMS_PER_USER")
	fs.IntVar(&o.rps, "rps", 20, "requests a second of mixed traffic (0: none)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "most requests in flight; one due beyond it is dropped")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to run")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&o.weights, "weights", "dashboard=4,admin=2,leads=2,invoices=2,portal=1", "route weights of the mixed traffic")
	fs.StringVar(&o.portal, "portal", "", "a portal path to include (/portal/<token>, as hossagent seed prints)")
	fs.DurationVar(&o.changeEvery, "change-every", time.Second, "how often to trigger a data change (0: never)")
	fs.StringVar(&o.changePath, "change-path", "/admin/agents/lead_source/run", "admin action POSTed to change data")
	fs.IntVar(&o.pid, "pid", 0, "server process id: read its RSS from /proc (default: from /metrics)")
	fs.DurationVar(&o.rssEvery, "rss-every", time.Second, "how often to sample the server's RSS (0: never)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the route draw")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.url = strings.TrimRight(o.url, "/")
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.email == "" || o.password == "":
		return o, errors.New("-email and -password are required (an admin account)")
	case o.rps < 0 || o.sseDashboard < 0 || o.sseAdmin < 0 || o.concurrency < 1 || o.duration <= 0 || o.streamsPerUser < 1:
		return o, errors.New("-rps and SSE counts must be >= 0, -concurrency and -streams-per-session >= 1, -duration > 0")
	}
	return o, nil
}

// run is main with its inputs explicit: 0 done, 1 failed, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "loadgen:", err)
		}
		return 2
	}
	routes, err := parseRoutes(o.weights, o.portal)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	rep, err := load(ctx, o, routes)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	if o.json {
		if err := rep.WriteJSON(stdout); err != nil {
			return 1
		}
		return 0
	}
	rep.WriteText(stdout)
	return 0
}

// load runs the whole load test and gathers its report.
func load(ctx context.Context, o options, routes []*route) (*Report, error) {
	rep := &Report{URL: o.url, RPS: o.rps}
	streams := o.sseDashboard + o.sseAdmin
	if limit, ok := raiseFileLimit(uint64(streams + o.concurrency + 64)); !ok {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("open-file limit %d is below the %d connections asked for: some will fail", limit, streams+o.concurrency+64))
	}
	jar := newJar()
	api := newClient(newTransport(o.concurrency+4), jar, o.timeout)
	if err := signIn(ctx, api, o.url, o.email, o.password); err != nil {
		return nil, err
	}
	// The streams' sessions: the API client's first, then one more sign-in
	// per streamsPerUser streams.
	sse, err := streamSessions(ctx, o, jar, streams)
	if err != nil {
		return nil, err
	}
	stats := []*streamStats{{path: "/events/dashboard", clients: o.sseDashboard}, {path: "/events/admin", clients: o.sseAdmin}}
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var wg sync.WaitGroup
	next := 0
	for _, st := range stats {
		for range st.clients {
			c := sse[next/o.streamsPerUser]
			next++
			wg.Go(func() { streamClient(runCtx, c, o.url+st.path, st) })
		}
	}
	watch, read := &rssWatch{}, rssSource(o, api, rep)
	if read != nil && o.rssEvery > 0 {
		wg.Go(func() { watch.run(runCtx, read, o.rssEvery) })
	}
	change := &route{name: "change", path: o.changePath}
	if o.changeEvery > 0 {
		wg.Go(func() { triggerChanges(runCtx, api, o.url, o.changeEvery, change) })
		rep.Changes = RouteReport{Route: change.name}
	}
	began := time.Now()
	traffic(runCtx, o, api, routes)
	<-runCtx.Done()
	wg.Wait()
	rep.Duration = time.Since(began)
	if read != nil {
		watch.sample(context.WithoutCancel(ctx), read) // the final figure, after the load
	}
	fill(rep, routes, stats, change, watch, o.changeEvery > 0)
	return rep, nil
}

// streamSessions returns one client per session the streams need
// (ceil(streams / streamsPerUser)), each with its own cookie jar: the
// first shares jar (already signed in), the others sign in, a few at a time.
func streamSessions(ctx context.Context, o options, jar http.CookieJar, streams int) ([]*http.Client, error) {
	n := max(1, (streams+o.streamsPerUser-1)/o.streamsPerUser)
	clients := make([]*http.Client, n)
	clients[0] = newClient(newTransport(0), jar, 0) // streams last the whole run
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{}, 4)
	for i := 1; i < n; i++ {
		clients[i] = newClient(newTransport(0), newJar(), 0)
		wg.Go(func() {
			gate <- struct{}{}
			defer func() { <-gate }()
			signer := newClient(newTransport(1), clients[i].Jar, o.timeout)
			errs[i] = signIn(ctx, signer, o.url, o.email, o.password)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("signing in the streams' %d sessions: %w", n, err)
		}
	}
	return clients, nil
}

// traffic fires the mixed requests until ctx ends.
func traffic(ctx context.Context, o options, c *http.Client, routes []*route) {
	if o.rps == 0 {
		return
	}
	interval := time.Second / time.Duration(o.rps)
	openLoop(ctx, interval, o.concurrency, newPicker(routes, o.seed), func(r *route) {
		request(ctx, c, o.url, r)
	})
}

// rssSource picks where the server's RSS is read from, or nil when it
// cannot be read at all.
func rssSource(o options, c *http.Client, rep *Report) rssReader {
	if o.pid > 0 {
		rep.RSSSource = fmt.Sprintf("/proc/%d/status VmRSS", o.pid)
		return procRSS(o.pid)
	}
	rep.RSSSource = "/metrics process_resident_memory_bytes"
	return metricsRSS(c, o.url)
}

// fill copies every measure into the report.
func fill(rep *Report, routes []*route, stats []*streamStats, change *route, w *rssWatch, changes bool) {
	for _, r := range routes {
		rep.Routes = append(rep.Routes, r.report())
	}
	for _, st := range stats {
		if st.clients > 0 {
			rep.SSE = append(rep.SSE, st.report())
			if n := st.refused.Load(); n > 0 {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: the server refused %d stream connects (429/503, its live stream limits): "+
					"raise LIVE_STREAMS_PER_USER (and -streams-per-session) or LIVE_STREAMS_MAX on the server", st.path, n))
			}
		}
	}
	if changes {
		rep.Changes = change.report()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	rep.RSSPeak, rep.RSSFinal, rep.RSSSamples = w.peak, w.last, w.samples
	if w.failures > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d RSS samples failed, last: %v", w.failures, w.lastErr))
	}
}
