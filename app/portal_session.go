package app

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// Portal sessions. A link's token is a credential in a URL: opening it
// (GET /portal/link/{token}, or the operator's GET /portal/{token})
// exchanges it for a fresh session token, kept by the browser in the
// hossagent_portal cookie and by the store only as its hash, and redirects
// (303) to /portal, so the link's secret leaves the address bar, the
// history and any Referer (ASVS 5.0 §14.2.1). How long a session lasts is
// in db/portal_sessions.go: as long as the e-mailed link would have, at
// most 30 days.

// portalCookieName names the portal session cookie; it is apart from the
// operators' session cookie, so a client's browser never holds an
// operator's session and the other way round.
const portalCookieName = "hossagent_portal"

// The sign-in page's "send me a link": per client address, a burst of
// portalAskBurst, then one every portalAskRefillEach. Each known address
// also gets at most one link per slot (the Collections side), so this
// bounds what one address can make the server do, and probe.
const (
	portalAskBurst      = 5
	portalAskRefillEach = 2 * time.Minute
	// maxPortalAskForm bounds the form's body (one e-mail address).
	maxPortalAskForm = 4 << 10
	// maxEmailLen is the longest address accepted (RFC 5321's path limit).
	maxEmailLen = 254
	// portalLinkRequestTimeout bounds queueing a requested link.
	portalLinkRequestTimeout = 10 * time.Second
)

// portalCookie is the session cookie carrying token until expires; an
// empty token makes the cookie that deletes it. Secure follows BASE_URL.
func (s *Server) portalCookie(token string, expires time.Time) *http.Cookie {
	return s.secretCookie(portalCookieName, token, expires)
}

// portalSession reads the request's portal session: its customer and
// token. No cookie, or one of no live session, is db.ErrNotFound (and a
// dead cookie is deleted).
func (s *Server) portalSession(w http.ResponseWriter, r *http.Request) (*db.Customer, string, error) {
	ck, err := r.Cookie(portalCookieName)
	if err != nil || ck.Value == "" || len(ck.Value) > maxSessionCookieLen {
		return nil, "", db.ErrNotFound
	}
	c, err := s.store.CustomerByPortalSession(r.Context(), ck.Value)
	if errors.Is(err, db.ErrNotFound) {
		http.SetCookie(w, s.portalCookie("", time.Time{}))
	}
	if err != nil {
		return nil, "", err
	}
	return c, ck.Value, nil
}

// openPortalLink exchanges an e-mailed link for a session. An expired or
// withdrawn link gets a page (410) that says so and how to get a new one;
// an unknown one, 404 with the same form.
func (s *Server) openPortalLink(w http.ResponseWriter, r *http.Request) {
	if !s.allowPortalVisit(w, r) {
		return
	}
	ps, err := s.store.OpenPortalLink(r.Context(), chi.URLParam(r, "token"), s.random)
	switch {
	case errors.Is(err, db.ErrLinkExpired):
		s.portalSignIn(w, r, http.StatusGone, views.PortalSignInPage{Heading: "This link has expired",
			Message: "Links in our e-mails open your portal for " + days(s.cfg.Collections.LinkTTL) + ". Ask for a new one below.", Form: true})
	case errors.Is(err, db.ErrLinkRevoked):
		s.portalSignIn(w, r, http.StatusGone, views.PortalSignInPage{Heading: "This link was withdrawn",
			Message: "It no longer opens your portal. Ask for a new one below.", Form: true})
	case errors.Is(err, db.ErrNotFound):
		s.linkNotValid(w, r)
	case err != nil:
		s.fail(w, r, err)
	default:
		s.startPortalSession(w, r, ps)
	}
}

// openOperatorLink exchanges the operator's link (customers'
// portal_token_hash, rotated in the admin) for a session, under the same
// rate limit as every portal page.
func (s *Server) openOperatorLink(w http.ResponseWriter, r *http.Request) {
	if !s.allowPortalVisit(w, r) {
		return
	}
	ps, err := s.store.OpenPortalToken(r.Context(), chi.URLParam(r, "token"), s.random)
	switch {
	case errors.Is(err, db.ErrNotFound):
		s.linkNotValid(w, r)
	case err != nil:
		s.fail(w, r, err)
	default:
		s.startPortalSession(w, r, ps)
	}
}

func (s *Server) linkNotValid(w http.ResponseWriter, r *http.Request) {
	s.portalSignIn(w, r, http.StatusNotFound, views.PortalSignInPage{Heading: "This link is not valid",
		Message: "It may have been cut short or mistyped. Ask for a new one below.", Form: true})
}

// startPortalSession sets the new session's cookie (ending the browser's
// previous portal session, if any) and sends the browser to /portal: the
// answer carries no token but the cookie's.
func (s *Server) startPortalSession(w http.ResponseWriter, r *http.Request, ps *db.PortalSession) {
	if old, err := r.Cookie(portalCookieName); err == nil && old.Value != "" && len(old.Value) <= maxSessionCookieLen {
		if err := s.store.DeletePortalSession(r.Context(), old.Value); err != nil {
			s.log.Warn("previous portal session not ended", "err", err)
		}
	}
	http.SetCookie(w, s.portalCookie(ps.Token, ps.ExpiresAt))
	noStore(w)
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}

// requestPortalLink is the sign-in page's form: a fresh link is mailed to
// the address when it is a client's. The answer is the same page and
// status whether or not it is (and when sending failed: that is logged),
// so the form tells nobody who the clients are.
func (s *Server) requestPortalLink(w http.ResponseWriter, r *http.Request) {
	ip := s.clientIP(r)
	if !s.portalLinkAsks.allow(clientKey(ip)) {
		s.log.Warn("portal link requests rate limited", "remote", ip)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(portalAskRefillEach.Seconds()))))
		s.portalSignIn(w, r, http.StatusTooManyRequests, views.PortalSignInPage{Heading: "Too many requests",
			Message: "This address asked for links too often. Wait a few minutes, then try again.", Form: true})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxPortalAskForm)
	if err := r.ParseForm(); err != nil {
		s.portalSignIn(w, r, http.StatusRequestEntityTooLarge, views.PortalSignInPage{Heading: "Sign in to your client portal",
			Error: "The form was too large. Enter one e-mail address.", Form: true})
		return
	}
	raw := r.PostFormValue("email")
	email, ok := portalEmail(raw)
	if !ok {
		shown := raw
		if len(shown) > maxEmailLen {
			shown = ""
		}
		s.portalSignIn(w, r, http.StatusBadRequest, views.PortalSignInPage{Heading: "Sign in to your client portal",
			Email: shown, Error: "Enter an e-mail address such as name@example.com.", Form: true})
		return
	}
	if s.portalLinks == nil {
		msg := "Links cannot be mailed right now."
		if b := s.cfg.Company.BillingEmail; b != "" {
			msg += " Write to " + b + " and we will send you one."
		}
		s.portalSignIn(w, r, http.StatusServiceUnavailable, views.PortalSignInPage{Heading: "Links cannot be mailed right now", Message: msg})
		return
	}
	// Queued after the answer, so that neither the answer nor its timing
	// tells a client address from a stranger's (a known one writes a row).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), portalLinkRequestTimeout)
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		defer cancel()
		if err := s.portalLinks.RequestPortalLink(ctx, email); err != nil {
			s.log.Error("portal link request failed", "err", err)
		}
	}()
	s.portalSignIn(w, r, http.StatusOK, views.PortalSignInPage{Heading: "Check your e-mail", Sent: true, Form: true})
}

// portalEmail is the address the form was given, trimmed and lower-cased
// (as customers' contact addresses are stored), when it is one plain
// address and no longer than maxEmailLen.
func portalEmail(raw string) (string, bool) {
	email := strings.ToLower(strings.TrimSpace(raw))
	if email == "" || len(email) > maxEmailLen {
		return "", false
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return "", false
	}
	return email, true
}

// portalLogout ends the browser's portal session and shows the sign-in
// page.
func (s *Server) portalLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(portalCookieName); err == nil && len(c.Value) <= maxSessionCookieLen {
		if err := s.store.DeletePortalSession(r.Context(), c.Value); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, s.portalCookie("", time.Time{}))
	noStore(w)
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}

// portalSignIn renders the sign-in page (or one of its variants) with
// status.
func (s *Server) portalSignIn(w http.ResponseWriter, r *http.Request, status int, p views.PortalSignInPage) {
	p.Meta = s.meta(p.Heading)
	p.Provider = s.portalProvider()
	p.Status = status
	p.LinkDays = daysOf(s.cfg.Collections.LinkTTL)
	noStore(w)
	s.render(w, r, status, views.PortalSignIn(p))
}

// daysOf is a duration in whole days, at least one.
func daysOf(d time.Duration) int {
	return max(1, int(math.Round(d.Hours()/24)))
}

// days is daysOf spelled out: "30 days".
func days(d time.Duration) string {
	if n := daysOf(d); n != 1 {
		return strconv.Itoa(n) + " days"
	}
	return "1 day"
}
