package app

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// Operator accounts in the control room: add one with a generated password,
// reset a password, change a role, remove an account; and every operator's
// own password change. Generated passwords are shown once, in place, never
// stored in plain text and never put in a redirect.

// maxUserForm bounds the account forms' bodies: an e-mail and a role, or
// three passwords.
const maxUserForm = 4 << 10

const (
	msgUserBadForm   = "The form could not be read. Try again."
	msgUserExists    = "An account with this e-mail exists already; reset its password instead."
	msgUserNotSaved  = "The change could not be saved; the error was logged. Try again."
	msgUserUnknown   = "There is no such account."
	msgUserSelf      = "You cannot remove yourself or change your own role; ask another admin."
	msgPasswordWrong = "The current password is wrong."
	msgPasswordTwice = "The two new passwords differ."
)

// users lists the accounts with the form that adds one.
func (s *Server) users(w http.ResponseWriter, r *http.Request) {
	p, err := s.usersData(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.Users(p))
}

func (s *Server) usersData(r *http.Request) (views.UsersPage, error) {
	p := views.UsersPage{Meta: s.metaFor(r, "Users"), Me: userFrom(r.Context()).ID}
	users, err := s.store.ListUsers(r.Context())
	for _, u := range users {
		p.Users = append(p.Users, userRowView(u))
	}
	return p, err
}

func userRowView(u db.UserSummary) views.UserRow {
	return views.UserRow{ID: u.ID, Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, Sessions: u.Sessions}
}

// addUser creates an account with a generated password and shows it once.
// The answer is the page itself, not a redirect, as for API tokens.
func (s *Server) addUser(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUserForm)
	if err := r.ParseForm(); err != nil {
		s.userRefused(w, r, http.StatusBadRequest, "", "", msgUserBadForm)
		return
	}
	email, role := strings.TrimSpace(r.PostForm.Get("email")), r.PostForm.Get("role")
	password, err := GeneratePassword(s.random)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.store.CreateUser(r.Context(), db.NewUser{Email: email, Password: password, Role: role, PasswordCost: s.passwordCost})
	switch {
	case db.IsUniqueViolation(err):
		s.userRefused(w, r, http.StatusConflict, email, role, msgUserExists)
		return
	case errors.Is(err, db.ErrInvalidUser):
		s.userRefused(w, r, http.StatusUnprocessableEntity, email, role, userProblem(err))
		return
	case err != nil:
		s.log.Error("account not added", "err", err)
		s.userRefused(w, r, http.StatusInternalServerError, email, role, msgUserNotSaved)
		return
	}
	s.audit(r, "user_add", userTarget(u.Email), "role "+u.Role)
	p, err := s.usersData(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Shown = &views.PasswordShown{Email: u.Email, Password: password}
	if isHXRequest(r) {
		s.render(w, r, http.StatusOK, views.UserAddedFragment(p))
		return
	}
	s.render(w, r, http.StatusOK, views.Users(p))
}

// userProblem is the part of a validation error the operator can act on,
// without the store's prefix.
func userProblem(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, db.ErrInvalidUser.Error()+": "); i >= 0 {
		msg = msg[i+len(db.ErrInvalidUser.Error())+2:]
	}
	return "Not added: " + msg + "."
}

// userRefused answers an add that did not happen: the message in place for
// htmx, else the page with the form filled in again.
func (s *Server) userRefused(w http.ResponseWriter, r *http.Request, status int, email, role, message string) {
	if isHXRequest(r) {
		s.render(w, r, status, views.UserError(message))
		return
	}
	p, err := s.usersData(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(email) > 254 {
		email = ""
	}
	p.Email, p.Role, p.Error = email, role, message
	s.render(w, r, status, views.Users(p))
}

// userAction runs an action on the account of the URL's id and answers
// with its row: htmx in place, else a redirect to the list (or the page
// with the password, which cannot survive a redirect).
func (s *Server) userAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxUserForm)
		me := userFrom(r.Context())
		id, ok := recordID(r)
		var u *db.User
		err := db.ErrNotFound
		if ok {
			u, err = s.store.UserByID(r.Context(), id)
		}
		if err == nil && action != "reset" && u.ID == me.ID {
			s.userRowRefused(w, r, http.StatusConflict, u, msgUserSelf)
			return
		}
		if err == nil {
			err = r.ParseForm()
			if err != nil {
				s.userRowRefused(w, r, http.StatusBadRequest, u, msgUserBadForm)
				return
			}
		}
		if err != nil {
			if codeOf(err) == codeNotFound && isHXRequest(r) {
				s.render(w, r, http.StatusNotFound, views.UserRowError(msgUserUnknown))
				return
			}
			s.fail(w, r, err)
			return
		}
		var res views.UserRowResult
		switch action {
		case "reset":
			var password string
			if password, err = GeneratePassword(s.random); err == nil {
				_, err = s.store.SetPassword(r.Context(), u.Email, password, s.passwordCost)
			}
			if err == nil {
				s.audit(r, "user_reset", userTarget(u.Email), "password reset, sessions ended")
				res = views.UserRowResult{Class: "ok", Shown: &views.PasswordShown{Email: u.Email, Password: password, Reset: true}}
				if u.ID == me.ID {
					// Their own sessions ended, this one too: sign in again.
					http.SetCookie(w, s.sessionCookie("", time.Time{}))
				}
			}
		case "role":
			if _, err = s.store.SetRole(r.Context(), u.Email, r.PostForm.Get("role")); err == nil {
				from := u.Role
				u.Role = r.PostForm.Get("role")
				s.audit(r, "user_role", userTarget(u.Email), from+" → "+u.Role)
				res = views.UserRowResult{Class: "ok", Message: "Now " + u.Role + "."}
			}
		case "remove":
			if _, err = s.store.RemoveUser(r.Context(), u.Email); err == nil {
				s.audit(r, "user_remove", userTarget(u.Email), "")
				if isHXRequest(r) {
					s.render(w, r, http.StatusOK, views.UserRemovedRow(u.Email))
					return
				}
				http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
				return
			}
		}
		switch {
		case errors.Is(err, db.ErrLastAdmin):
			s.userRowRefused(w, r, http.StatusConflict, u, "Refused: "+err.Error()+".")
			return
		case errors.Is(err, db.ErrInvalidUser):
			s.userRowRefused(w, r, http.StatusUnprocessableEntity, u, userProblem(err))
			return
		case codeOf(err) == codeNotFound && isHXRequest(r):
			s.render(w, r, http.StatusNotFound, views.UserRowError(msgUserUnknown))
			return
		case err != nil:
			s.fail(w, r, err)
			return
		}
		row, err := s.userRow(r, u.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if isHXRequest(r) {
			s.render(w, r, http.StatusOK, views.UserRowView(row, me.ID, res))
			return
		}
		if res.Shown != nil {
			p, err := s.usersData(r)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			p.Shown = res.Shown
			s.render(w, r, http.StatusOK, views.Users(p))
			return
		}
		http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
	}
}

// userRow reads one account's row as the list shows it.
func (s *Server) userRow(r *http.Request, id int64) (views.UserRow, error) {
	users, err := s.store.ListUsers(r.Context())
	if err != nil {
		return views.UserRow{}, err
	}
	for _, u := range users {
		if u.ID == id {
			return userRowView(u), nil
		}
	}
	return views.UserRow{}, db.ErrNotFound
}

// userRowRefused answers an action that did not happen on u's row.
func (s *Server) userRowRefused(w http.ResponseWriter, r *http.Request, status int, u *db.User, message string) {
	if !isHXRequest(r) {
		s.renderError(w, r, status, "Not changed", message)
		return
	}
	row, err := s.userRow(r, u.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, views.UserRowView(row, userFrom(r.Context()).ID, views.UserRowResult{Class: "bad", Message: message}))
}

func userTarget(email string) string { return "user " + email }

// passwordForm is the signed-in operator's own password change.
func (s *Server) passwordForm(w http.ResponseWriter, r *http.Request) {
	s.renderPassword(w, r, http.StatusOK, views.PasswordPage{})
}

// changePassword checks the current password (wrong guesses count against
// the sign-in limits, so a stolen session cannot try passwords at will),
// sets the new one, ends every session of the account and starts a fresh
// one for this browser.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUserForm)
	if err := r.ParseForm(); err != nil {
		s.renderPassword(w, r, http.StatusBadRequest, views.PasswordPage{Error: msgUserBadForm})
		return
	}
	u := userFrom(r.Context())
	current, next, confirm := r.PostForm.Get("current"), r.PostForm.Get("new"), r.PostForm.Get("confirm")
	if next != confirm {
		s.renderPassword(w, r, http.StatusUnprocessableEntity, views.PasswordPage{Error: msgPasswordTwice})
		return
	}
	if n := len(next); n < db.MinPasswordLen || n > db.MaxPasswordLen {
		s.renderPassword(w, r, http.StatusUnprocessableEntity, views.PasswordPage{
			Error: fmt.Sprintf("The new password must be %d to %d bytes long.", db.MinPasswordLen, db.MaxPasswordLen)})
		return
	}
	ip := s.clientIP(r)
	attempt, wait, _ := s.signIns.begin(clientKey(ip), u.Email)
	if attempt == nil {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		s.renderPassword(w, r, http.StatusTooManyRequests, views.PasswordPage{Error: msgTooManyLogins})
		return
	}
	if _, err := s.store.Authenticate(r.Context(), u.Email, current); err != nil {
		if codeOf(err) == codeUnauthorized {
			attempt.failed()
			// 422, not 401: the session is fine (live.js reads a 401 as an
			// ended session); the form's field is wrong.
			s.renderPassword(w, r, http.StatusUnprocessableEntity, views.PasswordPage{Error: msgPasswordWrong})
			return
		}
		attempt.succeeded()
		s.fail(w, r, err)
		return
	}
	attempt.succeeded()
	updated, err := s.store.SetPassword(r.Context(), u.Email, next, s.passwordCost)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.startSession(w, r, updated); err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, "password_change", userTarget(u.Email), "other sessions ended")
	s.renderPassword(w, r, http.StatusOK, views.PasswordPage{Done: true})
}

func (s *Server) renderPassword(w http.ResponseWriter, r *http.Request, status int, p views.PasswordPage) {
	p.Meta = s.metaFor(r, "Your password")
	p.Home = landing(userFrom(r.Context()), "")
	s.render(w, r, status, views.Password(p))
}

// requireSignIn lets any signed-in operator through, admin or viewer.
func (s *Server) requireSignIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if userFrom(r.Context()) == nil {
			s.signInRequired(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
