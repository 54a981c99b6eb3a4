package app

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/a-h/templ"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// fail maps an error to a status and a readable page, in one place. The
// detail goes to the log, never to the page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, db.ErrNotFound) {
		s.notFound(w, r)
		return
	}
	if errors.Is(err, r.Context().Err()) {
		return // the client went away
	}
	s.log.Error("request failed", "method", r.Method, "route", routeOf(r), "err", err)
	s.renderError(w, r, http.StatusInternalServerError, "Something went wrong",
		"The server hit an error and logged it. Try again in a moment.")
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, "Not found", "There is nothing at this address.")
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
