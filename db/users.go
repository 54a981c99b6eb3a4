package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Operator roles. Admins run the business; viewers may only read the
// dashboard.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// DefaultPasswordCost is the bcrypt cost of stored passwords: about a quarter
// of a second per hash on a small server, which is what makes a stolen
// database slow to crack.
const DefaultPasswordCost = 12

// Password length limits. bcrypt reads at most 72 bytes, so a longer
// password would be silently truncated: it is refused instead.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 72
)

// ErrInvalidUser is returned when a new user's e-mail, password or role is
// refused; the wrapping message says which and why.
var ErrInvalidUser = errors.New("invalid user")

// ErrBadCredentials is returned by Authenticate for an unknown e-mail and for
// a wrong password alike, so a caller cannot tell them apart.
var ErrBadCredentials = errors.New("wrong e-mail or password")

// NewUser is what the bootstrap or an admin supplies for an operator account.
type NewUser struct {
	Email    string
	Password string
	Role     string
	// PasswordCost is the bcrypt cost; 0 means DefaultPasswordCost. Only
	// tests pass less.
	PasswordCost int
}

// CreateUser validates and stores an operator account with its password
// hashed by bcrypt. The e-mail is stored lower-cased; a second account with
// the same e-mail satisfies IsUniqueViolation.
func (d *DB) CreateUser(ctx context.Context, in NewUser) (*User, error) {
	email, err := normalUserEmail(in.Email)
	if err != nil {
		return nil, err
	}
	if in.Role != RoleAdmin && in.Role != RoleViewer {
		return nil, fmt.Errorf("store: %w: role %q is neither %s nor %s", ErrInvalidUser, in.Role, RoleAdmin, RoleViewer)
	}
	if n := len(in.Password); n < MinPasswordLen || n > MaxPasswordLen {
		return nil, fmt.Errorf("store: %w: the password must be %d to %d bytes long", ErrInvalidUser, MinPasswordLen, MaxPasswordLen)
	}
	cost := in.PasswordCost
	if cost == 0 {
		cost = DefaultPasswordCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), cost)
	if err != nil {
		return nil, fmt.Errorf("store: unable to hash the password of %s: %w", email, err)
	}
	u := &User{Email: email, PasswordHash: string(hash), Role: in.Role, CreatedAt: d.Now()}
	if _, err := d.bun.NewInsert().Model(u).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to create user %s: %w", email, err)
	}
	return u, nil
}

// normalUserEmail trims and lower-cases an operator's e-mail and checks that
// it looks like an address, by the same rule as ADMIN_EMAIL in the config.
func normalUserEmail(raw string) (string, error) {
	email := strings.ToLower(strings.TrimSpace(raw))
	at := strings.LastIndex(email, "@")
	if at < 1 || at == len(email)-1 || len(email) > 254 || strings.ContainsAny(email, " \t\r\n<>,;\"") {
		return "", fmt.Errorf("store: %w: %q is not an e-mail address", ErrInvalidUser, raw)
	}
	return email, nil
}

// UserByEmail finds an operator by e-mail, in any case. An unknown e-mail is
// ErrNotFound.
func (d *DB) UserByEmail(ctx context.Context, email string) (*User, error) {
	u := new(User)
	err := d.bun.NewSelect().Model(u).Where("email = ?", strings.ToLower(strings.TrimSpace(email))).Scan(ctx)
	if err != nil {
		if err = notFound(err); err == ErrNotFound {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to find user by e-mail: %w", err)
	}
	return u, nil
}

// UserByID finds an operator by id. An unknown id is ErrNotFound.
func (d *DB) UserByID(ctx context.Context, id int64) (*User, error) {
	u := new(User)
	err := d.bun.NewSelect().Model(u).Where("id = ?", id).Scan(ctx)
	if err != nil {
		if err = notFound(err); err == ErrNotFound {
			return nil, err
		}
		return nil, fmt.Errorf("store: unable to find user %d: %w", id, err)
	}
	return u, nil
}

// CountUsers counts the operator accounts.
func (d *DB) CountUsers(ctx context.Context) (int64, error) {
	n, err := d.bun.NewSelect().Model((*User)(nil)).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: unable to count users: %w", err)
	}
	return n, nil
}

// dummyPasswordHash is compared against when the e-mail is unknown, so that
// an unknown e-mail costs as much time as a wrong password and response
// times do not reveal which accounts exist. It is made once, on first use,
// at the production cost.
var dummyPasswordHash = sync.OnceValue(func() []byte {
	hash, err := bcrypt.GenerateFromPassword([]byte("not-a-password-of-anyone"), DefaultPasswordCost)
	if err != nil {
		panic("store: unable to hash the dummy password: " + err.Error())
	}
	return hash
})

// Authenticate returns the operator whose e-mail and password these are. An
// unknown e-mail and a wrong password are both ErrBadCredentials and both
// run one bcrypt comparison.
func (d *DB) Authenticate(ctx context.Context, email, password string) (*User, error) {
	u, err := d.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	hash := dummyPasswordHash()
	if u != nil {
		hash = []byte(u.PasswordHash)
	}
	mismatch := bcrypt.CompareHashAndPassword(hash, []byte(password))
	// A password longer than bcrypt reads could match on its first 72 bytes
	// alone; no stored password is that long, so it is always wrong.
	if u == nil || mismatch != nil || len(password) > MaxPasswordLen {
		return nil, ErrBadCredentials
	}
	return u, nil
}
