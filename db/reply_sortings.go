package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// The LLM's sortings of replies (migration 0018): each call made for a
// stored reply, its answer and its cost, written with the reply in
// ApplyReply's transaction so that a reply's sorting is paid for and
// recorded once. The kept total reply_sort_cost sums the cost per currency
// for the money cards (Stats.ReplySortCost).

// ReplySorting is one call to the LLM about one reply.
type ReplySorting struct {
	bun.BaseModel `bun:"table:reply_sortings,alias:rs"`

	ID      int64  `bun:"id,pk,autoincrement"`
	ReplyID *int64 `bun:"reply_id"`
	Model   string `bun:"model,notnull"`
	// Class is the LLM's answer, "" when it gave none that could be used.
	Class     string    `bun:"class,notnull"`
	Reason    string    `bun:"reason,notnull"`
	CostCents int64     `bun:"cost_cents,notnull"`
	Currency  string    `bun:"currency,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// LLMSorting is what a reply's call to the LLM gave, for ApplyReply to
// record with the reply.
type LLMSorting struct {
	Model     string
	Class     string // "" when the LLM gave no usable answer
	Reason    string // what it said, or what went wrong
	CostCents int64  // never negative
	Currency  string // the install's default currency, lower case
}

// maxSortingReason bounds a stored LLM reason, in bytes.
const maxSortingReason = 500

// insertReplySorting records s for reply replyID.
func insertReplySorting(ctx context.Context, tx bun.Tx, replyID int64, s LLMSorting, now time.Time) error {
	if s.CostCents < 0 {
		return fmt.Errorf("store: a negative LLM cost (%d cents)", s.CostCents)
	}
	row := &ReplySorting{ReplyID: &replyID, Model: truncate(s.Model, 200), Class: s.Class, Reason: truncate(s.Reason, maxSortingReason),
		CostCents: s.CostCents, Currency: strings.ToLower(s.Currency), CreatedAt: now}
	_, err := tx.NewInsert().Model(row).Exec(ctx)
	return err
}

// ReplySortings are the LLM sortings of reply id, oldest first (a search of
// reply_sortings_reply).
func (d *DB) ReplySortings(ctx context.Context, replyID int64) ([]ReplySorting, error) {
	var out []ReplySorting
	if err := replySortingsQuery(d.bun, &out, replyID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read the sortings of reply %d: %w", replyID, err)
	}
	return out, nil
}

func replySortingsQuery(idb bun.IDB, dst *[]ReplySorting, replyID int64) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).Where("rs.reply_id = ?", replyID).OrderExpr("rs.id")
}

// ReplyStored reports whether the reply in (by its Message-ID, or without
// one its sender, subject and text: ApplyReply's key) is stored already for
// its lead: the Replies agent asks before it pays the LLM to sort a message
// delivered twice. A simulated reply has no key: false. One search of the
// replies_dedupe index.
func (d *DB) ReplyStored(ctx context.Context, in SortedReply) (bool, error) {
	if in.Simulated {
		return false, nil
	}
	var one int
	err := replyStoredQuery(d.bun, in.LeadID, sortedReplyKey(in)).Scan(ctx, &one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: unable to look for the reply of lead %d: %w", in.LeadID, err)
	}
	return true, nil
}

// sortedReplyKey is the dedupe key ApplyReply stores in under.
func sortedReplyKey(in SortedReply) string {
	addr := strings.ToLower(strings.TrimSpace(in.FromAddr))
	return replyDedupeKey(addr, InboundReply{FromAddr: addr, Subject: in.Subject, Body: in.Body, MessageID: in.InboundID})
}

func replyStoredQuery(idb bun.IDB, leadID int64, key string) *bun.SelectQuery {
	return idb.NewSelect().Model((*Reply)(nil)).ColumnExpr("1").
		Where("lead_id = ? AND dedupe_key = ?", leadID, key).Limit(1)
}
