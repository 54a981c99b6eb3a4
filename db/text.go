package db

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
)

// TextProblem says why s is not text HossAgent takes in, or "" when it is:
// a NUL byte, another control character (tab, line feed and carriage return
// are text) or bytes that are not UTF-8. The web layer refuses such input at
// the edge and the CSV import names where a file holds it; both read this
// one definition.
func TextProblem(s string) string {
	_, p := TextProblemAt(s)
	return p
}

// TextProblemAt is TextProblem with the byte offset where s first goes
// wrong (-1 when it does not).
func TextProblemAt(s string) (int, string) {
	for i, r := range s {
		switch {
		case r == 0:
			return i, "a NUL byte"
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return i, "bytes that are not UTF-8 text"
		case r == '\t' || r == '\n' || r == '\r':
		case unicode.IsControl(r):
			return i, fmt.Sprintf("a control character (U+%04X)", r)
		}
	}
	return -1, ""
}

// textSafeDialect is bun's SQLite dialect with one change: a string holding
// a NUL byte is stored with U+FFFD in place of each NUL instead of failing
// the whole statement. Bun writes every argument into the SQL text and
// refuses a NUL there with a broken statement, so any text from outside
// that reached a query with one (a search, an e-mail, a payer's name in a
// webhook) made it fail, for ever on every retry. Bytes that are not UTF-8
// already become U+FFFD this way (bun writes strings rune by rune), so
// both kinds of broken text are kept alike: readable, searchable, never a
// failed query. The edge refuses such text before it gets here wherever
// the sender can be told; this is the net under it.
type textSafeDialect struct {
	*sqlitedialect.Dialect
}

func newDialect() textSafeDialect { return textSafeDialect{sqlitedialect.New()} }

// AppendString writes s as an SQL string literal, a NUL as U+FFFD.
func (d textSafeDialect) AppendString(b []byte, s string) []byte {
	return d.Dialect.AppendString(b, withoutNUL(s))
}

func withoutNUL(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// pgTextSafeDialect is bun's PostgreSQL dialect with the same change:
// PostgreSQL refuses a NUL in text just as bun does.
type pgTextSafeDialect struct {
	*pgdialect.Dialect
}

// AppendString writes s as an SQL string literal, a NUL as U+FFFD.
func (d pgTextSafeDialect) AppendString(b []byte, s string) []byte {
	return d.Dialect.AppendString(b, withoutNUL(s))
}
