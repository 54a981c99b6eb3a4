package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// IsPostgresURL reports whether DATABASE_URL names a PostgreSQL server.
func IsPostgresURL(raw string) bool {
	return strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://")
}

// OpenPostgres connects to the PostgreSQL database at rawURL and applies
// every pending migration of the PostgreSQL set.
func OpenPostgres(ctx context.Context, rawURL string, opts ...Option) (*DB, error) {
	d, err := openPostgres(ctx, rawURL, false, opts...)
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// OpenPostgresExisting connects without migrating, every transaction read
// only: the checker's way in, as OpenExisting is on SQLite.
func OpenPostgresExisting(ctx context.Context, rawURL string, opts ...Option) (*DB, error) {
	return openPostgres(ctx, rawURL, true, opts...)
}

// OpenPostgresWritable connects without migrating, for repairs an operator
// asks for beside a running app (OpenExistingWritable on SQLite).
func OpenPostgresWritable(ctx context.Context, rawURL string, opts ...Option) (*DB, error) {
	return openPostgres(ctx, rawURL, false, opts...)
}

// RedactURL is a PostgreSQL URL as it may be shown: without the password
// of its user info, nor the password or sslpassword its query may carry
// (libpq and pgx take both).
func RedactURL(u *url.URL) string {
	c := *u
	if q := c.Query(); q.Has("password") || q.Has("sslpassword") {
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// urlPasswords are the secrets rawURL carries, to be kept out of any text.
func urlPasswords(u *url.URL) []string {
	var out []string
	if p, ok := u.User.Password(); ok && p != "" {
		out = append(out, p)
	}
	for _, k := range []string{"password", "sslpassword"} {
		if p := u.Query().Get(k); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func openPostgres(ctx context.Context, rawURL string, readOnly bool, opts ...Option) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !IsPostgresURL(rawURL) {
		return nil, errors.New("db: DATABASE_URL must be a postgres:// URL")
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, fmt.Errorf("db: DATABASE_URL %s is not a valid PostgreSQL URL", RedactURL(u))
	}
	// Every session works in UTC, so a time the server turns into text (a
	// due day of kept_totals, say) reads as SQLite's does.
	//
	// SERIALIZABLE is the default isolation of every transaction and
	// statement. The store was written against SQLite, where one writer at
	// a time makes each read-then-write transaction act alone; under
	// SERIALIZABLE PostgreSQL gives the same guarantee without a global
	// lock, and aborts (SQLSTATE 40001) whichever of two concurrent
	// transactions would break it. RunInTx runs such a transaction again.
	// The claims that two instances race for most (the outbox, task leases,
	// collections) take row locks as well, so they wait instead of retrying:
	// see the comment at each.
	cfg.RuntimeParams["timezone"] = "UTC"
	cfg.RuntimeParams["default_transaction_isolation"] = "serializable"
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(10)
	sqldb.SetMaxIdleConns(10)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	d := &DB{bun: bun.NewDB(sqldb, pgTextSafeDialect{pgdialect.New()}), url: u, now: time.Now, guard: DefaultGuard()}
	for _, o := range opts {
		o(d)
	}
	if err := d.bun.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: unable to reach PostgreSQL at %s: %w", RedactURL(u), redactErr(err, u))
	}
	return d, nil
}

// redactErr keeps the URL's passwords out of a connection error's text.
func redactErr(err error, u *url.URL) error {
	text, changed := err.Error(), false
	for _, p := range urlPasswords(u) {
		if strings.Contains(text, p) {
			text, changed = strings.ReplaceAll(text, p, "xxxxx"), true
		}
	}
	if changed {
		return errors.New(text)
	}
	return err
}

// Postgres reports whether the store is on PostgreSQL.
func (d *DB) Postgres() bool { return d.url != nil }

// Where names the database for messages: the SQLite file, or the
// PostgreSQL URL without its password.
func (d *DB) Where() string {
	if d.url != nil {
		return RedactURL(d.url)
	}
	return d.path
}

// The store's PostgreSQL advisory locks, all in the two-key form
// pg_advisory_lock(int, int) with one space, so that pg_locks shows them as
// classid = lockSpace, objid = the key, objsubid = 2, and no other use of
// advisory locks on the same database (a bigint key of some tool) can
// collide with them by accident.
const (
	lockSpace = 0x486f7373 // "Hoss"
	// lockEngine is held by the instance that owns the agents, on a session
	// of its own, for as long as it owns them (cluster.go).
	lockEngine = 1
	// lockMigrate is held while an instance migrates, so that instances
	// started together on an empty database migrate one after the other.
	lockMigrate = 100
	// lockOutboxClaims and lockClientOutboxClaims make the claims of one
	// outbox take turns across instances, each outbox having caps of its
	// own (runClaim, outbox.go).
	lockOutboxClaims       = 101
	lockClientOutboxClaims = 102
)

// maxTxAttempts bounds how often RunInTx runs a transaction PostgreSQL
// aborted for a conflict with another one.
const maxTxAttempts = 10

// retryable reports whether PostgreSQL aborted a transaction only because
// of a concurrent one (serialization failure, deadlock): run again, it
// sees the other's result.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// runInTxPostgres runs fn in a transaction, again (up to maxTxAttempts
// times, after a short random pause) when PostgreSQL aborts it for a
// conflict. fn must therefore leave nothing behind outside the transaction
// that a second run would double: the store's closures only fill results
// they reset at their start.
func (d *DB) runInTxPostgres(ctx context.Context, opts *sql.TxOptions, fn func(ctx context.Context, tx bun.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = d.bun.RunInTx(ctx, opts, fn)
		if err == nil || !retryable(err) || attempt == maxTxAttempts {
			return err
		}
		pause := time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// indexedBy matches SQLite's INDEXED BY clause in an SQL template.
var indexedBy = regexp.MustCompile(`\s+INDEXED BY \w+`)

// pin returns an SQL template of this package for the store's dialect:
// with its INDEXED BY clauses on SQLite, whose planner they pin to the
// partial index the query was written for (see outbox.go), and without them
// on PostgreSQL, which has no such clause and picks a partial index by its
// predicate (pg_plan_test.go checks that it does). sqlText must be a
// template written in this package, never text holding a value: values
// reach a query only as arguments.
func (d *DB) pin(sqlText string) string { return pinned(d.bun, sqlText) }

// pinned is pin for the query helpers that get only a bun.IDB (a
// transaction, or the store's handle), whose dialect decides.
func pinned(idb bun.IDB, sqlText string) string {
	if idb.Dialect().Name() == dialect.PG {
		return indexedBy.ReplaceAllString(sqlText, "")
	}
	return sqlText
}
