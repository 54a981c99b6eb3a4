package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// cleaned is e with every text field safe to store: Stripe signs what its
// account holders typed (a payer's name, metadata), so a NUL byte or invalid
// UTF-8 can arrive in a valid event, and bun inlines arguments into the SQL
// text, where a NUL ends the statement. Identifiers (event, session, link,
// PaymentIntent, charge and install ids) are matched on, so an unusual one is
// replaced by a digest of itself rather than altered (two different ids stay
// different); free text is cleaned and clipped.
func (e PaymentEvent) cleaned() PaymentEvent {
	e.EventID = cleanID(e.EventID)
	e.Type = cleanText(e.Type, 100)
	e.Install = cleanID(e.Install)
	e.PaymentLinkID = cleanID(e.PaymentLinkID)
	e.PaymentIntentID = cleanID(e.PaymentIntentID)
	e.SessionID = cleanID(e.SessionID)
	e.ChargeID = cleanID(e.ChargeID)
	e.Currency = strings.ToLower(cleanText(e.Currency, 16))
	e.PayerEmail = cleanText(e.PayerEmail, 320)
	e.PayerName = cleanText(e.PayerName, 200)
	return e
}

// maxIDLen bounds a stored Stripe id; Stripe's are well under it.
const maxIDLen = 255

// cleanID is s when it looks like an id (printable ASCII, at most maxIDLen
// bytes), else "sha256:" and the hex digest of s: deterministic, so the same
// odd id always maps to the same stored value, and distinct from every
// other.
func cleanID(s string) string {
	plain := len(s) <= maxIDLen
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] > ' ' && s[i] < 0x7f
	}
	if plain {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// cleanText is s as valid UTF-8 without NUL or other control characters
// (tab and newline are kept), clipped to n bytes.
func cleanText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == 0:
			return -1
		case r == '\t' || r == '\n':
			return r
		case r < ' ' || r == 0x7f:
			return ' '
		}
		return r
	}, s)
	return clip(s, n)
}

// IsTransient reports whether err is a passing failure of the database or
// of the request, one the same work may get past when tried again later:
// SQLite busy or locked by another writer, out of memory or disk, an I/O
// error, a file that cannot be opened or is damaged (until the operator
// repairs it), the database closed, a bad connection, or the caller's
// context cancelled or out of time; on PostgreSQL the same failures by
// their SQLSTATE (pgTransient), or no answer from the server at all.
// Every other error comes back the same on every try: a constraint or
// statement the database refuses, or a rule that cannot read the event.
// Webhooks answer 5xx (retry) only for transient errors; anything else is
// acknowledged and recorded, so the sender does not retry for days what can
// never succeed.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pgTransient(pe.Code)
	}
	// No answer from PostgreSQL: it could not be reached, or the
	// connection broke or timed out mid-statement.
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// database/sql's "database is closed" is not exported.
	return strings.Contains(err.Error(), "sql: database is closed")
}

// pgTransient reports whether a PostgreSQL SQLSTATE is a passing failure,
// SQLite's transient result codes' counterparts: a conflict with a
// concurrent transaction that RunInTx gave up retrying (40001
// serialization failure, 40P01 deadlock) or a lock not available (55P03,
// SQLITE_BUSY); a connection lost (class 08) or refused while the server
// starts, stops or recovers (57P01-57P03); a statement cancelled (57014,
// SQLITE_INTERRUPT); out of disk, memory or connections (class 53,
// SQLITE_FULL/NOMEM); an I/O or system error (class 58, SQLITE_IOERR); data
// found corrupted (XX001/XX002, SQLITE_CORRUPT); a read-only server, such as
// a standby during failover (25006, SQLITE_READONLY).
func pgTransient(state string) bool {
	switch state {
	case "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "57014", "XX001", "XX002", "25006":
		return true
	}
	return strings.HasPrefix(state, "08") || strings.HasPrefix(state, "53") || strings.HasPrefix(state, "58")
}

// clip shortens s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
