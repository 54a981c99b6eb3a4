package app

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// maxAPITokenForm bounds the create form's body: one short name.
const maxAPITokenForm = 4 << 10

// apiTokensPerPage is how many tokens the list shows per page.
const apiTokensPerPage = 25

// Messages of the token page.
const (
	msgAPITokenName     = "Give the token a name of 1 to 100 characters (letters, digits, spaces, punctuation)."
	msgAPITokenBadForm  = "The form could not be read. Try again."
	msgAPITokenNotSaved = "The token could not be created; the error was logged. Try again."
	msgAPITokenUnknown  = "There is no such token."

	msgAPITokenNotRevoked = "The token could not be revoked; the error was logged. Try again."
)

// apiTokens lists the tokens with the form that creates one.
func (s *Server) apiTokens(w http.ResponseWriter, r *http.Request) {
	p, err := s.apiTokensData(r, cursorParam(r, "page"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.APITokens(p))
}

func (s *Server) apiTokensData(r *http.Request, page db.Cursor) (views.APITokensPage, error) {
	p := views.APITokensPage{Meta: s.metaFor(r, "API tokens")}
	tokens, pg, err := s.store.ListAPITokens(r.Context(), db.ListQuery{Cursor: page, PerPage: apiTokensPerPage})
	p.Tokens, p.Page = viewsOf(tokens, apiTokenView), pageView(pg)
	return p, err
}

// createAPIToken makes a token and shows it once. Even without htmx the
// answer is the page itself, not a redirect: a token that must never be
// stored cannot survive a redirect to be shown after it.
func (s *Server) createAPIToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAPITokenForm)
	if err := r.ParseForm(); err != nil {
		s.apiTokenRefused(w, r, http.StatusBadRequest, "", msgAPITokenBadForm)
		return
	}
	raw := r.PostForm.Get("name")
	name, err := db.NormalAPITokenName(raw)
	if err != nil {
		s.apiTokenRefused(w, r, http.StatusUnprocessableEntity, raw, msgAPITokenName)
		return
	}
	t, token, err := s.store.CreateAPIToken(r.Context(), name, userFrom(r.Context()).Email, s.random)
	if err != nil {
		s.log.Error("API token not created", "err", err)
		s.apiTokenRefused(w, r, http.StatusInternalServerError, raw, msgAPITokenNotSaved)
		return
	}
	s.audit(r, "api_token_create", apiTokenTarget(t.ID), t.Name)
	p, err := s.apiTokensData(r, db.Cursor{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Created = &views.APITokenCreated{Name: t.Name, Token: token}
	if isHXRequest(r) {
		s.render(w, r, http.StatusOK, views.APITokenCreatedFragment(p))
		return
	}
	s.render(w, r, http.StatusOK, views.APITokens(p))
}

// apiTokenRefused answers a create that did not happen: the message in
// place for htmx, else the page with the form filled in again.
func (s *Server) apiTokenRefused(w http.ResponseWriter, r *http.Request, status int, name, message string) {
	if isHXRequest(r) {
		s.render(w, r, status, views.APITokenError(message))
		return
	}
	p, err := s.apiTokensData(r, db.Cursor{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(name) > 2*db.MaxAPITokenNameLen {
		name = "" // not worth echoing back
	}
	p.Name, p.Error = name, message
	s.render(w, r, status, views.APITokens(p))
}

// revokeAPIToken revokes a token at once; revoking it again changes
// nothing. htmx gets the token's row back with the result in it.
func (s *Server) revokeAPIToken(w http.ResponseWriter, r *http.Request) {
	htmx := isHXRequest(r)
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id < 1 {
		err = db.ErrNotFound
	}
	var t *db.APIToken
	var revoked bool
	if err == nil {
		t, revoked, err = s.store.RevokeAPIToken(r.Context(), id, s.now())
	}
	switch {
	case codeOf(err) == codeNotFound && htmx:
		s.render(w, r, errorStatus(err), views.APITokenRowError(msgAPITokenUnknown))
		return
	case err != nil && htmx && !errors.Is(err, r.Context().Err()):
		s.log.Error("API token not revoked", "id", id, "err", err)
		s.render(w, r, http.StatusInternalServerError, views.APITokenRowError(msgAPITokenNotRevoked))
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	res := views.APITokenRowResult{Class: "warn", Message: "Already revoked."}
	if revoked {
		s.audit(r, "api_token_revoke", apiTokenTarget(t.ID), t.Name)
		res = views.APITokenRowResult{Class: "ok", Message: "Revoked."}
	}
	if htmx {
		s.render(w, r, http.StatusOK, views.APITokenRow(apiTokenView(*t), res))
		return
	}
	http.Redirect(w, r, "/admin/api-tokens", http.StatusSeeOther)
}

func apiTokenTarget(id int64) string { return "api token " + strconv.FormatInt(id, 10) }
