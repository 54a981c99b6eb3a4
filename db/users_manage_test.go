package db

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A role change keeps at least one admin, and a demotion signs the demoted
// admin out; removing an account takes its sessions with it.
func TestSetRoleAndRemoveKeepAnAdmin(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	a := mustCreateUser(t, d, "a@example.com", "password of a!", RoleAdmin)
	mustCreateUser(t, d, "b@example.com", "password of b!", RoleViewer)
	exp := d.Now().Add(time.Hour)
	if err := d.CreateSession(ctx, a.ID, HashToken("session-of-a"), exp); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SetRole(ctx, "a@example.com", RoleViewer); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("demoting the only admin: %v, want ErrLastAdmin", err)
	}
	if _, err := d.RemoveUser(ctx, "A@example.com"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("removing the only admin: %v, want ErrLastAdmin", err)
	}
	if _, err := d.SetRole(ctx, "b@example.com", "owner"); !errors.Is(err, ErrInvalidUser) {
		t.Fatalf("unknown role: %v", err)
	}
	if u, err := d.SetRole(ctx, "b@example.com", RoleAdmin); err != nil || u.Role != RoleAdmin {
		t.Fatalf("promote b: %+v, %v", u, err)
	}
	if _, err := d.SetRole(ctx, "a@example.com", RoleViewer); err != nil {
		t.Fatalf("demote a beside admin b: %v", err)
	}
	if _, err := d.SessionUser(ctx, HashToken("session-of-a"), d.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("a's session after the demotion: %v, want ErrNotFound", err)
	}
	users, err := d.ListUsers(ctx)
	if err != nil || len(users) != 2 || users[0].Role != RoleViewer || users[1].Role != RoleAdmin {
		t.Fatalf("ListUsers = %+v, %v", users, err)
	}
	if _, err := d.RemoveUser(ctx, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RemoveUser(ctx, "a@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second removal: %v, want ErrNotFound", err)
	}
	if _, err := d.SetPassword(ctx, "b@example.com", "short", 0); !errors.Is(err, ErrInvalidUser) {
		t.Errorf("short password: %v", err)
	}
}
