package db

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"
)

// Session lifetimes. A session ends after SessionIdleTimeout without a
// request, and at the latest SessionLifetime after sign-in, however busy.
const (
	SessionIdleTimeout = 12 * time.Hour
	SessionLifetime    = 7 * 24 * time.Hour
)

// sessionTouchInterval is how stale last_seen_at may get before a request
// writes it again: sliding the idle expiry on every request would make every
// page view a database write.
const sessionTouchInterval = time.Minute

// CreateSession stores a session for a signed-in operator. Only the hash of
// the session token is stored; expires is the absolute end of the session.
func (d *DB) CreateSession(ctx context.Context, userID int64, tokenHash string, expires time.Time) error {
	now := d.Now()
	s := &Session{TokenHash: tokenHash, UserID: userID, CreatedAt: now, ExpiresAt: expires.UTC(), LastSeenAt: now}
	if _, err := d.bun.NewInsert().Model(s).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to create session for user %d: %w", userID, err)
	}
	return nil
}

// SessionUser returns the operator signed in with the session whose token
// hashes to tokenHash, and slides the session's idle expiry. A session past
// its absolute expiry, or idle for SessionIdleTimeout, is ErrNotFound.
func (d *DB) SessionUser(ctx context.Context, tokenHash string, now time.Time) (*User, error) {
	now = now.UTC()
	// One query for the session and its user: every signed-in request
	// runs it.
	var row struct {
		User       `bun:",extend"`
		LastSeenAt time.Time `bun:"last_seen_at"`
	}
	err := d.bun.NewSelect().Model(&row).ColumnExpr("u.*").ColumnExpr("s.last_seen_at").
		Join("JOIN sessions AS s ON s.user_id = u.id").
		Where("s.token_hash = ?", tokenHash).
		Where("s.expires_at > ?", now).
		Where("s.last_seen_at > ?", now.Add(-SessionIdleTimeout)).
		Scan(ctx)
	if err != nil {
		if err = notFound(err); err == ErrNotFound {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to find session: %w", err)
	}
	if now.Sub(row.LastSeenAt) >= sessionTouchInterval {
		_, err := d.bun.NewUpdate().Model((*Session)(nil)).
			Set("last_seen_at = ?", now).
			Where("token_hash = ?", tokenHash).
			Exec(ctx)
		if err != nil {
			return nil, fmt.Errorf("store: unable to refresh session: %w", err)
		}
	}
	u := row.User
	return &u, nil
}

// DeleteSession ends a session. Ending an unknown session is not an error.
func (d *DB) DeleteSession(ctx context.Context, tokenHash string) error {
	if _, err := d.bun.NewDelete().Model((*Session)(nil)).Where("token_hash = ?", tokenHash).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions that can no longer be used at
// now and reports how many there were.
func (d *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	now = now.UTC()
	res, err := d.bun.NewDelete().Model((*Session)(nil)).
		Where("expires_at <= ? OR last_seen_at <= ?", now, now.Add(-SessionIdleTimeout)).
		Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: unable to delete expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: unable to count deleted sessions: %w", err)
	}
	return n, nil
}

// LiveSessions returns, for each of the session token hashes that is still
// signed in at now (not expired, not idle past SessionIdleTimeout), the role
// of its user. Live streams check all their readers with it in one query
// per batch of hashes, instead of one lookup per stream and update.
func (d *DB) LiveSessions(ctx context.Context, tokenHashes []string, now time.Time) (map[string]string, error) {
	now = now.UTC()
	out := make(map[string]string, len(tokenHashes))
	for chunk := range slices.Chunk(tokenHashes, maxBatch) {
		var rows []struct {
			TokenHash string `bun:"token_hash"`
			Role      string `bun:"role"`
		}
		err := d.bun.NewRaw(`SELECT s.token_hash, u.role FROM sessions AS s JOIN users AS u ON u.id = s.user_id
			WHERE s.token_hash IN (?) AND s.expires_at > ? AND s.last_seen_at > ?`,
			bun.List(chunk), now, now.Add(-SessionIdleTimeout)).Scan(ctx, &rows)
		if err != nil {
			return nil, fmt.Errorf("store: unable to check sessions: %w", err)
		}
		for _, r := range rows {
			out[r.TokenHash] = r.Role
		}
	}
	return out, nil
}

// TouchSessions marks sessions as seen at now, as a page view would: a
// reader watching a live page is not idle. Only sessions not seen for
// sessionTouchInterval are written.
func (d *DB) TouchSessions(ctx context.Context, tokenHashes []string, now time.Time) error {
	now = now.UTC()
	for chunk := range slices.Chunk(tokenHashes, maxBatch) {
		_, err := d.bun.NewUpdate().Model((*Session)(nil)).Set("last_seen_at = ?", now).
			Where("token_hash IN (?)", bun.List(chunk)).
			Where("last_seen_at < ?", now.Add(-sessionTouchInterval)).
			Where("expires_at > ?", now).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to refresh sessions: %w", err)
		}
	}
	return nil
}
