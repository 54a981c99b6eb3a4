package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"
)

// Managing operator accounts after the first start: listing them, setting a
// new password, changing a role and removing one. A new password or a
// removal ends the account's sessions in the same transaction, so a reset
// locks out whoever held the old password at once.

// ErrLastAdmin is returned when a change would leave no admin, which would
// lock everyone out of the control room.
var ErrLastAdmin = errors.New("the last admin cannot be removed or demoted")

// UserSummary is an account as the user list shows it: never its hash.
type UserSummary struct {
	ID        int64
	Email     string
	Role      string
	CreatedAt time.Time
	Sessions  int // sessions signed in and not expired
}

// ListUsers returns every operator account, oldest first, with its count of
// live sessions. Accounts are few; the list is not paged.
func (d *DB) ListUsers(ctx context.Context) ([]UserSummary, error) {
	var rows []struct {
		ID        int64     `bun:"id"`
		Email     string    `bun:"email"`
		Role      string    `bun:"role"`
		CreatedAt time.Time `bun:"created_at"`
		Sessions  int       `bun:"sessions"`
	}
	now := d.Now().UTC()
	err := d.bun.NewSelect().TableExpr("users AS u").
		ColumnExpr("u.id, u.email, u.role, u.created_at").
		ColumnExpr("(SELECT count(*) FROM sessions AS s WHERE s.user_id = u.id AND s.expires_at > ? AND s.last_seen_at > ?) AS sessions", now, now.Add(-SessionIdleTimeout)).
		OrderExpr("u.id").Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("store: unable to list users: %w", err)
	}
	out := make([]UserSummary, len(rows))
	for i, r := range rows {
		out[i] = UserSummary{ID: r.ID, Email: r.Email, Role: r.Role, CreatedAt: r.CreatedAt.UTC(), Sessions: r.Sessions}
	}
	return out, nil
}

// SetPassword gives the account with this e-mail a new password (validated
// like CreateUser's) and ends all its sessions, in one transaction. cost 0
// is DefaultPasswordCost. An unknown e-mail is ErrNotFound.
func (d *DB) SetPassword(ctx context.Context, email, password string, cost int) (*User, error) {
	if n := len(password); n < MinPasswordLen || n > MaxPasswordLen {
		return nil, fmt.Errorf("store: %w: the password must be %d to %d bytes long", ErrInvalidUser, MinPasswordLen, MaxPasswordLen)
	}
	if cost == 0 {
		cost = DefaultPasswordCost
	}
	// Hashed before the transaction: a quarter of a second must not hold
	// the write lock.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return nil, fmt.Errorf("store: unable to hash the new password: %w", err)
	}
	var u *User
	err = d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if u, err = userByEmailIn(ctx, tx, email); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model((*User)(nil)).Set("password_hash = ?", string(hash)).Where("id = ?", u.ID).Exec(ctx); err != nil {
			return err
		}
		u.PasswordHash = string(hash)
		_, err = tx.NewDelete().Model((*Session)(nil)).Where("user_id = ?", u.ID).Exec(ctx)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to set the password of %s: %w", email, err)
	}
	return u, nil
}

// SetRole changes an account's role. Demoting the last admin is
// ErrLastAdmin; a demotion ends the account's sessions, so its open control
// room stops at once.
func (d *DB) SetRole(ctx context.Context, email, role string) (*User, error) {
	if role != RoleAdmin && role != RoleViewer {
		return nil, fmt.Errorf("store: %w: role %q is neither %s nor %s", ErrInvalidUser, role, RoleAdmin, RoleViewer)
	}
	var u *User
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if u, err = userByEmailIn(ctx, tx, email); err != nil {
			return err
		}
		if u.Role == role {
			return nil
		}
		if u.Role == RoleAdmin {
			if err := keepAnAdmin(ctx, tx, u.ID); err != nil {
				return err
			}
			if _, err := tx.NewDelete().Model((*Session)(nil)).Where("user_id = ?", u.ID).Exec(ctx); err != nil {
				return err
			}
		}
		u.Role = role
		_, err = tx.NewUpdate().Model((*User)(nil)).Set("role = ?", role).Where("id = ?", u.ID).Exec(ctx)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLastAdmin) {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to change the role of %s: %w", email, err)
	}
	return u, nil
}

// RemoveUser deletes an account and its sessions. Removing the last admin
// is ErrLastAdmin; an unknown e-mail is ErrNotFound.
func (d *DB) RemoveUser(ctx context.Context, email string) (*User, error) {
	var u *User
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if u, err = userByEmailIn(ctx, tx, email); err != nil {
			return err
		}
		if u.Role == RoleAdmin {
			if err := keepAnAdmin(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		if _, err := tx.NewDelete().Model((*Session)(nil)).Where("user_id = ?", u.ID).Exec(ctx); err != nil {
			return err
		}
		_, err = tx.NewDelete().Model((*User)(nil)).Where("id = ?", u.ID).Exec(ctx)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLastAdmin) {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to remove %s: %w", email, err)
	}
	return u, nil
}

// keepAnAdmin refuses a change to admin id when no other admin exists.
//
// Across instances on PostgreSQL this read-then-write is kept by
// SERIALIZABLE alone: two admins demoting or removing each other at once
// each read the other as the admin that remains, the write skew SSI
// detects; one transaction aborts (40001), RunInTx runs it again and it
// then sees the last admin and refuses. No row lock would do, as the
// conflict is about a row the other transaction changes, not this one.
func keepAnAdmin(ctx context.Context, tx bun.Tx, id int64) error {
	n, err := tx.NewSelect().Model((*User)(nil)).Where("role = ? AND id <> ?", RoleAdmin, id).Count(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLastAdmin
	}
	return nil
}

func userByEmailIn(ctx context.Context, idb bun.IDB, email string) (*User, error) {
	norm, err := normalUserEmail(email)
	if err != nil {
		return nil, err
	}
	u := new(User)
	if err := idb.NewSelect().Model(u).Where("email = ?", norm).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	return u, nil
}
