package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/db"
)

// testPassword is every test operator's password.
const testPassword = "correct horse battery staple"

// testClock is the tests' hand-moved clock, shared with the agents.
type testClock = clocktest.Clock

// createUser stores an operator with the cheapest bcrypt cost.
func (f *fixture) createUser(t *testing.T, email, role string) *db.User {
	t.Helper()
	u, err := f.store.CreateUser(context.Background(), db.NewUser{Email: email, Password: testPassword, Role: role, PasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// signIn signs email in through the login form and returns the signed-in
// client.
func (f *fixture) signIn(t *testing.T, email string) *http.Client {
	t.Helper()
	c := newClient(t)
	resp, _ := f.post(t, c, "/login", url.Values{"email": {email}, "password": {testPassword}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: status %d", email, resp.StatusCode)
	}
	return c
}

// signInAs creates an operator with role and makes the fixture's client
// that operator.
func (f *fixture) signInAs(t *testing.T, role string) *db.User {
	t.Helper()
	u := f.createUser(t, role+"@hossagent.test", role)
	f.client = f.signIn(t, u.Email)
	return u
}

func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookieName {
			return c
		}
	}
	return nil
}

func TestBootstrapAdminOnce(t *testing.T) {
	ctx := context.Background()
	store := openTestStore(t)

	var out bytes.Buffer
	if err := BootstrapAdmin(ctx, store, "", "", rand.Reader, &out); err != nil {
		t.Fatal(err)
	}
	printed := out.String()
	fields := strings.Fields(printed[strings.Index(printed, "password:"):])
	if len(fields) < 2 || !strings.Contains(printed, DefaultAdminEmail) {
		t.Fatalf("printed %q, want the default e-mail and a password", printed)
	}
	password := fields[1]
	if len(password) < 20 {
		t.Errorf("generated password %q is weak", password)
	}
	u, err := store.Authenticate(ctx, DefaultAdminEmail, password)
	if err != nil || u.Role != db.RoleAdmin {
		t.Fatalf("printed password does not sign in: %v", err)
	}
	if cost, _ := bcrypt.Cost([]byte(u.PasswordHash)); cost < 12 {
		t.Errorf("bcrypt cost %d, want at least 12", cost)
	}

	out.Reset()
	if err := BootstrapAdmin(ctx, store, "", "", rand.Reader, &out); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.CountUsers(ctx); out.Len() != 0 || n != 1 {
		t.Errorf("second start printed %q and left %d users", out.String(), n)
	}
}

func TestBootstrapAdminFromEnvironment(t *testing.T) {
	ctx := context.Background()
	store := openTestStore(t)
	var out bytes.Buffer
	if err := BootstrapAdmin(ctx, store, "Ops@Example.com", "from the environment", rand.Reader, &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("printed %q for a password the operator chose", out.String())
	}
	if _, err := store.Authenticate(ctx, "ops@example.com", "from the environment"); err != nil {
		t.Errorf("ADMIN_PASSWORD does not sign in: %v", err)
	}
	failing := errReader{}
	if err := BootstrapAdmin(ctx, store, "", "", failing, &out); err != nil {
		t.Errorf("with an admin present the bootstrap must not draw or fail: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no randomness") }

func TestLoginSetsSessionCookie(t *testing.T) {
	for _, base := range []string{"http://localhost:8080", "https://hoss.example.com"} {
		f := newFixture(t, map[string]string{"BASE_URL": base})
		f.createUser(t, "ops@example.com", db.RoleAdmin)
		c := newClient(t)
		resp, _ := f.post(t, c, "/login", url.Values{"email": {"OPS@example.com "}, "password": {testPassword}}, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin" {
			t.Fatalf("%s: login = %d to %q", base, resp.StatusCode, resp.Header.Get("Location"))
		}
		cookie := sessionCookieOf(resp)
		if cookie == nil || len(cookie.Value) < 43 {
			t.Fatalf("%s: session cookie %v", base, cookie)
		}
		if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" || cookie.MaxAge <= 0 {
			t.Errorf("%s: cookie attributes %+v", base, cookie)
		}
		if wantSecure := strings.HasPrefix(base, "https"); cookie.Secure != wantSecure {
			t.Errorf("%s: Secure = %v", base, cookie.Secure)
		}
		// Only the token's hash is stored.
		ctx := context.Background()
		var hashes []string
		if err := f.store.Bun().NewSelect().Table("sessions").Column("token_hash").Scan(ctx, &hashes); err != nil {
			t.Fatal(err)
		}
		if len(hashes) != 1 || hashes[0] != db.HashToken(cookie.Value) {
			t.Errorf("%s: stored %v", base, hashes)
		}
		entries, _, _ := f.store.ListAudit(ctx, db.ListQuery{})
		if len(entries) != 1 || entries[0].Action != "login" || entries[0].Actor != "ops@example.com" || entries[0].RemoteAddr == "" {
			t.Errorf("%s: audit %+v", base, entries)
		}
	}
}

func TestLoginRefusesBadCredentialsAlike(t *testing.T) {
	f := newFixture(t, nil)
	f.createUser(t, "ops@example.com", db.RoleAdmin)
	var messages []string
	for _, email := range []string{"ops@example.com", "nobody@example.com"} {
		resp, doc := f.post(t, newClient(t), "/login", url.Values{"email": {email}, "password": {"not the password"}}, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d", email, resp.StatusCode)
		}
		if c := sessionCookieOf(resp); c != nil {
			t.Errorf("%s: cookie set %v", email, c)
		}
		if v, _ := doc.Find(`input[name="email"]`).Attr("value"); v != email {
			t.Errorf("%s: e-mail not kept in the form: %q", email, v)
		}
		if v, _ := doc.Find(`input[name="password"]`).Attr("value"); v != "" {
			t.Errorf("%s: password echoed", email)
		}
		messages = append(messages, text(doc.Find("#login-error")))
	}
	if messages[0] != msgBadCredentials || messages[1] != messages[0] {
		t.Errorf("messages = %q, want the same %q twice", messages, msgBadCredentials)
	}
}

// TestLoginRateLimited: one address (every test client is 127.0.0.1) that
// failed signInPairBurst times on an account is refused, even the right
// password, until its bucket refills. (Other addresses are not:
// TestSignInGuessesElsewhereDoNotLockOutTheAdmin.)
func TestLoginRateLimited(t *testing.T) {
	f := newFixture(t, nil)
	f.createUser(t, "ops@example.com", db.RoleAdmin)
	wrong := url.Values{"email": {"ops@example.com"}, "password": {"guess guess guess"}}
	for i := range signInPairBurst {
		if resp, _ := f.post(t, newClient(t), "/login", wrong, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i+1, resp.StatusCode)
		}
	}
	right := url.Values{"email": {"ops@example.com"}, "password": {testPassword}}
	resp, doc := f.post(t, newClient(t), "/login", right, nil)
	if resp.StatusCode != http.StatusTooManyRequests || text(doc.Find("#login-error")) != msgTooManyLogins || sessionCookieOf(resp) != nil {
		t.Fatalf("6th attempt: status %d, message %q", resp.StatusCode, text(doc.Find("#login-error")))
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	f.clock.Advance(time.Minute)
	if resp, _ := f.post(t, newClient(t), "/login", right, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after a minute: status %d, want 303", resp.StatusCode)
	}
}

func TestAttemptLimiterKeysAndCleanup(t *testing.T) {
	clock := clocktest.New(testNow)
	const burst = 5
	l := newAttemptLimiter(time.Minute/burst, burst, clock.Now)
	for range burst {
		if !l.allow("email a@example.com") {
			t.Fatal("refused within the burst")
		}
	}
	if l.allow("email a@example.com") {
		t.Error("allowed past the burst")
	}
	if !l.allow("email b@example.com") {
		t.Error("one key's attempts refused another key")
	}
	if l.size() != 2 {
		t.Errorf("buckets = %d", l.size())
	}
	clock.Advance(2 * time.Minute)
	l.allow("ip 192.0.2.1")
	if l.size() != 1 {
		t.Errorf("buckets after refill = %d, want only the new one", l.size())
	}
}

func TestLogoutEndsSession(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	u, _ := url.Parse(f.srv.URL)
	cookie := f.client.Jar.Cookies(u)[0]
	resp, doc := f.post(t, f.client, "/logout", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("logout = %d to %q (%s)", resp.StatusCode, resp.Header.Get("Location"), text(doc.Selection))
	}
	if c := sessionCookieOf(resp); c == nil || c.MaxAge >= 0 {
		t.Errorf("cookie not cleared: %v", c)
	}
	// The old cookie, replayed, no longer opens anything.
	replay := newClient(t)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}})
	f.client = replay
	if resp, _, _ := f.get(t, "/admin"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("replayed cookie after logout: status %d", resp.StatusCode)
	}
	entries, _, _ := f.store.ListAudit(context.Background(), db.ListQuery{})
	if len(entries) != 2 || entries[0].Action != "logout" || entries[0].Actor != "admin@hossagent.test" {
		t.Errorf("audit %+v", entries)
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	// Use keeps it alive past the idle timeout...
	for range 3 {
		f.clock.Advance(db.SessionIdleTimeout - time.Hour)
		if resp, _, _ := f.get(t, "/admin"); resp.StatusCode != http.StatusOK {
			t.Fatalf("active session: status %d", resp.StatusCode)
		}
	}
	// ...idleness ends it.
	f.clock.Advance(db.SessionIdleTimeout + time.Minute)
	resp, _, _ := f.get(t, "/admin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fadmin" {
		t.Errorf("idle session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The absolute lifetime ends even a busy session.
	f.signInAs(t, db.RoleViewer)
	for elapsed := time.Duration(0); elapsed < db.SessionLifetime; elapsed += 10 * time.Hour {
		f.clock.Advance(10 * time.Hour)
		f.get(t, "/")
	}
	if resp, _, _ := f.get(t, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session past its lifetime: status %d", resp.StatusCode)
	}
}

func TestAccessRules(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	for path, want := range map[string]string{
		"/admin":         "/login?next=%2Fadmin",
		"/admin?q=acme":  "/login?next=%2Fadmin%3Fq%3Dacme",
		"/admin/nothing": "/login?next=%2Fadmin%2Fnothing",
		"/":              "/login?next=%2F",
		"/?page=2":       "/login?next=%2F%3Fpage%3D2",
	} {
		resp, _, raw := f.get(t, path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want || strings.Contains(raw, "Acme") {
			t.Errorf("anonymous GET %s = %d to %q, want 303 to %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// The API answers for itself: no redirect to a form a script cannot fill.
	if resp, _, raw := f.get(t, "/api/v1/leads"); resp.StatusCode != http.StatusUnauthorized ||
		resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(raw, `"error"`) || strings.Contains(raw, "Acme") {
		t.Errorf("anonymous GET /api/v1/leads = %d %q, want a 401 JSON error", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, doc := f.post(t, f.client, "/admin/agents/billing/run", nil, nil); resp.StatusCode != http.StatusUnauthorized || doc.Find(".error-page").Length() != 1 {
		t.Errorf("anonymous POST under /admin = %d, want a 401 page", resp.StatusCode)
	}
	for _, path := range []string{"/login", "/healthz", "/readyz", "/portal"} {
		if resp, _, _ := f.get(t, path); resp.StatusCode != http.StatusOK {
			t.Errorf("anonymous GET %s = %d, want 200", path, resp.StatusCode)
		}
	}

	viewer := f.signInAs(t, db.RoleViewer)
	resp, doc, raw := f.get(t, "/admin")
	if resp.StatusCode != http.StatusForbidden || doc.Find(".error-page").Length() != 1 || strings.Contains(raw, "a@acme.example") {
		t.Errorf("viewer GET /admin = %d, want a plain 403", resp.StatusCode)
	}
	resp, doc, _ = f.get(t, "/")
	if resp.StatusCode != http.StatusOK || doc.Find(`a[href="/admin"]`).Length() != 0 {
		t.Errorf("viewer GET / = %d, admin links %d", resp.StatusCode, doc.Find(`a[href="/admin"]`).Length())
	}
	if got := text(doc.Find("form.signout")); !strings.Contains(got, viewer.Email) || !strings.Contains(got, "Sign out") {
		t.Errorf("sign-out form = %q", got)
	}
	if resp, _ := f.post(t, newClient(t), "/login", url.Values{"email": {viewer.Email}, "password": {testPassword}}, nil); resp.Header.Get("Location") != "/" {
		t.Errorf("viewer lands on %q, want /", resp.Header.Get("Location"))
	}

	f.signInAs(t, db.RoleAdmin)
	if resp, doc, _ := f.get(t, "/"); resp.StatusCode != http.StatusOK || doc.Find(`a[href="/admin"]`).Length() != 1 {
		t.Errorf("admin GET / = %d without the control room link", resp.StatusCode)
	}
	if resp, _, _ := f.get(t, "/api/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin GET /api/nothing = %d, want 404", resp.StatusCode)
	}
}

func TestPublicDashboardHidesPersonalData(t *testing.T) {
	f := newFixture(t, map[string]string{"DASHBOARD_PUBLIC": "true"})
	f.seed(t)
	ctx := context.Background()
	if _, err := f.store.Bun().NewUpdate().Table("leads").Set("contacted_at = ?", testNow).Where("1 = 1").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	resp, doc, raw := f.get(t, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("anonymous GET / = %d", resp.StatusCode)
	}
	if got := doc.Find("#dash-leads tbody tr").Length(); got != 3 || !strings.Contains(text(doc.Find("#dash-leads")), "Acme Analytics") {
		t.Errorf("leads: %d rows, companies missing", got)
	}
	if strings.Contains(text(doc.Find("#dash-leads")), "2026-11-27") {
		t.Errorf("contact times shown publicly: %q", text(doc.Find("#dash-leads")))
	}
	for _, private := range []string{"a@acme.example", "Market research brief", "buy.stripe.com"} {
		if strings.Contains(raw, private) {
			t.Errorf("public dashboard shows %q", private)
		}
	}
	if doc.Find(`a[href="/admin"]`).Length() != 0 || doc.Find("form.signout").Length() != 0 {
		t.Errorf("public dashboard shows operator links")
	}
	if !strings.Contains(text(doc.Find("#dash-cards")), "$99.00") {
		t.Errorf("money cards missing: %q", text(doc.Find("#dash-cards")))
	}

	// Signed in, the operator sees the contact times.
	f.signInAs(t, db.RoleViewer)
	if _, doc, _ := f.get(t, "/"); !strings.Contains(text(doc.Find("#dash-leads")), "2026-11-27") {
		t.Errorf("signed-in dashboard lacks contact times")
	}
}

func TestCrossOriginPostsRefused(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	for _, header := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "https://sub." + strings.TrimPrefix(f.srv.URL, "http://")},
	} {
		for _, path := range []string{"/logout", "/login"} {
			resp, doc := f.post(t, f.client, path, url.Values{"email": {"admin@hossagent.test"}, "password": {testPassword}}, header)
			if resp.StatusCode != http.StatusForbidden || text(doc.Find(".error-page h1")) != "403" {
				t.Errorf("POST %s with %v = %d, want the 403 page", path, header, resp.StatusCode)
			}
		}
	}
	if resp, _, _ := f.get(t, "/admin"); resp.StatusCode != http.StatusOK {
		t.Fatalf("refused logout still ended the session: %d", resp.StatusCode)
	}
	// Server-to-server endpoints are exempt (they do not exist yet: 404, not 403).
	for _, path := range []string{"/stripe/webhook", "/email/inbound/s3cret", "/email/events", "/unsubscribe/tok"} {
		if resp, _ := f.post(t, newClient(t), path, nil, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode == http.StatusForbidden {
			t.Errorf("POST %s cross-site = 403, want it exempt", path)
		}
	}
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": f.srv.URL}
	if resp, _ := f.post(t, f.client, "/logout", nil, same); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin logout = %d, want 303", resp.StatusCode)
	}
}

func TestNextStaysOnSite(t *testing.T) {
	f := newFixture(t, nil)
	f.createUser(t, "ops@example.com", db.RoleAdmin)
	for next, want := range map[string]string{
		"":                     "/admin",
		"/admin?q=acme":        "/admin?q=acme",
		"/":                    "/",
		"//evil.example":       "/admin",
		"https://evil.example": "/admin",
		`/\evil.example`:       "/admin",
		"/\t/evil.example":     "/admin",
		"evil.example":         "/admin",
		"javascript:alert(1)":  "/admin",
	} {
		f.clock.Advance(time.Minute) // stay under the rate limit
		form := url.Values{"email": {"ops@example.com"}, "password": {testPassword}, "next": {next}}
		resp, _ := f.post(t, newClient(t), "/login", form, nil)
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("next=%q: %d to %q, want %q", next, resp.StatusCode, got, want)
		}
	}
	_, doc, _ := f.get(t, "/login?next="+url.QueryEscape("//evil.example"))
	if v, _ := doc.Find(`input[name="next"]`).Attr("value"); v != "" {
		t.Errorf("login form carries next=%q", v)
	}
	_, doc, _ = f.get(t, "/login?next="+url.QueryEscape("/admin?q=x"))
	if v, _ := doc.Find(`input[name="next"]`).Attr("value"); v != "/admin?q=x" {
		t.Errorf("login form carries next=%q, want /admin?q=x", v)
	}
	if doc.Find(`body.mono form[method="post"][action="/login"] input[name="email"]`).Length() != 1 {
		t.Errorf("login form missing its fields")
	}
}

func TestLoginFormIsBounded(t *testing.T) {
	f := newFixture(t, nil)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/login", io.MultiReader(strings.NewReader("email="), strings.NewReader(strings.Repeat("a", maxLoginForm*2))))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The edge check reads no more than the form's 16 KiB and refuses the
	// rest as too large.
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form = %d, want 413", resp.StatusCode)
	}
}
