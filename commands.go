package main

// The subcommands beside serve: check, backup, reconcile and seed, each with
// its flags and its report. They share serve's configuration loading and
// open the store themselves; only seed takes the DATA_DIR lock (main.go's
// package comment says which command owns the database when).

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// backup writes a consistent copy of the database to the path given, safe
// while the app runs: on SQLite with VACUUM INTO (the distroless image has
// no sqlite3, so this is how a deployed app is backed up), on PostgreSQL
// with pg_dump's custom format (pg_dump must be on the PATH; restore with
// pg_restore).
func backup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprintln(stderr, "usage: hossagent backup PATH (a file that does not exist yet)")
		return 2
	}
	cfg, _, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if cfg.DatabaseURL != "" {
		return backupPostgres(ctx, cfg.DatabaseURL, args[0], stdout, stderr)
	}
	path := cfg.DatabasePath(db.FileName)
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintln(stderr, "backup:", err)
		return 2
	}
	// VACUUM INTO needs a writable connection to the source (it only reads
	// it); Open on an up-to-date database changes nothing.
	store, err := db.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(stderr, "backup:", err)
		return 2
	}
	defer store.Close()
	if err := store.BackupTo(ctx, args[0]); err != nil {
		fmt.Fprintln(stderr, "backup:", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", store.Path(), args[0])
	return 0
}

// backupPostgres runs pg_dump --format=custom into path. The password goes
// to pg_dump in PGPASSWORD, not on its command line, where any user of the
// machine could read it.
func backupPostgres(ctx context.Context, rawURL, path string, stdout, stderr io.Writer) int {
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(stderr, "backup: %s already exists\n", path)
		return 2
	}
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		fmt.Fprintln(stderr, "backup: on PostgreSQL the backup is pg_dump's, and pg_dump is not on the PATH: install PostgreSQL's client (Debian: postgresql-client) or run pg_dump --format=custom against DATABASE_URL from a machine that has it")
		return 2
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		fmt.Fprintln(stderr, "backup: DATABASE_URL is not a URL")
		return 2
	}
	env := os.Environ()
	if p, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+p)
		u.User = url.User(u.User.Username())
	}
	// A password in the query (libpq takes password= and sslpassword=
	// there too) goes the same way.
	q := u.Query()
	for k, v := range map[string]string{"password": "PGPASSWORD", "sslpassword": "PGSSLPASSWORD"} {
		if q.Has(k) {
			env = append(env, v+"="+q.Get(k))
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	cmd := exec.CommandContext(ctx, pgDump, "--format=custom", "--file="+path, "--dbname="+u.String())
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(stderr, "backup: pg_dump failed: %v: %s\n", err, strings.TrimSpace(string(out)))
		_ = os.Remove(path) // a partial dump is not a backup
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s (pg_dump custom format: restore with pg_restore --dbname=URL %s)\n", db.RedactURL(u), path, path)
	return 0
}

// seed fills an empty development database with a deterministic made-up
// business (db.Seed) and prints what it wrote and one portal link. It
// refuses outside RELEASE_MODE=DEVELOPMENT and on a database with data
// (exit 1); bad flags exit 2.
func seed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sizes db.SeedSizes
	fs.IntVar(&sizes.Leads, "leads", 1000, "leads to write (the customers are some of them)")
	fs.IntVar(&sizes.Customers, "customers", 100, "customers to write, each from a converted lead")
	fs.IntVar(&sizes.Tasks, "tasks", 1000, "tasks to write, spread over the customers")
	fs.IntVar(&sizes.Invoices, "invoices", 200, "invoices to write, each billing done tasks")
	fs.Uint64Var(&sizes.Seed, "seed", 1, "pseudo-random seed: the same sizes and seed write the same rows")
	now := fs.String("now", db.SeedEpoch.Format(time.RFC3339), "instant the data is generated against (RFC 3339)")
	path := fs.String("db", "", "database to seed: a SQLite file or a postgres:// URL (default: DATABASE_URL, else $DATA_DIR/"+db.FileName+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seed: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	t, err := time.Parse(time.RFC3339, *now)
	if err != nil {
		fmt.Fprintf(stderr, "seed: --now %q is not an RFC 3339 time\n", *now)
		return 2
	}
	sizes.Now = t
	if err := sizes.Validate(); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg, _, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if !cfg.IsDevelopment() {
		fmt.Fprintf(stderr, "seed: refused: RELEASE_MODE is %s; made-up data is only written in DEVELOPMENT\n", cfg.ReleaseMode)
		return 1
	}
	if *path == "" {
		*path = databaseOf(cfg)
	}
	// seed writes: on SQLite it refuses while the app (or another seed)
	// owns the file. On PostgreSQL it refuses a database with data, as
	// everywhere.
	if !db.IsPostgresURL(*path) {
		lock, err := takeDataDir(*path, "seed", time.Now())
		if err != nil {
			fmt.Fprintln(stderr, "seed: refused:", err)
			return 1
		}
		defer lock.Release()
	}
	store, err := openStore(ctx, *path, storeMigrate)
	if err != nil {
		fmt.Fprintln(stderr, "seed:", err)
		return 1
	}
	defer store.Close()
	report, err := store.Seed(ctx, sizes)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s into %s\n", report, store.Where())
	if report.PortalToken != "" {
		fmt.Fprintf(stdout, "portal: /portal/%s\n", report.PortalToken)
	}
	return 0
}

// reconcile asks Stripe about every open invoice's payment link and applies
// paid sessions whose webhook was lost. Exit 1 when anything failed.
func reconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, _, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if !cfg.Stripe.Enabled {
		fmt.Fprintln(stderr, "reconcile: Stripe is off: set ENABLE_STRIPE=true and STRIPE_API_KEY")
		return 2
	}
	log := newLogger(cfg.LogFormat, stderr)
	store, err := openStore(ctx, databaseOf(cfg), storeMigrate)
	if err != nil {
		fmt.Fprintln(stderr, "reconcile:", err)
		return 2
	}
	defer store.Close()
	payments, err := newStripe(ctx, cfg, store, log)
	if err != nil {
		fmt.Fprintln(stderr, "reconcile:", err)
		return 2
	}
	report, err := agents.Reconcile(ctx, &agents.PaymentLedger{Store: store, InstallID: payments.InstallID(), Links: payments, Logger: log, Now: time.Now}, payments)
	fmt.Fprintln(stdout, report)
	if err != nil {
		fmt.Fprintln(stderr, "reconcile:", err)
		return 1
	}
	if len(report.Errors) > 0 {
		return 1
	}
	return 0
}

// check proves the eight invariants on a database file, printing each with
// OK or its violations. It exits 1 on any violation, 2 when it cannot check.
func check(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("db", "", "database to check: a SQLite file or a postgres:// URL (default: DATABASE_URL, else $DATA_DIR/"+db.FileName+")")
	repair := fs.Bool("repair-totals", false, "rebuild the kept totals from all rows first, reporting what changed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		cfg, _, err := config.Load(getenv)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		*path = databaseOf(cfg)
	}
	if *repair {
		if code := repairTotals(ctx, *path, stdout, stderr); code != 0 {
			return code
		}
	}
	store, err := openStore(ctx, *path, storeReadOnly)
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	defer store.Close()
	results, err := store.CheckInvariants(ctx, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	fmt.Fprintf(stdout, "checking %s\n", store.Where())
	failed := 0
	for _, r := range results {
		if r.OK() {
			fmt.Fprintf(stdout, "%d. %-58s OK\n", r.Number, r.Name)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "%d. %-58s VIOLATED (%d)\n", r.Number, r.Name, r.Count)
		for _, v := range r.Violations {
			fmt.Fprintf(stdout, "     - %s\n", v)
		}
		if r.Count > len(r.Violations) {
			fmt.Fprintf(stdout, "     … and %d more\n", r.Count-len(r.Violations))
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d invariants violated\n", failed, len(results))
		return 1
	}
	fmt.Fprintf(stdout, "all %d invariants hold\n", len(results))
	return 0
}

// repairTotals rebuilds the kept totals of the database at path from its
// rows, in one transaction (safe beside a running app), and prints each
// total it corrected.
func repairTotals(ctx context.Context, path string, stdout, stderr io.Writer) int {
	store, err := openStore(ctx, path, storeWritable)
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	defer store.Close()
	drift, err := store.RepairKeptTotals(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	added, removed, err := store.RepairBillingQueue(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	if added+removed > 0 {
		fmt.Fprintf(stdout, "billing queue: added %d unbilled tasks, removed %d entries that were not\n", added, removed)
	}
	if len(drift) == 0 {
		fmt.Fprintln(stdout, "kept totals: all equal the rows, nothing to repair")
		return 0
	}
	fmt.Fprintf(stdout, "kept totals: repaired %d\n", len(drift))
	for _, k := range drift {
		fmt.Fprintf(stdout, "  - %s\n", k)
	}
	return 0
}
