package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAssetsServeFilesOnly: /assets/ serves the embedded files and nothing
// else; a directory is no page (404), not a listing of what is in it.
func TestAssetsServeFilesOnly(t *testing.T) {
	f := newFixture(t, nil)
	for _, path := range []string{"/assets/", "/assets/vendor/", "/assets/vendor", "/assets/css/", "/assets/css",
		"/assets/.", "/assets/vendor/.", "/assets/vendor/../", "/assets//", "/assets/vendor/index.html", "/assets/nope.js"} {
		resp, _, body := f.get(t, path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
		// A listing links the files by their bare names (href="noir.css");
		// the 404 page's own links carry /assets/….
		if strings.Contains(body, `href="htmx.min.js"`) || strings.Contains(body, `href="noir.css"`) || strings.Contains(body, "SHA256SUMS") || strings.Contains(body, `href="vendor/"`) {
			t.Errorf("GET %s lists the directory:\n%s", path, body)
		}
		if cc := resp.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
			t.Errorf("GET %s: a 404 is cached for a year (%q)", path, cc)
		}
	}
	for _, path := range []string{"/assets/vendor/htmx.min.js", "/assets/css/noir.css", "/assets/vendor/SHA256SUMS"} {
		resp, _, body := f.get(t, path)
		if resp.StatusCode != http.StatusOK || len(body) < 50 {
			t.Errorf("GET %s = %d (%d bytes), want the file", path, resp.StatusCode, len(body))
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("GET %s Cache-Control = %q", path, cc)
		}
	}
	resp, _, _ := f.get(t, "/assets/css/noir.css")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("noir.css Content-Type = %q", ct)
	}
}

// TestAssetsAnswerOnlyGetAndHead: /assets/ serves files to GET and HEAD;
// any other method is 405 with Allow, not the file.
func TestAssetsAnswerOnlyGetAndHead(t *testing.T) {
	f := newFixture(t, nil)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace, "PROPFIND"} {
		req, _ := http.NewRequest(m, f.srv.URL+"/assets/css/noir.css", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// (A method chi does not know, PROPFIND, is the router's own 405.)
		if resp.StatusCode != http.StatusMethodNotAllowed || m != "PROPFIND" && resp.Header.Get("Allow") != "GET, HEAD" || strings.Contains(string(body), "font-family") {
			t.Errorf("%s /assets/css/noir.css = %d (Allow %q), want 405 with Allow: GET, HEAD", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	req, _ := http.NewRequest(http.MethodHead, f.srv.URL+"/assets/css/noir.css", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 100 {
		t.Errorf("HEAD = %d (length %d), want 200 with the file's length", resp.StatusCode, resp.ContentLength)
	}
}
