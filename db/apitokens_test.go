package db

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestAPITokenStoredOnlyAsHash(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	tok, plain, err := d.CreateAPIToken(ctx, "  Reporting script  ", "ops@example.com", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, APITokenPrefix) || len(plain) < len(APITokenPrefix)+43 {
		t.Errorf("token %q: want the prefix and 256 random bits", plain)
	}
	if tok.Name != "Reporting script" || tok.CreatedBy != "ops@example.com" || !tok.CreatedAt.Equal(fixedNow) {
		t.Errorf("token row %+v", tok)
	}
	var stored []string
	if err := d.Bun().NewRaw("SELECT token_hash FROM api_tokens").Scan(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0] != HashToken(plain) || strings.Contains(stored[0], plain) {
		t.Errorf("stored %v, want only the hash of the token", stored)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM api_tokens WHERE token_hash LIKE ?", "%"+plain[len(APITokenPrefix):]+"%"); n != 0 {
		t.Errorf("the plain token is in the database")
	}
	// An exhausted random source is an error, not a weak token.
	if _, _, err := d.CreateAPIToken(ctx, "broken", "ops@example.com", iotest.ErrReader(errors.New("no randomness"))); err == nil {
		t.Error("token created without randomness")
	}
}

func TestAPITokenNameValidated(t *testing.T) {
	d := mustOpen(t)
	for _, name := range []string{"", "   ", strings.Repeat("x", MaxAPITokenNameLen+1), "tab\tname", "bell\x07"} {
		if _, _, err := d.CreateAPIToken(context.Background(), name, "ops@example.com", rand.Reader); !errors.Is(err, ErrInvalidAPIToken) {
			t.Errorf("name %q: err %v, want ErrInvalidAPIToken", name, err)
		}
	}
	// 100 characters, not bytes.
	if _, _, err := d.CreateAPIToken(context.Background(), strings.Repeat("é", MaxAPITokenNameLen), "ops@example.com", rand.Reader); err != nil {
		t.Errorf("100 accented characters refused: %v", err)
	}
}

func TestUseAPITokenTouchesAtMostOnceAMinute(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	tok, plain, err := d.CreateAPIToken(ctx, "ci", "ops@example.com", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		var got []APIToken
		if err := d.Bun().NewSelect().Model(&got).Where("k.id = ?", tok.ID).Scan(ctx); err != nil || len(got) != 1 || got[0].LastUsedAt == nil {
			t.Fatalf("read token: %v %+v", err, got)
		}
		return *got[0].LastUsedAt
	}
	first := fixedNow.Add(time.Hour)
	if got, err := d.UseAPIToken(ctx, plain, first); err != nil || got.ID != tok.ID {
		t.Fatalf("UseAPIToken = %+v, %v", got, err)
	}
	if !lastUsed().Equal(first) {
		t.Errorf("last used %v, want %v", lastUsed(), first)
	}
	if _, err := d.UseAPIToken(ctx, plain, first.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !lastUsed().Equal(first) {
		t.Errorf("last used moved within the minute: %v", lastUsed())
	}
	later := first.Add(2 * time.Minute)
	if _, err := d.UseAPIToken(ctx, plain, later); err != nil {
		t.Fatal(err)
	}
	if !lastUsed().Equal(later) {
		t.Errorf("last used %v, want %v", lastUsed(), later)
	}
	for _, bad := range []string{"", plain + "x", strings.TrimPrefix(plain, APITokenPrefix), APITokenPrefix + strings.Repeat("a", 500)} {
		if _, err := d.UseAPIToken(ctx, bad, later); !errors.Is(err, ErrNotFound) {
			t.Errorf("token %q: err %v, want ErrNotFound", bad, err)
		}
	}
}

func TestRevokeAPIToken(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	tok, plain, err := d.CreateAPIToken(ctx, "old laptop", "ops@example.com", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	at := fixedNow.Add(time.Hour)
	got, revoked, err := d.RevokeAPIToken(ctx, tok.ID, at)
	if err != nil || !revoked || got.RevokedAt == nil || !got.RevokedAt.Equal(at) || got.Name != "old laptop" {
		t.Fatalf("RevokeAPIToken = %+v, %v, %v", got, revoked, err)
	}
	if _, err := d.UseAPIToken(ctx, plain, at); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoked token still opens: %v", err)
	}
	again, revoked, err := d.RevokeAPIToken(ctx, tok.ID, at.Add(time.Hour))
	if err != nil || revoked || !again.RevokedAt.Equal(at) {
		t.Errorf("second revoke = %+v, %v, %v; want the first revocation kept", again, revoked, err)
	}
	if _, _, err := d.RevokeAPIToken(ctx, tok.ID+100, at); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestListAPITokensPaged(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	for i := range 7 {
		name := "script " + string(rune('a'+i))
		if _, _, err := d.CreateAPIToken(ctx, name, "ops@example.com", rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	tokens, pg, err := d.ListAPITokens(ctx, ListQuery{PerPage: 5})
	if err != nil || len(tokens) != 5 || pg.Total != 7 || pg.Pages() != 2 {
		t.Fatalf("page 1: %d tokens, %+v, %v", len(tokens), pg, err)
	}
	if tokens[0].Name != "script g" {
		t.Errorf("first = %q, want the newest", tokens[0].Name)
	}
	tokens, _, err = d.ListAPITokens(ctx, ListQuery{PerPage: 5, Page: 2})
	if err != nil || len(tokens) != 2 {
		t.Errorf("page 2: %d tokens, %v", len(tokens), err)
	}
	tokens, pg, err = d.ListAPITokens(ctx, ListQuery{Search: "SCRIPT C"})
	if err != nil || len(tokens) != 1 || pg.Total != 1 {
		t.Errorf("search: %d tokens, %v", len(tokens), err)
	}
}
