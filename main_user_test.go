package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// hossagent user works on DATA_DIR beside a running app: an account it adds
// can sign in at once with the password it printed, a viewer may read the
// dashboard and not the control room, a reset ends the old sessions and
// the old password, and the last admin cannot be removed.
func TestUserCommandBesideARunningApp(t *testing.T) {
	env := envOf(map[string]string{"DATA_DIR": t.TempDir(), "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false",
		"ADMIN_EMAIL": "ops@example.com", "ADMIN_PASSWORD": "chosen by the operator"})
	base, _, _ := serving(t, env)
	ctx := context.Background()
	user := func(random string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := userCmd(ctx, args, env, strings.NewReader(random), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := user(strings.Repeat("r", 18), "add", "--email", "Owner@Example.com", "--role", "viewer")
	if code != 0 {
		t.Fatalf("user add exited %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`(?m)^password: (\S{24})$`).FindStringSubmatch(out)
	if !strings.Contains(out, "added owner@example.com (viewer)") || m == nil || !strings.Contains(out, "shown ONCE") {
		t.Fatalf("user add printed %q", out)
	}
	viewer := signedIn(t, base, "owner@example.com", m[1])
	if got := getStatus(t, viewer, base+"/"); got != http.StatusOK {
		t.Errorf("viewer GET / = %d, want 200", got)
	}
	if got := getStatus(t, viewer, base+"/admin"); got != http.StatusForbidden {
		t.Errorf("viewer GET /admin = %d, want 403", got)
	}

	admin := signedIn(t, base, "ops@example.com", "chosen by the operator")
	if got := getStatus(t, admin, base+"/admin"); got != http.StatusOK {
		t.Fatalf("admin GET /admin = %d, want 200", got)
	}
	if code, out, errOut = user("", "reset", "--email", "ops@example.com", "--password", "a brand new passphrase"); code != 0 || !strings.Contains(out, "signed out") || strings.Contains(out, "password:") {
		t.Fatalf("user reset: exit %d, %q %q", code, out, errOut)
	}
	if got := getStatus(t, admin, base+"/admin"); got != http.StatusSeeOther {
		t.Errorf("admin session after the reset: GET /admin = %d, want 303 to the sign-in", got)
	}
	if got := signInStatus(t, base, "ops@example.com", "chosen by the operator"); got != http.StatusUnauthorized {
		t.Errorf("old password after the reset = %d, want 401", got)
	}
	signedIn(t, base, "ops@example.com", "a brand new passphrase")

	code, out, _ = user("", "list")
	if code != 0 || !regexp.MustCompile(`(?m)^ops@example.com\s+admin\s+\S+ \S+\s+1$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^owner@example.com\s+viewer\s+\S+ \S+\s+1$`).MatchString(out) {
		t.Errorf("user list printed:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"remove", "--email", "ops@example.com"}, 2, "last admin"},
		{[]string{"add", "--email", "owner@example.com", "--role", "viewer", "--password", "long enough password"}, 1, "exists already"},
		{[]string{"add", "--email", "x@example.com", "--role", "root", "--password", "long enough password"}, 2, `role "root"`},
		{[]string{"add", "--email", "x@example.com", "--role", "admin", "--password", "short"}, 2, "12 to 72 bytes"},
		{[]string{"add", "--email", "not an address", "--role", "admin", "--password", "long enough password"}, 2, "not an e-mail address"},
		{[]string{"add", "--email", "x@example.com"}, 2, "--role is required"},
		{[]string{"reset", "--email", "nobody@example.com", "--password", "long enough password"}, 1, "no account has e-mail"},
		{[]string{"reset"}, 2, "--email is required"},
		{[]string{"rename", "--email", "x@example.com"}, 2, "unknown command"},
		{[]string{"list", "extra"}, 2, "unexpected argument"},
		{nil, 2, "usage"},
	} {
		code, _, errOut := user("", c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("user %v: exit %d, %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
		if strings.Contains(errOut, "long enough password") {
			t.Errorf("user %v echoed the password: %q", c.args, errOut)
		}
	}

	if code, out, errOut = user("", "remove", "--email", "owner@example.com"); code != 0 || !strings.Contains(out, "removed owner@example.com") {
		t.Fatalf("user remove: exit %d, %q %q", code, out, errOut)
	}
	if got := getStatus(t, viewer, base+"/"); got != http.StatusSeeOther {
		t.Errorf("removed viewer GET / = %d, want 303 to the sign-in", got)
	}
}

// signedIn signs in and returns a client holding the session cookie, not
// following redirects.
func signedIn(t *testing.T, base, email, password string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in of %s = %d, want 303", email, resp.StatusCode)
	}
	return c
}

func getStatus(t *testing.T, c *http.Client, u string) int {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
