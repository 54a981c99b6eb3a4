package app

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// maxLoginForm bounds the sign-in form's body.
const maxLoginForm = 16 << 10

// Messages of the sign-in form. Unknown e-mail and wrong password share one
// message so the form does not reveal which accounts exist.
const (
	msgBadCredentials = "Wrong e-mail or password."
	msgTooManyLogins  = "Too many failed sign-ins. Wait a minute, then try again."
	msgLoginCooldown  = "Too many failed sign-ins for this account from many places. This address may try again in a few minutes; an address that has not failed may sign in now."
	msgBadLoginForm   = "The form could not be read. Try again."
)

// loginForm shows the sign-in form; a signed-in operator goes straight on.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if u := userFrom(r.Context()); u != nil {
		http.Redirect(w, r, landing(u, next), http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, views.LoginPage{Next: next})
}

// login checks the credentials and starts a session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, r, http.StatusBadRequest, views.LoginPage{Error: msgBadLoginForm})
		return
	}
	email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("email")))
	if len(email) > 254 {
		email = email[:254] // no address is longer; it also bounds the limiter's key
	}
	p := views.LoginPage{Email: email, Next: safeNext(r.PostForm.Get("next"))}
	ip := s.clientIP(r)
	attempt, wait, limit := s.signIns.begin(clientKey(ip), email)
	if attempt == nil {
		s.log.Warn("sign-in rate limited", "remote", ip, "limit", limit)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		p.Error = msgTooManyLogins
		if limit == limitAccountUnderAttack {
			p.Error = msgLoginCooldown
		}
		s.renderLogin(w, r, http.StatusTooManyRequests, p)
		return
	}
	u, err := s.store.Authenticate(r.Context(), email, r.PostForm.Get("password"))
	if codeOf(err) == codeUnauthorized { // wrong e-mail or password
		audited := attempt.failed()
		s.log.Warn("sign-in failed", "remote", ip, "audited", audited)
		if audited {
			s.audit(r, auditLoginFailed, "sign-in as "+cleanText(email), "wrong e-mail or password")
		}
		p.Error = msgBadCredentials
		s.renderLogin(w, r, errorStatus(err), p)
		return
	}
	attempt.succeeded() // or the store failed: not a guess either way
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.startSession(w, r, u); err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r.WithContext(withUser(r.Context(), u)), "login", u.Email, "")
	http.Redirect(w, r, landing(u, p.Next), http.StatusSeeOther)
}

// logout ends the session and clears its cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookieName); err == nil && len(c.Value) <= maxSessionCookieLen {
		if err := s.store.DeleteSession(r.Context(), db.HashToken(c.Value)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if u := userFrom(r.Context()); u != nil {
		s.audit(r, "logout", u.Email, "")
	}
	http.SetCookie(w, s.sessionCookie("", time.Time{}))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, p views.LoginPage) {
	p.Meta = s.meta("Sign in")
	s.render(w, r, status, views.Login(p))
}

// landing is where u goes after signing in: next when given, else the
// control room for admins and the dashboard for viewers.
func landing(u *db.User, next string) string {
	switch {
	case next != "":
		return next
	case u.Role == db.RoleAdmin:
		return "/admin"
	}
	return "/"
}

// safeNext returns next when it is a path on this site, else "". A path must
// start with one "/" and hold no backslash or control character: browsers
// read "//host" and "/\host" as another site, and anything with a scheme or
// host is one.
func safeNext(next string) string {
	if len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return ""
	}
	if strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}

// attemptLimiter is a token bucket per key (a client address, an e-mail).
// Buckets that have refilled are forgotten on a sweep at most once a
// minute: a full bucket behaves exactly like a new one, so forgetting it
// changes nothing but memory.
type attemptLimiter struct {
	every time.Duration
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

func newAttemptLimiter(every time.Duration, burst int, now func() time.Time) *attemptLimiter {
	return &attemptLimiter{every: every, burst: burst, now: now, buckets: map[string]*rate.Limiter{}}
}

// allow takes one attempt from key's bucket and reports whether there was
// one to take.
func (l *attemptLimiter) allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

func (l *attemptLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for key, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, key)
		}
	}
}

// size is the number of buckets kept, for tests.
func (l *attemptLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
