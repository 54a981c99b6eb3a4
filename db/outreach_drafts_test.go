package db

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// draftLead stores a new lead with an address.
func draftLead(t *testing.T, d *DB, name string) *Lead {
	t.Helper()
	l, err := d.CreateLead(context.Background(), nil, NewLead{Name: name, Email: strings.ToLower(name) + "@" + strings.ToLower(name) + ".example",
		Company: name + " Co", Niche: "B2B SaaS", Source: "test", DomainKey: strings.ToLower(name) + ".example"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func firstStepText(l *Lead) (DraftText, error) {
	return DraftText{Template: "saas/1", Subject: "Hello " + l.Company, Body: "Hi " + l.Name + ",\nshall we talk?"}, nil
}

// footerCompose appends a footer naming the message, as agents.ApproveDraft does.
func footerCompose(dr *OutreachDraft, messageID int64) (OutboxDraft, error) {
	return OutboxDraft{Template: dr.Template, Subject: dr.Subject, Body: dr.Body + fmt.Sprintf("\n--\nunsubscribe %d", messageID)}, nil
}

func mustDraftFirst(t *testing.T, d *DB, l *Lead) *OutreachDraft {
	t.Helper()
	dr, err := d.DraftFirstStep(context.Background(), l.ID, firstStepText)
	if err != nil || dr == nil {
		t.Fatalf("DraftFirstStep(%d) = %v, %v", l.ID, dr, err)
	}
	return dr
}

func wantRefused(t *testing.T, what string, out DraftOutcome, err error, part string) {
	t.Helper()
	if err != nil || out.Done || !strings.Contains(out.Refused, part) {
		t.Fatalf("%s = done %v, refused %q, %v; want refused with %q", what, out.Done, out.Refused, err, part)
	}
}

// A first-step draft is written once, passes the lead over for new
// contacts while it waits and takes no place in the outbox; an edit needs
// the revision shown and counts it up; approval queues the message with
// its footer in the same transaction that marks the draft approved, once.
func TestDraftFirstStepEditApproveOnce(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	l := draftLead(t, d, "Ana")
	dr := mustDraftFirst(t, d, l)
	if dr.Status != DraftWaiting || dr.Revision != 1 || dr.Step != 1 || dr.ToAddr != "ana@ana.example" {
		t.Fatalf("draft = %+v", dr)
	}
	if again, err := d.DraftFirstStep(ctx, l.ID, firstStepText); err != nil || again != nil {
		t.Fatalf("second DraftFirstStep = %v, %v; want nil", again, err)
	}
	if m, err := d.QueueMessage(ctx, l.ID, func(*Lead, int64) (OutboxDraft, error) { return OutboxDraft{Subject: "s", Body: "b"}, nil }); err != nil || m != nil {
		t.Fatalf("QueueMessage for a lead with a waiting draft = %v, %v; want nil", m, err)
	}
	if leads, err := d.NewLeadsToContact(ctx, 10); err != nil || len(leads) != 0 {
		t.Fatalf("NewLeadsToContact = %d leads, %v; a lead with a waiting draft must be passed over", len(leads), err)
	}
	if n, err := d.WaitingDraftCount(ctx); err != nil || n != 1 {
		t.Fatalf("WaitingDraftCount = %d, %v", n, err)
	}
	if n, err := d.PendingOutbox(ctx); err != nil || n != 0 {
		t.Fatalf("PendingOutbox = %d, %v", n, err)
	}
	// The store itself refuses a second waiting draft of the step.
	if _, err := d.Bun().NewInsert().Model(&OutreachDraft{LeadID: l.ID, Step: 1, ToAddr: "x@y", Subject: "s", Body: "b", Status: DraftWaiting,
		Revision: 1, CreatedAt: fixedNow, UpdatedAt: fixedNow}).Exec(ctx); !IsUniqueViolation(err) {
		t.Fatalf("second waiting draft of a step: %v, want a unique violation", err)
	}

	if _, err := d.EditDraft(ctx, dr.ID, 1, "Hello\r\nBcc: all@x.example", "body"); !errors.Is(err, ErrBadDraft) {
		t.Fatalf("edit with a two-line subject: %v", err)
	}
	if _, err := d.EditDraft(ctx, dr.ID, 1, "Hello", strings.Repeat("é", MaxDraftBodyChars+1)); !errors.Is(err, ErrBadDraft) {
		t.Fatalf("edit with a long body: %v", err)
	}
	out, err := d.EditDraft(ctx, dr.ID, 1, "A better subject", "A better body")
	if err != nil || !out.Done || out.Draft.Revision != 2 || out.Draft.Subject != "A better subject" || out.Draft.Status != DraftWaiting {
		t.Fatalf("EditDraft = %+v, %v", out, err)
	}
	out, err = d.EditDraft(ctx, dr.ID, 1, "Stale", "Stale")
	wantRefused(t, "edit of a stale revision", out, err, "edited since it was shown")

	// Approval of the revision before the edit is refused: the operator
	// approves what was shown.
	out, err = d.ApproveDraft(ctx, dr.ID, 1, "admin@x.example", footerCompose)
	wantRefused(t, "approval of a stale revision", out, err, "revision 2")
	// A failing composition rolls the whole approval back.
	boom := errors.New("boom")
	if _, err := d.ApproveDraft(ctx, dr.ID, 2, "admin@x.example", func(*OutreachDraft, int64) (OutboxDraft, error) { return OutboxDraft{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("approval with a failing compose: %v", err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM messages"); n != 0 {
		t.Fatalf("%d messages after a failed approval, want 0 (one transaction)", n)
	}
	if got, _ := d.Draft(ctx, dr.ID); got.Status != DraftWaiting {
		t.Fatalf("draft after a failed approval: %s", got.Status)
	}

	out, err = d.ApproveDraft(ctx, dr.ID, 2, "admin@x.example", footerCompose)
	if err != nil || !out.Done || out.MessageID == 0 || out.Draft.Status != DraftApproved || out.Draft.DecidedBy != "admin@x.example" ||
		out.Draft.DecidedAt == nil || out.Draft.MessageID == nil || *out.Draft.MessageID != out.MessageID {
		t.Fatalf("ApproveDraft = %+v, %v", out, err)
	}
	var m Message
	if err := d.Bun().NewSelect().Model(&m).Where("m.id = ?", out.MessageID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Status != MessageQueued || m.Step != 1 || m.Subject != "A better subject" || m.ToAddr != "ana@ana.example" ||
		m.Body != fmt.Sprintf("A better body\n--\nunsubscribe %d", m.ID) {
		t.Fatalf("approved message = %+v", m)
	}
	out, err = d.ApproveDraft(ctx, dr.ID, 0, "other@x.example", footerCompose)
	wantRefused(t, "second approval", out, err, "approved already, by admin@x.example")
	out, err = d.RejectDraft(ctx, dr.ID, 0, "other@x.example")
	wantRefused(t, "rejection after approval", out, err, "approved already")
	if n := countRows(t, d, "SELECT COUNT(*) FROM messages"); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	if n, _ := d.WaitingDraftCount(ctx); n != 0 {
		t.Fatalf("WaitingDraftCount after approval = %d", n)
	}
	if _, err := d.ApproveDraft(ctx, 9999, 0, "a", footerCompose); !errors.Is(err, ErrNotFound) {
		t.Fatalf("approval of no draft: %v", err)
	}
	// The approved message goes the usual way: claimed within the caps.
	if c, err := d.ClaimMessage(ctx, m.ID, EmailCaps{PerCycle: 1, PerHour: 1, PerDay: 1}); err != nil || c != ClaimOK {
		t.Fatalf("ClaimMessage = %v, %v", c, err)
	}
}

// contactedLead is a lead sent its first step, its second due now.
func contactedLead(t *testing.T, d *DB, name string) *Lead {
	t.Helper()
	ctx := context.Background()
	l := draftLead(t, d, name)
	m, err := d.QueueMessage(ctx, l.ID, func(*Lead, int64) (OutboxDraft, error) {
		return OutboxDraft{Template: "saas/1", Subject: "Hello", Body: "Hi"}, nil
	})
	if err != nil || m == nil {
		t.Fatalf("QueueMessage = %v, %v", m, err)
	}
	if c, err := d.ClaimMessage(ctx, m.ID, EmailCaps{PerCycle: 100, PerHour: 100, PerDay: 100}); err != nil || c != ClaimOK {
		t.Fatalf("ClaimMessage = %v, %v", c, err)
	}
	due := fixedNow
	if err := d.MarkSentStep(ctx, m.ID, "p-1", false, &due); err != nil {
		t.Fatal(err)
	}
	return l
}

func followUpText(*Lead) (DraftText, error) {
	return DraftText{Template: "saas/step2", Subject: "Re: Hello", Body: "Following up", InReplyTo: "<a@x>", References: "<a@x>"}, nil
}

func readLead(t *testing.T, d *DB, id int64) Lead {
	t.Helper()
	var l Lead
	if err := d.Bun().NewSelect().Model(&l).Where("l.id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

// A follow-up is drafted once (its due time is cleared with the draft);
// rejecting it ends the lead's sequence as "draft rejected" and queues
// nothing, once.
func TestDraftFollowUpOnceAndReject(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	l := contactedLead(t, d, "Bo")
	dr, err := d.DraftFollowUp(ctx, l.ID, 2, followUpText)
	if err != nil || dr == nil || dr.Step != 2 || dr.InReplyTo != "<a@x>" {
		t.Fatalf("DraftFollowUp = %+v, %v", dr, err)
	}
	if again, err := d.DraftFollowUp(ctx, l.ID, 2, followUpText); err != nil || again != nil {
		t.Fatalf("second DraftFollowUp = %v, %v", again, err)
	}
	if due, err := d.DueFollowUps(ctx, fixedNow, 10); err != nil || len(due) != 0 {
		t.Fatalf("DueFollowUps while the draft waits = %d, %v", len(due), err)
	}
	if steps, err := d.WaitingDraftSteps(ctx, []int64{l.ID, 999}); err != nil || len(steps) != 1 || steps[l.ID] != 2 {
		t.Fatalf("WaitingDraftSteps = %v, %v", steps, err)
	}
	out, err := d.RejectDraft(ctx, dr.ID, 1, "admin@x.example")
	if err != nil || !out.Done || out.Draft.Status != DraftRejected || out.Draft.DecidedBy != "admin@x.example" {
		t.Fatalf("RejectDraft = %+v, %v", out, err)
	}
	if got := readLead(t, d, l.ID); got.SequenceStop != DraftRejectedStop || got.NextStepAt != nil || got.Status != LeadContacted {
		t.Fatalf("lead after rejection: stop %q, next %v, %s", got.SequenceStop, got.NextStepAt, got.Status)
	}
	out, err = d.RejectDraft(ctx, dr.ID, 1, "admin@x.example")
	wantRefused(t, "second rejection", out, err, "rejected already")
	out, err = d.ApproveDraft(ctx, dr.ID, 0, "admin@x.example", footerCompose)
	wantRefused(t, "approval after rejection", out, err, "rejected already")
	if n := countRows(t, d, "SELECT COUNT(*) FROM messages WHERE step = 2"); n != 0 {
		t.Fatalf("%d step-2 messages after a rejection", n)
	}

	// A first step rejected: the lead is never drafted or contacted again.
	n := draftLead(t, d, "Cy")
	first := mustDraftFirst(t, d, n)
	if out, err := d.RejectDraft(ctx, first.ID, 0, "admin@x.example"); err != nil || !out.Done {
		t.Fatalf("RejectDraft = %+v, %v", out, err)
	}
	if again, err := d.DraftFirstStep(ctx, n.ID, firstStepText); err != nil || again != nil {
		t.Fatalf("DraftFirstStep after a rejection = %v, %v", again, err)
	}
	if leads, err := d.NewLeadsToContact(ctx, 10); err != nil || len(leads) != 0 {
		t.Fatalf("NewLeadsToContact after a rejection = %d, %v", len(leads), err)
	}
}

// A reply, an unsubscribe or a change of the lead withdraws its waiting
// draft, or refuses its approval and withdraws it then: nothing of it can
// be sent any more.
func TestDraftOfALeadThatAnsweredCannotBeSent(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()

	replied := contactedLead(t, d, "Dee")
	dr, err := d.DraftFollowUp(ctx, replied.ID, 2, followUpText)
	if err != nil || dr == nil {
		t.Fatalf("DraftFollowUp = %v, %v", dr, err)
	}
	if _, err := d.ApplyReply(ctx, SortedReply{LeadID: replied.ID, FromAddr: replied.EmailAddr(), Subject: "Re: Hello", Body: "Yes, call me",
		InboundID: "r1@dee.example", Class: ReplyInterested, Reason: "test", By: "rules"}); err != nil {
		t.Fatal(err)
	}
	out, err := d.ApproveDraft(ctx, dr.ID, 0, "admin@x.example", footerCompose)
	wantRefused(t, "approval after a reply", out, err, "withdrawn: replied: interested")

	unsub := draftLead(t, d, "Eve")
	first := mustDraftFirst(t, d, unsub)
	if _, err := d.ApplyReply(ctx, SortedReply{LeadID: unsub.ID, FromAddr: unsub.EmailAddr(), Subject: "stop", Body: "remove me",
		InboundID: "r2@eve.example", Class: ReplyUnsubscribe, Reason: "test", By: "rules"}); err != nil {
		t.Fatal(err)
	}
	out, err = d.ApproveDraft(ctx, first.ID, 0, "admin@x.example", footerCompose)
	wantRefused(t, "approval after an unsubscribe", out, err, "withdrawn")

	// Moved by something that does not withdraw: refused at approval.
	dead := draftLead(t, d, "Fay")
	first = mustDraftFirst(t, d, dead)
	mustExec(t, d.Bun(), "UPDATE leads SET status = 'dead' WHERE id = ?", dead.ID)
	out, err = d.ApproveDraft(ctx, first.ID, 0, "admin@x.example", footerCompose)
	wantRefused(t, "approval for a dead lead", out, err, "not sent and is withdrawn: the lead is dead now")
	if got, _ := d.Draft(ctx, first.ID); got.Status != DraftWithdrawn || got.Reason != "the lead is dead now" {
		t.Fatalf("draft after a refused approval: %s %q", got.Status, got.Reason)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM messages WHERE lead_id IN (?, ?, ?) AND step > 0 AND status = 'queued'", replied.ID, unsub.ID, dead.ID); n != 0 {
		t.Fatalf("%d queued messages for leads that answered", n)
	}
	if n, _ := d.WaitingDraftCount(ctx); n != 0 {
		t.Fatalf("WaitingDraftCount = %d, want 0", n)
	}
}

// The drafts' queries read the review queue, never the drafts' history:
// on a large store with many decided drafts and a few waiting ones, the
// list, its count, the leads' waiting drafts and a withdrawal each read an
// index of the waiting drafts.
func TestDraftQueryPlansReadTheQueue(t *testing.T) {
	sqliteOnly(t, "SQLite's planner; TestPostgresOutboxQueriesUseTheirIndexes explains the drafts' queries on PostgreSQL")
	d := mustOpenPath(t, filepath.Join(t.TempDir(), FileName))
	buildPlanDataset(t, d, 20_000)
	mustExec(t, d.Bun(), `INSERT INTO outreach_drafts (lead_id, step, template, to_addr, subject, body, status, revision, created_at, updated_at, decided_at, decided_by)
		SELECT id, 1, 'saas/1', email, 'Hello', 'Hi', CASE WHEN id % 500 = 3 THEN 'waiting' WHEN id % 3 = 0 THEN 'rejected' ELSE 'approved' END, 1,
			created_at, created_at, CASE WHEN id % 500 = 3 THEN NULL ELSE created_at END, CASE WHEN id % 500 = 3 THEN '' ELSE 'admin' END
		FROM leads WHERE email IS NOT NULL ORDER BY id`)
	if n, err := d.WaitingDraftCount(context.Background()); err != nil || n != 40 {
		t.Fatalf("WaitingDraftCount = %d, %v; want 40", n, err)
	}
	queries := []hotQuery{
		{name: "WaitingDrafts", sql: raw(waitingDraftsSQL, 50),
			scans: map[string]string{"od USING INDEX outreach_drafts_waiting": workingSet + ", " + boundedByLimit}, uses: []string{"outreach_drafts_waiting"}},
		{name: "WaitingDraftCount", sql: raw(waitingDraftCountSQL),
			scans: map[string]string{"od USING COVERING INDEX outreach_drafts_waiting": workingSet, "od USING INDEX outreach_drafts_waiting": workingSet},
			uses:  []string{"outreach_drafts_waiting"}},
		{name: "WaitingDraftSteps", sql: raw(waitingDraftStepsSQL, bun.List([]int64{3, 503, 7})), uses: []string{"outreach_drafts_waiting_step"}},
		{name: "withdrawDrafts", sql: func(d *DB) string {
			return d.bun.NewUpdate().Model((*OutreachDraft)(nil)).ModelTableExpr("outreach_drafts INDEXED BY outreach_drafts_waiting_step").
				Set("status = 'withdrawn'").Where("lead_id = ? AND status = ?", 503, DraftWaiting).String()
		}, uses: []string{"outreach_drafts_waiting_step"}},
		{name: "LeadDrafts", sql: func(d *DB) string {
			return d.bun.NewSelect().Model(new([]OutreachDraft)).ModelTableExpr("outreach_drafts AS od INDEXED BY outreach_drafts_lead").
				Where("od.lead_id = ?", 503).OrderExpr("od.id DESC").Limit(20).String()
		}, uses: []string{"outreach_drafts_lead"}},
		{name: "NewLeadsToContact (with drafts)", sql: func(d *DB) string { return newLeadsToContactQuery(d.bun, new([]Lead), 10).String() },
			scans: map[string]string{"l USING INDEX leads_new_email": workingSet + ", " + boundedByLimit},
			uses:  []string{"leads_new_email", "messages_lead", "outreach_drafts_waiting_step"}},
	}
	t.Run("without statistics", func(t *testing.T) { checkPlans(t, d, queries) })
	mustExec(t, d.Bun(), "ANALYZE")
	t.Run("after ANALYZE", func(t *testing.T) { checkPlans(t, d, queries) })
}

// An out-of-office reply with a return date delays a follow-up that waits
// as a draft: the draft is withdrawn and the step is due again on the
// return date, when it is drafted anew.
func TestOutOfOfficeDelaysAWaitingFollowUpDraft(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	l := contactedLead(t, d, "Gus")
	dr, err := d.DraftFollowUp(ctx, l.ID, 2, followUpText)
	if err != nil || dr == nil {
		t.Fatalf("DraftFollowUp = %v, %v", dr, err)
	}
	back := d.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second)
	if _, err := d.ApplyReply(ctx, SortedReply{LeadID: l.ID, FromAddr: l.EmailAddr(), Subject: "Out of office", Body: "Away",
		InboundID: "ooo@gus.example", Class: ReplyOutOfOffice, Reason: "test", By: "rules", Automatic: true, ReturnDate: &back}); err != nil {
		t.Fatal(err)
	}
	out, err := d.ApproveDraft(ctx, dr.ID, 0, "admin@x.example", footerCompose)
	wantRefused(t, "approval during the absence", out, err, "out of office until")
	got := readLead(t, d, l.ID)
	if got.NextStepAt == nil || !got.NextStepAt.Equal(back) || got.SequenceStop != "" || got.SequenceStep != 1 {
		t.Fatalf("lead after the out-of-office: next %v (want %v), stop %q, step %d", got.NextStepAt, back, got.SequenceStop, got.SequenceStep)
	}
	if due, err := d.DueFollowUps(ctx, back.Add(-time.Minute), 10); err != nil || len(due) != 0 {
		t.Fatalf("due before the return date: %d, %v", len(due), err)
	}
	if due, err := d.DueFollowUps(ctx, back, 10); err != nil || len(due) != 1 {
		t.Fatalf("due on the return date: %d, %v", len(due), err)
	}
	if again, err := d.DraftFollowUp(ctx, l.ID, 2, followUpText); err != nil || again != nil {
		t.Fatalf("drafted again before the return date: %v, %v", again, err)
	}
}
