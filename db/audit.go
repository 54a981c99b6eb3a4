package db

import (
	"context"
	"fmt"

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

// ListAudit returns a page of the audit log, newest first.
func (d *DB) ListAudit(ctx context.Context, q ListQuery) ([]AuditEntry, Page, error) {
	q = q.normal()
	var entries []AuditEntry
	l := list[AuditEntry]{table: "audit_log", alias: "a", sortCol: "created_at",
		query: func() *bun.SelectQuery { return d.bun.NewSelect().Model(&entries) },
		filter: func(sq *bun.SelectQuery) *bun.SelectQuery {
			return searchWhere(sq, q.Search, "a.actor", "a.action", "a.target", "a.detail")
		},
		count: d.kept("audit_log", nil),
		id:    func(e *AuditEntry) int64 { return e.ID },
	}
	pg, err := l.fetch(ctx, d, q, &entries)
	return entries, pg, err
}
