package db

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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

func TestSessionsExpireAndSlide(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	u := mustCreateUser(t, d, "ops@example.com", "correct horse battery", RoleAdmin)
	_, hash, err := NewToken(strings.NewReader(strings.Repeat("k", 64)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateSession(ctx, u.ID, hash, fixedNow.Add(SessionLifetime)); err != nil {
		t.Fatal(err)
	}
	got, err := d.SessionUser(ctx, hash, fixedNow.Add(time.Minute))
	if err != nil || got.ID != u.ID {
		t.Fatalf("SessionUser = %+v, %v", got, err)
	}
	if _, err := d.SessionUser(ctx, HashToken("other"), fixedNow); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown session: %v", err)
	}

	// Requests every 11 hours keep the session alive past 12 hours...
	at := fixedNow
	for range 3 {
		at = at.Add(11 * time.Hour)
		if _, err := d.SessionUser(ctx, hash, at); err != nil {
			t.Fatalf("at +%s: %v", at.Sub(fixedNow), err)
		}
	}
	// ...but 12 idle hours end it.
	if _, err := d.SessionUser(ctx, hash, at.Add(SessionIdleTimeout)); !errors.Is(err, ErrNotFound) {
		t.Errorf("idle session: %v", err)
	}

	// The absolute expiry ends a busy session too.
	_, hash2, _ := NewToken(strings.NewReader(strings.Repeat("m", 64)))
	if err := d.CreateSession(ctx, u.ID, hash2, fixedNow.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SessionUser(ctx, hash2, fixedNow.Add(2*time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("session past its absolute expiry: %v", err)
	}

	n, err := d.DeleteExpiredSessions(ctx, fixedNow.Add(3*time.Hour))
	if err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v, want 1 (the absolute one)", n, err)
	}
	if err := d.DeleteSession(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SessionUser(ctx, hash, fixedNow.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted session: %v", err)
	}
	if err := d.DeleteSession(ctx, hash); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
}

func TestRecordAudit(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	err := d.RecordAudit(ctx, AuditEntry{Actor: "ops@example.com", Action: "login", RemoteAddr: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	entries, page, err := d.ListAudit(ctx, ListQuery{})
	if err != nil || page.Total != 1 {
		t.Fatalf("ListAudit = %v, %+v, %v", entries, page, err)
	}
	if e := entries[0]; e.Actor != "ops@example.com" || e.Action != "login" || e.RemoteAddr != "192.0.2.1" || !e.CreatedAt.Equal(fixedNow) {
		t.Errorf("entry = %+v", e)
	}
}
