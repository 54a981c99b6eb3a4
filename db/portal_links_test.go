package db

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

func TestRotateAndRevokePortalToken(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	c, old := f.customers[3], f.tokens[3]

	token, err := d.RotatePortalToken(ctx, c.ID, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if token == "" || token == old {
		t.Fatalf("rotated token %q", token)
	}
	if _, err := d.CustomerByPortalToken(ctx, old); !errors.Is(err, ErrNotFound) {
		t.Errorf("old token after rotate: %v, want ErrNotFound", err)
	}
	got, err := d.CustomerByPortalToken(ctx, token)
	if err != nil || got.ID != c.ID || !got.TokenCreatedAt.Equal(fixedNow) || got.TokenRevokedAt != nil {
		t.Errorf("new token: %+v, %v", got, err)
	}

	if err := d.RevokePortalToken(ctx, c.ID, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CustomerByPortalToken(ctx, token); !errors.Is(err, ErrNotFound) {
		t.Errorf("token after revoke: %v, want ErrNotFound", err)
	}
	// A closed customer's revoked token comes back to life only through a
	// rotation, with a new token.
	closed := f.customers[24]
	if _, err := d.RotatePortalToken(ctx, closed.ID, rand.Reader); err != nil {
		t.Fatal(err)
	}
	results, err := d.CheckInvariants(ctx, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if r := results[3]; r.Number != 4 || !r.OK() {
		t.Errorf("invariant 4 after revoke: %+v", r)
	}

	if _, err := d.RotatePortalToken(ctx, 9999, rand.Reader); !errors.Is(err, ErrNotFound) {
		t.Errorf("rotate of a missing customer: %v", err)
	}
	if err := d.RevokePortalToken(ctx, 9999, rand.Reader); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke of a missing customer: %v", err)
	}
}

func TestPortalLinkActions(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	c := f.customers[0]
	for i, e := range []AuditEntry{
		{Action: AuditPortalRotated, Target: "customer " + itoa(c.ID)},
		{Action: AuditPortalRevoked, Target: "Customer " + itoa(c.ID)},
		{Action: AuditPortalRevoked, Target: "customer " + itoa(c.ID) + "0"},
		{Action: "something else", Target: "customer " + itoa(c.ID)},
	} {
		e.Actor, e.CreatedAt = "a@x.test", fixedNow.Add(time.Duration(i)*time.Minute)
		if err := d.RecordAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.PortalLinkActions(ctx, c.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Action != AuditPortalRevoked || got[1].Action != AuditPortalRotated {
		t.Errorf("actions = %+v", got)
	}
}
