package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
)

// The schema-equivalence test: the SQLite migrations (db/migrations) and
// the PostgreSQL ones (db/migrations/postgres) must build the same schema.
// Each schema is read from its database's catalogue (never from the
// migration files) and written as one line per fact:
//
//	table T
//	column T.C <family> <null|not null> [identity] [default=D]
//	pk T (C, …)
//	unique T (C, …)                      a UNIQUE constraint
//	fk T (C, …) -> T2 (C2, …) on delete A on update B
//	checks T: N                          how many CHECK constraints
//	index I on T (C|expr, …) [unique] [where P]   a named index
//	trigger G: before|after insert|delete|update [of C,…] on T [when W]
//	view V (C, …)
//
// A line found on one side only is a difference; every difference must be
// one of schemaKnownDifferences below, each of which says why. Types are
// compared by family (integer, text, bool, time, bytes); PostgreSQL must
// use BIGINT for integers and TIMESTAMPTZ for times, anything else is
// reported under its own name so that it shows as a difference. View and
// trigger bodies are not compared as text: kept_totals_pg_test.go runs the
// same changes on both dialects and compares what the triggers and
// kept_totals_expected make of them.

// schemaKnownDifferences are the intended differences between the two
// schemas. Each matches lines of one side only (sqlite or postgres), and
// must match at least one, so the list cannot go stale.
var schemaKnownDifferences = []knownSchemaDifference{
	{"sqlite", `^\S+ (leads|customers|tasks|invoices)_fts(_\w+)?([ .:]|$)`,
		"SQLite's search is FTS5 (virtual tables leads_fts, customers_fts, tasks_fts, invoices_fts, " +
			"their shadow tables and their sync triggers); PostgreSQL has no FTS5 and uses pg_trgm indexes (0004)"},
	{"postgres", `^index (leads|customers|tasks|invoices)_search_\w+ on \w+ using gin `,
		"the pg_trgm GIN indexes that stand for SQLite's FTS5 tables (0004): `column ILIKE '%term%'` is indexed"},
	{"sqlite", `^checks plans: 6$`,
		"plans.active has CHECK (active IN (0, 1)) in SQLite, where BOOLEAN is an integer; a PostgreSQL BOOLEAN needs none (0013)"},
	{"postgres", `^checks plans: 5$`, "see plans.active above"},
	{"sqlite", `^column (unbilled_tasks\.task_id|invoice_link_errors\.invoice_id) integer not null identity$`,
		"INTEGER PRIMARY KEY is always a rowid alias in SQLite; these two keys are always given " +
			"(a task's id, an invoice's id), so PostgreSQL has a plain BIGINT key without identity"},
	{"postgres", `^column (unbilled_tasks\.task_id|invoice_link_errors\.invoice_id) integer not null$`,
		"see the SQLite line above"},
	{"sqlite", `^trigger customers_plan_known: .* when new\.planisdistinctfromold\.planandnotexistsselect1fromplanswherename=new\.plan$`,
		"a PostgreSQL trigger's WHEN cannot hold a subquery: the NOT EXISTS (the plan is unknown) is tested in its function (0013)"},
	{"postgres", `^trigger customers_plan_known: before update of plan on customers when new\.planisdistinctfromold\.plan$`,
		"see the SQLite line above"},
}

type knownSchemaDifference struct {
	side    string // "sqlite" or "postgres"
	pattern string // a regular expression over whole lines
	why     string
}

// schemaIgnored are tables outside the schema the migrations define.
var schemaIgnored = map[string]bool{
	"bun_migrations":      true, // bun/migrate's bookkeeping, written by each dialect its own way
	"bun_migration_locks": true,
}

func TestSchemasOfBothDialectsAreEquivalent(t *testing.T) {
	ctx := context.Background()
	lite, err := Open(ctx, filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	pg := mustOpenPostgres(t)

	sqliteLines, err := sqliteSchema(ctx, lite.Bun())
	if err != nil {
		t.Fatalf("reading the SQLite schema: %v", err)
	}
	pgLines, err := postgresSchema(ctx, pg.Bun())
	if err != nil {
		t.Fatalf("reading the PostgreSQL schema: %v", err)
	}
	if len(sqliteLines) < 300 || len(pgLines) < 300 {
		t.Fatalf("read %d SQLite and %d PostgreSQL schema lines: the catalogue queries found too little to compare", len(sqliteLines), len(pgLines))
	}
	for _, problem := range schemaDifferences(sqliteLines, pgLines, schemaKnownDifferences) {
		t.Error(problem)
	}
}

// Each SQLite migration has its PostgreSQL twin, with the same number and
// name, and there is no other.
func TestMigrationSetsHaveTheSameFiles(t *testing.T) {
	names := func(fsys fs.FS, dir string) []string {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".sql") {
				out = append(out, e.Name())
			}
		}
		return out
	}
	lite, pg := names(migrationFiles, "migrations"), names(postgresMigrationFiles, "migrations/postgres")
	if len(lite) < 24 || !slices.Equal(lite, pg) {
		t.Errorf("SQLite migrations %q\nPostgreSQL migrations %q", lite, pg)
	}
}

// schemaDifferences compares the two schemas' lines and returns every
// difference that is not a known one, and every known one that no longer
// happens.
func schemaDifferences(sqliteLines, pgLines []string, known []knownSchemaDifference) []string {
	only := func(a, b []string) []string {
		in := make(map[string]bool, len(b))
		for _, l := range b {
			in[l] = true
		}
		var out []string
		for _, l := range a {
			if !in[l] {
				out = append(out, l)
			}
		}
		return out
	}
	var problems []string
	used := make([]bool, len(known))
	for _, side := range []struct {
		name  string
		lines []string
	}{{"sqlite", only(sqliteLines, pgLines)}, {"postgres", only(pgLines, sqliteLines)}} {
		for _, l := range side.lines {
			expected := false
			for i, k := range known {
				if k.side == side.name && regexp.MustCompile(k.pattern).MatchString(l) {
					expected, used[i] = true, true
				}
			}
			if !expected {
				where := map[string]string{"sqlite": "SQLite (db/migrations)", "postgres": "PostgreSQL (db/migrations/postgres)"}[side.name]
				problems = append(problems, fmt.Sprintf("only in %s: %s", where, l))
			}
		}
	}
	for i, k := range known {
		if !used[i] {
			problems = append(problems, fmt.Sprintf("known difference %q (%s) no longer happens: remove it from schemaKnownDifferences", k.pattern, k.side))
		}
	}
	return problems
}

// sqlCasts matches PostgreSQL's casts in deparsed expressions ('x'::text,
// ARRAY[…]::text[]).
var sqlCasts = regexp.MustCompile(`::[a-z_]+( (with|without) time zone| varying| precision)?(\[\])?`)

// anyArray matches PostgreSQL's rendering of IN (…): = ANY (ARRAY[…]).
var anyArray = regexp.MustCompile(`=\s*any\s*\(array\[(.*?)\]\)`)

// normExpr makes an expression comparable across the dialects: lower-case,
// without PostgreSQL's casts, IN for = ANY (ARRAY[…]), and without blanks,
// parentheses (PostgreSQL adds them around every operand) and identifier
// quotes (it quotes a column named like a keyword, "position"). It
// is a tripwire for a predicate or default that means something else, not
// a parser: it would not tell (a OR b) AND c from a OR (b AND c).
func normExpr(s string) string {
	s = strings.ToLower(s)
	s = sqlCasts.ReplaceAllString(s, "")
	s = anyArray.ReplaceAllString(s, " in ($1)")
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', '(', ')', '"':
			return -1
		}
		return r
	}, s)
}

// queryStrings runs q and returns each row's columns as text (NULL as "").
func queryStrings(ctx context.Context, idb bun.IDB, q string, args ...any) ([][]string, error) {
	rows, err := idb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// ---- SQLite ----

// sqliteFamily is the type family of a column's declared type.
func sqliteFamily(decl string) string {
	switch d := strings.ToUpper(decl); {
	case strings.Contains(d, "INT"):
		return "integer"
	case d == "TEXT":
		return "text"
	case d == "BOOLEAN":
		return "bool"
	case d == "TIMESTAMP":
		return "time"
	case d == "BLOB":
		return "bytes"
	default:
		return "sqlite type " + strings.ToLower(decl)
	}
}

func sqliteSchema(ctx context.Context, idb bun.IDB) ([]string, error) {
	objects, err := queryStrings(ctx, idb, `SELECT type, name, tbl_name, sql FROM sqlite_master
		WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, o := range objects {
		typ, name, table, ddl := o[0], o[1], o[2], o[3]
		if schemaIgnored[table] {
			continue
		}
		switch typ {
		case "table":
			ls, err := sqliteTable(ctx, idb, name, ddl)
			if err != nil {
				return nil, err
			}
			lines = append(lines, ls...)
		case "index":
			if ddl == "" { // an automatic index (UNIQUE, PRIMARY KEY): read with its table
				continue
			}
			l, err := sqliteIndex(ctx, idb, name, table, ddl)
			if err != nil {
				return nil, err
			}
			lines = append(lines, l)
		case "trigger":
			l, err := sqliteTrigger(name, table, ddl)
			if err != nil {
				return nil, err
			}
			lines = append(lines, l)
		case "view":
			cols, err := queryStrings(ctx, idb, "SELECT name FROM pragma_table_info(?) ORDER BY cid", name)
			if err != nil {
				return nil, err
			}
			lines = append(lines, fmt.Sprintf("view %s (%s)", name, joinCol(cols, 0)))
		}
	}
	sort.Strings(lines)
	return lines, nil
}

func joinCol(rows [][]string, i int) string {
	var out []string
	for _, r := range rows {
		out = append(out, r[i])
	}
	return strings.Join(out, ", ")
}

func sqliteTable(ctx context.Context, idb bun.IDB, table, ddl string) ([]string, error) {
	lines := []string{"table " + table}
	cols, err := queryStrings(ctx, idb, `SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, err
	}
	var pk []string
	pkType := ""
	for _, c := range cols {
		if c[4] != "0" {
			pk = append(pk, c[0])
			pkType = c[1]
		}
	}
	withoutRowid := regexp.MustCompile(`(?i)\)\s*WITHOUT\s+ROWID\s*$`).MatchString(ddl)
	// A table's only INTEGER PRIMARY KEY is its rowid: SQLite assigns it when
	// an insert leaves it out, as a PostgreSQL identity column does.
	rowidAlias := len(pk) == 1 && strings.EqualFold(pkType, "INTEGER") && !withoutRowid
	for _, c := range cols {
		name, decl, notNull, dflt, inPK := c[0], c[1], c[2] == "1", c[3], c[4] != "0"
		// A PRIMARY KEY column is NOT NULL in PostgreSQL always; in SQLite a
		// non-integer one may hold NULL for historical reasons unless declared
		// NOT NULL. The store never writes a NULL key, so both count as NOT NULL.
		l := fmt.Sprintf("column %s.%s %s %s", table, name, sqliteFamily(decl), nullText(notNull || inPK))
		if rowidAlias && inPK {
			l += " identity"
		}
		if dflt != "" {
			l += " default=" + normExpr(dflt)
		}
		lines = append(lines, l)
	}
	if len(pk) > 0 {
		lines = append(lines, fmt.Sprintf("pk %s (%s)", table, strings.Join(pk, ", ")))
	}
	idx, err := queryStrings(ctx, idb, `SELECT name FROM pragma_index_list(?) WHERE origin = 'u'`, table)
	if err != nil {
		return nil, err
	}
	for _, ix := range idx {
		ic, err := queryStrings(ctx, idb, "SELECT name FROM pragma_index_info(?) ORDER BY seqno", ix[0])
		if err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("unique %s (%s)", table, joinCol(ic, 0)))
	}
	fks, err := queryStrings(ctx, idb, `SELECT id, "table", "from", "to", on_delete, on_update
		FROM pragma_foreign_key_list(?) ORDER BY id, seq`, table)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(fks); {
		j := i
		var from, to []string
		for ; j < len(fks) && fks[j][0] == fks[i][0]; j++ {
			from, to = append(from, fks[j][2]), append(to, fks[j][3])
		}
		lines = append(lines, fmt.Sprintf("fk %s (%s) -> %s (%s) on delete %s on update %s", table,
			strings.Join(from, ", "), fks[i][1], strings.Join(to, ", "), strings.ToLower(fks[i][4]), strings.ToLower(fks[i][5])))
		i = j
	}
	if n := countChecks(ddl); n > 0 {
		lines = append(lines, fmt.Sprintf("checks %s: %d", table, n))
	}
	return lines, nil
}

func nullText(notNull bool) string {
	if notNull {
		return "not null"
	}
	return "null"
}

// sqlCode returns ddl without its comments and string literals (each
// literal becomes an empty one), so keywords can be found in it.
func sqlCode(ddl string) string {
	var b strings.Builder
	for i := 0; i < len(ddl); i++ {
		switch {
		case strings.HasPrefix(ddl[i:], "--"):
			for i < len(ddl) && ddl[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case ddl[i] == '\'':
			for i++; i < len(ddl); i++ {
				if ddl[i] == '\'' {
					if i+1 < len(ddl) && ddl[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
			b.WriteString("''")
		default:
			b.WriteByte(ddl[i])
		}
	}
	return b.String()
}

var checkKeyword = regexp.MustCompile(`(?i)\bCHECK\s*\(`)

// countChecks counts the CHECK constraints of a CREATE TABLE statement (with
// the columns ALTER TABLE added, which SQLite writes into it).
func countChecks(ddl string) int {
	return len(checkKeyword.FindAllString(sqlCode(ddl), -1))
}

// splitTop splits s at the commas outside parentheses.
func splitTop(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

var indexHead = regexp.MustCompile(`(?is)^CREATE\s+(UNIQUE\s+)?INDEX\s+\w+\s+ON\s+\w+\s*\(`)

// sqliteIndex describes a named index from its CREATE INDEX statement: its
// column list (expressions included, which SQLite's pragmas do not name)
// and its WHERE.
func sqliteIndex(ctx context.Context, idb bun.IDB, name, table, ddl string) (string, error) {
	code := sqlCodeKeepStrings(ddl)
	head := indexHead.FindStringSubmatchIndex(code)
	if head == nil {
		return "", fmt.Errorf("index %s: cannot read %q", name, ddl)
	}
	unique := head[2] >= 0
	depth, end := 1, -1
	for i := head[1]; i < len(code) && end < 0; i++ {
		switch code[i] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				end = i
			}
		}
	}
	if end < 0 {
		return "", fmt.Errorf("index %s: unbalanced %q", name, ddl)
	}
	var cols []string
	for _, c := range splitTop(code[head[1]:end]) {
		cols = append(cols, normExpr(c))
	}
	l := fmt.Sprintf("index %s on %s (%s)", name, table, strings.Join(cols, ", "))
	if unique {
		l += " unique"
	}
	rest := strings.TrimSpace(code[end+1:])
	if len(rest) >= 5 && strings.EqualFold(rest[:5], "WHERE") {
		l += " where " + normExpr(rest[5:])
	} else if rest != "" {
		return "", fmt.Errorf("index %s: unexpected %q after its columns", name, rest)
	}
	// Cross-check the parse with SQLite's own view of the index.
	part, err := queryStrings(ctx, idb, `SELECT partial FROM pragma_index_list(?) WHERE name = ?`, table, name)
	if err != nil {
		return "", err
	}
	if len(part) != 1 || (part[0][0] == "1") != strings.Contains(l, " where ") {
		return "", fmt.Errorf("index %s: read %q, but SQLite says partial = %v", name, l, part)
	}
	return l, nil
}

// sqlCodeKeepStrings drops the comments of ddl and keeps its literals.
func sqlCodeKeepStrings(ddl string) string {
	var b strings.Builder
	inString := false
	for i := 0; i < len(ddl); i++ {
		if !inString && strings.HasPrefix(ddl[i:], "--") {
			for i < len(ddl) && ddl[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
			continue
		}
		if ddl[i] == '\'' {
			inString = !inString
		}
		b.WriteByte(ddl[i])
	}
	return b.String()
}

var (
	triggerHead = regexp.MustCompile(`(?is)^CREATE\s+TRIGGER\s+\w+\s+(BEFORE|AFTER|INSTEAD\s+OF)\s+(INSERT|DELETE|UPDATE)(\s+OF\s+(.+?))?\s+ON\s+(\w+)\s+(FOR\s+EACH\s+ROW\s+)?(WHEN\b)?`)
	triggerBody = regexp.MustCompile(`(?is)\bBEGIN\b`)
	isNotNull   = regexp.MustCompile(`(?i)\bIS\s+NOT\s+NULL\b`)
	isNot       = regexp.MustCompile(`(?i)\bIS\s+NOT\b`)
)

func sqliteTrigger(name, table, ddl string) (string, error) {
	code := sqlCodeKeepStrings(ddl)
	m := triggerHead.FindStringSubmatchIndex(code)
	if m == nil {
		return "", fmt.Errorf("trigger %s: cannot read %q", name, ddl)
	}
	part := func(i int) string {
		if m[2*i] < 0 {
			return ""
		}
		return code[m[2*i]:m[2*i+1]]
	}
	when := ""
	if part(7) != "" {
		body := triggerBody.FindStringIndex(code[m[1]:])
		if body == nil {
			return "", fmt.Errorf("trigger %s: no BEGIN in %q", name, ddl)
		}
		// SQLite's "a IS NOT b" is PostgreSQL's "a IS DISTINCT FROM b"
		// (IS NOT NULL is the same in both).
		when = isNotNull.ReplaceAllString(code[m[1]:m[1]+body[0]], "\x00")
		when = isNot.ReplaceAllString(when, "IS DISTINCT FROM")
		when = normExpr(strings.ReplaceAll(when, "\x00", "IS NOT NULL"))
	}
	return triggerLine(name, table, strings.ToLower(part(1)), strings.ToLower(part(2)), splitList(part(4)), when), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// triggerLine describes a trigger; when is its WHEN condition, normalised.
func triggerLine(name, table, timing, event string, cols []string, when string) string {
	l := fmt.Sprintf("trigger %s: %s %s", name, timing, event)
	if len(cols) > 0 {
		slices.Sort(cols)
		l += " of " + strings.Join(cols, ",")
	}
	l += " on " + table
	if when != "" {
		l += " when " + when
	}
	return l
}

// ---- PostgreSQL ----

// pgFamily is the type family of a PostgreSQL type; only the types the
// PostgreSQL migrations are meant to use have one.
func pgFamily(typ string) string {
	switch typ {
	case "bigint":
		return "integer"
	case "text":
		return "text"
	case "boolean":
		return "bool"
	case "timestamp with time zone":
		return "time"
	case "bytea":
		return "bytes"
	default:
		return "postgres type " + typ + " (want bigint, text, boolean, timestamptz or bytea)"
	}
}

// triggerWhen finds the WHEN condition in pg_get_triggerdef's text.
var triggerWhen = regexp.MustCompile(`(?s) WHEN \((.*)\) EXECUTE FUNCTION `)

var pgFKAction = map[string]string{"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}

// pgColumns lists the columns of a constraint or trigger's int2 array (in
// its order) as one text.
const pgColumns = `(SELECT string_agg(a.attname, ', ' ORDER BY k.ord) FROM unnest(%s) WITH ORDINALITY AS k (num, ord)
	JOIN pg_attribute AS a ON a.attrelid = %s AND a.attnum = k.num)`

func postgresSchema(ctx context.Context, idb bun.IDB) ([]string, error) {
	var lines []string
	rels, err := queryStrings(ctx, idb, `SELECT c.relname, c.relkind FROM pg_class AS c
		JOIN pg_namespace AS n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v') ORDER BY c.relname`)
	if err != nil {
		return nil, err
	}
	for _, r := range rels {
		name, kind := r[0], r[1]
		if schemaIgnored[name] {
			continue
		}
		if kind == "v" {
			cols, err := queryStrings(ctx, idb, `SELECT attname FROM pg_attribute
				WHERE attrelid = ?::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, name)
			if err != nil {
				return nil, err
			}
			lines = append(lines, fmt.Sprintf("view %s (%s)", name, joinCol(cols, 0)))
			continue
		}
		ls, err := postgresTable(ctx, idb, name)
		if err != nil {
			return nil, err
		}
		lines = append(lines, ls...)
	}

	// Named indexes: every index that is not a PRIMARY KEY's or a UNIQUE
	// constraint's (those are read as constraints).
	idx, err := queryStrings(ctx, idb, `SELECT i.relname, t.relname, x.indisunique, am.amname,
			COALESCE(pg_get_expr(x.indpred, x.indrelid, true), ''),
			(SELECT string_agg(pg_get_indexdef(x.indexrelid, k, true), '|' ORDER BY k)
			   FROM generate_series(1, x.indnkeyatts) AS k)
		FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid JOIN pg_class AS t ON t.oid = x.indrelid
		JOIN pg_am AS am ON am.oid = i.relam JOIN pg_namespace AS n ON n.oid = t.relnamespace
		WHERE n.nspname = current_schema()
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x'))
		ORDER BY i.relname`)
	if err != nil {
		return nil, err
	}
	for _, ix := range idx {
		name, table, unique, method, pred, defs := ix[0], ix[1], ix[2] == "true", ix[3], ix[4], ix[5]
		if schemaIgnored[table] {
			continue
		}
		var cols []string
		for _, c := range strings.Split(defs, "|") {
			cols = append(cols, normExpr(c))
		}
		l := fmt.Sprintf("index %s on %s", name, table)
		if method != "btree" {
			l += " using " + method
		}
		l += " (" + strings.Join(cols, ", ") + ")"
		if unique {
			l += " unique"
		}
		if pred != "" {
			l += " where " + normExpr(pred)
		}
		lines = append(lines, l)
	}

	trg, err := queryStrings(ctx, idb, `SELECT g.tgname, c.relname, g.tgtype, pg_get_triggerdef(g.oid, true),
			COALESCE(`+fmt.Sprintf(pgColumns, "g.tgattr::int2[]", "g.tgrelid")+`, '')
		FROM pg_trigger AS g JOIN pg_class AS c ON c.oid = g.tgrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND NOT g.tgisinternal ORDER BY g.tgname`)
	if err != nil {
		return nil, err
	}
	for _, g := range trg {
		var tgtype int
		if _, err := fmt.Sscan(g[2], &tgtype); err != nil {
			return nil, fmt.Errorf("trigger %s: tgtype %q", g[0], g[2])
		}
		// pg_trigger.tgtype bits: 1 row, 2 before, 4 insert, 8 delete,
		// 16 update, 64 instead of.
		timing := "after"
		switch {
		case tgtype&64 != 0:
			timing = "instead of"
		case tgtype&2 != 0:
			timing = "before"
		}
		var events []string
		for _, e := range []struct {
			bit  int
			name string
		}{{4, "insert"}, {8, "delete"}, {16, "update"}} {
			if tgtype&e.bit != 0 {
				events = append(events, e.name)
			}
		}
		event := strings.Join(events, " or ")
		if tgtype&1 == 0 {
			event += " (for each statement)" // SQLite has row triggers only
		}
		when := ""
		if w := triggerWhen.FindStringSubmatch(g[3]); w != nil {
			when = normExpr(w[1])
		}
		lines = append(lines, triggerLine(g[0], g[1], timing, event, splitList(g[4]), when))
	}
	sort.Strings(lines)
	return lines, nil
}

func postgresTable(ctx context.Context, idb bun.IDB, table string) ([]string, error) {
	lines := []string{"table " + table}
	cols, err := queryStrings(ctx, idb, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
			COALESCE(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute AS a LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = ?::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, table)
	if err != nil {
		return nil, err
	}
	for _, c := range cols {
		l := fmt.Sprintf("column %s.%s %s %s", table, c[0], pgFamily(c[1]), nullText(c[2] == "true"))
		switch c[3] {
		case "d":
			l += " identity"
		case "a":
			l += " identity (always: bun could not insert an id of its own)"
		}
		if c[4] != "" {
			l += " default=" + normExpr(c[4])
		}
		lines = append(lines, l)
	}
	cons, err := queryStrings(ctx, idb, `SELECT c.contype,
			COALESCE(`+fmt.Sprintf(pgColumns, "c.conkey", "c.conrelid")+`, ''),
			COALESCE(f.relname, ''),
			COALESCE(`+fmt.Sprintf(pgColumns, "c.confkey", "c.confrelid")+`, ''),
			c.confdeltype, c.confupdtype
		FROM pg_constraint AS c LEFT JOIN pg_class AS f ON f.oid = c.confrelid
		WHERE c.conrelid = ?::regclass ORDER BY c.contype, c.conname`, table)
	if err != nil {
		return nil, err
	}
	checks := 0
	for _, c := range cons {
		switch c[0] {
		case "p":
			lines = append(lines, fmt.Sprintf("pk %s (%s)", table, c[1]))
		case "u":
			lines = append(lines, fmt.Sprintf("unique %s (%s)", table, c[1]))
		case "f":
			lines = append(lines, fmt.Sprintf("fk %s (%s) -> %s (%s) on delete %s on update %s",
				table, c[1], c[2], c[3], pgFKAction[c[4]], pgFKAction[c[5]]))
		case "c":
			checks++
		default:
			lines = append(lines, fmt.Sprintf("constraint %s of kind %q", table, c[0]))
		}
	}
	if checks > 0 {
		lines = append(lines, fmt.Sprintf("checks %s: %d", table, checks))
	}
	return lines, nil
}

// ---- behaviour the catalogue cannot show ----

// TestPostgresRefusesAPaidInvoiceBackToOpen: the guard trigger of 0001
// refuses on PostgreSQL with SQLite's message, as an integrity constraint
// violation (SQLSTATE class 23), the class the store tells refusals by.
func TestPostgresRefusesAPaidInvoiceBackToOpen(t *testing.T) {
	ctx := context.Background()
	d := mustOpenPostgres(t)
	idb := d.Bun()
	for _, q := range []string{
		`INSERT INTO customers (company, contact_email, plan, portal_token_hash, token_created_at, created_at)
		 VALUES ('Acme', 'a@acme.io', 'starter', repeat('a', 64), now(), now())`,
		`INSERT INTO invoices (customer_id, number, currency, amount_cents, status, paid_at, created_at, updated_at)
		 VALUES (1, 'INV-000001', 'usd', 500, 'paid', now(), now(), now())`,
	} {
		if _, err := idb.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, status := range []string{"open", "draft"} {
		_, err := idb.ExecContext(ctx, "UPDATE invoices SET status = ? WHERE id = 1", status)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Fatalf("paid -> %s: err = %v, want the guard's refusal", status, err)
		}
		if pgErr.Message != "invoice: a paid invoice never returns to open" || !strings.HasPrefix(pgErr.Code, "23") {
			t.Errorf("paid -> %s refused with %s %q; want class 23 and SQLite's message", status, pgErr.Code, pgErr.Message)
		}
	}
	if _, err := idb.ExecContext(ctx, "UPDATE invoices SET status = 'refunded' WHERE id = 1"); err != nil {
		t.Errorf("paid -> refunded: %v (the guard must let it through)", err)
	}
	// An unknown plan is refused the same way (0013's customers_plan_known).
	_, err := idb.ExecContext(ctx, "UPDATE customers SET plan = 'nonesuch' WHERE id = 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Message != "customer: unknown plan" || !strings.HasPrefix(pgErr.Code, "23") {
		t.Errorf("unknown plan: err = %v, want class 23 %q", err, "customer: unknown plan")
	}
}

// TestSchemaDifferencesAreReported proves the comparison can fail: a column
// type, a lost partial predicate, a renamed trigger and a missing CHECK each
// show as a difference named on its side, a known difference is let
// through, and one that no longer happens is reported.
func TestSchemaDifferencesAreReported(t *testing.T) {
	base := []string{
		"table t", "column t.a integer not null identity", "checks t: 2",
		"index t_x on t (a) where status='open'", "trigger t_guard: before update of status on t when x",
	}
	for _, c := range []struct {
		line    int
		pg      string
		problem string
	}{
		{1, "column t.a postgres type integer (want bigint…) not null identity", "only in PostgreSQL (db/migrations/postgres): column t.a postgres type integer"},
		{3, "index t_x on t (a)", "only in SQLite (db/migrations): index t_x on t (a) where status='open'"},
		{4, "trigger t_guard2: before update of status on t when x", "only in PostgreSQL (db/migrations/postgres): trigger t_guard2:"},
		{2, "checks t: 1", "only in SQLite (db/migrations): checks t: 2"},
	} {
		pg := slices.Clone(base)
		pg[c.line] = c.pg
		problems := schemaDifferences(base, pg, nil)
		if len(problems) != 2 || !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, c.problem) }) {
			t.Errorf("PostgreSQL line %q: problems %q, want two with %q", c.pg, problems, c.problem)
		}
	}
	known := []knownSchemaDifference{{"postgres", `^index t_search `, "test"}, {"sqlite", `^table gone$`, "test"}}
	problems := schemaDifferences(base, append(slices.Clone(base), "index t_search on t using gin (a)"), known)
	if len(problems) != 1 || !strings.Contains(problems[0], "^table gone$") {
		t.Errorf("problems %q, want only the stale known difference", problems)
	}

	if got, want := normExpr(`((status = ANY (ARRAY['sent'::text, 'dry_run'::text])) AND (kind <> 'portal_link'::text))`),
		normExpr(`status IN ('sent','dry_run') AND kind <> 'portal_link'`); got != want {
		t.Errorf("normExpr: PostgreSQL's IN reads %q, SQLite's %q", got, want)
	}
	l, err := sqliteTrigger("g", "t", "CREATE TRIGGER g AFTER UPDATE OF a, b ON t\nWHEN OLD.a IS NOT NEW.a AND NEW.b IS NOT NULL BEGIN SELECT 1; END")
	if want := "trigger g: after update of a,b on t when old.aisdistinctfromnew.aandnew.bisnotnull"; err != nil || l != want {
		t.Errorf("sqliteTrigger = %q, %v; want %q", l, err, want)
	}
}
