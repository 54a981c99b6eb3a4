package views

import (
	"strconv"
	"time"

	"github.com/a-h/templ"
)

// UsersPage is the admin page of operator accounts at /admin/users.
type UsersPage struct {
	Meta
	Users []UserRow // oldest first
	// Me is the signed-in admin's id: their own row offers no remove or
	// role change (another admin does that), so nobody locks themselves out.
	Me int64
	// Shown is a password at the one moment it exists in plain text (a new
	// account or a reset); nil otherwise.
	Shown *PasswordShown
	// Email, Role and Error are the add form's last input and why it was
	// refused, "" on first view.
	Email, Role, Error string
}

// UserRow is an account as the list shows it: never its hash.
type UserRow struct {
	ID        int64
	Email     string
	Role      string
	CreatedAt time.Time
	Sessions  int
}

// PasswordShown is a generated password, shown once.
type PasswordShown struct {
	Email    string
	Password string
	Reset    bool // a reset of an existing account, not a new one
}

// UserRowResult is what an action on one account's row says in place.
type UserRowResult struct {
	Class   string // ok, warn or bad
	Message string
	Shown   *PasswordShown
}

// PasswordPage is the signed-in operator's own password change at
// /account/password.
type PasswordPage struct {
	Meta
	Home  string // where the operator's pages are: /admin or /
	Error string
	Done  bool
}

func userRowID(id int64) string { return "user-" + strconv.FormatInt(id, 10) }

func userActionURL(id int64, action string) templ.SafeURL {
	return templ.SafeURL("/admin/users/" + strconv.FormatInt(id, 10) + "/" + action)
}

func otherRole(role string) string {
	if role == "admin" {
		return "viewer"
	}
	return "admin"
}

func sessionsText(n int) string {
	switch n {
	case 0:
		return "none"
	case 1:
		return "1 signed in"
	}
	return strconv.Itoa(n) + " signed in"
}
