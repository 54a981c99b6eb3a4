package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// SeedEpoch is the "now" a seed is generated against unless told
// otherwise: a fixed instant, so the same sizes and seed always write the
// same rows.
var SeedEpoch = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// SeedSource is the source of every seeded lead.
const SeedSource = "seed"

// seedCurrency is the currency of every seeded task and invoice.
const seedCurrency = "usd"

// Seeded history: leads arrive over seedLeadDays, the last of them
// seedLeadQuietDays before now, so that every later step of a lead's life
// (contact, answer, conversion) still lies in the past.
const (
	seedLeadDays      = 180
	seedLeadQuietDays = 5
	// seedUnbilledAge is how recent finished work may stay unbilled: the
	// next billing cycle picks it up.
	seedUnbilledAge = 2 * 24 * time.Hour
	seedDueAfter    = 14 * 24 * time.Hour
	// seedMaxVariables bounds the bound values of one INSERT statement,
	// under SQLite's default limit of 32766.
	seedMaxVariables = 16000
)

// ErrSeedRefused is returned (wrapped) when the database already holds
// business data: a seed never mixes made-up rows with real ones.
var ErrSeedRefused = errors.New("seed refused")

// SeedSizes says how much a seed writes. Every seeded customer comes from
// a converted lead, every task belongs to a customer and every invoice bills
// at least one done task of its customer, so Customers <= Leads, Tasks need
// Customers, and Invoices cannot exceed the done tasks the seed makes.
type SeedSizes struct {
	Leads, Customers, Tasks, Invoices int
	// Seed picks the pseudo-random stream: same sizes and seed, same rows.
	Seed uint64
	// Now is the instant the data is generated against (all of it lies
	// before); zero means SeedEpoch.
	Now time.Time
}

// Validate reports sizes that cannot be seeded, before anything is opened.
func (s SeedSizes) Validate() error {
	switch {
	case s.Leads < 0 || s.Customers < 0 || s.Tasks < 0 || s.Invoices < 0:
		return errors.New("seed: sizes must not be negative")
	case s.Leads > 10_000_000 || s.Tasks > 10_000_000:
		return errors.New("seed: at most 10000000 leads and 10000000 tasks")
	case s.Customers > s.Leads:
		return fmt.Errorf("seed: %d customers need as many leads (each customer is a converted lead), got %d", s.Customers, s.Leads)
	case s.Tasks > 0 && s.Customers == 0:
		return errors.New("seed: tasks need at least one customer")
	case s.Invoices > s.Tasks:
		return fmt.Errorf("seed: %d invoices need at least as many done tasks; got %d tasks", s.Invoices, s.Tasks)
	}
	return nil
}

func (s SeedSizes) now() time.Time {
	if s.Now.IsZero() {
		return SeedEpoch
	}
	return s.Now.UTC().Truncate(time.Second)
}

// SeedReport says what a seed wrote.
type SeedReport struct {
	Leads, Messages, Customers, Tasks, DoneTasks, Invoices, InvoiceLines, PaidInvoices int
	// PortalToken opens the first customer's portal (/portal/<token>); it is
	// the one seeded token anybody is shown.
	PortalToken string
	Elapsed     time.Duration
}

// String is the one-line summary the seed command prints.
func (r SeedReport) String() string {
	return fmt.Sprintf("seeded %d leads, %d messages, %d customers, %d tasks (%d done), %d invoices (%d paid) with %d lines in %s",
		r.Leads, r.Messages, r.Customers, r.Tasks, r.DoneTasks, r.Invoices, r.PaidInvoices, r.InvoiceLines,
		r.Elapsed.Round(time.Millisecond))
}

// seedGuardTables must all be empty for a seed to run; users, sessions,
// settings and the cycle log may exist (an operator signed in to look).
var seedGuardTables = []string{"leads", "customers", "tasks", "invoices", "invoice_lines", "messages"}

// Seed fills an empty database with a deterministic, made-up business of
// the given sizes, for development and load tests: leads through the whole
// pipeline with their outreach messages, customers with portal tokens,
// tasks (mostly done, some pending or failed, none running) and invoices
// billing done work, paid or open, some overdue, numbered without gaps.
// Every invariant CheckInvariants proves holds on the result.
//
// Rows are written with ordinary multi-row INSERT statements in one
// transaction, so triggers see every row and a failed seed leaves nothing.
// It refuses (ErrSeedRefused) a database whose business tables hold rows.
func (d *DB) Seed(ctx context.Context, sizes SeedSizes) (SeedReport, error) {
	if err := sizes.Validate(); err != nil {
		return SeedReport{}, err
	}
	started := time.Now()
	plan, err := planSeed(sizes)
	if err != nil {
		return SeedReport{}, err
	}
	if err := d.seedWrite(ctx, plan); err != nil {
		return SeedReport{}, err
	}
	r := plan.report()
	r.Elapsed = time.Since(started)
	return r, nil
}

// seedCacheKiB is the page cache of the seeding connection on SQLite: the
// indexes of a large seed fit, so inserting into them seldom reads a page
// back.
const seedCacheKiB = 256 << 10

// seedTx is the transaction a seed writes in, and whether it is
// PostgreSQL's: the seed writes through database/sql directly (bun would
// format every value into the SQL text), so its placeholders are the
// driver's own, ? on SQLite and $n on PostgreSQL (see sql).
type seedTx struct {
	*sql.Tx
	pg bool
}

// sql is query, written with ? placeholders, for the transaction's driver.
// Seed queries hold no ? other than placeholders.
func (tx *seedTx) sql(query string) string {
	if !tx.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// seedWrite checks the database is empty and writes the plan in one
// transaction. On SQLite the connection's page cache is enlarged for the
// while; PostgreSQL's shared buffers are the server's, so nothing is set
// there.
func (d *DB) seedWrite(ctx context.Context, plan *seedPlanned) error {
	conn, err := d.bun.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer conn.Close()
	if !d.Postgres() {
		var cache int64
		if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = %d", -seedCacheKiB)); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA cache_size = %d", cache)) //nolint:errcheck // best effort: the pool may reuse the connection
	}
	// One transaction, not retried: on PostgreSQL it runs SERIALIZABLE (the
	// store's default), so a write racing the emptiness check aborts the
	// seed instead of mixing with it, and the seed is simply run again.
	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer sqlTx.Rollback() //nolint:errcheck // a no-op after Commit
	tx := &seedTx{Tx: sqlTx, pg: d.Postgres()}
	if err := refuseNonEmpty(ctx, tx); err != nil {
		return err
	}
	if err := writeSeed(ctx, tx, plan); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// writeSeed writes the plan in tx.
//
// On PostgreSQL the kept-totals triggers of the seeded tables are off while
// it does, and kept_totals is rebuilt from kept_totals_expected afterwards,
// in the same transaction. Each seeded row's trigger would add it to one of
// a few totals, and a row updated many times in one transaction leaves a
// chain of versions that every further update walks: 100,000 leads would
// take minutes, not seconds. Disabling a trigger is part of the transaction
// and locks the table against other writers until it ends, so no other
// session ever writes while the totals are not kept. The other triggers
// (billing queue, collection jobs, guards) stay on. SQLite updates a row in
// place, so there the triggers run as the rows arrive.
func writeSeed(ctx context.Context, tx *seedTx, plan *seedPlanned) error {
	if !tx.pg {
		return plan.write(ctx, tx)
	}
	var triggers []string
	rows, err := tx.QueryContext(ctx, `SELECT format('%I ON %I', t.tgname, c.relname)
		  FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
		 WHERE c.relname = ANY ($1) AND c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
		   AND (t.tgname LIKE '%\_kept\_%' OR t.tgname LIKE '%\_paid\_cost\_%')
		 ORDER BY 1`, seededTables)
	if err != nil {
		return err
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		triggers = append(triggers, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	// "name ON table" → ALTER TABLE table DISABLE/ENABLE TRIGGER name.
	alter := func(verb string) error {
		for _, t := range triggers {
			name, table, _ := strings.Cut(t, " ON ")
			if _, err := tx.ExecContext(ctx, "ALTER TABLE "+table+" "+verb+" TRIGGER "+name); err != nil {
				return err
			}
		}
		return nil
	}
	if err := alter("DISABLE"); err != nil {
		return err
	}
	if err := plan.write(ctx, tx); err != nil {
		return err
	}
	if err := alter("ENABLE"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM kept_totals"); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO kept_totals (metric, label, currency, n, cents)
		SELECT metric, label, currency, n, cents FROM kept_totals_expected`)
	return err
}

// refuseNonEmpty fails with ErrSeedRefused when a business table holds rows
// or invoice numbers were already handed out.
func refuseNonEmpty(ctx context.Context, tx *seedTx) error {
	var held []string
	for _, table := range seedGuardTables {
		var n int64
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if n > 0 {
			held = append(held, fmt.Sprintf("%s: %d", table, n))
		}
	}
	var issued int64
	err := tx.QueryRowContext(ctx, tx.sql("SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = ?"), InvoiceCounter).Scan(&issued)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if issued > 0 {
		held = append(held, fmt.Sprintf("invoice numbers issued: %d", issued))
	}
	if len(held) > 0 {
		return fmt.Errorf("%w: the database already holds data (%s); seed only an empty database", ErrSeedRefused, strings.Join(held, ", "))
	}
	return nil
}

// seedTime is a stored timestamp: whole seconds, UTC, in the layout bun
// writes, so seeded and live rows compare and sort alike.
func seedTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999-07:00") }

// seedTimePtr is seedTime, or NULL for the zero time.
func seedTimePtr(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return seedTime(t)
}

// seedRand is one named pseudo-random stream of a seed: each table draws
// from its own, so a table's rows depend only on the sizes and the seed.
func seedRand(seed uint64, stream string) *rand.Rand {
	sum := sha256.Sum256([]byte(stream))
	var s2 uint64
	for _, b := range sum[:8] {
		s2 = s2<<8 | uint64(b)
	}
	return rand.New(rand.NewPCG(seed, s2))
}

// between draws a duration in [lo, hi), in whole seconds.
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	span := int64((hi - lo) / time.Second)
	if span <= 0 {
		return lo
	}
	return lo + time.Duration(r.Int64N(span))*time.Second
}

// seedPortalToken is the deterministic portal token of seeded customer id:
// 256 bits that look random, derived from the seed.
func seedPortalToken(seed uint64, id int64) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "hossagent seed %d portal %d", seed, id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
