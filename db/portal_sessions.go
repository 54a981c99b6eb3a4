package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/uptrace/bun"
)

// Portal sessions (migration 0011's portal_sessions): the browser of a
// client who opened a portal link. Opening a link (an e-mailed one in
// portal_links, or the operator's customers.portal_token_hash) exchanges it
// for a fresh random session token; the browser keeps the token in a
// cookie and the store keeps only its hash, so the link's secret leaves the
// address bar (ASVS 5.0 §14.2.1).
//
// How long a session lasts: an e-mailed link opens the portal for a bounded
// time (PORTAL_LINK_TTL), so its session ends when the link would have
// expired, never later, and never more than PortalSessionMaxLife from its
// opening. The operator's link never expires, so its session lasts
// PortalSessionMaxLife. Revoking or rotating the operator's link in the
// admin revokes every e-mailed link of the customer and ends all of its
// sessions (portal_links.go).

// PortalSessionMaxLife bounds one portal session.
const PortalSessionMaxLife = 30 * 24 * time.Hour

// maxPortalToken bounds a token read from a URL or a cookie: a real one is
// 43 characters.
const maxPortalToken = 128

// Why a portal link opened nothing.
var (
	ErrLinkExpired = errors.New("store: the portal link has expired")
	ErrLinkRevoked = errors.New("store: the portal link was withdrawn")
)

// PortalSession is a session opened from a link: its plain token (for the
// cookie, never stored), when it ends and whose it is.
type PortalSession struct {
	Token     string
	ExpiresAt time.Time
	Customer  Customer
}

// OpenPortalLink exchanges the e-mailed link token for a new portal
// session drawn from random. An unknown token is ErrNotFound, an expired
// one ErrLinkExpired, a revoked one ErrLinkRevoked (revocation wins over
// expiry: it says more about what happened).
func (d *DB) OpenPortalLink(ctx context.Context, token string, random io.Reader) (*PortalSession, error) {
	if token == "" || len(token) > maxPortalToken {
		return nil, ErrNotFound
	}
	var ps *PortalSession
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var link struct {
			CustomerID int64      `bun:"customer_id"`
			ExpiresAt  time.Time  `bun:"expires_at"`
			RevokedAt  *time.Time `bun:"revoked_at"`
		}
		err := tx.NewRaw("SELECT customer_id, expires_at, revoked_at FROM portal_links WHERE token_hash = ?", HashToken(token)).Scan(ctx, &link)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		now := d.Now()
		switch {
		case link.RevokedAt != nil:
			return ErrLinkRevoked
		case !link.ExpiresAt.After(now):
			return ErrLinkExpired
		}
		expires := link.ExpiresAt.UTC()
		if limit := now.Add(PortalSessionMaxLife); expires.After(limit) {
			expires = limit
		}
		ps, err = startPortalSession(ctx, tx, link.CustomerID, expires, now, random)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLinkExpired) || errors.Is(err, ErrLinkRevoked) {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to open a portal link: %w", err)
	}
	return ps, nil
}

// OpenPortalToken exchanges the operator's portal token (the customer's
// portal_token_hash) for a new portal session of PortalSessionMaxLife. An
// unknown or revoked token is ErrNotFound.
func (d *DB) OpenPortalToken(ctx context.Context, token string, random io.Reader) (*PortalSession, error) {
	if token == "" || len(token) > maxPortalToken {
		return nil, ErrNotFound
	}
	var ps *PortalSession
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var c Customer
		err := tx.NewSelect().Model(&c).Column("id").
			Where("c.portal_token_hash = ?", HashToken(token)).Where("c.token_revoked_at IS NULL").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		now := d.Now()
		ps, err = startPortalSession(ctx, tx, c.ID, now.Add(PortalSessionMaxLife), now, random)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to open a portal link: %w", err)
	}
	return ps, nil
}

// startPortalSession stores a new session of customer id until expires and
// reads the customer. Sessions already past their end are deleted on the
// way (a range of portal_sessions_expires), so the table holds live ones.
func startPortalSession(ctx context.Context, tx bun.Tx, customerID int64, expires, now time.Time, random io.Reader) (*PortalSession, error) {
	token, hash, err := NewToken(random)
	if err != nil {
		return nil, err
	}
	ps := &PortalSession{Token: token, ExpiresAt: expires}
	if err := tx.NewSelect().Model(&ps.Customer).Where("c.id = ?", customerID).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	if _, err := tx.NewRaw("DELETE FROM portal_sessions WHERE expires_at <= ?", now).Exec(ctx); err != nil {
		return nil, err
	}
	if _, err := tx.NewRaw("INSERT INTO portal_sessions (token_hash, customer_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		hash, customerID, now, expires).Exec(ctx); err != nil {
		return nil, err
	}
	return ps, nil
}

// CustomerByPortalSession finds the customer of the live (not expired)
// portal session whose cookie token is token; anything else is ErrNotFound.
func (d *DB) CustomerByPortalSession(ctx context.Context, token string) (*Customer, error) {
	if token == "" || len(token) > maxPortalToken {
		return nil, ErrNotFound
	}
	c := new(Customer)
	err := d.bun.NewSelect().Model(c).
		Join("JOIN portal_sessions AS ps ON ps.customer_id = c.id").
		Where("ps.token_hash = ?", HashToken(token)).
		Where("ps.expires_at > ?", d.Now()).
		Scan(ctx)
	if err != nil {
		if err = notFound(err); err == ErrNotFound {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to find a portal session: %w", err)
	}
	return c, nil
}

// DeletePortalSession ends the portal session whose cookie token is token
// (signing out); an unknown one is no error.
func (d *DB) DeletePortalSession(ctx context.Context, token string) error {
	if token == "" || len(token) > maxPortalToken {
		return nil
	}
	if _, err := d.bun.NewRaw("DELETE FROM portal_sessions WHERE token_hash = ?", HashToken(token)).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to end a portal session: %w", err)
	}
	return nil
}

// LivePortalSessions returns, for each of the portal session hashes that is
// still live at now, its customer's id: one query per batch, for the live
// portal streams' access check.
func (d *DB) LivePortalSessions(ctx context.Context, tokenHashes []string, now time.Time) (map[string]int64, error) {
	out := make(map[string]int64, len(tokenHashes))
	for chunk := range slices.Chunk(tokenHashes, maxBatch) {
		var rows []struct {
			Hash string `bun:"token_hash"`
			ID   int64  `bun:"customer_id"`
		}
		err := d.bun.NewRaw(`SELECT token_hash, customer_id FROM portal_sessions
			WHERE token_hash IN (?) AND expires_at > ?`, bun.List(chunk), now.UTC()).Scan(ctx, &rows)
		if err != nil {
			return nil, fmt.Errorf("store: unable to check portal sessions: %w", err)
		}
		for _, r := range rows {
			out[r.Hash] = r.ID
		}
	}
	return out, nil
}

// revokeCustomerAccess withdraws every e-mailed link of customer id and ends
// all of its portal sessions, in tx.
func revokeCustomerAccess(ctx context.Context, tx bun.Tx, customerID int64, now time.Time) error {
	if _, err := tx.NewRaw("UPDATE portal_links SET revoked_at = ? WHERE customer_id = ? AND revoked_at IS NULL", now, customerID).Exec(ctx); err != nil {
		return err
	}
	_, err := tx.NewRaw("DELETE FROM portal_sessions WHERE customer_id = ?", customerID).Exec(ctx)
	return err
}
