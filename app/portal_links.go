package app

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// Portal link controls of the customer page. The store keeps only the hash
// of a portal token, so the link a customer holds can never be shown again:
// rotating issues a fresh token and shows its link once, in the answer to
// the POST (never in a URL, a log or the audit detail); revoking replaces
// the token with one nobody is given. See db/portal_links.go.

// maxActionBody bounds the body of a button's POST: it carries no fields
// the handlers read.
const maxActionBody = 4 << 10

// rotatePortalLink issues a new portal link. The answer shows it: as the
// panel for htmx, as the whole customer page otherwise (a redirect would
// lose the link for good).
func (s *Server) rotatePortalLink(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.readPortalActionForm(w, r, id) {
		return
	}
	token, err := s.store.RotatePortalToken(r.Context(), id, s.random)
	if err != nil {
		s.portalLinkFailed(w, r, id, err)
		return
	}
	s.audit(r, db.AuditPortalRotated, "customer "+strconv.FormatInt(id, 10), "the previous link, every e-mailed link and every portal session stopped working")
	s.portalLinkAnswer(w, r, id, s.portalURL(token), "")
}

// revokePortalLink kills the customer's portal link.
func (s *Server) revokePortalLink(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.readPortalActionForm(w, r, id) {
		return
	}
	if err := s.store.RevokePortalToken(r.Context(), id, s.random); err != nil {
		s.portalLinkFailed(w, r, id, err)
		return
	}
	s.audit(r, db.AuditPortalRevoked, "customer "+strconv.FormatInt(id, 10), "no working link until the next rotation; e-mailed links withdrawn, portal sessions ended")
	if !isHXRequest(r) {
		http.Redirect(w, r, "/admin/customers/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
		return
	}
	s.portalLinkAnswer(w, r, id, "", "Link revoked, with every link we e-mailed and every open portal session. The client can ask for a fresh link on the portal's sign-in page.")
}

// portalLinkAnswer renders the panel after an action: alone for htmx, in
// the whole customer page otherwise.
func (s *Server) portalLinkAnswer(w http.ResponseWriter, r *http.Request, id int64, link, result string) {
	p, err := s.customerPage(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Portal.NewLink, p.Portal.Result, p.Portal.ResultClass = link, result, "ok"
	if isHXRequest(r) {
		s.render(w, r, http.StatusOK, views.PortalLink(p.Portal))
		return
	}
	s.render(w, r, http.StatusOK, views.CustomerDetail(p))
}

// readPortalActionForm reads the (empty) form of a button's POST within
// maxActionBody; a larger body is refused before anything changes.
func (s *Server) readPortalActionForm(w http.ResponseWriter, r *http.Request, id int64) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	if err := r.ParseForm(); err != nil {
		s.portalLinkRefused(w, r, id, http.StatusRequestEntityTooLarge, "The request was too large; the link was not changed.")
		return false
	}
	return true
}

// portalLinkFailed answers a failed action: a missing customer is the 404
// page, anything else a readable message in the panel's place.
func (s *Server) portalLinkFailed(w http.ResponseWriter, r *http.Request, id int64, err error) {
	if !isHXRequest(r) || codeOf(err) == codeNotFound {
		s.fail(w, r, err)
		return
	}
	s.log.Error("portal link action failed", "customer", id, "err", err)
	s.portalLinkRefused(w, r, id, http.StatusInternalServerError, "The link was not changed: the server hit an error and logged it. Try again.")
}

// portalLinkRefused shows why an action did nothing: in the panel for htmx,
// as an error page otherwise.
func (s *Server) portalLinkRefused(w http.ResponseWriter, r *http.Request, id int64, status int, msg string) {
	if !isHXRequest(r) {
		s.renderError(w, r, status, "Portal link not changed", msg)
		return
	}
	s.render(w, r, status, views.PortalLink(views.PortalLinkPanel{CustomerID: id, Result: msg, ResultClass: "bad"}))
}

// portalURL is the public link of a portal token: BASE_URL + /portal/token,
// which opening exchanges for a portal session (portal_session.go).
func (s *Server) portalURL(token string) string {
	base := "http://localhost:8080"
	if s.cfg.BaseURL != nil {
		base = s.cfg.BaseURL.String()
	}
	return strings.TrimRight(base, "/") + "/portal/" + token
}
