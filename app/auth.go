package app

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// sessionCookieName names the cookie that carries the session token. The
// token is 256 random bits; the database holds only its SHA-256, so a copy
// of the database cannot be replayed as a session.
const sessionCookieName = "hossagent_session"

// maxSessionCookieLen bounds the cookie value read: a real token is 43
// characters, anything much longer is not worth hashing and looking up.
const maxSessionCookieLen = 128

type userKey struct{}

// userFrom returns the operator signed in for this request, or nil.
func userFrom(ctx context.Context) *db.User {
	u, _ := ctx.Value(userKey{}).(*db.User)
	return u
}

func withUser(ctx context.Context, u *db.User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// loadSession puts the operator of a live session into the request context.
// A cookie of an ended session is cleared so the browser stops sending it.
func (s *Server) loadSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookieName)
		if err != nil || c.Value == "" || len(c.Value) > maxSessionCookieLen {
			next.ServeHTTP(w, r)
			return
		}
		u, err := s.store.SessionUser(r.Context(), db.HashToken(c.Value), s.now())
		switch {
		case codeOf(err) == codeNotFound: // the session ended
			http.SetCookie(w, s.sessionCookie("", time.Time{}))
			next.ServeHTTP(w, r)
		case err != nil:
			s.fail(w, r, err)
		default:
			next.ServeHTTP(w, r.WithContext(withUser(r.Context(), u)))
		}
	})
}

// requireAdmin lets only signed-in admins through. It guards /admin, every
// admin action and the JSON API.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := userFrom(r.Context())
		switch {
		case u == nil:
			s.signInRequired(w, r)
		case u.Role != db.RoleAdmin:
			s.renderError(w, r, http.StatusForbidden, "Admins only",
				"Your account may read the dashboard, but the control room is for admins.")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// signInRequired answers an anonymous request for a signed-in page: a page
// view goes to the sign-in form and comes back after it; anything else
// (a POST from an expired session, an API call) gets a plain 401. So do a
// live stream and an htmx request, even a GET: followed, the redirect would
// hand the sign-in page to the stream or swap it into a panel, where a 401
// is what the page's script shows as "session ended" (assets/js/live.js).
func (s *Server) signInRequired(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/events/") {
		http.Error(w, "sign in required", http.StatusUnauthorized)
		return
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("HX-Request") != "true" {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	s.renderError(w, r, http.StatusUnauthorized, "Sign-in required",
		"Your session has ended. Sign in again, then retry.")
}

// startSession signs u in: a fresh token (never one the browser brought
// along, so a planted cookie cannot be promoted to a session), stored by its
// hash, in a cookie. Sessions that have ended are swept at the same time.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u *db.User) error {
	ctx := r.Context()
	if old, err := r.Cookie(sessionCookieName); err == nil && len(old.Value) <= maxSessionCookieLen {
		if err := s.store.DeleteSession(ctx, db.HashToken(old.Value)); err != nil {
			return err
		}
	}
	token, hash, err := db.NewToken(s.random)
	if err != nil {
		return err
	}
	now := s.now()
	expires := now.Add(db.SessionLifetime)
	if err := s.store.CreateSession(ctx, u.ID, hash, expires); err != nil {
		return err
	}
	if _, err := s.store.DeleteExpiredSessions(ctx, now); err != nil {
		s.log.Warn("expired sessions not swept", "err", err)
	}
	http.SetCookie(w, s.sessionCookie(token, expires))
	return nil
}

// sessionCookie is the session cookie carrying token until expires; an empty
// token makes the cookie that deletes it. Secure follows BASE_URL: a browser
// would drop a Secure cookie set over plain http in development.
func (s *Server) sessionCookie(token string, expires time.Time) *http.Cookie {
	return s.secretCookie(sessionCookieName, token, expires)
}

// secretCookie is a cookie named name that carries a secret token until
// expires (the operator's session, a client's portal session): sent on every
// path, never to scripts, not on cross-site subrequests, and Secure when
// BASE_URL is https. An empty token makes the cookie that deletes it.
func (s *Server) secretCookie(name, token string, expires time.Time) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    token,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   s.cfg.BaseURL != nil && s.cfg.BaseURL.Scheme == "https",
	}
	if token == "" {
		c.MaxAge = -1
		return c
	}
	c.Expires = expires.UTC()
	c.MaxAge = max(1, int(expires.Sub(s.now()).Seconds()))
	return c
}

// audit records an operator's action with who did it and from where. The
// entry is written even when the client has gone away; a failure to write
// it is logged, not shown.
func (s *Server) audit(r *http.Request, action, target, detail string) {
	actor := "anonymous"
	if u := userFrom(r.Context()); u != nil {
		actor = u.Email
	}
	err := s.store.RecordAudit(context.WithoutCancel(r.Context()), db.AuditEntry{
		Actor: actor, Action: action, Target: target, Detail: detail,
		RemoteAddr: s.clientIP(r), CreatedAt: s.now(),
	})
	if err != nil {
		s.log.Error("audit entry not recorded", "action", action, "actor", actor, "err", err)
	}
}

// clientIP is the address the request came from: the trusted proxy's header
// when one is configured (Deps.ClientIPHeader), else the connection's peer.
func (s *Server) clientIP(r *http.Request) string {
	if s.clientIPHeader != "" {
		if ip, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get(s.clientIPHeader))); err == nil {
			return ip.String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// metaFor is meta for a page that shows who is signed in, with a sign-out
// button.
func (s *Server) metaFor(r *http.Request, title string) views.Meta {
	m := s.meta(title)
	if u := userFrom(r.Context()); u != nil {
		m.SignedIn = u.Email
	}
	return m
}

// crossOriginProtection refuses state-changing requests (POST, PUT, PATCH,
// DELETE) that a browser sends from another site, which is what a CSRF
// attack is. The only exemptions are the server-to-server endpoints: their
// callers are not browsers, and each checks its own signature or secret.
func (s *Server) crossOriginProtection(serverToServer ...string) func(http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	for _, pattern := range serverToServer {
		cop.AddInsecureBypassPattern(pattern)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "Cross-site request refused",
			"This request came from another site and was not carried out.")
	}))
	return cop.Handler
}
