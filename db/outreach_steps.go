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

// Outreach sequences in the store: the follow-ups due, queued one step at a
// time, each in one transaction that checks the lead is still waiting for
// exactly that step; and the sorted replies that end or delay a sequence.

// dueFollowUpsQuery reads the contacted leads whose next step is due, the
// longest waiting first: a range of the partial index leads_next_step.
func dueFollowUpsQuery(idb bun.IDB, dst *[]Lead, now time.Time, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr(pinned(idb, "leads AS l INDEXED BY leads_next_step")).
		Where("l.status = ? AND l.next_step_at IS NOT NULL AND l.next_step_at <= ?", LeadContacted, now.UTC()).
		OrderExpr("l.next_step_at, l.id").Limit(int64(limit))
}

// DueFollowUps returns up to limit contacted leads whose next follow-up is
// due at now.
func (d *DB) DueFollowUps(ctx context.Context, now time.Time, limit int) ([]Lead, error) {
	var leads []Lead
	if limit <= 0 {
		return leads, nil
	}
	if err := dueFollowUpsQuery(d.bun, &leads, now, limit).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read the due follow-ups: %w", err)
	}
	return leads, nil
}

// QueueFollowUp queues step of lead leadID's sequence, when the lead is
// still contacted, was sent exactly the step before, and its next step is
// due; otherwise (another run queued it, the lead answered) it returns nil
// without error. The lead's next_step_at is cleared in the same
// transaction (MarkSent sets the following one), so the step is queued
// once. compose renders the e-mail knowing the message id.
func (d *DB) QueueFollowUp(ctx context.Context, leadID int64, step int, compose func(l *Lead, messageID int64) (OutboxDraft, error)) (*Message, error) {
	var m *Message
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		m = nil
		now := d.Now()
		l, err := takeDueStep(ctx, tx, leadID, step, now)
		if err != nil || l == nil {
			return err
		}
		m, err = insertComposed(ctx, tx, l, step, now, compose)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: unable to queue step %d for lead %d: %w", step, leadID, err)
	}
	return m, nil
}

// takeDueStep reads lead leadID inside tx when step is its next one and is
// due at now, and clears its next_step_at, so that the step is queued or
// drafted once; nil when the lead no longer qualifies.
//
// Once also across instances on PostgreSQL, by SERIALIZABLE alone: two
// transactions taking the same step both update the lead's row, so the
// second fails (SQLSTATE 40001, the row changed since its snapshot) and
// RunInTx runs it again, when the step is no longer due and nothing is
// queued.
func takeDueStep(ctx context.Context, tx bun.Tx, leadID int64, step int, now time.Time) (*Lead, error) {
	var l Lead
	err := tx.NewSelect().Model(&l).
		Where("l.id = ? AND l.status = ? AND l.email IS NOT NULL AND l.sequence_step = ? AND l.next_step_at IS NOT NULL AND l.next_step_at <= ?",
			leadID, LeadContacted, step-1, now).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := tx.NewUpdate().Model((*Lead)(nil)).Set("next_step_at = NULL, updated_at = ?", now).Where("id = ?", l.ID).Exec(ctx); err != nil {
		return nil, err
	}
	return &l, nil
}

// ThreadOf returns the earlier steps of lead leadID's sequence that left
// (sent or recorded in DRY_RUN) before step, one message per step, in step
// order: what a follow-up threads under.
func (d *DB) ThreadOf(ctx context.Context, leadID int64, step int) ([]Message, error) {
	var msgs []Message
	err := d.bun.NewSelect().Model(&msgs).
		Where("m.lead_id = ? AND m.step < ? AND m.status IN (?)", leadID, step, bun.List([]string{MessageSent, MessageDryRun})).
		OrderExpr("m.step, m.id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read the thread of lead %d: %w", leadID, err)
	}
	out := msgs[:0]
	for i, m := range msgs {
		if i > 0 && out[len(out)-1].Step == m.Step {
			out[len(out)-1] = m // the latest of a step (a dry run sent for real later)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// StopSequence ends lead id's sequence with why (an operator's stop): no
// further follow-up is queued, and the ones already queued are not sent.
func (d *DB) StopSequence(ctx context.Context, id int64, why string) error {
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		return stopSequence(ctx, tx, id, why, d.Now())
	})
	if err != nil {
		return fmt.Errorf("store: unable to stop the sequence of lead %d: %w", id, err)
	}
	return nil
}

func stopSequence(ctx context.Context, tx bun.Tx, leadID int64, why string, now time.Time) error {
	if err := withdrawDrafts(ctx, tx, leadID, why, now); err != nil {
		return err
	}
	if _, err := tx.NewUpdate().Model((*Lead)(nil)).
		Set("next_step_at = NULL, sequence_stop = ?, updated_at = ?", truncate(why, 200), now).
		Where("id = ?", leadID).Exec(ctx); err != nil {
		return err
	}
	_, err := tx.NewUpdate().Model((*Message)(nil)).
		Set("status = ?, error = ?, updated_at = ?", MessageSuppressed, "not sent: "+truncate(why, 200), now).
		Where("lead_id = ? AND step > 1 AND (status = ? OR (status = ? AND attempts < ?))", leadID, MessageQueued, MessageFailed, MaxSendAttempts).Exec(ctx)
	return err
}

// SortedReply is an inbound reply with the decision about it.
type SortedReply struct {
	LeadID    int64
	MessageID *int64 // the outreach message it answers, when known
	FromAddr  string
	Subject   string
	Body      string
	// InboundID is the message's Message-ID header: a second delivery of
	// the same message is stored once.
	InboundID  string
	Class      string
	Reason     string
	By         string     // "rules", "llm" or "operator"
	ReturnDate *time.Time // out of office: when the prospect is back
	Simulated  bool
	// Automatic: a program sent it (an auto-acknowledgement): sorted
	// "other", it is kept but ends no sequence.
	Automatic bool
	// LLM is the LLM's sorting of the reply, recorded with it (and its
	// cost counted) when the reply is stored; nil when the LLM was not
	// asked.
	LLM *LLMSorting
	// Complaint is a spam complaint (a feedback-loop report): the reply is
	// the report, stored once, and the complaint is applied with it
	// (RecordComplaint) to the lead's address and to each of Complained.
	Complaint *ReplyComplaint
}

// ReplyComplaint is the complaint a feedback-loop report carries.
type ReplyComplaint struct {
	// Source names the report: "arf:" and its feedback type or user agent.
	Source string
	// Complained are the addresses the report names (Original-Rcpt-To, the
	// original message's To), lower case; a provider may redact them, and
	// the lead's own address is always suppressed.
	Complained []string
}

// Reply classes (agents.SortReply's).
const (
	ReplyInterested    = "interested"
	ReplyNotNow        = "not_now"
	ReplyNotInterested = "not_interested"
	ReplyOutOfOffice   = "out_of_office"
	ReplyUnsubscribe   = "unsubscribe"
	ReplyBounce        = "bounce"
	ReplyOther         = "other"
)

// ReplyOutcome is what ApplyReply did.
type ReplyOutcome struct {
	Stored    bool   // false: a second delivery, nothing changed
	LeadMoved string // the lead's new status, "" when it kept its own
}

// ApplyReply stores a sorted reply and acts on its class, in one
// transaction: interested moves the lead to responded (Onboarding converts
// it); unsubscribe suppresses the address and the lead; a bounce suppresses
// it as bounced; not interested closes the lead (dead); out of office moves
// the next step to the return date; not now and other end the sequence and
// leave the lead to the operator. Every class but out of office ends the
// sequence (its queued follow-ups are not sent).
func (d *DB) ApplyReply(ctx context.Context, in SortedReply) (ReplyOutcome, error) {
	var out ReplyOutcome
	addr := strings.ToLower(strings.TrimSpace(in.FromAddr))
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		out = ReplyOutcome{}
		var l Lead
		if err := tx.NewSelect().Model(&l).Where("l.id = ?", in.LeadID).Scan(ctx); err != nil {
			return notFound(err)
		}
		if in.Simulated {
			// The simulator answers once per lead, and only a lead still
			// waiting for an answer.
			n, err := tx.NewSelect().Model((*Reply)(nil)).Where("lead_id = ?", l.ID).Count(ctx)
			if err != nil || n > 0 || l.Status != LeadContacted {
				return err
			}
		}
		now := d.Now()
		var key *string
		if !in.Simulated {
			k := sortedReplyKey(in)
			key = &k
		}
		r := &Reply{LeadID: l.ID, FromAddr: addr, Subject: truncate(in.Subject, 500), Body: truncate(in.Body, 20000), Simulated: in.Simulated,
			ReceivedAt: now, DedupeKey: key, Class: in.Class, ClassReason: truncate(in.Reason, 500), ClassBy: in.By, MessageID: in.MessageID}
		// The dedupe is the UNIQUE (lead_id, dedupe_key) index, so it holds
		// across instances: on PostgreSQL a second delivery inserted while
		// the first is uncommitted waits for it, and then (SERIALIZABLE: the
		// row is not in its snapshot) fails with 40001; RunInTx runs it
		// again and it conflicts with the stored reply, changing nothing.
		// A simulated reply (no key) relies on SERIALIZABLE for its "no
		// reply yet" count, as the simulator is one instance's anyway.
		res, err := tx.NewInsert().Model(r).On("CONFLICT (lead_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING").Exec(ctx)
		if err != nil {
			return err
		}
		if affected(res) == 0 {
			return nil
		}
		out.Stored = true
		if in.LLM != nil {
			if r.ID == 0 {
				return errors.New("the stored reply has no id")
			}
			if err := insertReplySorting(ctx, tx, r.ID, *in.LLM, now); err != nil {
				return err
			}
		}
		if in.Complaint != nil {
			return d.actOnComplaint(ctx, tx, l, *in.Complaint, &out)
		}
		return d.actOnReply(ctx, tx, l, addr, in, now, &out)
	})
	if err != nil {
		return ReplyOutcome{}, fmt.Errorf("store: unable to apply the reply from %s: %w", addr, err)
	}
	return out, nil
}

func (d *DB) actOnReply(ctx context.Context, tx bun.Tx, l Lead, addr string, in SortedReply, now time.Time, out *ReplyOutcome) error {
	move := func(status string, from ...string) error {
		res, err := tx.NewUpdate().Model((*Lead)(nil)).Set("status = ?, updated_at = ?", status, now).
			Where("id = ? AND status IN (?)", l.ID, bun.List(from)).Exec(ctx)
		if err == nil && affected(res) > 0 {
			out.LeadMoved = status
		}
		return err
	}
	if in.Class == ReplyOther && in.Automatic {
		return nil
	}
	if in.Class == ReplyOutOfOffice {
		if in.ReturnDate == nil || !in.ReturnDate.After(now) {
			return nil
		}
		if l.NextStepAt == nil {
			// With review on, the next step may wait as a draft (its due
			// time cleared when it was written): withdrawn, and due again
			// on the return date, when BizDev drafts it anew.
			n, err := withdrawnDrafts(ctx, tx, l.ID, "out of office until "+in.ReturnDate.UTC().Format("2 January 2006")+": drafted again then", now)
			if err != nil || n == 0 {
				return err
			}
			_, err = tx.NewUpdate().Model((*Lead)(nil)).Set("next_step_at = ?, updated_at = ?", in.ReturnDate.UTC(), now).
				Where("id = ? AND next_step_at IS NULL AND sequence_stop = ''", l.ID).Exec(ctx)
			return err
		}
		if in.ReturnDate.After(*l.NextStepAt) {
			_, err := tx.NewUpdate().Model((*Lead)(nil)).Set("next_step_at = ?, updated_at = ?", in.ReturnDate.UTC(), now).
				Where("id = ? AND next_step_at IS NOT NULL", l.ID).Exec(ctx)
			return err
		}
		return nil
	}
	if err := stopSequence(ctx, tx, l.ID, "replied: "+strings.ReplaceAll(in.Class, "_", " "), now); err != nil {
		return err
	}
	// An operator's decision also undoes an earlier one: a lead closed by a
	// terse "no" that meant yes is opened again, and the other way round.
	operator := in.By == "operator"
	switch in.Class {
	case ReplyInterested:
		from := []string{LeadNew, LeadContacted}
		if operator {
			from = append(from, LeadDead)
		}
		res, err := tx.NewUpdate().Model((*Lead)(nil)).
			Set("status = ?, responded_at = ?, updated_at = ?", LeadResponded, now, now).
			Where("id = ? AND status IN (?)", l.ID, bun.List(from)).Exec(ctx)
		if err == nil && affected(res) > 0 {
			out.LeadMoved = LeadResponded
		}
		return err
	case ReplyUnsubscribe, ReplyBounce:
		// The lead's own address always (a bounce is about it, and an
		// answer from a colleague unsubscribes the address written to),
		// and the sender's too when it is another one.
		reason := SuppressUnsubscribed
		if in.Class == ReplyBounce {
			reason = SuppressBounced
		}
		targets := []string{l.EmailAddr()}
		if in.Class == ReplyUnsubscribe && addr != "" && addr != l.EmailAddr() {
			targets = append(targets, addr)
		}
		for i, target := range targets {
			if target == "" {
				continue
			}
			lead := l.ID
			if i > 0 {
				lead = 0 // the sender's address: no lead moves for it here
			}
			c, err := d.suppressAndMove(ctx, tx, target, reason, "reply", lead)
			if err != nil {
				return err
			}
			if c.LeadMoved {
				out.LeadMoved = map[string]string{SuppressBounced: LeadBounced, SuppressUnsubscribed: LeadUnsubscribed}[reason]
			}
		}
		return nil
	case ReplyNotInterested:
		if operator {
			return move(LeadDead, LeadNew, LeadContacted, LeadResponded)
		}
		return move(LeadDead, LeadNew, LeadContacted)
	}
	return nil
}

// actOnComplaint applies a feedback-loop report's complaint to the lead's
// own address, through RecordComplaint: the report was matched to a message
// really sent to it (agents' match), and the addresses a report names are
// never acted on beyond that one, so that a forged report cannot suppress
// a list of leads.
func (d *DB) actOnComplaint(ctx context.Context, tx bun.Tx, l Lead, c ReplyComplaint, out *ReplyOutcome) error {
	target := l.EmailAddr()
	if target == "" {
		return nil
	}
	change, err := d.RecordComplaint(ctx, tx, target, c.Source)
	if err != nil {
		return err
	}
	if change.LeadMoved && change.LeadID == l.ID {
		out.LeadMoved = LeadUnsubscribed
	}
	return nil
}

// MessageTarget is where an outreach message went: its lead, the address
// and its status (MessageSent once a provider accepted it for real).
type MessageTarget struct {
	LeadID int64
	To     string
	Status string
}

// MessageLead is the lead an outreach message went to, the address it went
// to and its status; a zero LeadID when there is no such message.
func (d *DB) MessageLead(ctx context.Context, messageID int64) (MessageTarget, error) {
	var row struct {
		LeadID int64  `bun:"lead_id"`
		ToAddr string `bun:"to_addr"`
		Status string `bun:"status"`
	}
	err := d.bun.NewRaw("SELECT lead_id, to_addr, status FROM messages WHERE id = ?", messageID).Scan(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return MessageTarget{}, nil
	}
	if err != nil {
		return MessageTarget{}, fmt.Errorf("store: unable to read message %d: %w", messageID, err)
	}
	return MessageTarget{LeadID: row.LeadID, To: strings.ToLower(row.ToAddr), Status: row.Status}, nil
}

// LeadDryRun reports whether lead id was contacted only in DRY_RUN (a
// primary-key lookup).
func (d *DB) LeadDryRun(ctx context.Context, id int64) (bool, error) {
	var dryRun bool
	err := d.bun.NewSelect().Model((*Lead)(nil)).Column("dry_run").Where("id = ?", id).Scan(ctx, &dryRun)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: unable to read lead %d: %w", id, err)
	}
	return dryRun, nil
}

// LeadNiche is lead id's niche ("" for an unknown lead).
func (d *DB) LeadNiche(ctx context.Context, id int64) (string, error) {
	var niche string
	err := d.bun.NewRaw("SELECT niche FROM leads WHERE id = ?", id).Scan(ctx, &niche)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: unable to read the niche of lead %d: %w", id, err)
	}
	return niche, nil
}

// ReclassifyReply records an operator's decision on reply id: its class
// becomes class (by "operator", with who and the class before as its
// reason) and its lead is acted on for the new class, in one transaction.
// It returns the reply as it was.
func (d *DB) ReclassifyReply(ctx context.Context, id int64, class, admin string) (*Reply, ReplyOutcome, error) {
	old := new(Reply)
	var out ReplyOutcome
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		out = ReplyOutcome{}
		if err := tx.NewSelect().Model(old).Where("id = ?", id).Scan(ctx); err != nil {
			return notFound(err)
		}
		var l Lead
		if err := tx.NewSelect().Model(&l).Where("l.id = ?", old.LeadID).Scan(ctx); err != nil {
			return err
		}
		now := d.Now()
		was := old.Class
		if was == "" {
			was = "unsorted"
		}
		reason := truncate("changed by "+admin+" from "+was, 500)
		if _, err := tx.NewUpdate().Model((*Reply)(nil)).Set("class = ?, class_reason = ?, class_by = 'operator'", class, reason).
			Where("id = ?", id).Exec(ctx); err != nil {
			return err
		}
		return d.actOnReply(ctx, tx, l, old.FromAddr, SortedReply{LeadID: l.ID, FromAddr: old.FromAddr, Class: class, By: "operator"}, now, &out)
	})
	if err != nil {
		return nil, out, fmt.Errorf("store: unable to change the class of reply %d: %w", id, err)
	}
	return old, out, nil
}
