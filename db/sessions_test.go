package db

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

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
