package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/uptrace/bun"
)

// RecordAudit appends an entry to the audit log, stamped with the store's
// clock when e.CreatedAt is zero.
func (d *DB) RecordAudit(ctx context.Context, e AuditEntry) error {
	e.ID = 0
	if e.CreatedAt.IsZero() {
		e.CreatedAt = d.Now()
	}
	e.CreatedAt = e.CreatedAt.UTC()
	if _, err := d.bun.NewInsert().Model(&e).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to record audit entry %q: %w", e.Action, err)
	}
	return nil
}

// AuditSearchWindow bounds a search of the audit log: one page looks at
// most at this many entries, from its cursor on. The log has no text index
// (its entries are short, and an index of every entry would cost every
// action a write), so a search that read the whole log for a rare term
// would read it at every keystroke; the window keeps each request to one
// walk of this many rows of audit_log_created, whatever the log's size.
// When the window ends before a page is full, the page says so and its
// Next link searches on from where the window stopped.
const AuditSearchWindow = 5000

// ListAudit returns a page of the audit log, newest first. A search
// matches actor, action and target (case-insensitive substring) within
// AuditSearchWindow entries from the page's cursor (Page.Window says when
// that window ended before the page was full).
func (d *DB) ListAudit(ctx context.Context, q ListQuery) ([]AuditEntry, Page, error) {
	q = q.normal()
	if q.Search != "" {
		return d.searchAudit(ctx, q, AuditSearchWindow)
	}
	var entries []AuditEntry
	l := list[AuditEntry]{table: "audit_log", alias: "a", sortCol: "created_at",
		query:  func() *bun.SelectQuery { return d.bun.NewSelect().Model(&entries) },
		filter: func(sq *bun.SelectQuery) *bun.SelectQuery { return sq },
		count:  d.kept("audit_log", nil),
		id:     func(e *AuditEntry) int64 { return e.ID },
	}
	pg, err := l.fetch(ctx, d, q, &entries)
	return entries, pg, err
}

// auditWindowSQL is the window of a search: up to ? entries from a cursor,
// in the page's direction, walked on audit_log_created. %s is the cursor
// condition and the order.
const auditWindowSQL = `SELECT id, actor, action, target, detail, remote_addr, created_at FROM audit_log INDEXED BY audit_log_created %s LIMIT ?`

// searchAudit reads one page of the entries matching q.Search, looking at
// no more than window entries.
func (d *DB) searchAudit(ctx context.Context, q ListQuery, window int) ([]AuditEntry, Page, error) {
	newer := q.Cursor.ID > 0 && q.Cursor.Newer
	var cond []any
	where, dir := "", "DESC"
	switch {
	case newer:
		where, dir = "WHERE (created_at, id) > (SELECT created_at, id FROM audit_log WHERE id = ?)", "ASC"
		cond = append(cond, q.Cursor.ID)
	case q.Cursor.ID > 0:
		where = "WHERE (created_at, id) < (SELECT created_at, id FROM audit_log WHERE id = ?)"
		cond = append(cond, q.Cursor.ID)
	}
	inner := d.pin(fmt.Sprintf(auditWindowSQL, where+" ORDER BY created_at "+dir+", id "+dir))
	pat := likePattern(q.Search)
	match := `(lower(w.actor) LIKE ? ESCAPE '\' OR lower(w.action) LIKE ? ESCAPE '\' OR lower(w.target) LIKE ? ESCAPE '\')`
	// The window is a subquery with its own LIMIT, which SQLite runs as a
	// co-routine yielding rows in its index order; the page keeps them in
	// that order (and sorts at most PerPage+1 of them). PostgreSQL gives no
	// such promise for the rows of a subquery, so there the outer query
	// orders them again (a top-N sort of the window's matches).
	outer := ""
	if d.Postgres() {
		outer = "ORDER BY w.created_at " + dir + ", w.id " + dir
	}
	args := append(append([]any{}, cond...), window, pat, pat, pat, q.PerPage+1)
	var entries []AuditEntry
	err := d.bun.NewRaw(`SELECT w.* FROM (`+inner+`) AS w WHERE `+match+` `+outer+` LIMIT ?`, args...).Scan(ctx, &entries)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, Page{}, fmt.Errorf("store: unable to search the audit log: %w", err)
	}
	more := len(entries) > q.PerPage
	if more {
		entries = entries[:q.PerPage]
	}
	// Where the window ended, when it was full: the rows past it are not
	// searched yet.
	var edge int64
	if !more {
		err := d.bun.NewRaw(`SELECT w.id FROM (`+inner+`) AS w `+outer+` LIMIT 1 OFFSET ?`, append(append([]any{}, cond...), window, window-1)...).Scan(ctx, &edge)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, Page{}, fmt.Errorf("store: unable to search the audit log: %w", err)
		}
	}
	if newer {
		slices.Reverse(entries)
		if !more && edge == 0 { // back at the newest entries: the first page
			return d.searchAudit(ctx, ListQuery{PerPage: q.PerPage, Search: q.Search}, window)
		}
	}
	pg := Page{Number: q.Page, PerPage: q.PerPage, At: q.Cursor, Window: window}
	n := len(entries)
	switch {
	case newer && n > 0:
		pg.Next = Cursor{Page: q.Page + 1, ID: entries[n-1].ID}
	case more:
		pg.Next = Cursor{Page: q.Page + 1, ID: entries[n-1].ID}
	case edge > 0: // the window ended first: search on past it
		pg.Next, pg.WindowEnded = Cursor{Page: q.Page + 1, ID: edge}, true
	}
	if q.Cursor.ID > 0 {
		switch {
		case n > 0:
			pg.Prev = Cursor{Page: max(q.Page-1, 1), ID: entries[0].ID, Newer: true}
		case !newer:
			pg.Prev = Cursor{Page: max(q.Page-1, 1), ID: q.Cursor.ID, Newer: true}
		}
	}
	if newer && edge > 0 && n == 0 {
		pg.Prev = Cursor{Page: max(q.Page-1, 1), ID: edge, Newer: true}
	}
	// A page of a search counts the matches in its window only: past a
	// window, the count would read the log whole.
	var total int
	err = d.bun.NewRaw(`SELECT COUNT(*) FROM (`+inner+`) AS w WHERE `+match, append(append([]any{}, cond...), window, pat, pat, pat)...).Scan(ctx, &total)
	if err != nil {
		return nil, Page{}, fmt.Errorf("store: unable to count audit matches: %w", err)
	}
	pg.Total, pg.AtLeast = total+(q.Page-1)*q.PerPage, edge > 0 || more
	return entries, pg, nil
}
