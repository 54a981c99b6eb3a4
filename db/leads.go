package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/uptrace/bun"
	"golang.org/x/net/publicsuffix"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// NewLead is what a lead source, an import or an admin supplies for a lead.
type NewLead struct {
	Name, Email, Company, Website, Niche, Source string
	// DomainKey is the registrable domain used for dedupe, or "" when the
	// lead's domain is a free-mail provider.
	DomainKey string
}

// CreateLead stores a new lead unless it duplicates one (lead_dedupe.go):
// the same e-mail, company domain or website, or a company domain that is
// the other's website. A duplicate gets a *DuplicateLeadError that says
// why; IsUniqueViolation is true for it, as for a UNIQUE index that refused
// the row. Pass the transaction the lead is created in as idb: the check
// and the insert then see the same data.
func (d *DB) CreateLead(ctx context.Context, idb bun.IDB, in NewLead) (*Lead, error) {
	now := d.Now()
	l := &Lead{
		Name: in.Name, Company: in.Company, Website: in.Website, Niche: in.Niche,
		Source: in.Source, Status: LeadNew, CreatedAt: now, UpdatedAt: now,
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if email != "" {
		l.Email = &email
	}
	var keys []string
	if k := strings.ToLower(strings.TrimSpace(in.DomainKey)); k != "" {
		l.DomainKey = &k
		keys = append(keys, k)
	}
	if w := WebsiteKey(in.Website); w != "" {
		l.WebsiteKey = &w
		keys = append(keys, w)
		// The website's registrable domain is its company's domain too
		// (shop.acme.com is Acme's, like bob@acme.com).
		if reg, err := publicsuffix.EffectiveTLDPlusOne(w); err == nil && reg != w {
			keys = append(keys, reg)
		}
	}
	if err := duplicateLead(ctx, d.or(idb), email, slices.Compact(slices.Sorted(slices.Values(keys)))); err != nil {
		return nil, err
	}
	if _, err := d.or(idb).NewInsert().Model(l).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to create lead %q: %w", in.Company, err)
	}
	return l, nil
}

// NewCustomer is what onboarding supplies for a customer.
type NewCustomer struct {
	Company, ContactEmail, Plan string
	LeadID                      *int64
}

// CreateCustomer stores a customer with a fresh portal token drawn from
// random and returns the plain token, which is never stored.
func (d *DB) CreateCustomer(ctx context.Context, idb bun.IDB, in NewCustomer, random io.Reader) (*Customer, string, error) {
	token, hash, err := NewToken(random)
	if err != nil {
		return nil, "", err
	}
	now := d.Now()
	c := &Customer{
		Company: in.Company, ContactEmail: strings.ToLower(strings.TrimSpace(in.ContactEmail)),
		Plan: in.Plan, LeadID: in.LeadID, Status: CustomerActive,
		PortalTokenHash: hash, TokenCreatedAt: now, CreatedAt: now,
	}
	if _, err := d.or(idb).NewInsert().Model(c).Exec(ctx); err != nil {
		return nil, "", fmt.Errorf("store: unable to create customer %q: %w", in.Company, err)
	}
	return c, token, nil
}

// IsUniqueViolation reports whether err is SQLite refusing a duplicate: a
// UNIQUE index or a primary key, read from the driver's extended result
// code (never from the error's text, which SQLite may word differently).
func IsUniqueViolation(err error) bool {
	var dup *DuplicateLeadError
	if errors.As(err, &dup) {
		return true
	}
	code, ok := sqliteCode(err)
	return ok && (code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// IsConstraintViolation reports whether err is any SQLite constraint refusing
// a row (UNIQUE, CHECK, FOREIGN KEY, NOT NULL, or a trigger's RAISE(ABORT),
// such as the guard that a paid invoice never returns to open): the primary
// result code SQLITE_CONSTRAINT.
func IsConstraintViolation(err error) bool {
	if IsUniqueViolation(err) {
		return true
	}
	code, ok := sqliteCode(err)
	return ok && code&0xff == sqlite3.SQLITE_CONSTRAINT
}

// sqliteCode is the extended result code of the SQLite error in err's chain.
func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return 0, false
	}
	return se.Code(), true
}

// or returns idb, or the database itself when idb is nil, so that a write can
// join the caller's transaction or run on its own.
func (d *DB) or(idb bun.IDB) bun.IDB {
	if idb == nil {
		return d.bun
	}
	return idb
}
