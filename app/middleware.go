package app

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/views"
)

// statusRecorder remembers what a handler wrote, for the request log and
// for panic recovery (a 500 page can only be sent before the header).
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (flushing SSE,
// clearing write deadlines).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func recorderOf(w http.ResponseWriter) *statusRecorder {
	if rec, ok := w.(*statusRecorder); ok {
		return rec
	}
	return &statusRecorder{ResponseWriter: w}
}

// logRequests writes one structured line per request. It logs the route
// pattern, not the raw path: portal tokens live in URLs and must not end up
// in logs.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := recorderOf(w)
		next.ServeHTTP(rec, r)
		route := routeOf(r)
		s.log.LogAttrs(r.Context(), levelFor(rec.status), "request",
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

// recoverPanics turns a handler's panic into a logged error and a plain 500
// page, so one bad request never takes the server down or shows a stack.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := recorderOf(w)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "route", routeOf(r),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if rec.status == 0 {
				s.renderError(rec, r, http.StatusInternalServerError, "Something went wrong",
					"The server hit an error and logged it. Try again in a moment.")
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// contentSecurityPolicy allows only this origin's own files: no inline
// script, no inline style attribute sources from elsewhere, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the headers of SPEC §7 on every response.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		// Portal tokens live in URLs: never leak them through Referer.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// routeOf is the request's route pattern ("/portal/{token}"), the only form
// of the path that may be logged: portal, unsubscribe and inbound secrets
// live in paths.
func routeOf(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		return rc.RoutePattern()
	}
	return "unmatched"
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Form bodies refuseBadText reads. It runs before the route's handler (and
// before any sign-in check), so it reads no more of a body than the route
// itself accepts: an anonymous request costs at most a route's own limit.
const (
	// defaultFormLimit bounds the form of every route not named in
	// formLimit: the control room's actions, the unsubscribe page, API
	// tokens and portal links read at most this much (maxActionForm,
	// maxUnsubscribeForm, maxAPITokenForm, maxActionBody), and routes that
	// read no form need no more.
	defaultFormLimit = 4 << 10
)

// formLimit is how much of a form body the edge check of a route (a
// "METHOD pattern" of the router) may read: the limit its handler applies.
// byRoute means the route also checks its form's text itself, after the
// sign-in (refuseBadFormText): the edge reads only defaultFormLimit of its
// body, so the CSV import's megabyte is read only for an admin.
func formLimit(route string) (limit int64, byRoute bool) {
	switch route {
	case "POST /admin/import/leads":
		return maxImportBody, true
	case "POST /admin/sequences/{pack}":
		return maxSequenceForm, true
	case "POST /admin/outreach/drafts/{id}/edit":
		return maxDraftForm, true
	case "POST /login":
		return maxLoginForm, false
	case "POST /admin/invoices/{id}/mark-paid", "POST /admin/invoices/{id}/void", "POST /admin/invoices/{id}/regenerate-link":
		return maxInvoiceActionForm, false
	case "POST /admin/leads/mark-dead", "POST /admin/leads/mark-responded", "POST /admin/leads/{id}/mark-dead", "POST /admin/leads/{id}/mark-responded",
		"POST /admin/tasks/retry", "POST /admin/tasks/{id}/retry", "POST /admin/messages/{id}/retry", "POST /admin/customers/{id}/edit",
		"POST /admin/suppressions", "POST /admin/suppressions/{id}/remove":
		return maxFixForm, false // a bulk form's 200 ids and a note, a customer's fields
	}
	return defaultFormLimit, false
}

// refuseBadText is the edge check of every request's text: each path
// parameter, query parameter and url-encoded or multipart form field (names
// and values; uploaded files are left to their handler) must be text
// (textProblem). Anything else is answered 400 with a message naming the
// field, before any handler or the store sees it: a JSON error under /api/,
// an error page (or, for htmx, a result fragment) elsewhere. A form body
// larger than its route accepts (formLimit) is answered 413 once that much
// of it is read, or at once when its declared length says so.
//
// routes is the app's router, asked which route (and so which path
// parameters) a request names. The server-to-server endpoints are exempt:
// their senders (Stripe, the mail provider) cannot be asked to send other
// text and would retry a refusal for days, so each cleans its text itself.
func (s *Server) refuseBadText(routes *chi.Mux, serverToServer ...string) func(http.Handler) http.Handler {
	exempt := map[string]bool{}
	for _, p := range serverToServer {
		exempt[p] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			badPath := textProblem(r.URL.Path) != ""
			form := formBodyKind(r)
			if !badPath && r.URL.RawQuery == "" && form == "" {
				next.ServeHTTP(w, r) // nothing to check: most page views and streams
				return
			}
			rctx := chi.NewRouteContext()
			pattern := routes.Find(rctx, r.Method, chiRoutePath(r))
			if pattern != "" && exempt[r.Method+" "+pattern] {
				next.ServeHTTP(w, r)
				return
			}
			msg := ""
			if badPath {
				msg = pathTextProblem(r, rctx)
			}
			if msg == "" {
				msg = valuesTextProblem("query parameter", r.URL.RawQuery)
			}
			if msg != "" {
				s.refuseText(w, r, http.StatusBadRequest, msg)
				return
			}
			limit, byRoute := formLimit(r.Method + " " + pattern)
			if byRoute {
				// A small form is checked here, signed in or not; a
				// larger one is left, read this far, to the route's own
				// check after its sign-in.
				limit = defaultFormLimit
			}
			if form != "" {
				msg, tooLarge := formTextProblem(w, r, form, limit)
				switch {
				case tooLarge && !byRoute:
					s.refuseText(w, r, http.StatusRequestEntityTooLarge, formTooLarge(limit))
					return
				case msg != "":
					s.refuseText(w, r, http.StatusBadRequest, msg)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// refuseBadFormText is refuseBadText's form check for a route that checks
// its own form (formLimit's byRoute), to be placed after the route's
// sign-in check. A body over limit is passed on, read only that far, for
// the handler's own limit to refuse with its own message.
func (s *Server) refuseBadFormText(limit int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if form := formBodyKind(r); form != "" {
				if msg, _ := formTextProblem(nil, r, form, limit); msg != "" {
					s.refuseText(w, r, http.StatusBadRequest, msg)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// formTooLarge is the message of a form body refused for its size.
func formTooLarge(limit int64) string {
	return fmt.Sprintf("The form is too large: this address accepts at most %d KiB. Nothing was changed.", limit>>10)
}

// refuseText answers a request refused by refuseBadText.
func (s *Server) refuseText(w http.ResponseWriter, r *http.Request, status int, msg string) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		writeAPIError(w, status, msg)
	case isHXRequest(r):
		s.render(w, r, status, views.AdminActionResult("bad", msg))
	case status == http.StatusRequestEntityTooLarge:
		s.renderError(w, r, status, "Request too large", msg)
	default:
		s.renderError(w, r, status, "Bad request", msg)
	}
}

// chiRoutePath is the path chi routes a request on: the raw path when the
// URL has one (escapes that decoding would change), else the path.
func chiRoutePath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}

// pathTextProblem names the path parameter that is not text, or the address
// as a whole when the bad part is no parameter (no route has it).
func pathTextProblem(r *http.Request, rctx *chi.Context) string {
	for i, key := range rctx.URLParams.Keys {
		v := rctx.URLParams.Values[i]
		if r.URL.RawPath != "" {
			if u, err := url.PathUnescape(v); err == nil {
				v = u
			}
		}
		if p := textProblem(v); p != "" && key != "*" {
			return "The {" + key + "} part of the address holds " + p + ", which is not allowed."
		}
	}
	return "The address holds " + textProblem(r.URL.Path) + ", which is not allowed."
}

// valuesTextProblem checks url-encoded pairs (a query or a form body); the
// first bad name or value, in name order, is named. Malformed pairs are
// skipped, as every reader of the values skips them.
func valuesTextProblem(what, encoded string) string {
	if encoded == "" {
		return ""
	}
	vals, _ := url.ParseQuery(encoded)
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		if msg := fieldTextProblem(what, name, vals[name]...); msg != "" {
			return msg
		}
	}
	return ""
}

// fieldTextProblem checks one field's name and values.
func fieldTextProblem(what, name string, values ...string) string {
	if p := textProblem(name); p != "" {
		return "A " + what + " name holds " + p + ", which is not allowed."
	}
	for _, v := range values {
		if p := textProblem(v); p != "" {
			return "The " + what + " " + strconv.Quote(clipEcho(name, 40)) + " holds " + p + ", which is not allowed."
		}
	}
	return ""
}

// Form body kinds formBodyKind tells apart.
const (
	formURLEncoded = "application/x-www-form-urlencoded"
	formMultipart  = "multipart/form-data"
)

// formBodyKind is the media type of a request's form body, "" when the
// request has none (or a body of another kind).
func formBodyKind(r *http.Request) string {
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != formURLEncoded && mt != formMultipart) {
		return ""
	}
	return mt
}

// formTextProblem reads a form body (up to limit), checks it and puts it
// back for the handler, which reads it with its own limits as if nothing
// had read it before. A body the check cannot parse is the handler's to
// refuse. tooLarge means the body holds more than limit bytes: then at most
// limit+1 of them were read (none when its declared length says so), and
// they are put back unchecked. With w, a body too large also tells the
// server to close the connection after the answer rather than drain it.
func formTextProblem(w http.ResponseWriter, r *http.Request, kind string, limit int64) (msg string, tooLarge bool) {
	if r.ContentLength > limit {
		if w != nil {
			w.Header().Set("Connection", "close")
		}
		return "", true // its declared length: nothing need be read
	}
	body := r.Body
	buf, err := io.ReadAll(io.LimitReader(body, limit+1))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), body), body}
	if int64(len(buf)) > limit {
		if w != nil {
			w.Header().Set("Connection", "close")
		}
		return "", true
	}
	if err != nil {
		return "", false // a failed read fails the handler's read too
	}
	return formBytesTextProblem(r, kind, buf), false
}

// formBytesTextProblem checks a form body read whole into buf.
func formBytesTextProblem(r *http.Request, kind string, buf []byte) string {
	if kind == formURLEncoded {
		return valuesTextProblem("form field", string(buf))
	}
	_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if params["boundary"] == "" {
		return ""
	}
	mr := multipart.NewReader(bytes.NewReader(buf), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			return "" // the end, or a malformed body the handler refuses
		}
		name := part.FormName()
		if file := part.FileName(); file != "" {
			// The file's content is the handler's to check (the CSV
			// import names the line and column); its name is text.
			if msg := fieldTextProblem("form field", name); msg != "" {
				return msg
			}
			if p := textProblem(file); p != "" {
				return "The file name in " + strconv.Quote(clipEcho(name, 40)) + " holds " + p + ", which is not allowed."
			}
			continue
		}
		value, err := io.ReadAll(part)
		if err != nil {
			return ""
		}
		if msg := fieldTextProblem("form field", name, string(value)); msg != "" {
			return msg
		}
	}
}

// readCloser is a request body read through r and closed through c.
type readCloser struct {
	io.Reader
	io.Closer
}
