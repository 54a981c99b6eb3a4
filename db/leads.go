package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"golang.org/x/net/publicsuffix"
)

// NewLead is what a lead source, an import or an admin supplies for a lead.
type NewLead struct {
	Name, Email, Company, Website, Niche, Source string
	// DomainKey is the registrable domain used for dedupe, or "" when the
	// lead's domain is a free-mail provider.
	DomainKey string
}

// CreateLead stores a new lead unless it duplicates one (lead_dedupe.go):
// the same e-mail, company domain or website, or a company domain that is
// the other's website. A duplicate gets a *DuplicateLeadError that says
// why; IsUniqueViolation is true for it, as for a UNIQUE index that refused
// the row. Pass the transaction the lead is created in as idb: the check
// and the insert then see the same data.
func (d *DB) CreateLead(ctx context.Context, idb bun.IDB, in NewLead) (*Lead, error) {
	now := d.Now()
	l := &Lead{
		Name: in.Name, Company: in.Company, Website: in.Website, Niche: in.Niche,
		Source: in.Source, Status: LeadNew, CreatedAt: now, UpdatedAt: now,
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if email != "" {
		l.Email = &email
	}
	var keys []string
	if k := strings.ToLower(strings.TrimSpace(in.DomainKey)); k != "" {
		l.DomainKey = &k
		keys = append(keys, k)
	}
	if w := WebsiteKey(in.Website); w != "" {
		l.WebsiteKey = &w
		keys = append(keys, w)
		// The website's registrable domain is its company's domain too
		// (shop.acme.com is Acme's, like bob@acme.com).
		if reg, err := publicsuffix.EffectiveTLDPlusOne(w); err == nil && reg != w {
			keys = append(keys, reg)
		}
	}
	if err := duplicateLead(ctx, d.or(idb), email, slices.Compact(slices.Sorted(slices.Values(keys)))); err != nil {
		return nil, err
	}
	if _, err := d.or(idb).NewInsert().Model(l).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to create lead %q: %w", in.Company, err)
	}
	return l, nil
}

// AddLead is CreateLead in a transaction of its own (immediate: it holds
// the write lock from its first statement), for a caller that stores one
// lead at a time. The duplicate check and the insert run in it, so two
// concurrent adds of the same lead cannot both create one. The error is
// CreateLead's, unwrapped: a *DuplicateLeadError, or a constraint violation
// IsUniqueViolation and IsConstraintViolation recognise.
func (d *DB) AddLead(ctx context.Context, in NewLead) (*Lead, error) {
	var l *Lead
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		l, err = d.CreateLead(ctx, tx, in)
		return err
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListLeads returns a page of leads, newest first.
func (d *DB) ListLeads(ctx context.Context, q ListQuery) ([]Lead, Page, error) {
	q = q.normal()
	var leads []Lead
	l := list[Lead]{table: "leads", alias: "l", sortCol: "created_at",
		query: func() *bun.SelectQuery { return d.bun.NewSelect().Model(&leads) },
		filter: func(sq *bun.SelectQuery) *bun.SelectQuery {
			if q.Status != "" {
				sq = sq.Where("l.status = ?", q.Status)
			}
			return searchIndexed(sq, q.Search, ftsSource{idCol: "l.id", fts: "leads_fts",
				likeCols: []string{"l.name", "l.email", "l.company", "l.niche", "l.website"}})
		},
		count: d.kept("leads", q.statuses()),
		id:    func(l *Lead) int64 { return l.ID },
	}
	pg, err := l.fetch(ctx, d, q, &leads)
	return leads, pg, err
}

// newLeadsToContactWhere selects the new leads BizDev can write to. Its first
// terms are the condition of the partial index leads_new_email (created_at,
// id), so the oldest are read in order from an index that holds only new
// leads with an address: the website-only leads, which stay new forever, are
// never stepped over, and neither are the leads whose sequence was ended
// before it started (a first-step draft rejected, an early reply; migration
// 0022). A lead whose first step waits for review (outreach_drafts,
// OUTREACH_REVIEW) is passed over: at most a cycle's worth of them, since
// waiting drafts take a cycle's places.
const newLeadsToContactWhere = "l.status = 'new' AND l.email IS NOT NULL AND l.sequence_stop = '' AND NOT " + liveMessageSQL +
	" AND NOT " + waitingDraftSQL

// newLeadsToContactQuery is NewLeadsToContact's query (the query-plan test
// explains it).
func newLeadsToContactQuery(idb bun.IDB, dst *[]Lead, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr(pinned(idb, "leads AS l INDEXED BY leads_new_email")).Where(newLeadsToContactWhere, MaxSendAttempts).
		OrderExpr("l.created_at, l.id").Limit(int64(limit))
}

// NewLeadsToContact returns up to limit new leads with an e-mail address and
// no live message, oldest first.
func (d *DB) NewLeadsToContact(ctx context.Context, limit int) ([]Lead, error) {
	var leads []Lead
	if limit <= 0 {
		return leads, nil
	}
	err := newLeadsToContactQuery(d.bun, &leads, limit).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to select leads to contact: %w", err)
	}
	return leads, nil
}

// ContactedWithoutReply returns up to limit leads with id above afterID that
// are contacted, were contacted at or before contactedBy, and have no reply,
// in id order (the caller pages with the last id).
func (d *DB) ContactedWithoutReply(ctx context.Context, contactedBy time.Time, afterID int64, limit int) ([]Lead, error) {
	var leads []Lead
	err := d.bun.NewSelect().Model(&leads).
		Where("l.status = ? AND l.contacted_at <= ? AND l.id > ?", LeadContacted, contactedBy.UTC(), afterID).
		Where("NOT EXISTS (SELECT 1 FROM replies AS r WHERE r.lead_id = l.id)").
		OrderExpr("l.id").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to select contacted leads: %w", err)
	}
	return leads, nil
}

// LeadCursor is a position in the order of contact, (contacted_at, id). The
// zero cursor is before every lead.
type LeadCursor struct {
	ContactedAt time.Time
	ID          int64
}

// contactedAfterWhere selects contacted leads after a cursor (?1, ?2) and
// contacted at or before ?0, without a reply. Its first term is the
// condition of the partial index leads_contacted (contacted_at, id), so the
// rows are a range of that index read in order from the cursor; each reply
// check is a probe of replies_lead.
const contactedAfterWhere = `l.status = 'contacted' AND l.contacted_at <= ?0
	AND (l.contacted_at, l.id) > (?1, ?2)
	AND NOT EXISTS (SELECT 1 FROM replies AS r WHERE r.lead_id = l.id)`

// contactedAfterQuery is ContactedAfter's query.
func contactedAfterQuery(idb bun.IDB, dst *[]Lead, contactedBy time.Time, after LeadCursor, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr(pinned(idb, "leads AS l INDEXED BY leads_contacted")).
		Where(contactedAfterWhere, contactedBy.UTC(), after.ContactedAt.UTC(), after.ID).
		OrderExpr("l.contacted_at, l.id").Limit(int64(limit))
}

// ContactedAfter returns up to limit leads after cursor in the order of
// contact that are contacted, were contacted at or before contactedBy, and
// have no reply. The caller pages with the last lead's (ContactedAt, ID); a
// caller that keeps its cursor between runs reads each lead once, as a lead
// contacted later is always after it.
func (d *DB) ContactedAfter(ctx context.Context, contactedBy time.Time, after LeadCursor, limit int) ([]Lead, error) {
	var leads []Lead
	if limit <= 0 {
		return leads, nil
	}
	if err := contactedAfterQuery(d.bun, &leads, contactedBy, after, limit).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to select contacted leads: %w", err)
	}
	return leads, nil
}

// respondedLeadsQuery is RespondedLeads' query: the first rows of the
// partial index leads_responded (responded_at, id), whose condition its
// WHERE spells, read in order and stopped at limit.
func respondedLeadsQuery(idb bun.IDB, dst *[]Lead, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr(pinned(idb, "leads AS l INDEXED BY leads_responded")).Where("l.status = 'responded'").
		OrderExpr("l.responded_at, l.id").Limit(int64(limit))
}

// RespondedLeads returns up to limit leads waiting to be converted, the ones
// that answered first first.
func (d *DB) RespondedLeads(ctx context.Context, limit int) ([]Lead, error) {
	var leads []Lead
	err := respondedLeadsQuery(d.bun, &leads, limit).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to list responded leads: %w", err)
	}
	return leads, nil
}

// LeadIDByEmail is the id of the lead with e-mail addr (lower-cased by the
// caller), or 0: one search of the UNIQUE index on leads.email. The lead
// source asks it to name a duplicate.
func (d *DB) LeadIDByEmail(ctx context.Context, addr string) (int64, error) {
	id, err := leadIDByEmail(ctx, d.bun, addr)
	if err != nil {
		return 0, fmt.Errorf("store: unable to look up lead %s: %w", addr, err)
	}
	return id, nil
}

// leadIDByEmailQuery is leadIDByEmail's query.
func leadIDByEmailQuery(idb bun.IDB, addr string) *bun.SelectQuery {
	return idb.NewSelect().Model((*Lead)(nil)).Column("id").Where("email = ?", addr)
}

// leadIDByEmail is the id of the lead with e-mail addr (lower-cased), or 0.
func leadIDByEmail(ctx context.Context, idb bun.IDB, addr string) (int64, error) {
	var id int64
	err := leadIDByEmailQuery(idb, addr).Scan(ctx, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// setLead updates lead id with set, only while the lead is still new: a lead
// that moved on (responded, converted, dead) is never pulled back.
func setLead(ctx context.Context, idb bun.IDB, id int64, now time.Time, set string, args ...any) error {
	_, err := idb.NewUpdate().Model((*Lead)(nil)).Set(set, args...).Set("updated_at = ?", now).
		Where("id = ? AND status = ?", id, LeadNew).Exec(ctx)
	return err
}

func setLeadStatus(ctx context.Context, tx bun.Tx, leadID int64, status string, now time.Time) error {
	q := tx.NewUpdate().Model((*Lead)(nil)).
		Set("status = ?", status).Set("updated_at = ?", now).
		Where("id = ?", leadID)
	if status == LeadConverted {
		q = q.Set("converted_at = ?", now)
	}
	_, err := q.Exec(ctx)
	return err
}
