// Package app is HossAgent's HTTP layer: the chi router with every route in
// one place, the middleware every request passes through, and one file per
// area (dashboard, admin, portal, health).
package app

import (
	"context"
	"crypto/rand"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/assets"
	"github.com/hossagent/hossagent/db"
)

// Deps is everything the HTTP layer is built from. main wires it.
type Deps struct {
	Config config.Config
	Store  *db.DB
	Logger *slog.Logger
	// Now is the clock pages read ("overdue", "last run 3 min ago").
	Now func() time.Time
	// Agents is the running agent engine and its coordinator; nil serves
	// the pages from the cycle log alone.
	Agents AgentControl
	// Assets is the static file tree served under /assets/ (assets.FS in
	// production).
	Assets fs.FS
	// ClientIPHeader names the header a trusted reverse proxy puts the
	// client's address in ("Fly-Client-IP" on Fly.io), for sign-in rate
	// limits and the audit log. Empty uses the connection's address; set it
	// only behind a proxy that overwrites the header, or clients can forge it.
	ClientIPHeader string
}

// AgentControl is what the web layer asks of the agent engine: states for
// the control room, readiness, and the operators' actions.
type AgentControl interface {
	Ready(ctx context.Context) error
	States() []agents.AgentState
}

// Server serves HossAgent's pages.
type Server struct {
	cfg          config.Config
	store        *db.DB
	log          *slog.Logger
	now          func() time.Time
	agents       AgentControl
	assets       fs.FS
	assetVersion string

	random         io.Reader       // session tokens
	logins         *attemptLimiter // sign-in attempts per address and per e-mail
	clientIPHeader string
}

// New builds the server from its dependencies.
func New(d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Assets == nil {
		d.Assets = assets.FS
	}
	return &Server{
		cfg:          d.Config,
		store:        d.Store,
		log:          d.Logger,
		now:          d.Now,
		agents:       d.Agents,
		assets:       d.Assets,
		assetVersion: assets.Version(),

		random:         rand.Reader,
		logins:         newAttemptLimiter(loginRefillEvery, loginBurst, d.Now),
		clientIPHeader: d.ClientIPHeader,
	}
}

// Handler returns the router with every route of the app.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverPanics, s.logRequests, securityHeaders,
		// Every POST, PUT, PATCH and DELETE from a browser on another site
		// is refused, except on the server-to-server endpoints, which are
		// called by Stripe and the mail provider and verify their callers.
		s.crossOriginProtection(
			"POST /stripe/webhook",
			"POST /email/inbound",
			"POST /email/inbound/{secret}",
			"POST /email/events",
			"POST /unsubscribe/{token}",
		))

	// Public: no session is read.
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Handle("/assets/*", s.assetHandler())
	r.Get("/portal/{token}", s.portal) // the token alone grants access

	// Operator pages: the session cookie is read.
	r.Group(func(r chi.Router) {
		r.Use(s.loadSession)
		r.Get("/login", s.loginForm)
		r.Post("/login", s.login)
		r.Post("/logout", s.logout)
		r.Get("/", s.dashboard) // any operator; anyone when DASHBOARD_PUBLIC

		// Admins only: the control room, every admin action and the JSON
		// API belong in this group. The catch-alls keep paths that have
		// no route yet behind the sign-in too.
		r.Group(func(r chi.Router) {
			r.Use(s.requireAdmin)
			r.Get("/admin", s.admin)
			r.HandleFunc("/admin/*", s.notFound)
			r.HandleFunc("/api/*", s.notFound)
		})
	})

	r.NotFound(s.notFound)
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This address does not accept "+r.Method+" requests.")
	})
	return r
}

// assetHandler serves the embedded assets. URLs carry a content hash
// (?v=…), so every response may be cached for a year.
func (s *Server) assetHandler() http.Handler {
	files := http.StripPrefix("/assets/", http.FileServerFS(s.assets))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		files.ServeHTTP(w, r)
	})
}
