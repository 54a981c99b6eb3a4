package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/hossagent/hossagent/db"
)

// DefaultAdminEmail is the first admin's e-mail when ADMIN_EMAIL is empty.
const DefaultAdminEmail = "admin@hossagent.local"

// generatedPasswordBytes is the entropy of a generated admin password: 144
// bits, 24 characters.
const generatedPasswordBytes = 18

// BootstrapAdmin creates the first admin when there are no users yet, and
// does nothing once there is one. The account gets email (ADMIN_EMAIL, or
// DefaultAdminEmail when empty) and password (ADMIN_PASSWORD). When password
// is empty a strong one is drawn from random and written to out with the
// e-mail, this once: only its hash is kept, so later starts cannot show it.
func BootstrapAdmin(ctx context.Context, store *db.DB, email, password string, random io.Reader, out io.Writer) error {
	n, err := store.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if n > 0 {
		return nil
	}
	if email == "" {
		email = DefaultAdminEmail
	}
	generated := password == ""
	if generated {
		b := make([]byte, generatedPasswordBytes)
		if _, err := io.ReadFull(random, b); err != nil {
			return fmt.Errorf("bootstrap: unable to draw a password: %w", err)
		}
		password = base64.RawURLEncoding.EncodeToString(b)
	}
	u, err := store.CreateUser(ctx, db.NewUser{Email: email, Password: password, Role: db.RoleAdmin})
	if err != nil {
		return fmt.Errorf("bootstrap: unable to create the first admin: %w", err)
	}
	if !generated {
		return nil
	}
	_, err = fmt.Fprintf(out, "\nHossAgent created the first admin account. This password is shown ONCE; store it now.\n"+
		"  e-mail:   %s\n  password: %s\nSign in at /login.\n\n", u.Email, password)
	if err != nil {
		return fmt.Errorf("bootstrap: unable to print the admin password: %w", err)
	}
	return nil
}
