package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"

	"github.com/hossagent/hossagent/db"
)

// DefaultAdminEmail is the first admin's e-mail when ADMIN_EMAIL is empty.
const DefaultAdminEmail = "admin@hossagent.local"

// generatedPasswordBytes is the entropy of a generated password: 144 bits,
// 24 characters.
const generatedPasswordBytes = 18

// GeneratePassword draws a strong password from random: the first admin's,
// an account's added or reset in the control room or by `hossagent user`.
func GeneratePassword(random io.Reader) (string, error) {
	b := make([]byte, generatedPasswordBytes)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("unable to draw a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

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
		var err error
		if password, err = GeneratePassword(random); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	u, err := store.CreateUser(ctx, db.NewUser{Email: email, Password: password, Role: db.RoleAdmin})
	if db.IsUniqueViolation(err) {
		// On PostgreSQL, another instance started at the same moment
		// created this first admin between the count and here: it is done
		// (and that instance printed the password, if one was drawn).
		return nil
	}
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

// AdminBootstrap is BootstrapAdmin running in the background, so that the
// server listens (and is ready) while the first admin's password is still
// being hashed. A sign-in that arrives before it is done waits for it.
type AdminBootstrap struct {
	done chan struct{}
	err  error // written once, before done is closed
}

// StartBootstrapAdmin starts BootstrapAdmin (same arguments) in its own
// goroutine and returns at once. Done and Err tell how it ended.
func StartBootstrapAdmin(ctx context.Context, store *db.DB, email, password string, random io.Reader, out io.Writer) *AdminBootstrap {
	b := &AdminBootstrap{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = BootstrapAdmin(ctx, store, email, password, random, out)
	}()
	return b
}

// Done is closed once the bootstrap has finished, well or not.
func (b *AdminBootstrap) Done() <-chan struct{} { return b.done }

// Err is the bootstrap's outcome; it is only meaningful once Done is closed.
func (b *AdminBootstrap) Err() error {
	select {
	case <-b.done:
		return b.err
	default:
		return nil
	}
}

// Wait blocks until the bootstrap has finished, returning its error, or
// until ctx ends, returning ctx's error. A nil AdminBootstrap has finished.
func (b *AdminBootstrap) Wait(ctx context.Context) error {
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HoldSignIns wraps next so that a sign-in (POST /login) waits, for as long
// as its request lasts, until the first admin exists: without the wait it
// would be refused as a wrong password. Every other request, and every
// sign-in once the bootstrap is done, goes straight through. A bootstrap
// that failed answers 503: the process is stopping.
func (b *AdminBootstrap) HoldSignIns(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/login" {
			next.ServeHTTP(w, r)
			return
		}
		if err := b.Wait(r.Context()); err != nil {
			if r.Context().Err() != nil {
				return // the client is gone
			}
			w.Header().Set("Retry-After", "5")
			http.Error(w, "The first admin account could not be created; the server is stopping.", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}
