package agents

import (
	"context"

	"github.com/hossagent/hossagent/db"
)

// The review switch (OUTREACH_REVIEW, BizDevOptions.Review): BizDev drafts
// each step it would queue, first e-mails and follow-ups alike, and an
// admin approves, edits or rejects it in /admin/outreach/drafts. A draft is
// not a message: it takes no place in the hour and day caps until it is
// approved, and the approval queues it in the outbox (ApproveDraft), from
// where it is sent like any other message.

// bizdevDrafted counts the drafts written in a run (review on).
const bizdevDrafted = "drafted"

// draftFirstSteps drafts the first e-mail of each of leads.
func (c *BizDevCycle) draftFirstSteps(ctx context.Context, leads []db.Lead, counts Counts) error {
	for _, l := range leads {
		d, err := c.store.DraftFirstStep(ctx, l.ID, func(l *db.Lead) (db.DraftText, error) {
			e, err := c.firstStep(l)
			return db.DraftText{Template: e.Template, Subject: e.Subject, Body: e.Body}, err
		})
		if err != nil {
			return err
		}
		if d != nil {
			counts[bizdevDrafted]++
		}
	}
	return nil
}

// ApproveDraft approves draft id at revision (0: whatever it is now) for
// by: its step is queued in the outbox with footer's unsubscribe link for
// the new message, in the transaction that marks it approved
// (db.ApproveDraft); BizDev sends it on its next cycle, within the caps.
func ApproveDraft(ctx context.Context, store *db.DB, tokens *UnsubscribeTokens, footer OutreachFooter, id int64, revision int, by string) (db.DraftOutcome, error) {
	return store.ApproveDraft(ctx, id, revision, by, func(d *db.OutreachDraft, messageID int64) (db.OutboxDraft, error) {
		return db.OutboxDraft{Template: d.Template, Subject: d.Subject, Body: d.Body + footer.Text(footer.UnsubscribeURL(tokens, messageID))}, nil
	})
}
