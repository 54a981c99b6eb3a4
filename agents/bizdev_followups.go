package agents

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// BizDev's follow-ups: the due steps of each lead's sequence, queued within
// the same per-cycle cap as first e-mails and sent through the same outbox,
// each threaded under the steps before it.

// bizdevFollowUps counts the follow-ups queued in a run.
const bizdevFollowUps = "follow_ups"

// dryRunSequenceStop ends the sequence of a lead contacted only in DRY_RUN
// once a real mail mode is on.
const dryRunSequenceStop = "contacted only in DRY_RUN: re-queue the dry-run leads to write to it for real"

// queueFollowUps queues up to room due follow-ups, the longest waiting
// first.
func (c *BizDevCycle) queueFollowUps(ctx context.Context, room int, tokens *UnsubscribeTokens, counts Counts) error {
	if room <= 0 {
		return nil
	}
	leads, err := c.store.DueFollowUps(ctx, c.env.Now(), room)
	if err != nil {
		return err
	}
	dryRun := c.mailer.Mode() == MailModeDryRun
	for _, l := range leads {
		step := l.SequenceStep + 1
		if l.DryRun && !dryRun {
			// Its earlier steps were only recorded: a real "Re:" under
			// them would answer nothing. Re-queued, it starts again.
			if err := c.store.StopSequence(ctx, l.ID, dryRunSequenceStop); err != nil {
				return err
			}
			continue
		}
		f, ok := c.followUp(l.Niche, step)
		if !ok {
			// The operator removed the step since it was scheduled.
			if err := c.store.StopSequence(ctx, l.ID, "the sequence has no step "+strconv.Itoa(step)); err != nil {
				return err
			}
			continue
		}
		thread, err := c.store.ThreadOf(ctx, l.ID, step)
		if err != nil {
			return err
		}
		if len(thread) == 0 {
			continue // nothing to follow up: the first step never left
		}
		subject := "Re: " + strings.TrimPrefix(thread[0].Subject, "Re: ")
		text := func(l *db.Lead) db.OutboxDraft {
			body := RenderFollowUp(f.Body, OutreachData{
				FirstName: FirstName(l.Name), Company: l.Company, Niche: l.Niche,
				SenderName: c.opts.SenderName, Offer: c.opts.Offer, Signature: c.opts.Signature,
			})
			return db.OutboxDraft{Template: PackFor(l.Niche) + "/step" + strconv.Itoa(step), Subject: subject, Body: body}
		}
		if c.opts.Review {
			inReplyTo, refs := c.threadRefs(thread)
			d, err := c.store.DraftFollowUp(ctx, l.ID, step, func(l *db.Lead) (db.DraftText, error) {
				t := text(l)
				return db.DraftText{Template: t.Template, Subject: t.Subject, Body: t.Body, InReplyTo: inReplyTo, References: refs}, nil
			})
			if err != nil {
				return err
			}
			if d != nil {
				counts[bizdevDrafted]++
				counts[bizdevFollowUps]++
			}
			continue
		}
		m, err := c.store.QueueFollowUp(ctx, l.ID, step, func(l *db.Lead, id int64) (db.OutboxDraft, error) {
			t := text(l)
			t.Body += c.footer(c.unsubscribeURL(tokens, id))
			return t, nil
		})
		if err != nil {
			return err
		}
		if m != nil {
			counts[bizdevQueued]++
			counts[bizdevFollowUps]++
		}
	}
	return nil
}

// followUp is step of the sequence of a lead in niche.
func (c *BizDevCycle) followUp(niche string, step int) (FollowUp, bool) {
	for _, f := range c.opts.Sequences.FollowUps(PackFor(niche)) {
		if f.Step == step {
			return f, true
		}
	}
	return FollowUp{}, false
}

// nextStepAt is when the step after m's is due, or nil when m's was the
// last of its lead's sequence.
func (c *BizDevCycle) nextStepAt(ctx context.Context, m *db.Message) *time.Time {
	niche, err := c.store.LeadNiche(ctx, m.LeadID)
	if err != nil {
		return nil
	}
	f, ok := c.followUp(niche, m.Step+1)
	if !ok {
		return nil
	}
	at := AddBusinessDays(c.env.Now(), f.DelayDays, c.opts.Location)
	return &at
}

// threadHeaders puts a follow-up under the steps before it: In-Reply-To
// the latest, References all of them, by the Message-IDs the mailers give
// outbox messages (OutboxMessageID).
func (c *BizDevCycle) threadHeaders(ctx context.Context, m *db.Message, headers map[string]string) error {
	thread, err := c.store.ThreadOf(ctx, m.LeadID, m.Step)
	if err != nil || len(thread) == 0 {
		return err
	}
	headers["In-Reply-To"], headers["References"] = c.threadRefs(thread)
	return nil
}

// threadRefs are the In-Reply-To and References of a follow-up under
// thread (ThreadOf, not empty).
func (c *BizDevCycle) threadRefs(thread []db.Message) (inReplyTo, references string) {
	refs := make([]string, len(thread))
	for i, t := range thread {
		refs[i] = "<" + OutboxMessageID(t.ID, c.opts.From) + ">"
	}
	return refs[len(refs)-1], strings.Join(refs, " ")
}

// OutboxMessageID is the Message-ID (without angle brackets) a mailer gives
// outbox message id sent from address from: "hossagent.outbox.<id>@<the
// sender's domain>", or "hossagent.client.<id>@…" for a client e-mail
// (passed as a negative id). Replies name it in In-Reply-To and References,
// which is how a reply finds its message (MessageFromReference).
func OutboxMessageID(id int64, from string) string {
	domain := "hossagent.invalid"
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		domain = strings.ToLower(from[at+1:])
	}
	if id < 0 {
		// Client e-mail (the client outbox passes its ids negated): a
		// Message-ID of its own kind, never read as an outreach message.
		return "hossagent.client." + strconv.FormatInt(-id, 10) + "@" + domain
	}
	return "hossagent.outbox." + strconv.FormatInt(id, 10) + "@" + domain
}

// MessageFromReference is the outreach message a Message-ID names when it
// is one of ours (OutboxMessageID), else 0. Client e-mail's ids (negative)
// are not outreach messages.
func MessageFromReference(ref string) int64 {
	ref = strings.Trim(strings.TrimSpace(ref), "<>")
	rest, ok := strings.CutPrefix(ref, "hossagent.outbox.")
	if !ok {
		return 0
	}
	num, _, ok := strings.Cut(rest, "@")
	if !ok {
		return 0
	}
	id, err := strconv.ParseInt(num, 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// dryRunFollowUp reports whether m is a follow-up queued while its lead was
// contacted only in DRY_RUN, and, when the mailer is real, withdraws it and
// ends the lead's sequence: a real "Re:" under e-mails that never left
// would answer nothing. (A follow-up queued in DRY_RUN and still waiting
// when the app restarts in a real mode is the case this catches.)
func (c *BizDevCycle) dryRunFollowUp(ctx context.Context, m *db.Message) (bool, error) {
	if m.Step <= 1 || c.mailer.Mode() == MailModeDryRun {
		return false, nil
	}
	dryRun, err := c.store.LeadDryRun(ctx, m.LeadID)
	if err != nil || !dryRun {
		return false, err
	}
	return true, c.store.StopSequence(ctx, m.LeadID, dryRunSequenceStop)
}
