package app

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/hossagent/hossagent/db"
)

func cheapPasswords(d *Deps) { d.PasswordCost = bcrypt.MinCost }

var shownPassword = regexp.MustCompile(`<code class="api-token-secret">([A-Za-z0-9_-]{24})</code>`)

// signInWith signs email in with password and returns the client, or nil
// when the sign-in is refused.
func (f *fixture) signInWith(t *testing.T, email, password string) *http.Client {
	t.Helper()
	c := newClient(t)
	resp, _ := f.post(t, c, "/login", url.Values{"email": {email}, "password": {password}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		return nil
	}
	return c
}

func (f *fixture) statusOf(t *testing.T, c *http.Client, path string) int {
	t.Helper()
	resp, _ := f.do(t, c, http.MethodGet, path, nil, nil)
	return resp.StatusCode
}

// An admin adds a viewer in the control room: its generated password is
// shown once, signs in, and reads the dashboard and nothing else.
func TestAdminAddsAViewerWhoReadsOnlyTheDashboard(t *testing.T) {
	f := newFixture(t, nil, cheapPasswords)
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)

	resp, doc, _ := f.get(t, "/admin/users")
	if resp.StatusCode != http.StatusOK || doc.Find(`#user-list tbody tr`).Length() != 1 {
		t.Fatalf("users page = %d with %d rows", resp.StatusCode, doc.Find(`#user-list tbody tr`).Length())
	}
	resp, html := f.htmxPost(t, "/admin/users", url.Values{"email": {" Owner@Example.com "}, "role": {"viewer"}})
	m := shownPassword.FindStringSubmatch(html)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(html, "owner@example.com") {
		t.Fatalf("add = %d:\n%s", resp.StatusCode, html)
	}
	if !strings.Contains(html, `hx-target="#user-list"`) || strings.Count(html, "<tr id=\"user-") != 2 {
		t.Errorf("the add did not send the list back with both accounts:\n%s", html)
	}
	u, err := f.store.UserByEmail(t.Context(), "owner@example.com")
	if err != nil || u.Role != db.RoleViewer || strings.Contains(u.PasswordHash, m[1]) {
		t.Fatalf("stored %+v, %v", u, err)
	}
	if _, doc, _ := f.get(t, "/admin/users"); strings.Contains(doc.Text(), m[1]) {
		t.Error("the password is shown again on the next view")
	}
	if got := auditEntriesOf(t, f, "user_add"); len(got) != 1 || got[0].Target != "user owner@example.com" || got[0].Detail != "role viewer" {
		t.Errorf("audit = %+v", got)
	}

	viewer := f.signInWith(t, "owner@example.com", m[1])
	if viewer == nil {
		t.Fatal("the viewer cannot sign in with the password shown")
	}
	if got := f.statusOf(t, viewer, "/"); got != http.StatusOK {
		t.Errorf("viewer GET / = %d, want 200", got)
	}
	for _, path := range []string{"/admin", "/admin/users", "/admin/leads/1", "/admin/activity", "/api/v1/leads", "/admin/export/leads.csv"} {
		if got := f.statusOf(t, viewer, path); got != http.StatusForbidden && got != http.StatusUnauthorized {
			t.Errorf("viewer GET %s = %d, want 403 or 401", path, got)
		}
	}
	resp, _ = f.post(t, viewer, "/admin/users", url.Values{"email": {"mine@example.com"}, "role": {"admin"}}, map[string]string{"Origin": f.srv.URL})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer adding an admin = %d, want 403", resp.StatusCode)
	}
	if _, err := f.store.UserByEmail(t.Context(), "mine@example.com"); err == nil {
		t.Error("a viewer added an account")
	}
}

// Refused adds say why and keep the form; a cross-site add is refused.
func TestAddUserRefusals(t *testing.T) {
	f := newFixture(t, nil, cheapPasswords)
	admin := f.signInAs(t, db.RoleAdmin)
	for _, c := range []struct {
		form url.Values
		code int
		want string
	}{
		{url.Values{"email": {admin.Email}, "role": {"viewer"}}, http.StatusConflict, "exists already"},
		{url.Values{"email": {"not an address"}, "role": {"viewer"}}, http.StatusUnprocessableEntity, "is not an e-mail address"},
		{url.Values{"email": {"x@example.com"}, "role": {"root"}}, http.StatusUnprocessableEntity, "is neither admin nor viewer"},
	} {
		resp, html := f.htmxPost(t, "/admin/users", c.form)
		if resp.StatusCode != c.code || !strings.Contains(html, c.want) || shownPassword.MatchString(html) {
			t.Errorf("add %.60v = %d %q, want %d with %q", c.form, resp.StatusCode, html, c.code, c.want)
		}
		resp, doc := f.post(t, f.client, "/admin/users", c.form, map[string]string{"Origin": f.srv.URL})
		if resp.StatusCode != c.code || !strings.Contains(doc.Find("#user-result").Text(), c.want) {
			t.Errorf("plain add %.60v = %d %q", c.form, resp.StatusCode, doc.Find("#user-result").Text())
		}
	}
	resp, html := f.htmxPost(t, "/admin/users", url.Values{"email": {strings.Repeat("x", maxUserForm*2)}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(html, "too large") {
		t.Errorf("huge add = %d %q", resp.StatusCode, html)
	}
	resp, _ = f.post(t, f.client, "/admin/users", url.Values{"email": {"x@example.com"}, "role": {"admin"}}, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site add = %d, want 403", resp.StatusCode)
	}
	if _, err := f.store.UserByEmail(t.Context(), "x@example.com"); err == nil {
		t.Error("a refused add stored an account")
	}
}

// Reset shows a new password in the account's row and signs the account
// out; an admin cannot remove or demote themselves; remove signs out.
func TestUserRowActions(t *testing.T) {
	f := newFixture(t, nil, cheapPasswords)
	admin := f.signInAs(t, db.RoleAdmin)
	other := f.createUser(t, "other@example.com", db.RoleViewer)
	otherClient := f.signIn(t, other.Email)
	id := strconv.FormatInt(other.ID, 10)

	resp, html := f.htmxPost(t, "/admin/users/"+id+"/reset", nil)
	m := shownPassword.FindStringSubmatch(html)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.HasPrefix(strings.TrimSpace(html), `<tr id="user-`+id+`"`) {
		t.Fatalf("reset = %d:\n%s", resp.StatusCode, html)
	}
	if got := f.statusOf(t, otherClient, "/"); got != http.StatusSeeOther {
		t.Errorf("the reset account's old session: GET / = %d, want 303 to the sign-in", got)
	}
	if f.signInWith(t, other.Email, testPassword) != nil {
		t.Error("the old password still signs in")
	}
	otherClient = f.signInWith(t, other.Email, m[1])
	if otherClient == nil {
		t.Fatal("the new password does not sign in")
	}

	resp, html = f.htmxPost(t, "/admin/users/"+id+"/role", url.Values{"role": {"admin"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(html, "Now admin.") {
		t.Fatalf("promote = %d: %s", resp.StatusCode, html)
	}
	if got := f.statusOf(t, otherClient, "/admin"); got != http.StatusOK {
		t.Errorf("promoted account GET /admin = %d", got)
	}
	resp, html = f.htmxPost(t, "/admin/users/"+id+"/role", url.Values{"role": {"owner"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, `role &#34;owner&#34; is neither`) {
		t.Errorf("unknown role = %d: %s", resp.StatusCode, html)
	}

	me := strconv.FormatInt(admin.ID, 10)
	for _, action := range []string{"remove", "role"} {
		resp, html = f.htmxPost(t, "/admin/users/"+me+"/"+action, url.Values{"role": {"viewer"}})
		if resp.StatusCode != http.StatusConflict || !strings.Contains(html, "ask another admin") {
			t.Errorf("self %s = %d: %s", action, resp.StatusCode, html)
		}
	}
	if u, err := f.store.UserByID(t.Context(), admin.ID); err != nil || u.Role != db.RoleAdmin {
		t.Fatalf("self-protection changed the admin: %+v, %v", u, err)
	}

	resp, html = f.htmxPost(t, "/admin/users/"+id+"/remove", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(html, "was removed") {
		t.Fatalf("remove = %d: %s", resp.StatusCode, html)
	}
	if got := f.statusOf(t, otherClient, "/admin"); got != http.StatusSeeOther {
		t.Errorf("removed account GET /admin = %d, want 303", got)
	}
	resp, html = f.htmxPost(t, "/admin/users/"+id+"/remove", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(html, "no such account") {
		t.Errorf("second remove = %d: %s", resp.StatusCode, html)
	}
	for _, action := range []string{"user_reset", "user_role", "user_remove"} {
		if got := auditEntriesOf(t, f, action); len(got) != 1 || got[0].Actor != admin.Email {
			t.Errorf("audit %s = %+v", action, got)
		}
	}
}

// Every operator changes their own password: the current one is checked,
// the new one typed twice; the other sessions end and this one stays.
func TestOwnPasswordChange(t *testing.T) {
	f := newFixture(t, nil, cheapPasswords)
	viewer := f.createUser(t, "owner@example.com", db.RoleViewer)
	here := f.signIn(t, viewer.Email)
	elsewhere := f.signIn(t, viewer.Email)
	origin := map[string]string{"Origin": f.srv.URL}

	if resp, doc, _ := f.getWith(t, here, "/account/password"); resp.StatusCode != http.StatusOK || doc.Find(`form[action="/account/password"] input[type=password]`).Length() != 3 {
		t.Fatalf("password page = %d", resp.StatusCode)
	}
	for _, c := range []struct {
		form url.Values
		code int
		want string
	}{
		{url.Values{"current": {"wrong password!"}, "new": {"a much better one"}, "confirm": {"a much better one"}}, http.StatusUnprocessableEntity, "current password is wrong"},
		{url.Values{"current": {testPassword}, "new": {"a much better one"}, "confirm": {"a much better two"}}, http.StatusUnprocessableEntity, "differ"},
		{url.Values{"current": {testPassword}, "new": {"short"}, "confirm": {"short"}}, http.StatusUnprocessableEntity, "12 to 72 bytes"},
	} {
		resp, doc := f.post(t, here, "/account/password", c.form, origin)
		if resp.StatusCode != c.code || !strings.Contains(doc.Find(".result.bad").Text(), c.want) {
			t.Errorf("change %v = %d %q", c.form, resp.StatusCode, doc.Find(".result.bad").Text())
		}
	}
	resp, doc := f.post(t, here, "/account/password", url.Values{"current": {testPassword}, "new": {"a much better one"}, "confirm": {"a much better one"}}, origin)
	if resp.StatusCode != http.StatusOK || doc.Find(".result.ok").Length() != 1 {
		t.Fatalf("change = %d", resp.StatusCode)
	}
	if got := f.statusOf(t, here, "/"); got != http.StatusOK {
		t.Errorf("this session after the change: GET / = %d, want 200", got)
	}
	if got := f.statusOf(t, elsewhere, "/"); got != http.StatusSeeOther {
		t.Errorf("the other session after the change: GET / = %d, want 303", got)
	}
	if f.signInWith(t, viewer.Email, testPassword) != nil || f.signInWith(t, viewer.Email, "a much better one") == nil {
		t.Error("the old password still works or the new one does not")
	}
	if got := f.statusOf(t, newClient(t), "/account/password"); got != http.StatusSeeOther {
		t.Errorf("anonymous GET /account/password = %d, want 303", got)
	}
	if got := auditEntriesOf(t, f, "password_change"); len(got) != 1 || got[0].Actor != viewer.Email {
		t.Errorf("audit = %+v", got)
	}
}
