package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hossagent/hossagent/db"
)

// streamAccess is the hub's AccessCheck: which readers are still signed in
// (and still admins where the stream needs one), and which portal sessions
// are still live (a revoked link ends its customer's sessions, an expired
// or signed-out session is gone). Two batched queries for any number of readers; with touch,
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
	portalSessions, err := s.store.LivePortalSessions(ctx, portals, now)
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
			_, ok[r] = portalSessions[r.portal]
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

// streamOwner is whose slot a stream takes: its user when signed in
// (LiveStreams.PerUser), else the client address it came from
// (LiveStreams.PerAddress; an IPv6 /64 is one address), so one anonymous
// machine cannot hold hundreds of public-dashboard or portal streams.
// Signed-in streams count per user, not per address (an office of operators
// behind one address is not one reader) and not per session: a correct
// password opens any number of sessions, so a viewer account could
// otherwise hold every slot.
func (s *Server) streamOwner(r *http.Request, who reader) string {
	if u := userFrom(r.Context()); who.session != "" && u != nil {
		return "user " + strconv.FormatInt(u.ID, 10)
	}
	return "address " + clientKey(s.clientIP(r))
}

// Retry-After of a refused stream: a client over its own limit waits for
// one of its streams to close; a busy server frees slots all the time.
const (
	retryStreamOverLimit = "30"
	retryStreamBusy      = "5"
)

// refuseStream answers a stream the hub refused: 429 when the client holds
// too many already (per address or per session), 503 when the server does
// (every stream, or every view), each with Retry-After and a short text.
func (s *Server) refuseStream(w http.ResponseWriter, r *http.Request, err error) {
	limits := s.hub.streamLimits()
	s.log.Warn("live stream refused", "route", routeOf(r), "remote", s.clientIP(r), "reason", err.Error())
	switch {
	case errors.Is(err, errStreamsPerAddress):
		w.Header().Set("Retry-After", retryStreamOverLimit)
		http.Error(w, fmt.Sprintf("Too many live streams from this address (%d are open, the most allowed). Close another tab of this site; this page updates again when you reload it.", limits.PerAddress), http.StatusTooManyRequests)
	case errors.Is(err, errStreamsPerUser):
		w.Header().Set("Retry-After", retryStreamOverLimit)
		http.Error(w, fmt.Sprintf("Too many live streams for this account (%d are open, in all its sessions, the most allowed). Close another tab of this site; this page updates again when you reload it.", limits.PerUser), http.StatusTooManyRequests)
	default:
		w.Header().Set("Retry-After", retryStreamBusy)
		http.Error(w, "Live updates are busy: "+err.Error()+". Retrying shortly.", http.StatusServiceUnavailable)
	}
}
