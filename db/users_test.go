package db

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// mustCreateUser stores an operator with the cheapest bcrypt cost.
func mustCreateUser(t *testing.T, d *DB, email, password, role string) *User {
	t.Helper()
	u, err := d.CreateUser(context.Background(), NewUser{Email: email, Password: password, Role: role, PasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCreateUserNormalisesAndValidates(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	u := mustCreateUser(t, d, "  Ops@Example.COM ", "correct horse battery", RoleAdmin)
	if u.Email != "ops@example.com" || u.Role != RoleAdmin || u.ID == 0 {
		t.Fatalf("created %+v", u)
	}
	if strings.Contains(u.PasswordHash, "correct horse") {
		t.Fatal("password stored in clear")
	}
	got, err := d.UserByEmail(ctx, "OPS@example.com")
	if err != nil || got.ID != u.ID {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	if got, err := d.UserByID(ctx, u.ID); err != nil || got.Email != u.Email {
		t.Fatalf("UserByID = %+v, %v", got, err)
	}
	if _, err := d.UserByID(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if n, err := d.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers = %d, %v", n, err)
	}

	bad := []NewUser{
		{Email: "not-an-address", Password: "long enough password", Role: RoleAdmin},
		{Email: "a b@example.com", Password: "long enough password", Role: RoleAdmin},
		{Email: "x@example.com", Password: "short", Role: RoleAdmin},
		{Email: "x@example.com", Password: strings.Repeat("p", 73), Role: RoleAdmin},
		{Email: "x@example.com", Password: "long enough password", Role: "owner"},
	}
	for _, in := range bad {
		in.PasswordCost = bcrypt.MinCost
		if _, err := d.CreateUser(ctx, in); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("CreateUser(%q, role %q) = %v, want ErrInvalidUser", in.Email, in.Role, err)
		}
	}
	_, err = d.CreateUser(ctx, NewUser{Email: "OPS@example.com", Password: "another password!", Role: RoleViewer, PasswordCost: bcrypt.MinCost})
	if !IsUniqueViolation(err) {
		t.Errorf("duplicate e-mail: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	u := mustCreateUser(t, d, "ops@example.com", "correct horse battery", RoleViewer)
	if got, err := d.Authenticate(ctx, "Ops@Example.com", "correct horse battery"); err != nil || got.ID != u.ID {
		t.Fatalf("right password: %+v, %v", got, err)
	}
	for _, c := range []struct{ email, password string }{
		{"ops@example.com", "wrong horse battery"},
		{"ops@example.com", ""},
		{"nobody@example.com", "correct horse battery"},
		{"ops@example.com", "correct horse battery" + strings.Repeat("x", 80)},
	} {
		if _, err := d.Authenticate(ctx, c.email, c.password); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%q) = %v, want ErrBadCredentials", c.email, err)
		}
	}
}
