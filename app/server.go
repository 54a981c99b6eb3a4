// Package app is HossAgent's HTTP layer: the chi router with every route in
// one place, the middleware every request passes through, and one file per
// area (dashboard, admin, portal, health).
package app

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

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
	// AgentsReady reports whether the agent supervisor is running; nil
	// means there is no supervisor to wait for.
	AgentsReady func(ctx context.Context) error
	// Assets is the static file tree served under /assets/ (assets.FS in
	// production).
	Assets fs.FS
}

// Server serves HossAgent's pages.
type Server struct {
	cfg          config.Config
	store        *db.DB
	log          *slog.Logger
	now          func() time.Time
	agentsReady  func(ctx context.Context) error
	assets       fs.FS
	assetVersion string
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
		agentsReady:  d.AgentsReady,
		assets:       d.Assets,
		assetVersion: assets.Version(),
	}
}

// Handler returns the router with every route of the app.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverPanics, s.logRequests, securityHeaders)

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Handle("/assets/*", s.assetHandler())

	r.Get("/", s.dashboard)
	r.Get("/admin", s.admin)
	r.Get("/portal/{token}", s.portal)

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
