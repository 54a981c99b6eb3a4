package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// APITokenPrefix starts every API token, so that a token pasted into the
// wrong place (a chat, a commit) is recognisable as a HossAgent secret.
const APITokenPrefix = "hoss_"

// MaxAPITokenNameLen bounds an API token's name, in characters.
const MaxAPITokenNameLen = 100

// maxAPITokenLen bounds the bearer value looked up: a real token is 48
// characters, anything much longer is not worth hashing.
const maxAPITokenLen = 128

// apiTokenTouchInterval is how stale last_used_at may get before a request
// writes it again: recording every call would turn each API read into a
// database write.
const apiTokenTouchInterval = time.Minute

// ErrInvalidAPIToken is returned when a new token's name is refused; the
// wrapping message says why.
var ErrInvalidAPIToken = errors.New("invalid API token")

// APIToken is a credential for the operators' JSON API. The plain token is
// never stored, only its hash.
type APIToken struct {
	bun.BaseModel `bun:"table:api_tokens,alias:k"`

	ID         int64      `bun:"id,pk,autoincrement"`
	Name       string     `bun:"name,notnull"`
	TokenHash  string     `bun:"token_hash,notnull"`
	CreatedBy  string     `bun:"created_by,notnull"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	LastUsedAt *time.Time `bun:"last_used_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

// Revoked reports whether the token no longer opens the API.
func (t *APIToken) Revoked() bool { return t.RevokedAt != nil }

// NormalAPITokenName trims a token's name and checks it: 1 to
// MaxAPITokenNameLen characters, no control characters.
func NormalAPITokenName(raw string) (string, error) {
	name := strings.TrimSpace(raw)
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return "", fmt.Errorf("store: %w: the name is empty", ErrInvalidAPIToken)
	case n > MaxAPITokenNameLen:
		return "", fmt.Errorf("store: %w: the name is longer than %d characters", ErrInvalidAPIToken, MaxAPITokenNameLen)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return "", fmt.Errorf("store: %w: the name holds characters that cannot be shown", ErrInvalidAPIToken)
	}
	return name, nil
}

// CreateAPIToken stores a new API token named name, created by the admin
// createdBy, drawn from random. It returns the plain token, which exists
// only in this return value.
func (d *DB) CreateAPIToken(ctx context.Context, name, createdBy string, random io.Reader) (*APIToken, string, error) {
	name, err := NormalAPITokenName(name)
	if err != nil {
		return nil, "", err
	}
	raw, _, err := NewToken(random)
	if err != nil {
		return nil, "", err
	}
	token := APITokenPrefix + raw
	t := &APIToken{Name: name, TokenHash: HashToken(token), CreatedBy: createdBy, CreatedAt: d.Now()}
	if _, err := d.bun.NewInsert().Model(t).Exec(ctx); err != nil {
		return nil, "", fmt.Errorf("store: unable to create API token %q: %w", name, err)
	}
	return t, token, nil
}

// UseAPIToken finds the live (not revoked) API token whose plain value is
// token and records that it was used at now. An unknown, malformed or
// revoked token is ErrNotFound.
func (d *DB) UseAPIToken(ctx context.Context, token string, now time.Time) (*APIToken, error) {
	if !strings.HasPrefix(token, APITokenPrefix) || len(token) > maxAPITokenLen {
		return nil, ErrNotFound
	}
	now = now.UTC()
	t := new(APIToken)
	err := d.bun.NewSelect().Model(t).
		Where("k.token_hash = ?", HashToken(token)).
		Where("k.revoked_at IS NULL").
		Scan(ctx)
	if err != nil {
		if err = notFound(err); err == ErrNotFound {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to find API token: %w", err)
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= apiTokenTouchInterval {
		_, err := d.bun.NewUpdate().Model((*APIToken)(nil)).
			Set("last_used_at = ?", now).
			Where("id = ?", t.ID).
			Exec(ctx)
		if err != nil {
			return nil, fmt.Errorf("store: unable to record use of API token %d: %w", t.ID, err)
		}
		t.LastUsedAt = &now
	}
	return t, nil
}

// ListAPITokens returns a page of API tokens, newest first, revoked ones
// included. Search matches the name and the creator.
func (d *DB) ListAPITokens(ctx context.Context, q ListQuery) ([]APIToken, Page, error) {
	q = q.normal()
	var tokens []APIToken
	filter := func(sq *bun.SelectQuery) *bun.SelectQuery {
		return searchWhere(sq, q.Search, "k.name", "k.created_by")
	}
	l := list[APIToken]{table: "api_tokens", alias: "k", sortCol: "created_at",
		query:  func() *bun.SelectQuery { return d.bun.NewSelect().Model(&tokens) },
		filter: filter,
		// An install holds a handful of tokens: counting them is cheap.
		count: d.indexedCount("api_tokens", "k", filter),
		id:    func(t *APIToken) int64 { return t.ID },
	}
	pg, err := l.fetch(ctx, d, q, &tokens)
	return tokens, pg, err
}

// RevokeAPIToken revokes token id at now and returns it; revoked reports
// whether this call revoked it (false when it already was). An unknown id
// is ErrNotFound.
func (d *DB) RevokeAPIToken(ctx context.Context, id int64, now time.Time) (t *APIToken, revoked bool, err error) {
	now = now.UTC()
	t = new(APIToken)
	err = d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		revoked = false // RunInTx may run this again (PostgreSQL)
		if err := tx.NewSelect().Model(t).Where("k.id = ?", id).Scan(ctx); err != nil {
			return notFound(err)
		}
		if t.RevokedAt != nil {
			return nil
		}
		if _, err := tx.NewUpdate().Model((*APIToken)(nil)).Set("revoked_at = ?", now).Where("id = ?", id).Exec(ctx); err != nil {
			return err
		}
		t.RevokedAt, revoked = &now, true
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, false, ErrNotFound
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: unable to revoke API token %d: %w", id, err)
	}
	return t, revoked, nil
}
