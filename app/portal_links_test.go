package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// portalStatus is the status of an anonymous GET of an operator's portal
// link: a working one is exchanged for a session and redirected to
// /portal, which is reported as 200.
func (f *fixture) portalStatus(t *testing.T, token string) int {
	t.Helper()
	resp, err := newClient(t).Get(f.srv.URL + "/portal/" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") == "/portal" {
		return http.StatusOK
	}
	return resp.StatusCode
}

var hxHeaders = map[string]string{"HX-Request": "true"}

// withOrigin adds the same-origin header a browser sends with a POST.
func (f *fixture) withOrigin(h map[string]string) map[string]string {
	out := map[string]string{"Origin": f.srv.URL}
	for k, v := range h {
		out[k] = v
	}
	return out
}

func TestRotatePortalLinkShowsANewWorkingLinkOnce(t *testing.T) {
	f := newFixture(t, map[string]string{"BASE_URL": "https://hoss.example.com/"})
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	old := f.token
	if f.portalStatus(t, old) != http.StatusOK {
		t.Fatal("the seeded link does not work")
	}
	resp, doc := f.post(t, f.client, "/admin/customers/1/portal/rotate", nil, f.withOrigin(hxHeaders))
	if resp.StatusCode != http.StatusOK || doc.Find("section#portal-link").Length() != 1 || doc.Find(".wrap").Length() != 0 {
		t.Fatalf("rotate: status %d, want the panel alone", resp.StatusCode)
	}
	input := doc.Find("input#portal-new-link")
	link, _ := input.Attr("value")
	if _, ro := input.Attr("readonly"); !ro || !strings.HasPrefix(link, "https://hoss.example.com/portal/") {
		t.Fatalf("new link %q (readonly %v)", link, ro)
	}
	token := strings.TrimPrefix(link, "https://hoss.example.com/portal/")
	if len(token) < 40 || token == old {
		t.Fatalf("token %q", token)
	}
	if got := f.portalStatus(t, token); got != http.StatusOK {
		t.Errorf("new link = %d, want 200", got)
	}
	if got := f.portalStatus(t, old); got != http.StatusNotFound {
		t.Errorf("old link after rotate = %d, want 404", got)
	}
	entries := auditFor(t, f, "customer 1")
	if len(entries) != 1 || entries[0].Action != db.AuditPortalRotated || strings.Contains(entries[0].Detail, token) {
		t.Errorf("audit = %+v", entries)
	}
	if strings.Contains(f.logs.String(), token) {
		t.Errorf("the new token reached the log")
	}
	// The link is shown once: the customer page never shows it again.
	_, doc, raw := f.get(t, "/admin/customers/1")
	if strings.Contains(raw, token) || doc.Find("#portal-new-link").Length() != 0 {
		t.Errorf("the customer page shows the link again")
	}
	if !strings.Contains(text(doc.Find("#portal-link")), "portal link rotated by admin@hossagent.test") {
		t.Errorf("panel lacks the rotation: %q", text(doc.Find("#portal-link")))
	}

	// Without htmx the whole page comes back, with the link in place.
	resp, doc = f.post(t, f.client, "/admin/customers/1/portal/rotate", nil, f.withOrigin(nil))
	link, _ = doc.Find("main #portal-link input#portal-new-link").Attr("value")
	if resp.StatusCode != http.StatusOK || f.portalStatus(t, strings.TrimPrefix(link, "https://hoss.example.com/portal/")) != http.StatusOK {
		t.Errorf("plain rotate: status %d, link %q", resp.StatusCode, link)
	}
	if f.portalStatus(t, token) != http.StatusNotFound {
		t.Errorf("the first rotated link still works")
	}
}

func TestRevokePortalLinkKeepsInvariantFour(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	resp, doc := f.post(t, f.client, "/admin/customers/1/portal/revoke", nil, f.withOrigin(hxHeaders))
	if resp.StatusCode != http.StatusOK || !strings.Contains(text(doc.Find("#portal-link .result.ok")), "Link revoked") {
		t.Fatalf("revoke: status %d, panel %q", resp.StatusCode, text(doc.Find("#portal-link")))
	}
	if doc.Find("#portal-new-link").Length() != 0 {
		t.Errorf("revoke shows a link")
	}
	if !strings.Contains(text(doc.Find("#portal-link")), "nobody holds a working link") {
		t.Errorf("panel does not say the link is dead: %q", text(doc.Find("#portal-link")))
	}
	if got := f.portalStatus(t, f.token); got != http.StatusNotFound {
		t.Errorf("revoked link = %d, want 404", got)
	}
	results, err := f.store.CheckInvariants(context.Background(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Number == 4 && !r.OK() {
			t.Errorf("invariant 4 broken by revoke: %v", r.Violations)
		}
	}
	if entries := auditFor(t, f, "customer 1"); len(entries) != 1 || entries[0].Action != db.AuditPortalRevoked {
		t.Errorf("audit = %+v", entries)
	}
	// Without htmx: back to the customer page.
	resp, _ = f.post(t, f.client, "/admin/customers/1/portal/revoke", nil, f.withOrigin(nil))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/customers/1" {
		t.Errorf("plain revoke = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestPortalLinkActionsRefuseBadRequests(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	// Anonymous and viewer requests change nothing.
	if resp, _ := f.post(t, f.client, "/admin/customers/1/portal/rotate", nil, f.withOrigin(hxHeaders)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous rotate = %d, want 401", resp.StatusCode)
	}
	f.signInAs(t, db.RoleViewer)
	if resp, _ := f.post(t, f.client, "/admin/customers/1/portal/revoke", nil, f.withOrigin(hxHeaders)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer revoke = %d, want 403", resp.StatusCode)
	}
	f.signInAs(t, db.RoleAdmin)
	// Another site cannot rotate a link.
	if resp, _ := f.post(t, f.client, "/admin/customers/1/portal/rotate", nil, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site rotate = %d, want 403", resp.StatusCode)
	}
	if f.portalStatus(t, f.token) != http.StatusOK {
		t.Fatalf("a refused request changed the link")
	}
	for _, p := range []string{"/admin/customers/99/portal/rotate", "/admin/customers/99/portal/revoke", "/admin/customers/x/portal/rotate"} {
		if resp, _ := f.post(t, f.client, p, nil, f.withOrigin(hxHeaders)); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404", p, resp.StatusCode)
		}
	}
	// A GET never rotates.
	if resp, _, _ := f.get(t, "/admin/customers/1/portal/rotate"); resp.StatusCode == http.StatusOK {
		t.Errorf("GET rotate answered 200")
	}
	big := url.Values{"pad": {strings.Repeat("x", 10<<10)}}
	resp, doc := f.post(t, f.client, "/admin/customers/1/portal/rotate", big, f.withOrigin(hxHeaders))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text(doc.Find(".result.bad")), "too large") {
		t.Errorf("rotate with an oversized body = %d %q", resp.StatusCode, text(doc.Find(".result.bad")))
	}
	if f.portalStatus(t, f.token) != http.StatusOK {
		t.Errorf("a refused rotate changed the link")
	}
}

// auditFor is the audit log entries on target, newest first.
func auditFor(t *testing.T, f *fixture, target string) []db.AuditEntry {
	t.Helper()
	var out []db.AuditEntry
	err := f.store.Bun().NewSelect().Model(&out).Where("target = ?", target).OrderExpr("id DESC").Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return out
}
