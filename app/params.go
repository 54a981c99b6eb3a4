package app

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/hossagent/hossagent/db"
)

// maxSearchLen bounds a search term; longer input is cut, not rejected.
const maxSearchLen = 100

// cursorParam reads a list cursor (db.ParseCursor); anything else means the
// first page.
func cursorParam(r *http.Request, name string) db.Cursor {
	return db.ParseCursor(r.URL.Query().Get(name))
}

// searchParam reads a search term, trimmed and bounded.
func searchParam(r *http.Request, name string) string {
	q := strings.TrimSpace(r.URL.Query().Get(name))
	if len(q) > maxSearchLen {
		q = q[:maxSearchLen]
		for !utf8.ValidString(q) {
			q = q[:len(q)-1]
		}
	}
	return q
}

// isHXRequest reports whether htmx sent the request (it then wants a
// fragment to swap in place, not a redirect or a whole page).
func isHXRequest(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// textProblem says why s is not text this app takes from a request, or ""
// when it is (db.TextProblem): a NUL cannot be stored, a control character
// cannot be shown, so such input is never meant.
func textProblem(s string) string { return db.TextProblem(s) }
