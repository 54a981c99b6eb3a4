package db

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// IsUniqueViolation reports whether err is the database refusing a
// duplicate: a UNIQUE index or a primary key, read from the driver's error
// code (never from the error's text, which either database may word
// differently). On SQLite that is the extended result code; on PostgreSQL
// the SQLSTATE 23505 (unique_violation), which covers primary keys too.
func IsUniqueViolation(err error) bool {
	var dup *DuplicateLeadError
	if errors.As(err, &dup) {
		return true
	}
	if code, ok := sqliteCode(err); ok {
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	state, ok := pgState(err)
	return ok && state == "23505"
}

// IsConstraintViolation reports whether err is any constraint refusing a
// row (UNIQUE, CHECK, FOREIGN KEY, NOT NULL, or a trigger's guard, such as
// the one that a paid invoice never returns to open).
//
// On SQLite that is the primary result code SQLITE_CONSTRAINT, which a
// trigger's RAISE(ABORT) reports as well. On PostgreSQL it is SQLSTATE class
// 23 (integrity constraint violation: 23505 unique, 23514 check, 23503
// foreign key, 23502 not null); the guard triggers of the PostgreSQL
// migrations raise 23000 (integrity_constraint_violation) for the same
// reason. A trigger raising without an ERRCODE would report P0001
// (raise_exception): that is counted too, since in this schema only guard
// triggers raise, so a migration that forgets the code still refuses the
// row as a constraint would.
func IsConstraintViolation(err error) bool {
	if IsUniqueViolation(err) {
		return true
	}
	if code, ok := sqliteCode(err); ok {
		return code&0xff == sqlite3.SQLITE_CONSTRAINT
	}
	state, ok := pgState(err)
	return ok && (strings.HasPrefix(state, "23") || state == "P0001")
}

// sqliteCode is the extended result code of the SQLite error in err's chain.
func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return 0, false
	}
	return se.Code(), true
}

// pgState is the SQLSTATE of the PostgreSQL error in err's chain.
func pgState(err error) (string, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", false
	}
	return pe.Code, true
}
