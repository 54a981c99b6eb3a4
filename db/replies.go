package db

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// Replies are what prospects answer to outreach, simulated or inbound. Each
// is stored, and its lead moved to responded, in one transaction; an inbound
// message delivered twice is stored once (replyDedupeKey).

// NewReply is an inbound answer to outreach.
type NewReply struct {
	LeadID                  int64
	FromAddr, Subject, Body string
	Simulated               bool
}

// RecordReply stores a reply and moves its lead from new or contacted to
// responded, in one transaction. A simulated reply is stored only for a lead
// that is contacted and has no reply yet, so the simulator never touches a
// lead twice nor one that moved on; it reports whether it stored the reply.
func (d *DB) RecordReply(ctx context.Context, in NewReply) (bool, error) {
	stored := false
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var l Lead
		if err := tx.NewSelect().Model(&l).Where("l.id = ?", in.LeadID).Scan(ctx); err != nil {
			return notFound(err)
		}
		if in.Simulated {
			n, err := tx.NewSelect().Model((*Reply)(nil)).Where("lead_id = ?", l.ID).Count(ctx)
			if err != nil || n > 0 || l.Status != LeadContacted {
				return err
			}
		}
		now := d.Now()
		r := &Reply{LeadID: l.ID, FromAddr: in.FromAddr, Subject: in.Subject, Body: in.Body, Simulated: in.Simulated, ReceivedAt: now}
		if _, err := tx.NewInsert().Model(r).Exec(ctx); err != nil {
			return err
		}
		stored = true
		_, err := tx.NewUpdate().Model((*Lead)(nil)).
			Set("status = ?, responded_at = ?, updated_at = ?", LeadResponded, now, now).
			Where("id = ? AND status IN (?)", l.ID, bun.List([]string{LeadNew, LeadContacted})).Exec(ctx)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: unable to record reply for lead %d: %w", in.LeadID, err)
	}
	return stored, nil
}

// InboundReply is an e-mail that arrived at the inbound endpoint.
type InboundReply struct {
	FromAddr, Subject, Body string
	// MessageID is the message's Message-ID header ("" when it has none):
	// a second delivery of the same message is stored once.
	MessageID string
}

// InboundResult says what an inbound reply did.
type InboundResult struct {
	// LeadID is the lead the sender is, 0 when no lead has the address
	// (then nothing was stored).
	LeadID int64
	// Responded: the lead moved to responded with this reply.
	Responded bool
	// Duplicate: this message was stored before (the same Message-ID, or
	// without one the same sender, subject and text); nothing changed.
	Duplicate bool
}

// replyDedupeKey names the message a reply comes from: its Message-ID
// (without the angle brackets and spaces around it), or, when it has none,
// its sender, subject and text. Hashed, so the key is short whatever the
// header or the text holds.
func replyDedupeKey(addr string, in InboundReply) string {
	id := strings.Trim(strings.TrimSpace(in.MessageID), "<> \t")
	if id != "" {
		sum := sha256.Sum256([]byte(id))
		return "mid:" + hex.EncodeToString(sum[:])
	}
	h := sha256.New()
	for _, part := range []string{addr, in.Subject, in.Body} {
		// Each part's length first: no two different triples hash alike.
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(part))))
		h.Write([]byte(part))
	}
	return "sum:" + hex.EncodeToString(h.Sum(nil))
}

// RecordInboundReply stores a real (not simulated) reply from the lead whose
// e-mail is the sender's, and moves that lead from new or contacted to
// responded, in one transaction. A sender who is no lead is not stored: mail
// from strangers never creates leads. A message stored before (see
// replyDedupeKey) is not stored again and changes nothing: Duplicate.
func (d *DB) RecordInboundReply(ctx context.Context, in InboundReply) (InboundResult, error) {
	addr := strings.ToLower(strings.TrimSpace(in.FromAddr))
	key := replyDedupeKey(addr, in)
	var out InboundResult
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		id, err := leadIDByEmail(ctx, tx, addr)
		if err != nil || id == 0 {
			return err
		}
		out.LeadID = id
		now := d.Now()
		r := &Reply{LeadID: id, FromAddr: addr, Subject: in.Subject, Body: in.Body, ReceivedAt: now, DedupeKey: &key}
		res, err := tx.NewInsert().Model(r).On("CONFLICT (lead_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING").Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			out.Duplicate = true
			return nil
		}
		res, err = tx.NewUpdate().Model((*Lead)(nil)).
			Set("status = ?, responded_at = ?, updated_at = ?", LeadResponded, now, now).
			Where("id = ? AND status IN (?)", id, bun.List([]string{LeadNew, LeadContacted})).Exec(ctx)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		out.Responded = n > 0
		return nil
	})
	if err != nil {
		return InboundResult{}, fmt.Errorf("store: unable to record the reply from %s: %w", addr, err)
	}
	return out, nil
}
