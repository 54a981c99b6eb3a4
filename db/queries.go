package db

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// MaxPerPage bounds every paged list, whatever the request asks for.
const MaxPerPage = 200

// SearchCountCap bounds how many matches a search counts: past it a list
// says "1,000+" instead of reading every match.
const SearchCountCap = 1000

// ListQuery selects one page of a list, optionally filtered.
type ListQuery struct {
	// Cursor is where the page starts (keyset pagination: stable while new
	// rows arrive, and as cheap on the last page as on the first). The zero
	// Cursor is the first page.
	Cursor Cursor
	// Page is a 1-based page number read by offset, for the JSON API's
	// ?page=; values below 1 mean 1. Ignored when Cursor is set.
	Page    int
	PerPage int    // 0 means the default of 25; capped at MaxPerPage
	Search  string // case-insensitive substring match on the list's text columns
	Status  string // exact status, or "" for all
	// Statuses, when set, selects any of these statuses (invoice lists).
	Statuses []string
	// Agent, for the cycle log, selects one agent's runs ("" for all).
	Agent string
}

func (q ListQuery) normal() ListQuery {
	if q.Page < 1 {
		q.Page = 1
	}
	if q.PerPage <= 0 {
		q.PerPage = 25
	}
	if q.PerPage > MaxPerPage {
		q.PerPage = MaxPerPage
	}
	q.Search = strings.TrimSpace(q.Search)
	if q.Cursor.ID > 0 {
		q.Page = max(q.Cursor.Page, 1)
	}
	return q
}

func (q ListQuery) offset() int { return (q.Page - 1) * q.PerPage }

// statuses is the status filter as a list (nil for all statuses).
func (q ListQuery) statuses() []string {
	if q.Status != "" {
		return append([]string{q.Status}, q.Statuses...)
	}
	return q.Statuses
}

// Cursor is a position in a newest-first list: the rows older than the row
// ID (or, with Newer, the rows newer than it: the way back), and the number
// the reader gives the page it leads to. Only the row's id travels in the
// URL; its sort key is read back by primary key, so stored time formats
// never meet a formatted argument.
type Cursor struct {
	Page  int
	ID    int64
	Newer bool
}

// maxCursorPage bounds the page number a cursor may carry.
const maxCursorPage = 1_000_000

// ParseCursor reads a cursor from a URL ("3-o1234": page 3, the rows older
// than 1234; "2-n1200": page 2, the rows newer than 1200). Anything else is
// the first page.
func ParseCursor(s string) Cursor {
	num, rest, ok := strings.Cut(s, "-")
	if !ok || len(rest) < 2 || (rest[0] != 'o' && rest[0] != 'n') {
		return Cursor{}
	}
	page, err1 := strconv.Atoi(num)
	id, err2 := strconv.ParseInt(rest[1:], 10, 64)
	if err1 != nil || err2 != nil || page < 1 || page > maxCursorPage || id < 1 {
		return Cursor{}
	}
	return Cursor{Page: page, ID: id, Newer: rest[0] == 'n'}
}

// String is the cursor as ParseCursor reads it; "" for the first page.
func (c Cursor) String() string {
	if c.ID < 1 || c.Page < 1 {
		return ""
	}
	dir := "o"
	if c.Newer {
		dir = "n"
	}
	return strconv.Itoa(c.Page) + "-" + dir + strconv.FormatInt(c.ID, 10)
}

// Page describes where a page sits in its list.
type Page struct {
	Number, PerPage, Total int
	// AtLeast says Total is a lower bound: a search stops counting at
	// SearchCountCap matches.
	AtLeast bool
	// At is the cursor that led to this page; Prev and Next lead to its
	// neighbours (Page 0 when there is none).
	At, Prev, Next Cursor
	// Window, for a list whose search looks at a bounded window of rows
	// (the audit log: AuditSearchWindow), is that window's size, and
	// WindowEnded says it ended before the page was full: Next searches on
	// past it.
	Window      int
	WindowEnded bool
}

// Pages is the number of pages (at least 1).
func (p Page) Pages() int {
	if p.Total == 0 || p.PerPage == 0 {
		return max(1, p.Number)
	}
	return max((p.Total+p.PerPage-1)/p.PerPage, p.Number)
}

// HasPrev reports whether newer rows exist before this page.
func (p Page) HasPrev() bool { return p.Prev.Page > 0 }

// HasNext reports whether older rows exist after this page.
func (p Page) HasNext() bool { return p.Next.Page > 0 }

// likePattern escapes a search term for LIKE ... ESCAPE '\'.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// searchWhere adds "any of these columns contains the term" to a query. It
// reads every row the rest of the query selects: the lists with a search
// index use searchIndexed, which falls back to this only for short terms.
func searchWhere(sq *bun.SelectQuery, term string, cols ...string) *bun.SelectQuery {
	if term == "" {
		return sq
	}
	pat := likePattern(term)
	return sq.WhereGroup(" AND ", func(g *bun.SelectQuery) *bun.SelectQuery {
		for _, c := range cols {
			g = g.WhereOr("lower(coalesce("+c+", '')) LIKE ? ESCAPE '\\'", pat)
		}
		return g
	})
}

// SearchUsesIndex reports whether a search term is answered from the
// full-text index: the trigram tokenizer needs three characters. Shorter
// terms are matched by reading the rows (and their count is bounded).
func SearchUsesIndex(term string) bool {
	return utf8.RuneCountInString(strings.TrimSpace(term)) >= 3
}

// ftsPhrase quotes a term as one FTS5 phrase: with the trigram tokenizer, a
// phrase matches exactly the rows that contain the term as a substring.
func ftsPhrase(term string) string {
	return `"` + strings.ReplaceAll(term, `"`, `""`) + `"`
}

// ftsSource is a search index and the id column of the searched table that
// its rowids are.
type ftsSource struct {
	idCol, fts string // "t.id", "tasks_fts"
	// column limits the match to one column of the index ("" for all).
	column string
	// likeCols are the index's columns in the searched table: SQLite reads
	// them for a short term, PostgreSQL for every term (see searchIndexed).
	likeCols []string
	// likeSub, for a source reached through another table (a task's
	// customer), is the fallback subquery selecting matching ids: ? is the
	// LIKE pattern. ilikeSub is PostgreSQL's, matched as searchIndexed
	// matches likeCols there.
	likeSub, ilikeSub string
}

// searchIndexed adds "the term matches any source" to a query.
//
// On SQLite: one probe of each FTS5 index for terms of three characters or
// more, a LIKE over the columns otherwise.
//
// On PostgreSQL, which has no FTS5, the same columns are matched with
// `column ILIKE '%term%'`, each column on its own (never lower() or
// coalesce(), which would hide the column from its index): the pg_trgm GIN
// index of each column (PostgreSQL migration 0004) answers a term of three
// characters or more, and ILIKE is case-insensitive as the trigram tokenizer
// is. A shorter term has no trigram to look up and reads the rows, as on
// SQLite. The term's % _ and \ are escaped, so it matches as a substring.
func searchIndexed(sq *bun.SelectQuery, term string, sources ...ftsSource) *bun.SelectQuery {
	if term == "" {
		return sq
	}
	if sq.Dialect().Name() == dialect.PG {
		return searchILike(sq, term, sources)
	}
	indexed, pat := SearchUsesIndex(term), likePattern(term)
	return sq.WhereGroup(" AND ", func(g *bun.SelectQuery) *bun.SelectQuery {
		for _, s := range sources {
			switch {
			case indexed:
				match := ftsPhrase(term)
				if s.column != "" {
					match = s.column + " : " + match // FTS5's column filter
				}
				g = g.WhereOr(s.idCol+" IN (SELECT rowid FROM "+s.fts+" WHERE "+s.fts+" MATCH ?)", match)
			case s.likeSub != "":
				g = g.WhereOr(s.idCol+" IN ("+s.likeSub+")", pat)
			default:
				for _, c := range s.likeCols {
					g = g.WhereOr("lower(coalesce("+c+", '')) LIKE ? ESCAPE '\\'", pat)
				}
			}
		}
		return g
	})
}

// searchILike is searchIndexed on PostgreSQL: an OR of `col ILIKE pattern`
// over every source's columns.
func searchILike(sq *bun.SelectQuery, term string, sources []ftsSource) *bun.SelectQuery {
	pat := likePattern(term) // ILIKE ignores the lower-casing
	return sq.WhereGroup(" AND ", func(g *bun.SelectQuery) *bun.SelectQuery {
		for _, s := range sources {
			if s.ilikeSub != "" {
				// = ANY (ARRAY(subquery)), not IN (subquery): the array is
				// computed once before the scan (an InitPlan), so the
				// planner can look its ids up in idCol's index and OR that
				// with the trigram indexes' bitmaps; an IN in an OR is a
				// filter, and the list would read its table whole.
				g = g.WhereOr(s.idCol+" = ANY (ARRAY("+s.ilikeSub+"))", pat)
				continue
			}
			for _, c := range s.likeCols {
				g = g.WhereOr(c+" ILIKE ? ESCAPE '\\'", pat)
			}
		}
		return g
	})
}

// customerSearch is the task and invoice lists' search of their customer's
// name (only the name), through the customers' index: customers_fts on
// SQLite, customers_search_company (pg_trgm) on PostgreSQL.
var customerSearch = func(idCol string) ftsSource {
	return ftsSource{idCol: idCol, fts: "customers_fts", column: "company",
		likeSub:  `SELECT id FROM customers WHERE lower(company) LIKE ? ESCAPE '\'`,
		ilikeSub: `SELECT id FROM customers WHERE company ILIKE ? ESCAPE '\'`}
}

// list is how one newest-first list is read.
type list[T any] struct {
	table, alias string
	// sortCol orders the list (newest first), with id breaking ties; an
	// index on (filters…, sortCol, id) lets a page read only its rows.
	sortCol string
	// query builds the select of the rows shown: model, columns, joins.
	query func() *bun.SelectQuery
	// filter adds the list's WHERE clauses (status, owner, search); it
	// needs no join, so the bounded count can reuse it.
	filter func(*bun.SelectQuery) *bun.SelectQuery
	// count is the exact number of rows without a search: a kept total, or
	// an indexed count for one customer's rows.
	count func(ctx context.Context) (int, error)
	id    func(*T) int64
}

// fetch reads one page of l for q into rows.
func (l list[T]) fetch(ctx context.Context, d *DB, q ListQuery, rows *[]T) (Page, error) {
	q = q.normal()
	if err := l.scan(ctx, q, rows); err != nil {
		return Page{}, err
	}
	more := len(*rows) > q.PerPage
	if more {
		*rows = (*rows)[:q.PerPage]
	}
	if q.Cursor.Newer {
		slices.Reverse(*rows)
		if !more { // back at the newest rows: that is the first page
			return l.fetch(ctx, d, ListQuery{PerPage: q.PerPage, Search: q.Search, Status: q.Status, Statuses: q.Statuses, Agent: q.Agent}, rows)
		}
	}
	pg := Page{Number: q.Page, PerPage: q.PerPage, At: q.Cursor}
	if n := len(*rows); n > 0 {
		first, last := l.id(&(*rows)[0]), l.id(&(*rows)[n-1])
		if q.Cursor.Newer || more {
			pg.Next = Cursor{Page: q.Page + 1, ID: last}
		}
		// Rows newer than a cursor's exist (the cursor's own row at least);
		// by offset, the rows of the pages before.
		if q.Cursor.ID > 0 || q.Page > 1 {
			pg.Prev = Cursor{Page: max(q.Page-1, 1), ID: first, Newer: true}
		}
	} else if q.Page > 1 {
		pg.Prev = Cursor{Page: 1} // past the end: back to the start
	}
	var err error
	pg.Total, pg.AtLeast, err = l.total(ctx, d, q)
	return pg, err
}

// scan runs the page query: PerPage+1 rows, so that the extra one tells
// whether more follow, from the cursor (or by offset for the API).
func (l list[T]) scan(ctx context.Context, q ListQuery, rows *[]T) error {
	sq := l.filter(l.query())
	col := l.alias + "." + l.sortCol
	switch {
	case q.Cursor.ID > 0 && q.Cursor.Newer:
		sq = sq.Where(fmt.Sprintf("(%s, %s.id) > (SELECT %s, id FROM %s WHERE id = ?)", col, l.alias, l.sortCol, l.table), q.Cursor.ID).
			OrderExpr(col + " ASC, " + l.alias + ".id ASC")
	case q.Cursor.ID > 0:
		sq = sq.Where(fmt.Sprintf("(%s, %s.id) < (SELECT %s, id FROM %s WHERE id = ?)", col, l.alias, l.sortCol, l.table), q.Cursor.ID).
			OrderExpr(col + " DESC, " + l.alias + ".id DESC")
	default:
		sq = sq.OrderExpr(col + " DESC, " + l.alias + ".id DESC").Offset(int64(q.offset()))
	}
	if err := sq.Limit(int64(q.PerPage+1)).Scan(ctx, rows); err != nil {
		return fmt.Errorf("store: unable to list %s: %w", l.table, err)
	}
	return nil
}

// total counts the list: exactly from l.count without a search, and up to
// SearchCountCap matches with one.
func (l list[T]) total(ctx context.Context, d *DB, q ListQuery) (int, bool, error) {
	if q.Search == "" {
		n, err := l.count(ctx)
		return n, false, err
	}
	inner := l.filter(d.bun.NewSelect().TableExpr(l.table + " AS " + l.alias).ColumnExpr("1")).Limit(int64(SearchCountCap + 1))
	var n int
	if err := d.bun.NewSelect().TableExpr("(?) AS matches", inner).ColumnExpr("COUNT(*)").Scan(ctx, &n); err != nil {
		return 0, false, fmt.Errorf("store: unable to count matching %s: %w", l.table, err)
	}
	if n > SearchCountCap {
		return SearchCountCap, true, nil
	}
	return n, false, nil
}

// kept counts a table from kept_totals, for the given statuses (all when none).
func (d *DB) kept(table string, statuses []string) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		n, err := d.keptCount(ctx, statuses, "metric = ?", table)
		return int(n), err
	}
}

// indexedCount counts the rows a filter selects; for lists of one
// customer, whose rows an index on customer_id bounds.
func (d *DB) indexedCount(table, alias string, filter func(*bun.SelectQuery) *bun.SelectQuery) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		n, err := filter(d.bun.NewSelect().TableExpr(table + " AS " + alias)).Count(ctx)
		if err != nil {
			return 0, fmt.Errorf("store: unable to count %s: %w", table, err)
		}
		return int(n), nil
	}
}
