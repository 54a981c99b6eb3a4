package views

import (
	"strconv"

	"github.com/a-h/templ"
)

// APITokensPage is the admin page of the JSON API's tokens at
// /admin/api-tokens.
type APITokensPage struct {
	Meta
	Tokens []APIToken // newest first, revoked ones included
	Page   Page
	// Created is the token just made, shown once; nil otherwise.
	Created *APITokenCreated
	// Name and Error are the create form's last input and why it was
	// refused, "" on first view.
	Name  string
	Error string
}

// APITokenCreated is a token at the one moment its plain value exists.
type APITokenCreated struct {
	Name  string
	Token string
}

// APITokenRowResult is what an action on one token's row says in place.
type APITokenRowResult struct {
	Class   string // ok, warn or bad
	Message string
}

// apiTokenStatus is a token's badge: live or revoked.
func apiTokenStatus(t APIToken) string {
	if t.Revoked {
		return "revoked"
	}
	return "live"
}

// apiTokenRowID is the id of a token's table row, the target of its
// actions.
func apiTokenRowID(id int64) string { return "api-token-" + strconv.FormatInt(id, 10) }

// apiTokenRevokeURL is where a token's revoke button posts.
func apiTokenRevokeURL(id int64) templ.SafeURL {
	return templ.URL("/admin/api-tokens/" + strconv.FormatInt(id, 10) + "/revoke")
}

// apiTokensPageURL links to a page of the token list.
func apiTokensPageURL(cursor string) templ.SafeURL {
	return pageURL("/admin/api-tokens", nil, "page", cursor)
}

// apiTokenResultClass is the class list of an inline action result.
func apiTokenResultClass(class string) string {
	switch class {
	case "ok", "warn", "bad":
		return "result " + class
	}
	return "result"
}
