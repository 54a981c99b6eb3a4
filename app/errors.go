package app

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/a-h/templ"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// Errors are mapped once, here (the model is benbjohnson/wtf's ErrorCode
// and its codes map): codeOf sorts an error of the store or the agents into
// a category, and errorAnswer gives a category its HTTP status and a
// readable sentence. Handlers ask these two, never errors.Is, for the
// status of an error; they keep only their own wording where a refusal
// names what was refused ("ops is stopped: start it first."). The
// sentences never hold an error's text: that goes to the log.

// errorCode is the category of an error, as a client is told it.
type errorCode string

// The error categories.
const (
	codeInvalid      errorCode = "invalid"      // the input is refused as it is: a bad file, a bad form
	codeUnauthorized errorCode = "unauthorized" // the caller is not who they claim: wrong credentials
	codeForbidden    errorCode = "forbidden"    // the caller may not do this
	codeNotFound     errorCode = "not found"    // no such record, token or agent
	codeConflict     errorCode = "conflict"     // the record's or agent's state refuses it: a closed invoice, a stopped agent
	codeBusy         errorCode = "busy"         // the agent cannot take it now: its mailbox is full
	codeRunning      errorCode = "running"      // accepted and under way, with no answer yet: see the cycle log
	codeUnavailable  errorCode = "unavailable"  // the part that would answer is not running now (or not in this process)
	codeInternal     errorCode = "internal"     // anything else: logged, never shown
)

// codes gives each category its status and the sentence an answer says
// when its handler has none of its own.
var codes = map[errorCode]struct {
	status  int
	message string
}{
	codeInvalid:      {http.StatusBadRequest, "The request could not be read. Nothing was changed."},
	codeUnauthorized: {http.StatusUnauthorized, "Sign in first."},
	codeForbidden:    {http.StatusForbidden, "This account may not do that."},
	codeNotFound:     {http.StatusNotFound, "There is nothing at this address."},
	codeConflict:     {http.StatusConflict, "That is not possible in the record's present state. Nothing was changed."},
	codeBusy:         {http.StatusConflict, "Busy: try again shortly."},
	codeRunning:      {http.StatusAccepted, "Running — see the cycle log."},
	codeUnavailable:  {http.StatusServiceUnavailable, "That part of HossAgent is not running at the moment. Nothing was changed: try again in a few seconds."},
	codeInternal:     {http.StatusInternalServerError, "The server hit an error and logged it. Try again in a moment."},
}

// codeOf sorts an error into its category: the one place that knows what
// each error of the store and the agents means to a client. nil is "".
func codeOf(err error) errorCode {
	var state *db.InvoiceStateError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, db.ErrNotFound), errors.Is(err, agents.ErrUnknownAgent):
		return codeNotFound
	case errors.Is(err, db.ErrBadCredentials):
		return codeUnauthorized
	case errors.Is(err, agents.ErrInvalidCSV):
		return codeInvalid
	case errors.As(err, &state), db.IsUniqueViolation(err),
		errors.Is(err, agents.ErrStopped), errors.Is(err, agents.ErrBackoff):
		return codeConflict
	case errors.Is(err, agents.ErrNoAnswer): // before ErrBusy, which it wraps
		return codeRunning
	case errors.Is(err, agents.ErrBusy):
		return codeBusy
	case errors.Is(err, agents.ErrNotRunning):
		// On PostgreSQL, between an owner's death and the takeover no
		// instance runs the agents (agents/cluster.ErrNoOwner wraps it).
		return codeUnavailable
	}
	return codeInternal
}

// errorAnswer is a category's HTTP status and readable sentence; "" (no
// error) and an unknown category are internal.
func errorAnswer(code errorCode) (status int, message string) {
	c, ok := codes[code]
	if !ok {
		c = codes[codeInternal]
	}
	return c.status, c.message
}

// errorStatus is the HTTP status of err's category.
func errorStatus(err error) int {
	status, _ := errorAnswer(codeOf(err))
	return status
}

// fail answers a failed read with the 404 page when the record is not
// there, or else a plain 500 page, in one place. The detail goes to the
// log, never to the page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if codeOf(err) == codeNotFound {
		s.notFound(w, r)
		return
	}
	if errors.Is(err, r.Context().Err()) {
		return // the client went away
	}
	s.log.Error("request failed", "method", r.Method, "route", routeOf(r), "err", err)
	status, message := errorAnswer(codeInternal)
	s.renderError(w, r, status, "Something went wrong", message)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	status, message := errorAnswer(codeNotFound)
	s.renderError(w, r, status, "Not found", message)
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	page := views.ErrorPage{Meta: s.meta(heading), Status: status, Heading: heading, Message: message}
	s.render(w, r, status, views.Error(page))
}

// render writes a component with a status. Pages are rendered into memory
// first so that a failing template still yields a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		s.renderFailed(w, r, err)
		return
	}
	writeHTML(w, status, buf.Bytes())
}

// renderFailed answers a page whose template failed with a plain 500.
func (s *Server) renderFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client went away mid-render: nobody is waiting for a page,
		// and nothing failed.
		s.log.Debug("client left before the page was rendered", "route", routeOf(r))
		return
	}
	s.log.Error("render failed", "route", routeOf(r), "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func (s *Server) meta(title string) views.Meta {
	return views.Meta{Title: title, AssetVersion: s.assetVersion, Now: s.now().UTC(), Currency: s.cfg.Stripe.DefaultCurrency}
}
