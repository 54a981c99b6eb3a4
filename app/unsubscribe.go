package app

import (
	"context"
	"mime"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/views"
)

// The unsubscribe link of every outreach e-mail (RFC 8058). Its token is an
// HMAC of the message id under the install's key (agents.UnsubscribeTokens):
// the token alone is the credential, so a forged or altered one is a plain
// 404 and nothing is stored per link.
//
// GET only shows a page with a button: mail scanners and link previews
// fetch every URL in a message, and must never unsubscribe anybody. POST
// acts, whether from that button or straight from the mail client
// ("List-Unsubscribe=One-Click" in the body, RFC 8058 §3.1), and acting
// twice is harmless.

// oneClickField and oneClickValue are the form field a mail client posts for one-click
// unsubscribe.
const oneClickField, oneClickValue = "List-Unsubscribe", "One-Click"

// unsubscribeMessage resolves the {token} of the route to its message id;
// false means it answered 404.
func (s *Server) unsubscribeMessage(w http.ResponseWriter, r *http.Request) (int64, bool) {
	tokens, err := s.unsubscribeTokens(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return 0, false
	}
	id, ok := tokens.VerifyUnsubscribeToken(chi.URLParam(r, "token"))
	if !ok {
		s.notFound(w, r)
		return 0, false
	}
	return id, true
}

// unsubscribePage shows whom the link unsubscribes, and the button. It reads
// and never writes.
func (s *Server) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	id, ok := s.unsubscribeMessage(w, r)
	if !ok {
		return
	}
	t, err := s.store.UnsubscribeTarget(r.Context(), id)
	if err != nil {
		s.fail(w, r, err) // an unknown message is a 404
		return
	}
	s.render(w, r, http.StatusOK, views.Unsubscribe(s.unsubscribeView(chi.URLParam(r, "token"), t.Address, false, t.Suppressed)))
}

// unsubscribe suppresses the link's address and marks its lead unsubscribed,
// in one transaction, and confirms. It answers at once: a mail client's
// one-click POST waits for nothing but the database.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	// RFC 8058 lets the mail client encode its one field either way.
	r.Body = http.MaxBytesReader(w, r.Body, maxUnsubscribeForm)
	if err := parseAnyForm(r); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "Bad request", "The unsubscribe request could not be read.")
		return
	}
	id, ok := s.unsubscribeMessage(w, r)
	if !ok {
		return
	}
	source := "page"
	if r.PostForm.Get(oneClickField) == oneClickValue {
		source = "one-click"
	}
	// The client may hang up once it has sent the request; the unsubscribe
	// is carried out all the same.
	c, err := s.store.UnsubscribeMessage(context.WithoutCancel(r.Context()), id, source)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if c.Changed() {
		s.log.Info("unsubscribed", "message", id, "lead", c.LeadID, "source", source)
		s.publishDataChanged("lead "+strconv.FormatInt(c.LeadID, 10), "unsubscribed")
	}
	s.render(w, r, http.StatusOK, views.Unsubscribe(s.unsubscribeView(chi.URLParam(r, "token"), c.Address, true, false)))
}

// parseAnyForm parses a URL-encoded or a multipart body into r.PostForm.
func parseAnyForm(r *http.Request) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		return r.ParseMultipartForm(maxUnsubscribeForm)
	}
	return r.ParseForm()
}

func (s *Server) unsubscribeView(token, addr string, done, already bool) views.UnsubscribePage {
	return views.UnsubscribePage{Meta: s.meta("Unsubscribe"), Token: token, Address: addr, Sender: s.cfg.Email.SenderName, Done: done, Already: already}
}
