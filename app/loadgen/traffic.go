package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// route is one kind of request in the mixed traffic.
type route struct {
	name, path string
	weight     int
	errors     atomic.Int64
	dropped    atomic.Int64
	latency    Sample
}

// report is the route's figures as they stand.
func (r *route) report() RouteReport {
	return RouteReport{Route: r.name, Path: r.path, Errors: r.errors.Load(), Dropped: r.dropped.Load(), Latency: r.latency.Summary()}
}

// defaultPaths are the routes of the mixed traffic.
var defaultPaths = map[string]string{
	"dashboard": "/",
	"admin":     "/admin",
	"leads":     "/api/v1/leads",
	"invoices":  "/api/v1/invoices",
}

// parseRoutes reads "name=weight,..." into routes; portal, when not empty,
// is the path of the portal route. A route with weight 0 is left out.
func parseRoutes(weights, portal string) ([]*route, error) {
	paths := map[string]string{}
	for k, v := range defaultPaths {
		paths[k] = v
	}
	if portal != "" {
		paths["portal"] = portal
	}
	var routes []*route
	for _, part := range strings.Split(weights, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("-weights: %q is not name=weight", part)
		}
		path, known := paths[name]
		if !known {
			if name == "portal" {
				continue // no -portal given
			}
			return nil, fmt.Errorf("-weights: unknown route %q", name)
		}
		if n > 0 {
			routes = append(routes, &route{name: name, path: path, weight: n})
		}
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("-weights: no route has a weight")
	}
	return routes, nil
}

// picker draws routes in proportion to their weights.
type picker struct {
	routes []*route
	total  int
	rng    *rand.Rand
}

func newPicker(routes []*route, seed uint64) *picker {
	p := &picker{routes: routes, rng: rand.New(rand.NewPCG(seed, 0x10ad))}
	for _, r := range routes {
		p.total += r.weight
	}
	return p
}

// pick draws one route.
func (p *picker) pick() *route {
	n := p.rng.IntN(p.total)
	for _, r := range p.routes {
		if n < r.weight {
			return r
		}
		n -= r.weight
	}
	return p.routes[len(p.routes)-1]
}

// openLoop fires one request every interval until ctx ends, on a fixed
// schedule that does not wait for earlier answers (a slow server gets
// more concurrent requests, as it would from real users). At most limit
// are in flight; a request due when the limit is reached is dropped and
// counted. It returns once every request fired has answered.
func openLoop(ctx context.Context, interval time.Duration, limit int, p *picker, fire func(*route)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, limit)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			wg.Wait()
			return
		}
		r := p.pick()
		select {
		case slots <- struct{}{}:
		default:
			r.dropped.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			fire(r)
		}()
	}
}

// request sends one GET of r and records its latency, or an error for a
// failure or an answer that is not 2xx.
func request(ctx context.Context, c *http.Client, base string, r *route) {
	began := time.Now()
	status, err := fetch(ctx, c, http.MethodGet, base+r.path, nil)
	if err != nil && ctx.Err() != nil {
		return // cut off by the end of the run, not the server's doing
	}
	r.latency.Add(time.Since(began))
	if err != nil || status < 200 || status > 299 {
		r.errors.Add(1)
	}
}

// triggerChanges posts the change action every interval until ctx ends; a
// change still under way when the next is due is skipped (counted as
// dropped). A 2xx or 3xx answer counts as done.
func triggerChanges(ctx context.Context, c *http.Client, base string, every time.Duration, ch *route) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	busy := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		select {
		case busy <- struct{}{}:
		default:
			ch.dropped.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-busy }()
			began := time.Now()
			status, err := fetch(ctx, c, http.MethodPost, base+ch.path, map[string][]string{})
			if err != nil && ctx.Err() != nil {
				return
			}
			ch.latency.Add(time.Since(began))
			if err != nil || status >= 400 {
				ch.errors.Add(1)
			}
		}()
	}
}
