package db

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

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
