package app

import (
	"context"
	"net/http"
	"time"
)

// healthz answers while the process is up.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers 200 only when the database answers and the agent
// supervisor runs; a load balancer sends no traffic otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("not ready: database", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("database unreachable\n"))
		return
	}
	if s.agents != nil {
		if err := s.agents.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("agents not running: " + err.Error() + "\n"))
			return
		}
	}
	// Several instances: a standby is ready too (it serves every page and
	// hands the agents' actions to the owner); the body says which it is.
	if own, ok := s.agents.(AgentOwnership); ok {
		owner := own.Owner()
		switch owner {
		case own.Instance():
			_, _ = w.Write([]byte("ready: owner\n"))
		case "":
			_, _ = w.Write([]byte("ready: standby, owner none (a takeover is under way)\n"))
		default:
			_, _ = w.Write([]byte("ready: standby, owner " + owner + "\n"))
		}
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// AgentOwnership is what an AgentControl shared by several instances on
// PostgreSQL adds (agents/cluster's Service): this instance's id, and the
// id of the instance that owns the agents ("" while none does). The engine
// alone (SQLite) has none of it.
type AgentOwnership interface {
	Instance() string
	Owner() string
}
