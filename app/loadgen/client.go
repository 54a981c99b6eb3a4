package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// newTransport is an HTTP/1.1 transport allowing conns connections to the
// one host under load, all of which may stay idle between requests.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		MaxConnsPerHost:     conns,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		// An empty map turns HTTP/2 off: every stream gets its own
		// connection, as many browsers would open.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// newClient is a client sharing jar that never follows redirects: a 303 to
// /login is an answer to report, not a page to load.
func newClient(rt http.RoundTripper, jar http.CookieJar, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: rt, Jar: jar, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// signIn loads the sign-in form, then posts the credentials, leaving the
// session cookie in the client's jar. A request without Origin or
// Sec-Fetch-Site is not a browser's, so cross-origin protection lets it by.
func signIn(ctx context.Context, c *http.Client, base, email, password string) error {
	if _, err := fetch(ctx, c, http.MethodGet, base+"/login", nil); err != nil {
		return fmt.Errorf("sign-in form: %w", err)
	}
	form := url.Values{"email": {email}, "password": {password}, "next": {""}}
	status, err := fetch(ctx, c, http.MethodPost, base+"/login", form)
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	if status != http.StatusSeeOther {
		return fmt.Errorf("sign in as %s: status %d (want 303: wrong e-mail or password, or rate limited)", email, status)
	}
	u, _ := url.Parse(base)
	if len(c.Jar.Cookies(u)) == 0 {
		return fmt.Errorf("sign in as %s: no session cookie came back (a Secure cookie over plain http?)", email)
	}
	return nil
}

// fetch sends one request (a form POST when form is not nil), reads the
// whole answer and returns its status.
func fetch(ctx context.Context, c *http.Client, method, target string, form url.Values) (int, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return 0, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// newJar is an empty cookie jar.
func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil) // cookiejar.New never fails without options
	return jar
}
