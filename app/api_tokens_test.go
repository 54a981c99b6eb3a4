package app

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/db"
)

// mustFragment parses an htmx fragment; table rows are parsed inside a table,
// where an HTML parser keeps them.
func mustFragment(t *testing.T, fragment string) *goquery.Document {
	t.Helper()
	if strings.HasPrefix(strings.TrimSpace(fragment), "<tr") {
		fragment = "<table>" + fragment + "</table>"
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(fragment))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func apiTokenIDString(tok *db.APIToken) string { return strconv.FormatInt(tok.ID, 10) }

func auditEntriesOf(t *testing.T, f *fixture, action string) []db.AuditEntry {
	t.Helper()
	entries, _, err := f.store.ListAudit(context.Background(), db.ListQuery{PerPage: 200})
	if err != nil {
		t.Fatal(err)
	}
	var out []db.AuditEntry
	for _, e := range entries {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func TestAPITokenCreatedAndShownOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	admin := f.signInAs(t, db.RoleAdmin)

	resp, doc, _ := f.get(t, "/admin/api-tokens")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token page = %d", resp.StatusCode)
	}
	button := doc.Find(`form[action="/admin/api-tokens"][method="post"] button[hx-post="/admin/api-tokens"]`)
	if button.Length() != 1 || button.AttrOr("hx-disable", "") != "this" || button.AttrOr("hx-target", "") != "#api-token-result" {
		t.Fatalf("create button missing or without hx-disable/hx-target")
	}
	if got := text(doc.Find("#api-token-list .empty")); got != "No API tokens yet. Create one above to read the JSON API." {
		t.Errorf("empty list = %q", got)
	}

	resp, html := f.htmxPost(t, "/admin/api-tokens", url.Values{"name": {"  Nightly export " + evil}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create = %d: %s", resp.StatusCode, html)
	}
	frag := mustFragment(t, html)
	token := text(frag.Find(".result.ok .api-token-secret"))
	if !strings.HasPrefix(token, db.APITokenPrefix) || len(token) < 40 {
		t.Fatalf("token shown = %q", token)
	}
	if strings.Contains(html, "<script>alert") {
		t.Errorf("the name was not escaped")
	}
	if got := text(frag.Find(`hx-partial[hx-target="#api-token-list"] tbody tr td`).First()); got != "Nightly export "+evil {
		t.Errorf("list in the partial starts with %q", got)
	}

	// The token works, and only its hash is kept.
	if p := f.apiList(t, "/api/v1/leads", token); p.Total != "3" {
		t.Errorf("new token reads %s leads", p.Total)
	}
	var hashes []string
	if err := f.store.Bun().NewRaw("SELECT token_hash FROM api_tokens").Scan(context.Background(), &hashes); err != nil {
		t.Fatal(err)
	}
	if len(hashes) != 1 || hashes[0] != db.HashToken(token) {
		t.Errorf("stored %v", hashes)
	}

	// The list never shows it again, and neither does the page.
	_, doc, raw := f.get(t, "/admin/api-tokens")
	if strings.Contains(raw, token) || strings.Contains(raw, hashes[0]) || doc.Find(".api-token-secret").Length() != 0 {
		t.Errorf("the token page shows the token after creation")
	}
	row := doc.Find("#api-token-list tbody tr")
	if row.Length() != 1 || !strings.Contains(text(row), admin.Email) || !strings.Contains(text(row), "live") || !strings.Contains(text(row), "2026-11-27 12:00 UTC") {
		t.Errorf("token row = %q", text(row))
	}
	created := auditEntriesOf(t, f, "api_token_create")
	if len(created) != 1 || created[0].Actor != admin.Email || created[0].Detail != "Nightly export "+evil || strings.Contains(created[0].Detail+created[0].Target, token) {
		t.Errorf("audit = %+v", created)
	}

	// Without htmx the answer is the page with the token, once.
	resp, doc = f.post(t, f.client, "/admin/api-tokens", url.Values{"name": {"plain form"}}, map[string]string{"Origin": f.srv.URL})
	if second := text(doc.Find(".api-token-secret")); resp.StatusCode != http.StatusOK || !strings.HasPrefix(second, db.APITokenPrefix) || second == token {
		t.Errorf("plain form create = %d, token %q", resp.StatusCode, second)
	}
	if doc.Find("#api-token-list tbody tr").Length() != 2 {
		t.Errorf("plain form page lists %d tokens", doc.Find("#api-token-list tbody tr").Length())
	}
}

func TestAPITokenNameValidated(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	for _, name := range []string{"", "   ", strings.Repeat("n", 101), "line\nbreak"} {
		resp, html := f.htmxPost(t, "/admin/api-tokens", url.Values{"name": {name}})
		if resp.StatusCode != http.StatusUnprocessableEntity || text(mustFragment(t, html).Find(".result.bad")) != msgAPITokenName {
			t.Errorf("name %q: %d %s", name, resp.StatusCode, html)
		}
	}
	resp, doc := f.post(t, f.client, "/admin/api-tokens", url.Values{"name": {strings.Repeat("n", 101)}}, map[string]string{"Origin": f.srv.URL})
	if resp.StatusCode != http.StatusUnprocessableEntity || text(doc.Find("#api-token-result .result.bad")) != msgAPITokenName {
		t.Errorf("plain form with a long name = %d", resp.StatusCode)
	}
	if v, _ := doc.Find("#api-token-name").Attr("value"); v != strings.Repeat("n", 101) {
		t.Errorf("the refused name was not kept in the form: %q", v)
	}
	// An oversized body is refused without reading it all.
	resp, _ = f.post(t, f.client, "/admin/api-tokens", url.Values{"name": {strings.Repeat("x", maxAPITokenForm*2)}}, map[string]string{"Origin": f.srv.URL, "HX-Request": "true"})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form = %d, want 413", resp.StatusCode)
	}
	if tokens, _, _ := f.store.ListAPITokens(context.Background(), db.ListQuery{}); len(tokens) != 0 {
		t.Errorf("refused names stored %d tokens", len(tokens))
	}
}

func TestAPITokenRevokedInPlaceAndAudited(t *testing.T) {
	f := newFixture(t, nil)
	admin := f.signInAs(t, db.RoleAdmin)
	tok, token := f.newAPIToken(t, "old laptop")
	path := "/admin/api-tokens/" + apiTokenIDString(tok) + "/revoke"

	_, doc, _ := f.get(t, "/admin/api-tokens")
	button := doc.Find("#api-token-" + apiTokenIDString(tok) + ` button[hx-post="` + path + `"]`)
	if button.Length() != 1 || button.AttrOr("hx-disable", "") != "this" || button.AttrOr("hx-target", "") != "closest tr" {
		t.Fatalf("revoke button missing or without hx-disable/hx-target")
	}

	resp, html := f.htmxPost(t, path, nil)
	frag := mustFragment(t, html)
	if resp.StatusCode != http.StatusOK || text(frag.Find(".result.ok")) != "Revoked." || !strings.Contains(text(frag.Find("tr")), "revoked") {
		t.Fatalf("revoke = %d %s", resp.StatusCode, html)
	}
	if frag.Find("button").Length() != 0 {
		t.Errorf("a revoked row still offers Revoke")
	}
	resp, body := f.apiCall(t, newClient(t), http.MethodGet, "/api/v1/leads", token)
	apiErrorOf(t, resp, body, http.StatusUnauthorized)

	revoked := auditEntriesOf(t, f, "api_token_revoke")
	if len(revoked) != 1 || revoked[0].Actor != admin.Email || revoked[0].Detail != "old laptop" || revoked[0].Target != "api token "+apiTokenIDString(tok) {
		t.Errorf("audit = %+v", revoked)
	}

	// Again: nothing changes, nothing is audited.
	resp, html = f.htmxPost(t, path, nil)
	if resp.StatusCode != http.StatusOK || text(mustFragment(t, html).Find(".result.warn")) != "Already revoked." {
		t.Errorf("second revoke = %d %s", resp.StatusCode, html)
	}
	if n := len(auditEntriesOf(t, f, "api_token_revoke")); n != 1 {
		t.Errorf("revoke audited %d times", n)
	}
	// Unknown ids answer in place; without htmx the page comes back.
	for _, bad := range []string{"/admin/api-tokens/999/revoke", "/admin/api-tokens/x/revoke", "/admin/api-tokens/-1/revoke"} {
		resp, html := f.htmxPost(t, bad, nil)
		if resp.StatusCode != http.StatusNotFound || text(mustFragment(t, html).Find(".result.bad")) != msgAPITokenUnknown {
			t.Errorf("POST %s = %d %s", bad, resp.StatusCode, html)
		}
	}
	resp, _ = f.post(t, f.client, path, nil, map[string]string{"Origin": f.srv.URL})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/api-tokens" {
		t.Errorf("plain revoke = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAPITokenPageIsForAdmins(t *testing.T) {
	f := newFixture(t, nil)
	if resp, _, _ := f.get(t, "/admin/api-tokens"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous GET = %d, want 303 to sign in", resp.StatusCode)
	}
	if resp, _ := f.post(t, f.client, "/admin/api-tokens", url.Values{"name": {"x"}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous POST = %d, want 401", resp.StatusCode)
	}
	f.signInAs(t, db.RoleViewer)
	if resp, _, _ := f.get(t, "/admin/api-tokens"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer GET = %d, want 403", resp.StatusCode)
	}
	if resp, _ := f.post(t, f.client, "/admin/api-tokens", url.Values{"name": {"x"}}, map[string]string{"Origin": f.srv.URL}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer POST = %d, want 403", resp.StatusCode)
	}
	f.signInAs(t, db.RoleAdmin)
	if resp, _ := f.post(t, f.client, "/admin/api-tokens", url.Values{"name": {"x"}}, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST = %d, want 403", resp.StatusCode)
	}
	if tokens, _, _ := f.store.ListAPITokens(context.Background(), db.ListQuery{}); len(tokens) != 0 {
		t.Errorf("refused requests stored %d tokens", len(tokens))
	}
}
