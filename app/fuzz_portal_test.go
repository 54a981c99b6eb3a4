package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// FuzzPortalToken looks fuzzed tokens up three ways: GET /portal/{token}
// (the operator's link) and GET /portal/link/{token} (an e-mailed one,
// which an operator's token is not), and the store's CustomerByPortalToken
// (the token itself passed as a hash must match nothing). It
// holds that nothing is a 5xx or a panic, that the store's lookup finds a
// customer exactly for a live token (the customer it belongs to) and
// fails with ErrNotFound otherwise, and that a session is handed out
// (303 to /portal) exactly for a live token: a rotated-out token, a live one changed
// by a byte, with a different case, padding or escapes, grants nothing.
func FuzzPortalToken(f *testing.F) {
	fs := newFuzzServer(f)
	ctx := context.Background()
	live := map[string]int64{} // live token → its customer
	var dead string
	for i, company := range []string{"Acme Analytics", "Northwind Partners"} {
		c, token, err := fs.store.CreateCustomer(ctx, nil, db.NewCustomer{Company: company, ContactEmail: fmt.Sprintf("c@portal%d.example", i), Plan: "starter"}, rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		if i == 1 {
			// Rotated: the first token is dead, the new one live.
			dead = token
			if token, err = fs.store.RotatePortalToken(ctx, c.ID, rand.Reader); err != nil {
				f.Fatal(err)
			}
		}
		live[token] = c.ID
	}
	for token := range live {
		for _, seed := range []string{token, token + "x", token[:len(token)-1], strings.ToUpper(token), " " + token, token + "\n",
			token + "\x00", "\x00" + token, token + "%00", url.PathEscape(token), token + "/", "../" + token, token[:10],
			db.HashToken(token)} { // the stored hash is no token: a copy of the database grants nothing
			f.Add(seed)
		}
	}
	for _, seed := range []string{dead, "", "a", "\x00", "\xff\xfe", "%00", "%", "..", "../admin", "/", "?", "#", strings.Repeat("a", 43),
		strings.Repeat("a", 128), strings.Repeat("a", 129), strings.Repeat("€", 200), "<script>alert(1)</script>", "' OR 1=1 --"} {
		f.Add(seed)
	}
	n := 0
	f.Fuzz(func(t *testing.T, token string) {
		// Each lookup comes from an address of its own, and the clock moves
		// on, so the portal's rate limit neither answers for the lookup nor
		// keeps every address it has seen.
		n++
		fs.clock.Advance(time.Minute)
		addr := fmt.Sprintf("10.%d.%d.%d:4242", n>>16&255, n>>8&255, n&255)
		owner, isLive := live[token]

		c, err := fs.store.CustomerByPortalToken(ctx, token)
		switch {
		case isLive && (err != nil || c.ID != owner):
			t.Fatalf("live token: customer %v, err %v; want customer %d", c, err, owner)
		case !isLive && err == nil:
			t.Fatalf("token %q that is not live found customer %d", token, c.ID)
		case !isLive && !errors.Is(err, db.ErrNotFound):
			t.Fatalf("lookup of %q failed: %v", token, err)
		}

		for _, path := range []string{"/portal/", "/portal/link/"} {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL = &url.URL{Path: path + token}
			req.RequestURI = req.URL.RequestURI()
			req.RemoteAddr = addr
			rec := fs.serve(req, false)
			opened := rec.Code == http.StatusSeeOther && rec.Header().Get("Location") == "/portal" && strings.Contains(rec.Header().Get("Set-Cookie"), portalCookieName+"=")
			if path == "/portal/link/" {
				isLive = false // an operator's token is no e-mailed link
			}
			switch {
			case rec.Code >= 500:
				t.Fatalf("GET %s%q = %d\n%s", path, token, rec.Code, fs.log.take())
			case strings.Contains(token, "/") && !opened:
				// Another portal route (an invoice page) may answer.
			case isLive && !opened:
				t.Fatalf("GET %s with a live token = %d, want 303 to /portal with a session", path, rec.Code)
			case !isLive && opened:
				t.Fatalf("GET %s%q opened a session with a token that is not live", path, token)
			case isLive:
			case rec.Code < 300:
				t.Fatalf("GET %s%q = %d: a token that is not live was served", path, token, rec.Code)
			case rec.Code != http.StatusNotFound && rec.Code != http.StatusBadRequest:
				t.Fatalf("GET %s%q = %d, want 404 (or 400 for a path that is not text)", path, token, rec.Code)
			}
		}
	})
}
