package app

import (
	"context"
	"net/http"

	"github.com/hossagent/hossagent/db"
)

// streamAccess is the hub's AccessCheck: which readers are still signed in
// (and still admins where the stream needs one), and which portal links are
// still live. Two batched queries for any number of readers; with touch,
// the live sessions are also marked as seen.
func (s *Server) streamAccess(ctx context.Context, readers []reader, touch bool) (map[reader]bool, error) {
	var sessions, portals []string
	for _, r := range readers {
		switch {
		case r.session != "":
			sessions = append(sessions, r.session)
		case r.portal != "":
			portals = append(portals, r.portal)
		}
	}
	now := s.now()
	roles, err := s.store.LiveSessions(ctx, sessions, now)
	if err != nil {
		return nil, err
	}
	if touch && len(roles) > 0 {
		live := make([]string, 0, len(roles))
		for h := range roles {
			live = append(live, h)
		}
		if err := s.store.TouchSessions(ctx, live, now); err != nil {
			s.log.Warn("live readers' sessions not refreshed", "err", err)
		}
	}
	links, err := s.store.LivePortalTokens(ctx, portals)
	if err != nil {
		return nil, err
	}
	ok := make(map[reader]bool, len(readers))
	for _, r := range readers {
		switch {
		case r.session != "":
			role, live := roles[r.session]
			ok[r] = live && (!r.admin || role == db.RoleAdmin)
		case r.portal != "":
			_, ok[r] = links[r.portal]
		}
	}
	return ok, nil
}

// sessionReader is the reader of a stream opened with the request's
// session; admin says the stream needs the session to stay an admin's.
func sessionReader(r *http.Request, admin bool) reader {
	c, err := r.Cookie(sessionCookieName)
	if err != nil || userFrom(r.Context()) == nil {
		return reader{anonymous: true}
	}
	return reader{session: db.HashToken(c.Value), admin: admin}
}
