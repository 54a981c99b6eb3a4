package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// Outreach drafts: with the review switch on (OUTREACH_REVIEW), BizDev
// writes each step of a lead's sequence as a draft (migration 0017) and an
// admin decides on it. Approval puts the message into the outbox in the
// same transaction, so it is capped, checked against the suppressions at
// send time and sent at most once like any other; rejection ends the
// lead's sequence; a reply, bounce or unsubscribe withdraws it.

// OutreachDraft is one drafted step of a lead's sequence.
type OutreachDraft struct {
	bun.BaseModel `bun:"table:outreach_drafts,alias:od"`

	ID       int64  `bun:"id,pk,autoincrement"`
	LeadID   int64  `bun:"lead_id,notnull"`
	Step     int    `bun:"step,notnull"`
	Template string `bun:"template,notnull"`
	ToAddr   string `bun:"to_addr,notnull"`
	Subject  string `bun:"subject,notnull"`
	// Body is the e-mail without its unsubscribe footer (added on
	// approval: it names the outbox message).
	Body string `bun:"body,notnull"`
	// InReplyTo and References thread a follow-up under the steps before
	// it, as they were when it was drafted.
	InReplyTo  string     `bun:"in_reply_to,notnull"`
	References string     `bun:"refs,notnull"`
	Status     string     `bun:"status,notnull"`
	Revision   int        `bun:"revision,notnull"`
	Reason     string     `bun:"reason,notnull"` // why it was withdrawn
	MessageID  *int64     `bun:"message_id"`     // the outbox message it became
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	UpdatedAt  time.Time  `bun:"updated_at,notnull"`
	DecidedAt  *time.Time `bun:"decided_at"`
	DecidedBy  string     `bun:"decided_by,notnull"`
}

// Draft statuses.
const (
	DraftWaiting   = "waiting"
	DraftApproved  = "approved"
	DraftRejected  = "rejected"
	DraftWithdrawn = "withdrawn"
)

// Limits of a draft's text (the CHECKs of migration 0017).
const (
	MaxDraftSubjectChars = 200
	MaxDraftBodyChars    = 10000
)

// DraftRejectedStop is the sequence_stop of a lead whose draft an admin
// rejected.
const DraftRejectedStop = "draft rejected"

// ErrBadDraft is a subject or body a draft cannot take (CheckDraftText).
var ErrBadDraft = errors.New("bad draft")

// CheckDraftText says what is wrong with a draft's subject and body, or
// nil: a subject of one line, 1 to MaxDraftSubjectChars characters, and a
// body of 1 to MaxDraftBodyChars characters, both text (TextProblem).
func CheckDraftText(subject, body string) error {
	var problems []string
	switch {
	case strings.TrimSpace(subject) == "":
		problems = append(problems, "the subject is empty")
	case strings.ContainsAny(subject, "\r\n"):
		problems = append(problems, "the subject must be one line")
	case utf8.RuneCountInString(subject) > MaxDraftSubjectChars:
		problems = append(problems, fmt.Sprintf("the subject is longer than %d characters", MaxDraftSubjectChars))
	case TextProblem(subject) != "":
		problems = append(problems, "the subject holds "+TextProblem(subject))
	}
	switch {
	case strings.TrimSpace(body) == "":
		problems = append(problems, "the body is empty")
	case utf8.RuneCountInString(body) > MaxDraftBodyChars:
		problems = append(problems, fmt.Sprintf("the body is longer than %d characters", MaxDraftBodyChars))
	case TextProblem(body) != "":
		problems = append(problems, "the body holds "+TextProblem(body))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrBadDraft, strings.Join(problems, "; "))
	}
	return nil
}

// DraftText is a rendered step for review.
type DraftText struct {
	Template, Subject, Body string
	InReplyTo, References   string
}

// waitingDraftSQL is true when lead l has a waiting draft: a probe of the
// partial unique index outreach_drafts_waiting_step.
const waitingDraftSQL = `EXISTS (SELECT 1 FROM outreach_drafts AS od WHERE od.lead_id = l.id AND od.status = 'waiting')`

// DraftFirstStep drafts the first e-mail of lead leadID when BizDev would
// queue it (QueueMessage's conditions) and it has no waiting draft; it
// returns nil without error when the lead no longer qualifies.
//
// Two instances drafting one lead at once write one draft: the UNIQUE index
// of waiting drafts by (lead_id, step) takes the second insert to its ON
// CONFLICT, which on PostgreSQL (SERIALIZABLE, the first draft not in its
// snapshot) aborts with SQLSTATE 40001; RunInTx runs it again, and then the
// lead has a waiting draft and is passed over.
func (d *DB) DraftFirstStep(ctx context.Context, leadID int64, compose func(l *Lead) (DraftText, error)) (*OutreachDraft, error) {
	var out *OutreachDraft
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		out = nil
		var l Lead
		err := tx.NewSelect().Model(&l).
			Where("l.id = ? AND "+newLeadsToContactWhere, leadID, MaxSendAttempts).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		out, err = insertDraft(ctx, tx, &l, 1, d.Now(), compose)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: unable to draft the first e-mail of lead %d: %w", leadID, err)
	}
	return out, nil
}

// DraftFollowUp drafts step of lead leadID's sequence when QueueFollowUp
// would queue it, and clears the lead's next_step_at in the same
// transaction (approval sends it; MarkSentStep sets the next one), so the
// step is drafted once. It returns nil without error when the lead no
// longer qualifies.
func (d *DB) DraftFollowUp(ctx context.Context, leadID int64, step int, compose func(l *Lead) (DraftText, error)) (*OutreachDraft, error) {
	var out *OutreachDraft
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		out = nil
		now := d.Now()
		l, err := takeDueStep(ctx, tx, leadID, step, now)
		if err != nil || l == nil {
			return err
		}
		out, err = insertDraft(ctx, tx, l, step, now, compose)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: unable to draft step %d for lead %d: %w", step, leadID, err)
	}
	return out, nil
}

// insertDraft writes a waiting draft of step for lead l; nil when the lead
// has one for that step already.
func insertDraft(ctx context.Context, tx bun.Tx, l *Lead, step int, now time.Time, compose func(l *Lead) (DraftText, error)) (*OutreachDraft, error) {
	text, err := compose(l)
	if err != nil {
		return nil, err
	}
	if err := CheckDraftText(text.Subject, text.Body); err != nil {
		return nil, err
	}
	dr := &OutreachDraft{LeadID: l.ID, Step: step, Template: text.Template, ToAddr: l.EmailAddr(), Subject: text.Subject, Body: text.Body,
		InReplyTo: text.InReplyTo, References: text.References, Status: DraftWaiting, Revision: 1, CreatedAt: now, UpdatedAt: now}
	res, err := tx.NewInsert().Model(dr).On("CONFLICT (lead_id, step) WHERE status = 'waiting' DO NOTHING").Exec(ctx)
	if err != nil {
		return nil, err
	}
	if affected(res) == 0 {
		return nil, nil
	}
	return dr, nil
}

// waitingDraftCountSQL counts the waiting drafts: a scan of the partial
// index outreach_drafts_waiting, as long as the review queue.
const waitingDraftCountSQL = "SELECT COUNT(*) FROM outreach_drafts AS od INDEXED BY outreach_drafts_waiting WHERE od.status = 'waiting'"

// WaitingDraftCount counts the drafts waiting for review.
func (d *DB) WaitingDraftCount(ctx context.Context) (int, error) {
	var n int
	if err := d.bun.NewRaw(d.pin(waitingDraftCountSQL)).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("store: unable to count the waiting drafts: %w", err)
	}
	return n, nil
}

// WaitingDraft is a waiting draft with its lead.
type WaitingDraft struct {
	OutreachDraft
	LeadName    string `bun:"lead_name"`
	LeadCompany string `bun:"lead_company"`
	LeadNiche   string `bun:"lead_niche"`
}

// waitingDraftsSQL reads the oldest waiting drafts in arrival order from
// the partial index outreach_drafts_waiting, each with its lead by primary
// key, stopped at the LIMIT (?0).
const waitingDraftsSQL = `SELECT od.*, l.name AS lead_name, l.company AS lead_company, l.niche AS lead_niche
	FROM outreach_drafts AS od INDEXED BY outreach_drafts_waiting
	JOIN leads AS l ON l.id = od.lead_id
	WHERE od.status = 'waiting'
	ORDER BY od.created_at, od.id LIMIT ?0`

// WaitingDrafts returns up to limit waiting drafts, the oldest first.
func (d *DB) WaitingDrafts(ctx context.Context, limit int) ([]WaitingDraft, error) {
	var out []WaitingDraft
	if limit <= 0 {
		return out, nil
	}
	if err := d.bun.NewRaw(d.pin(waitingDraftsSQL), limit).Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("store: unable to read the waiting drafts: %w", err)
	}
	return out, nil
}

// waitingDraftStepsSQL finds the waiting drafts of a list of leads (?0):
// probes of outreach_drafts_waiting_step, one per lead.
const waitingDraftStepsSQL = "SELECT lead_id, step FROM outreach_drafts AS od INDEXED BY outreach_drafts_waiting_step WHERE od.status = 'waiting' AND od.lead_id IN (?0)"

// WaitingDraftSteps maps each of leadIDs with a waiting draft to the
// step drafted.
func (d *DB) WaitingDraftSteps(ctx context.Context, leadIDs []int64) (map[int64]int, error) {
	out := map[int64]int{}
	if len(leadIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		LeadID int64 `bun:"lead_id"`
		Step   int   `bun:"step"`
	}
	if err := d.bun.NewRaw(d.pin(waitingDraftStepsSQL), bun.List(leadIDs)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: unable to read the leads' waiting drafts: %w", err)
	}
	for _, r := range rows {
		out[r.LeadID] = r.Step
	}
	return out, nil
}

// LeadDrafts returns lead leadID's drafts, the newest first, at most limit.
func (d *DB) LeadDrafts(ctx context.Context, leadID int64, limit int) ([]OutreachDraft, error) {
	var out []OutreachDraft
	err := d.bun.NewSelect().Model(&out).ModelTableExpr(d.pin("outreach_drafts AS od INDEXED BY outreach_drafts_lead")).
		Where("od.lead_id = ?", leadID).OrderExpr("od.id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to read the drafts of lead %d: %w", leadID, err)
	}
	return out, nil
}

// Draft reads draft id.
func (d *DB) Draft(ctx context.Context, id int64) (*OutreachDraft, error) {
	dr := new(OutreachDraft)
	if err := d.bun.NewSelect().Model(dr).Where("od.id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read draft %d: %w", id, notFound(err))
	}
	return dr, nil
}

// DraftOutcome is what a decision on a draft did.
type DraftOutcome struct {
	// Draft is the draft as it is now.
	Draft OutreachDraft
	// Done: the decision was made. Otherwise Refused says why not, in a
	// sentence for the operator.
	Done    bool
	Refused string
	// MessageID is the outbox message an approval queued.
	MessageID int64
}

// decideDraft runs decide on draft id in one transaction, after checking
// that it is still waiting and, when revision > 0, still the revision the
// operator saw. A draft that is gone is ErrNotFound.
//
// A draft is decided once, also by two instances at once on PostgreSQL:
// both read it waiting, both update it, and SERIALIZABLE lets only the
// first commit (the second fails with SQLSTATE 40001 at its update, as the
// row changed since its snapshot); RunInTx runs the second again, which then
// finds the draft decided and refuses (draftDecidedText). A row lock would
// not spare that retry, as a SERIALIZABLE transaction may not lock a row
// changed after its snapshot. So an approval queues one message.
func (d *DB) decideDraft(ctx context.Context, id int64, revision int, verb string, decide func(ctx context.Context, tx bun.Tx, dr *OutreachDraft, now time.Time, out *DraftOutcome) error) (DraftOutcome, error) {
	var out DraftOutcome
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		out = DraftOutcome{}
		var dr OutreachDraft
		if err := tx.NewSelect().Model(&dr).Where("od.id = ?", id).Scan(ctx); err != nil {
			return notFound(err)
		}
		out.Draft = dr
		if dr.Status != DraftWaiting {
			out.Refused = draftDecidedText(&dr)
			return nil
		}
		if revision > 0 && dr.Revision != revision {
			out.Refused = fmt.Sprintf("draft %d was edited since it was shown (it is at revision %d, the page showed %d): look at it again", dr.ID, dr.Revision, revision)
			return nil
		}
		if err := decide(ctx, tx, &dr, d.Now(), &out); err != nil {
			return err
		}
		return tx.NewSelect().Model(&out.Draft).Where("od.id = ?", id).Scan(ctx)
	})
	if err != nil {
		return DraftOutcome{}, fmt.Errorf("store: unable to %s draft %d: %w", verb, id, err)
	}
	return out, nil
}

// draftDecidedText says what became of a draft that no longer waits.
func draftDecidedText(dr *OutreachDraft) string {
	switch dr.Status {
	case DraftWithdrawn:
		return fmt.Sprintf("draft %d was withdrawn: %s", dr.ID, dr.Reason)
	case DraftApproved:
		return fmt.Sprintf("draft %d was approved already, by %s", dr.ID, dr.DecidedBy)
	}
	return fmt.Sprintf("draft %d was %s already, by %s", dr.ID, dr.Status, dr.DecidedBy)
}

// ApproveDraft approves draft id (at revision, or any when revision is 0)
// for by: in one transaction, it queues the draft's step in the outbox,
// composed by compose knowing the message id (the unsubscribe footer), and
// marks the draft approved. A draft whose lead no longer qualifies for the
// step (it replied, bounced, was unsubscribed or stopped, or has another
// message in the outbox) is withdrawn instead, and the outcome says why.
func (d *DB) ApproveDraft(ctx context.Context, id int64, revision int, by string, compose func(dr *OutreachDraft, messageID int64) (OutboxDraft, error)) (DraftOutcome, error) {
	return d.decideDraft(ctx, id, revision, "approve", func(ctx context.Context, tx bun.Tx, dr *OutreachDraft, now time.Time, out *DraftOutcome) error {
		var l Lead
		if err := tx.NewSelect().Model(&l).Where("l.id = ?", dr.LeadID).Scan(ctx); err != nil {
			return err
		}
		problem, err := draftLeadProblem(ctx, tx, &l, dr.Step)
		if err != nil {
			return err
		}
		if problem != "" {
			out.Refused = fmt.Sprintf("draft %d was not sent and is withdrawn: %s", dr.ID, problem)
			return setDraft(ctx, tx, dr.ID, now, "status = ?, reason = ?, decided_at = ?", DraftWithdrawn, clipRunes(problem, 200), now)
		}
		m, err := insertComposed(ctx, tx, &l, dr.Step, now, func(_ *Lead, messageID int64) (OutboxDraft, error) {
			return compose(dr, messageID)
		})
		if err != nil {
			return err
		}
		out.Done, out.MessageID = true, m.ID
		return setDraft(ctx, tx, dr.ID, now, "status = ?, message_id = ?, decided_at = ?, decided_by = ?", DraftApproved, m.ID, now, clipRunes(by, 200))
	})
}

// draftLeadProblem says why lead l may not be sent step now, or "".
func draftLeadProblem(ctx context.Context, tx bun.Tx, l *Lead, step int) (string, error) {
	want := LeadNew
	if step > 1 {
		want = LeadContacted
	}
	switch {
	case l.Status != want:
		return "the lead is " + l.Status + " now", nil
	case l.Email == nil:
		return "the lead has no e-mail address", nil
	case l.SequenceStop != "":
		return "the lead's sequence ended (" + l.SequenceStop + ")", nil
	case step > 1 && l.SequenceStep != step-1:
		return "the lead is at step " + strconv.Itoa(l.SequenceStep) + " of its sequence now", nil
	}
	if step > 1 {
		return "", nil
	}
	live, err := tx.NewSelect().Model((*Lead)(nil)).Where("l.id = ? AND "+liveMessageSQL, l.ID, MaxSendAttempts).Exists(ctx)
	if err != nil || !live {
		return "", err
	}
	return "the lead has a message in the outbox already", nil
}

// EditDraft replaces draft id's subject and body (at revision, or any when
// revision is 0) and counts the revision up; the draft keeps waiting.
func (d *DB) EditDraft(ctx context.Context, id int64, revision int, subject, body string) (DraftOutcome, error) {
	if err := CheckDraftText(subject, body); err != nil {
		return DraftOutcome{}, err
	}
	return d.decideDraft(ctx, id, revision, "edit", func(ctx context.Context, tx bun.Tx, dr *OutreachDraft, now time.Time, out *DraftOutcome) error {
		out.Done = true
		return setDraft(ctx, tx, dr.ID, now, "subject = ?, body = ?, revision = revision + 1", subject, body)
	})
}

// RejectDraft rejects draft id for by: the step is not sent and the lead's
// sequence ends (DraftRejectedStop), in one transaction.
func (d *DB) RejectDraft(ctx context.Context, id int64, revision int, by string) (DraftOutcome, error) {
	return d.decideDraft(ctx, id, revision, "reject", func(ctx context.Context, tx bun.Tx, dr *OutreachDraft, now time.Time, out *DraftOutcome) error {
		out.Done = true
		if err := setDraft(ctx, tx, dr.ID, now, "status = ?, decided_at = ?, decided_by = ?", DraftRejected, now, clipRunes(by, 200)); err != nil {
			return err
		}
		return stopSequence(ctx, tx, dr.LeadID, DraftRejectedStop, now)
	})
}

// setDraft updates draft id with set (a SET list) and updated_at.
func setDraft(ctx context.Context, idb bun.IDB, id int64, now time.Time, set string, args ...any) error {
	_, err := idb.NewUpdate().Model((*OutreachDraft)(nil)).Set(set, args...).Set("updated_at = ?", now).
		Where("id = ?", id).Exec(ctx)
	return err
}

// withdrawDrafts withdraws lead leadID's waiting drafts with why: nothing
// of them can be approved any more. A probe of outreach_drafts_waiting_step.
func withdrawDrafts(ctx context.Context, idb bun.IDB, leadID int64, why string, now time.Time) error {
	_, err := withdrawnDrafts(ctx, idb, leadID, why, now)
	return err
}

// withdrawnDrafts is withdrawDrafts reporting how many drafts it withdrew.
func withdrawnDrafts(ctx context.Context, idb bun.IDB, leadID int64, why string, now time.Time) (int, error) {
	res, err := idb.NewUpdate().Model((*OutreachDraft)(nil)).ModelTableExpr(pinned(idb, "outreach_drafts INDEXED BY outreach_drafts_waiting_step")).
		Set("status = ?, reason = ?, decided_at = ?, updated_at = ?", DraftWithdrawn, clipRunes(why, 200), now, now).
		Where("lead_id = ? AND status = ?", leadID, DraftWaiting).Exec(ctx)
	if err != nil {
		return 0, err
	}
	return affected(res), nil
}
