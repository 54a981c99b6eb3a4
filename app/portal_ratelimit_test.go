package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testClientIPHeader is the trusted proxy header the rate-limit tests set, so
// one test client can speak for many addresses.
const testClientIPHeader = "X-Test-Client-IP"

func TestPortalRateLimitedPerAddress(t *testing.T) {
	f := newFixture(t, nil, func(d *Deps) { d.ClientIPHeader = testClientIPHeader })
	f.seed(t)
	const guesser, client = "203.0.113.7", "198.51.100.20"

	// The burst is spent on a mix of guesses and real visits: unknown
	// tokens count like known ones.
	for i := range portalBurst {
		path, want := "/portal/guess-"+strings.Repeat("x", i%7), http.StatusNotFound
		switch i % 4 {
		case 0:
			path, want = "/portal/"+f.token, http.StatusSeeOther
		case 1:
			path = "/portal/link/guess-" + strings.Repeat("y", i%5)
		}
		if got, _, _ := f.portalGet(t, path, guesser); got != want {
			t.Fatalf("request %d (%s) = %d, want %d", i+1, path, got, want)
		}
	}
	for _, path := range []string{"/portal/" + f.token, "/portal/another-guess", "/portal/link/guess", "/portal", "/events/portal", "/portal/invoices/1", "/paid"} {
		status, retry, body := f.portalGet(t, path, guesser)
		if status != http.StatusTooManyRequests || retry == "" {
			t.Errorf("over the burst, GET %s = %d Retry-After %q, want 429 with Retry-After", path, status, retry)
		}
		if !strings.Contains(body, "error-page") || strings.Contains(body, "INV-000001") {
			t.Errorf("over the burst, GET %s is not a plain page", path)
		}
	}

	// Another address is still served, and so is the same one when the
	// bucket has refilled for a few requests.
	if status, _, _ := f.portalGet(t, "/portal/"+f.token, client); status != http.StatusSeeOther {
		t.Errorf("another address = %d, want 303 to its portal", status)
	}
	if status, _, body := f.portalGet(t, "/portal", client); status != http.StatusOK || !strings.Contains(body, "INV-000001") {
		t.Errorf("another address's portal = %d, want its portal", status)
	}
	f.clock.Advance(3 * portalRefillEach)
	for i := range 3 {
		if status, _, _ := f.portalGet(t, "/portal/"+f.token, guesser); status != http.StatusSeeOther {
			t.Errorf("after refilling 3, request %d = %d", i+1, status)
		}
	}
	if status, _, _ := f.portalGet(t, "/portal/"+f.token, guesser); status != http.StatusTooManyRequests {
		t.Errorf("past the refill = %d, want 429", status)
	}
	f.clock.Advance(time.Minute)
	if status, _, _ := f.portalGet(t, "/portal/"+f.token, guesser); status != http.StatusSeeOther {
		t.Errorf("a minute later = %d, want 303", status)
	}
	if !strings.Contains(f.logs.String(), "portal rate limited") || strings.Contains(f.logs.String(), f.token) {
		t.Errorf("rate limiting not logged, or logged with the token")
	}
}

func TestPortalRateLimitGroupsIPv6Networks(t *testing.T) {
	f := newFixture(t, nil, func(d *Deps) { d.ClientIPHeader = testClientIPHeader })
	// One /64 is one client, however many addresses it walks through.
	for i := range portalBurst {
		ip := fmt.Sprintf("2001:db8:1:2::%x", i+1)
		if status, _, _ := f.portalGet(t, "/portal/guess", ip); status != http.StatusNotFound {
			t.Fatalf("request %d from %s = %d", i+1, ip, status)
		}
	}
	if status, _, _ := f.portalGet(t, "/portal/guess", "2001:db8:1:2:ffff::1"); status != http.StatusTooManyRequests {
		t.Errorf("another address of the same /64 = %d, want 429", status)
	}
	if status, _, _ := f.portalGet(t, "/portal/guess", "2001:db8:1:3::1"); status != http.StatusNotFound {
		t.Errorf("the next /64 = %d, want 404 (served)", status)
	}
}

func TestPortalRateLimitIgnoresOtherPages(t *testing.T) {
	f := newFixture(t, nil, func(d *Deps) { d.ClientIPHeader = testClientIPHeader })
	const ip = "203.0.113.9"
	for range portalBurst + 5 {
		if status, _, _ := f.portalGet(t, "/healthz", ip); status != http.StatusOK {
			t.Fatalf("healthz = %d", status)
		}
	}
	if status, _, _ := f.portalGet(t, "/portal/not-a-token", ip); status != http.StatusNotFound {
		t.Errorf("portal after other pages = %d, want 404 (not limited)", status)
	}
}
