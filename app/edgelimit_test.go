package app

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/hossagent/hossagent/db"
)

// countingBody is a request body that counts how many of its bytes
// anything read.
type countingBody struct {
	r    io.Reader
	read int64
}

func newCountingBody(content []byte) *countingBody {
	return &countingBody{r: bytes.NewReader(content)}
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}

func (c *countingBody) Close() error { return nil }

// TestAnonymousFormBodiesAreCutAtTheRoutesLimit: the edge check of form
// text reads no more of an anonymous form body than the route itself
// accepts (16 KiB for the sign-in, 4 KiB for an unsubscribe, nothing for an
// operator route before sign-in), so a 1 MiB POST without a session costs
// kilobytes, not a megabyte; and it is answered 413 with a message saying
// so, whether or not the request declares its length.
func TestAnonymousFormBodiesAreCutAtTheRoutesLimit(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	handler := f.srv.Config.Handler
	form := append([]byte("email=a%40b.example&password=x&pad="), bytes.Repeat([]byte("a"), 1<<20)...)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("file", "leads.csv")
	_, _ = fw.Write(append([]byte("email\n"), bytes.Repeat([]byte("a"), 1<<20-100)...))
	_ = mw.Close()

	for _, c := range []struct {
		name, path, ctype string
		body              []byte
		status            int
		maxRead           int64
	}{
		{"sign-in", "/login", formURLEncoded, form, http.StatusRequestEntityTooLarge, maxLoginForm + 1},
		{"unsubscribe", "/unsubscribe/" + f.token, formURLEncoded, form, http.StatusRequestEntityTooLarge, maxUnsubscribeForm + 1},
		{"CSV import without a session", "/admin/import/leads", mw.FormDataContentType(), mp.Bytes(), http.StatusUnauthorized, defaultFormLimit + 1},
		{"control-room action without a session", "/admin/outreach/caps", formURLEncoded, form, http.StatusRequestEntityTooLarge, maxActionForm + 1},
	} {
		for _, declared := range []bool{false, true} {
			body := newCountingBody(c.body)
			req := httptest.NewRequest(http.MethodPost, c.path, body)
			req.Header.Set("Content-Type", c.ctype)
			if declared {
				req.ContentLength = int64(len(c.body))
			} else {
				req.ContentLength = -1 // sent chunked: the length is known only once read
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Errorf("%s (length declared %v): 1 MiB POST %s = %d, want %d", c.name, declared, c.path, rec.Code, c.status)
			}
			if body.read > c.maxRead {
				t.Errorf("%s (length declared %v): 1 MiB POST %s read %d bytes of the body, want at most %d", c.name, declared, c.path, body.read, c.maxRead)
			}
			if rec.Code == http.StatusRequestEntityTooLarge {
				doc, _ := goquery.NewDocumentFromReader(rec.Body)
				if msg := text(doc.Find(".error-page p")); !strings.Contains(msg, "too large") {
					t.Errorf("%s: the 413 page says %q, want it to say the form is too large", c.name, msg)
				}
			}
		}
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Errorf("an oversized body logged as a server error:\n%s", f.logs.String())
	}
}

// TestSignedInFormBodiesKeepTheirLimits: within the route's limit a form is
// checked as before (bad text is a 400), a body just over it is a 413 that
// changes nothing, and the CSV import's form is still checked, after the
// sign-in.
func TestSignedInFormBodiesKeepTheirLimits(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)

	// The sign-in form: within 16 KiB it is read and checked; just over, 413.
	within := "email=a%40b.example&password=" + strings.Repeat("p", maxLoginForm-200) + "&next=%00"
	resp, doc := f.postRaw(t, newClient(t), "/login", formURLEncoded, []byte(within))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(text(doc.Find(".error-page p")), `"next"`) {
		t.Errorf("bad text in a sign-in form within its limit = %d %q, want 400 naming next", resp.StatusCode, text(doc.Find(".error-page p")))
	}
	over := "email=a%40b.example&password=" + strings.Repeat("p", maxLoginForm)
	if resp, _ := f.postRaw(t, newClient(t), "/login", formURLEncoded, []byte(over)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a sign-in form just over 16 KiB = %d, want 413", resp.StatusCode)
	}

	// The CSV import's form text is checked at the edge when the form is
	// small, and after the sign-in when it is larger than the edge reads
	// of it: a NUL in a field is refused naming it; the same form without
	// it imports.
	small := []byte("email,company\nbig@lead.example,Big\n")
	large := []byte("email,company\n")
	for i := range 400 {
		large = fmt.Appendf(large, "lead@co%d.example,Co %d\n", i, i)
	}
	for _, c := range []struct {
		name, note string
		file       []byte
		status     int
	}{
		{"a NUL in a field of a small form", "a\x00b", small, http.StatusBadRequest},
		{"a NUL in a field of a form over 4 KiB", "a\x00b", large, http.StatusBadRequest},
		{"plain text, small", "ab", small, http.StatusOK},
		{"plain text, over 4 KiB", "ab", large, http.StatusOK},
	} {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("note", c.note)
		fw, _ := mw.CreateFormFile("file", "leads.csv")
		_, _ = fw.Write(c.file)
		_ = mw.Close()
		resp, doc := f.postRaw(t, f.client, "/admin/import/leads", mw.FormDataContentType(), body.Bytes())
		if resp.StatusCode != c.status {
			t.Errorf("%s: import = %d %q, want %d", c.name, resp.StatusCode, clipEcho(text(doc.Selection), 200), c.status)
		}
		if c.status == http.StatusBadRequest && !strings.Contains(text(doc.Selection), `"note"`) {
			t.Errorf("%s: the refusal does not name the field: %q", c.name, clipEcho(text(doc.Selection), 200))
		}
	}
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM leads WHERE email LIKE 'lead@co%.example'"); n != 400 {
		t.Errorf("imported %d of the large file's 400 leads, want 400 (once, from the accepted form)", n)
	}
}
