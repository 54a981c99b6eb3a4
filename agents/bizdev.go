package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// BizDevOptions configure the BizDev cycle (the EMAIL_* settings).
type BizDevOptions struct {
	// The caps seed the settings table on first start; from then on the
	// table's values win, so an admin can change them at run time.
	MaxPerCycle, MaxPerHour, MaxPerDay int
	// A random gap in [SendDelayMin, SendDelayMax] is slept between sends.
	SendDelayMin, SendDelayMax time.Duration
	// Sleep waits for the gap; nil means SleepContext.
	Sleep func(ctx context.Context, d time.Duration) error

	From, SenderName, Offer, Signature string
	PostalAddress                      string // in the footer when set
	BaseURL                            string // public URL of the unsubscribe page

	// PauseAfterErrors consecutive provider errors pause outreach until an
	// admin resumes it (EMAIL_PAUSE_AFTER_ERRORS); 0 never pauses.
	PauseAfterErrors int
	// SendWindow limits sending to a daily window "HH:MM-HH:MM" in Location
	// (EMAIL_SEND_WINDOW, EMAIL_SEND_TIMEZONE; nil is UTC); empty sends at
	// any hour. Outside it messages are queued but not sent.
	SendWindow string
	Location   *time.Location
	// Sequences gives each pack's follow-ups (DefaultFollowUps when nil);
	// their delays count business days in Location.
	Sequences Sequences
	// Review (OUTREACH_REVIEW) drafts every step, first e-mails and
	// follow-ups, for an admin's approval instead of queueing it
	// (bizdev_review.go): approval queues it in the outbox.
	Review bool
}

// StaleSendingAfter is how long a message may stay "sending" before BizDev
// assumes its cycle died mid-send and flags it for review. It is far longer
// than any provider call, so a concurrent run's in-flight message is never
// mistaken for a crashed one.
const StaleSendingAfter = 15 * time.Minute

// bookkeepingTimeout bounds recording a provider's answer. The recording
// runs even when the cycle's context was cancelled meanwhile: once the
// provider has accepted a message, the outbox must say so.
const bookkeepingTimeout = 10 * time.Second

// BizDev counts.
const (
	bizdevQueued      = "queued"
	bizdevSent        = "sent"
	bizdevDryRun      = "dry_run"
	bizdevSuppressed  = "suppressed"
	bizdevFailed      = "failed"
	bizdevCapped      = "capped"
	bizdevNeedsReview = "needs_review"
)

// BizDevCycle writes an outreach e-mail to each new lead and sends it
// through the mailer within the caps. Each step is one transaction and the
// outbox row is the source of truth: a message is claimed (marked sending)
// before the provider sees it, so neither a concurrent run nor a crash can
// make a lead receive two messages.
type BizDevCycle struct {
	store  *db.DB
	env    Env
	mailer Mailer
	opts   BizDevOptions
	window SendWindow
	// windowErr is a malformed SendWindow: every run fails with it rather
	// than send at hours the operator ruled out.
	windowErr error
}

// NewBizDevCycle builds the BizDev cycle.
func NewBizDevCycle(store *db.DB, env Env, mailer Mailer, opts BizDevOptions) *BizDevCycle {
	if opts.Sleep == nil {
		opts.Sleep = SleepContext
	}
	opts.SendDelayMin = max(opts.SendDelayMin, 0)
	opts.SendDelayMax = max(opts.SendDelayMax, opts.SendDelayMin)
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	opts.PauseAfterErrors = max(opts.PauseAfterErrors, 0)
	if opts.Sequences == nil {
		opts.Sequences = DefaultFollowUps{}
	}
	window, err := ParseSendWindow(opts.SendWindow, opts.Location)
	return &BizDevCycle{store: store, env: env, mailer: mailer, opts: opts, window: window, windowErr: err}
}

// Run flags messages stuck in sending, queues messages for new leads and
// sends what the caps and the send window allow. Counts: queued, sent,
// dry_run, suppressed, failed, capped, needs_review (and drafted, with the
// review switch on: the steps written for review instead); and paused (1 while
// outreach is paused: nothing is queued or sent) with paused_<reason> (1:
// paused_provider_errors, paused_bounce_rate or paused_complaint) or
// outside_window (the messages the closed send window held back) when those
// rules apply.
func (c *BizDevCycle) Run(ctx context.Context) (Counts, error) {
	counts := Counts{bizdevQueued: 0, bizdevSent: 0, bizdevDryRun: 0, bizdevSuppressed: 0, bizdevFailed: 0, bizdevCapped: 0, bizdevNeedsReview: 0}
	if c.opts.Review {
		counts[bizdevDrafted] = 0
	}
	defer func() {
		if changesData(counts) {
			publishOutreachChange(c.env, BizDev, "outbox", counts)
		}
	}()
	if c.windowErr != nil {
		return counts, fmt.Errorf("bizdev: %w", c.windowErr)
	}
	caps, err := c.store.EmailCaps(ctx, db.EmailCaps{PerCycle: c.opts.MaxPerCycle, PerHour: c.opts.MaxPerHour, PerDay: c.opts.MaxPerDay})
	if err != nil {
		return counts, fmt.Errorf("bizdev: %w", err)
	}
	tokens, err := LoadUnsubscribeTokens(ctx, c.store, c.env.Random)
	if err != nil {
		return counts, fmt.Errorf("bizdev: %w", err)
	}
	if counts[bizdevNeedsReview], err = c.store.FlagStaleSending(ctx, StaleSendingAfter); err != nil {
		return counts, fmt.Errorf("bizdev: %w", err)
	}
	if paused, err := c.paused(ctx, counts); err != nil || paused {
		if err != nil {
			err = fmt.Errorf("bizdev: %w", err)
		}
		return counts, err
	}
	if err := c.queue(ctx, caps, tokens, counts); err != nil {
		return counts, fmt.Errorf("bizdev: %w", err)
	}
	if err := c.send(ctx, caps, tokens, counts); err != nil {
		return counts, fmt.Errorf("bizdev: %w", err)
	}
	return counts, nil
}

// queue writes the due follow-ups, then messages for the oldest new leads,
// one transaction each. It tops the outbox up to the per-cycle cap rather
// than adding a full cycle's worth every time: while a rolling cap holds
// messages back, leads wait as new (and are rendered fresh) instead of
// piling up in the outbox.
func (c *BizDevCycle) queue(ctx context.Context, caps db.EmailCaps, tokens *UnsubscribeTokens, counts Counts) error {
	pending, err := c.store.PendingOutbox(ctx)
	if err != nil {
		return err
	}
	if c.opts.Review {
		// Drafts waiting for review take their place in the top-up like
		// queued messages (never in the hour and day caps, which count
		// what left): an absent reviewer finds one cycle's worth waiting,
		// not every new lead.
		waiting, err := c.store.WaitingDraftCount(ctx)
		if err != nil {
			return err
		}
		pending += waiting
	}
	// Due follow-ups first: a prospect who already has our first e-mail
	// must not wait behind an endless supply of new leads.
	if err := c.queueFollowUps(ctx, caps.PerCycle-pending, tokens, counts); err != nil {
		return err
	}
	leads, err := c.store.NewLeadsToContact(ctx, caps.PerCycle-pending-counts[bizdevQueued]-counts[bizdevDrafted])
	if err != nil {
		return err
	}
	if c.opts.Review {
		return c.draftFirstSteps(ctx, leads, counts)
	}
	for _, l := range leads {
		m, err := c.store.QueueMessage(ctx, l.ID, func(l *db.Lead, id int64) (db.OutboxDraft, error) {
			return c.compose(l, id, tokens)
		})
		if err != nil {
			return err
		}
		if m != nil {
			counts[bizdevQueued]++
		}
	}
	return nil
}

// compose renders the e-mail for a lead, with the unsubscribe footer of
// message id.
func (c *BizDevCycle) compose(l *db.Lead, id int64, tokens *UnsubscribeTokens) (db.OutboxDraft, error) {
	e, err := c.firstStep(l)
	if err != nil {
		return db.OutboxDraft{}, err
	}
	return db.OutboxDraft{Template: e.Template, Subject: e.Subject, Body: e.Body + c.footer(c.unsubscribeURL(tokens, id))}, nil
}

// firstStep renders the first e-mail for a lead, without its footer.
func (c *BizDevCycle) firstStep(l *db.Lead) (OutreachEmail, error) {
	pack := PackFor(l.Niche)
	return RenderOutreach(pack, c.env.Rand.IntN(PackVariants(pack)), OutreachData{
		FirstName: FirstName(l.Name), Company: l.Company, Niche: l.Niche,
		SenderName: c.opts.SenderName, Offer: c.opts.Offer, Signature: c.opts.Signature,
	})
}

func (c *BizDevCycle) unsubscribeURL(tokens *UnsubscribeTokens, id int64) string {
	return c.Footer().UnsubscribeURL(tokens, id)
}

// footer is the outreach footer with unsubscribeURL (OutreachFooter.Text).
func (c *BizDevCycle) footer(unsubscribeURL string) string {
	return c.Footer().Text(unsubscribeURL)
}

// Footer is the footer BizDev's e-mails end with.
func (c *BizDevCycle) Footer() OutreachFooter {
	return OutreachFooter{SenderName: c.opts.SenderName, PostalAddress: c.opts.PostalAddress, BaseURL: c.opts.BaseURL}
}

// OutreachFooter is what the end of every outreach e-mail says: why the
// prospect got it, how to stop it (the unsubscribe link of its outbox
// message), and who sent it from where.
type OutreachFooter struct {
	SenderName, PostalAddress string
	BaseURL                   string // public URL of the unsubscribe page
}

// UnsubscribeURL is the unsubscribe link of outbox message id.
func (f OutreachFooter) UnsubscribeURL(tokens *UnsubscribeTokens, id int64) string {
	return strings.TrimRight(f.BaseURL, "/") + "/unsubscribe/" + tokens.UnsubscribeToken(id)
}

// Text is the footer with unsubscribeURL.
func (f OutreachFooter) Text(unsubscribeURL string) string {
	var b strings.Builder
	b.WriteString("\n\n--\n")
	fmt.Fprintf(&b, "You received this note from %s about your business. ", nonEmptyOr(f.SenderName, "us"))
	fmt.Fprintf(&b, "To receive no further e-mail from us, open:\n%s\n", unsubscribeURL)
	if a := strings.TrimSpace(f.PostalAddress); a != "" {
		b.WriteString(a + "\n")
	}
	return b.String()
}

// send hands queued (and retryable failed) messages to the mailer, oldest
// first, one at a time, within the caps and the send window, until a pause.
func (c *BizDevCycle) send(ctx context.Context, caps db.EmailCaps, tokens *UnsubscribeTokens, counts Counts) error {
	batch, err := c.store.SendableMessages(ctx, caps.PerCycle)
	if err != nil {
		return err
	}
	sent := 0
	for i, m := range batch {
		if sent > 0 {
			if err := c.opts.Sleep(ctx, c.gap()); err != nil {
				return err
			}
		}
		// Checked before every message: a long cycle may run past the end of
		// the window.
		if c.windowClosed(len(batch)-i, counts) {
			return nil
		}
		if withdrawn, err := c.dryRunFollowUp(ctx, &m); err != nil || withdrawn {
			if err != nil {
				return err
			}
			counts[bizdevSuppressed]++
			continue
		}
		claim, err := c.store.ClaimMessage(ctx, m.ID, caps)
		if err != nil {
			return err
		}
		switch claim {
		case db.ClaimCapped:
			// The rolling hour or day is full: this message and the rest
			// stay queued for a later cycle.
			counts[bizdevCapped] += len(batch) - i
			return nil
		case db.ClaimPaused:
			// This run's last error, another run's, or a bounce or a
			// complaint recorded meanwhile paused outreach.
			return c.pausedMidRun(ctx, counts)
		case db.ClaimSuppressed:
			counts[bizdevSuppressed]++
			continue
		case db.ClaimGone:
			continue
		}
		sent++
		if err := c.deliver(ctx, &m, tokens, counts); err != nil {
			return err
		}
	}
	return nil
}

// deliver sends one claimed message and records the answer.
func (c *BizDevCycle) deliver(ctx context.Context, m *db.Message, tokens *UnsubscribeTokens, counts Counts) error {
	unsubscribe := c.unsubscribeURL(tokens, m.ID)
	headers := map[string]string{
		"List-Unsubscribe":      "<" + unsubscribe + ">",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
	}
	if m.Step > 1 {
		if err := c.threadHeaders(ctx, m, headers); err != nil {
			return err
		}
	}
	providerID, sendErr := c.mailer.Send(ctx, OutgoingMail{
		To: m.ToAddr, From: c.opts.From, FromName: c.opts.SenderName,
		Subject: m.Subject, Body: m.Body, OutboxID: m.ID, Headers: headers,
	})
	if sendErr != nil && ctx.Err() != nil {
		// Cancelled mid-send: whether the provider took it is unknown. The
		// message stays sending and is flagged for review, never resent.
		return errors.Join(sendErr, ctx.Err())
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	if IsUnknownMailOutcome(sendErr) {
		// The provider may have it: flagged for the admin, never resent.
		if err := c.store.FlagForReview(bctx, m.ID, sendErr.Error()); err != nil {
			return err
		}
		counts[bizdevNeedsReview]++
		return nil
	}
	if sendErr != nil {
		// Counted towards the pause in the same transaction; a pause stops
		// this batch at its next claim.
		if _, err := c.store.RecordSendError(bctx, m.ID, sendErr.Error(), c.opts.PauseAfterErrors); err != nil {
			return err
		}
		counts[bizdevFailed]++
		return nil
	}
	dryRun := c.mailer.Mode() == MailModeDryRun
	if err := c.store.MarkSentStep(bctx, m.ID, providerID, dryRun, c.nextStepAt(bctx, m)); err != nil {
		return err
	}
	if dryRun {
		counts[bizdevDryRun]++
	} else {
		counts[bizdevSent]++
	}
	return nil
}

// gap draws the pause before the next send, to the millisecond.
func (c *BizDevCycle) gap() time.Duration {
	lo, hi := c.opts.SendDelayMin, c.opts.SendDelayMax
	span := int((hi - lo) / time.Millisecond)
	if span <= 0 {
		return lo
	}
	return lo + time.Duration(c.env.Rand.IntN(span+1))*time.Millisecond
}

// RequeueDryRun is the admin action that puts the leads contacted only in
// DRY_RUN back to new, so that BizDev writes to them for real once a real
// mail mode is on. It returns how many leads it re-queued.
func RequeueDryRun(ctx context.Context, store *db.DB) (int, error) {
	return store.RequeueDryRunLeads(ctx)
}
