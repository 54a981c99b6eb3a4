package app

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// badTexts are the values the issue found answered with a 500: a NUL byte
// (in the middle and at the end of a search long enough for the full-text
// index) and bytes that are not UTF-8; plus a control character.
var badTexts = map[string]string{
	"NUL":           "a\x00b",
	"trailing NUL":  "abc\x00",
	"invalid UTF-8": "ab\xffcd",
	"UTF-16 BOM":    "\xff\xfea\x00",
	"control":       "ab\x07cd",
}

// TestBadTextInAQueryIsRefused: a search (or any query parameter) holding
// a NUL, a control character or invalid UTF-8 is a 400 that names the
// parameter — an error page for the control room, a JSON error for the API
// — never a 500.
func TestBadTextInAQueryIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	for name, v := range badTexts {
		for _, path := range []string{"/admin", "/events/admin", "/admin/activity"} {
			resp, doc, _ := f.get(t, path+"?q="+url.QueryEscape(v))
			if resp.StatusCode != http.StatusBadRequest || text(doc.Find(".error-page h1")) != "400" {
				t.Errorf("%s: GET %s?q= = %d, want the 400 page", name, path, resp.StatusCode)
			}
			if msg := text(doc.Find(".error-page p")); !strings.Contains(msg, `"q"`) {
				t.Errorf("%s: GET %s message %q does not name the parameter", name, path, msg)
			}
		}
		for _, list := range []string{"leads", "invoices", "runs", "tasks", "customers", "agents"} {
			resp, body := f.apiCall(t, f.client, http.MethodGet, "/api/v1/"+list+"?q="+url.QueryEscape(v), "")
			var e apiError
			if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, `"q"`) {
				t.Errorf("%s: GET /api/v1/%s?q= = %d %s, want a JSON 400 naming q", name, list, resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: API error Content-Type %q", name, ct)
			}
		}
	}
	// Ordinary text, tabs and line breaks included, is no error.
	for _, v := range []string{"northwind", "Ünïcödé 😀", "a\tb", "a\r\nb"} {
		if resp, _, _ := f.get(t, "/admin?q="+url.QueryEscape(v)); resp.StatusCode != http.StatusOK {
			t.Errorf("GET /admin?q=%q = %d", v, resp.StatusCode)
		}
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Errorf("bad input logged as a server error:\n%s", f.logs.String())
	}
}

// TestBadTextInAFormIsRefused: the sign-in e-mail holding a NUL or bytes
// that are not UTF-8 is a 400 naming the field, never a 500; so is any
// url-encoded or multipart form field, and any path parameter.
func TestBadTextInAFormIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	admin := f.createUser(t, "admin@hossagent.test", db.RoleAdmin)
	for name, v := range badTexts {
		for _, field := range []string{"email", "password", "next"} {
			form := url.Values{"email": {admin.Email}, "password": {testPassword}}
			form.Set(field, v)
			resp, doc := f.post(t, newClient(t), "/login", form, nil)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(text(doc.Find(".error-page p")), `"`+field+`"`) {
				t.Errorf("%s in %s: POST /login = %d %q, want 400 naming the field", name, field, resp.StatusCode, text(doc.Find(".error-page p")))
			}
			if sessionCookieOf(resp) != nil {
				t.Errorf("%s in %s: a refused sign-in set a session cookie", name, field)
			}
		}
		// A bad field name is refused too.
		resp, _ := f.post(t, newClient(t), "/login", url.Values{"email": {admin.Email}, "password": {testPassword}, "x" + v: {"1"}}, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s in a field name: POST /login = %d, want 400", name, resp.StatusCode)
		}
	}
	f.client = f.signIn(t, admin.Email)

	// A multipart form field, as a browser may send any form.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("per_cycle", "1\x00")
	_ = mw.WriteField("per_hour", "1")
	_ = mw.WriteField("per_day", "1")
	_ = mw.Close()
	resp, doc := f.postRaw(t, f.client, "/admin/outreach/caps", mw.FormDataContentType(), body.Bytes())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(text(doc.Find(".error-page p")), `"per_cycle"`) {
		t.Errorf("multipart field with a NUL = %d %q, want 400 naming per_cycle", resp.StatusCode, text(doc.Find(".error-page p")))
	}

	// Path parameters: named by their route's name for them.
	for path, param := range map[string]string{
		"/admin/leads/1%00":        "id",
		"/admin/invoices/%FF":      "id",
		"/portal/abc%00def":        "token",
		"/portal/link/%C3%28":      "token",
		"/unsubscribe/x%01y":       "token",
		"/admin/agents/ops%00/run": "name",
	} {
		method := http.MethodGet
		if strings.HasSuffix(path, "/run") {
			method = http.MethodPost
		}
		resp, raw := f.do(t, f.client, method, path, nil, map[string]string{"Origin": f.srv.URL})
		doc := parseHTML(t, raw)
		if msg := text(doc.Find(".error-page p")); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "{"+param+"}") {
			t.Errorf("%s %s = %d %q, want 400 naming {%s}", method, path, resp.StatusCode, msg, param)
		}
	}
	resp, body2 := f.apiCall(t, f.client, http.MethodGet, "/api/v1/leads/1%00", "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body2), "{id}") || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /api/v1/leads/1%%00 = %d %s, want a JSON 400", resp.StatusCode, body2)
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Errorf("bad input logged as a server error:\n%s", f.logs.String())
	}
}

// TestBadTextOnServerToServerEndpointsIsLeftToThem: Stripe and the mail
// provider cannot be asked to change what they send, so the edge check
// leaves their endpoints alone (each cleans or refuses text itself).
func TestBadTextOnServerToServerEndpointsIsLeftToThem(t *testing.T) {
	f := newFixture(t, map[string]string{"EMAIL_INBOUND_SECRET": "inbound-secret-for-tests-0123456789"})
	for _, path := range []string{"/stripe/webhook", "/email/events", "/email/inbound/wrong-secret"} {
		resp, doc := f.post(t, newClient(t), path+"?q=%00", url.Values{"subject": {"a\x00b"}, "text": {"\xff"}}, nil)
		if strings.Contains(text(doc.Selection), "not allowed") || strings.Contains(text(doc.Selection), `"subject"`) {
			t.Errorf("POST %s answered by the edge check (%d): %q", path, resp.StatusCode, text(doc.Selection))
		}
	}
}

// TestAPIRecordIDsAreWrittenPlainly: the API reads a record id as the
// control room does (recordID), so "+1", "01" and " 1" name no record
// rather than record 1.
func TestAPIRecordIDsAreWrittenPlainly(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	for _, list := range []string{"leads", "customers", "tasks", "invoices"} {
		if resp, body := f.apiCall(t, f.client, http.MethodGet, "/api/v1/"+list+"/1", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET /api/v1/%s/1 = %d %s", list, resp.StatusCode, body)
		}
		for _, id := range []string{"+1", "%2B1", "01", "%201", "1.0", "0x1", "0", "-1", "99999999999999999999"} {
			resp, body := f.apiCall(t, f.client, http.MethodGet, "/api/v1/"+list+"/"+id, "")
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "no record") {
				t.Errorf("GET /api/v1/%s/%s = %d %s, want 404", list, id, resp.StatusCode, body)
			}
		}
	}
}
