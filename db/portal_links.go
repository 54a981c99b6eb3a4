package db

import (
	"context"
	"fmt"
	"io"

	"github.com/uptrace/bun"
)

// Portal links. Only the SHA-256 of a portal token is stored, so a link
// cannot be shown twice: an operator who needs one issues a fresh token
// (rotate) and copies the link at that moment. Revoking also replaces the
// token, with one that is never shown: the old link dies and nobody holds a
// working link until the next rotation, yet the customer keeps a live token
// (invariant 4), so token_revoked_at stays NULL and token_created_at is the
// time the current token was drawn. When and by whom a link was rotated or
// revoked is in the audit log.
//
// Rotating or revoking also withdraws every link the customer was e-mailed
// (portal_links.revoked_at) and ends every portal session of the customer,
// in the same transaction: whoever held a way into the portal loses it at
// once, and the client asks for a fresh link on the sign-in page.

// Audit actions of the portal link controls; the target is "customer N".
const (
	AuditPortalRotated = "portal link rotated"
	AuditPortalRevoked = "portal link revoked"
)

// RotatePortalToken gives customer id a fresh portal token drawn from random
// and returns it; the previous link, every e-mailed link and every portal
// session of the customer stop working at once.
func (d *DB) RotatePortalToken(ctx context.Context, id int64, random io.Reader) (string, error) {
	token, err := d.replacePortalToken(ctx, id, random)
	if err != nil {
		return "", fmt.Errorf("store: unable to rotate the portal link of customer %d: %w", id, err)
	}
	return token, nil
}

// RevokePortalToken kills customer id's portal link by storing the hash of a
// fresh token that is thrown away, withdraws its e-mailed links and ends its
// portal sessions.
func (d *DB) RevokePortalToken(ctx context.Context, id int64, random io.Reader) error {
	if _, err := d.replacePortalToken(ctx, id, random); err != nil {
		return fmt.Errorf("store: unable to revoke the portal link of customer %d: %w", id, err)
	}
	return nil
}

// replacePortalToken swaps the stored hash for a fresh token's, withdraws
// the customer's e-mailed links and ends its portal sessions, in one
// transaction, and returns the plain token.
func (d *DB) replacePortalToken(ctx context.Context, id int64, random io.Reader) (string, error) {
	token, hash, err := NewToken(random)
	if err != nil {
		return "", err
	}
	err = d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := d.Now()
		res, err := tx.NewUpdate().Model((*Customer)(nil)).
			Set("portal_token_hash = ?", hash).
			Set("token_created_at = ?", now).
			Set("token_revoked_at = NULL").
			Where("id = ?", id).Exec(ctx)
		if err != nil {
			return err
		}
		if affected(res) != 1 {
			return ErrNotFound
		}
		return revokeCustomerAccess(ctx, tx, id, now)
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// PortalLinkActions returns the latest limit rotations and revocations of
// customer id's portal link from the audit log, newest first.
func (d *DB) PortalLinkActions(ctx context.Context, id int64, limit int) ([]AuditEntry, error) {
	var entries []AuditEntry
	err := d.bun.NewSelect().Model(&entries).
		Where("lower(target) = ?", "customer "+itoa(id)).
		Where("action IN (?)", bun.List([]string{AuditPortalRotated, AuditPortalRevoked})).
		OrderExpr("created_at DESC, id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read the portal link actions of customer %d: %w", id, err)
	}
	return entries, nil
}
