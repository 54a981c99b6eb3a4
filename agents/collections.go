package agents

import (
	"context"
	"errors"
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hossagent/hossagent/db"
)

// CollectionsOptions configure the Collections cycle.
type CollectionsOptions struct {
	Company CompanyInfo
	// BaseURL is the app's public URL: portal links and the portal's
	// sign-in page are under it.
	BaseURL string
	// From is the sender address of client e-mail (EMAIL_FROM); the name
	// shown is Company.Name.
	From string
	// Schedule is the reminder steps, as offsets from the due date
	// (DUNNING_SCHEDULE); empty sends no reminders.
	Schedule []time.Duration
	// Caps bound client e-mail per rolling hour and day, apart from
	// outreach's; zero values take 100 and 500 (and 20 and 100 for the
	// portal links asked for on the sign-in page, which have their own).
	Caps db.ClientCaps
	// LinkTTL is how long a portal link in an e-mail works; default 30 days.
	LinkTTL time.Duration
	// MaxPerCycle bounds the jobs composed and the messages sent per run;
	// default 50.
	MaxPerCycle int
	// WaitForLink is how long an invoice e-mail waits for the invoice's
	// payment link, so that it carries PAY NOW (Stripe on); 0 never waits.
	WaitForLink time.Duration
	Titles      KindTitles
	// Plans finds a customer's plan for the welcome e-mail (its title and
	// whether it renews monthly); nil names the plan by its key.
	Plans func(name string) (Plan, bool)
	Docs  Documents
}

func (o CollectionsOptions) withDefaults() CollectionsOptions {
	if o.Caps.PerHour <= 0 {
		o.Caps.PerHour = 100
	}
	if o.Caps.PerDay <= 0 {
		o.Caps.PerDay = 500
	}
	if o.Caps.LinksPerHour <= 0 {
		o.Caps.LinksPerHour = 20
	}
	if o.Caps.LinksPerDay <= 0 {
		o.Caps.LinksPerDay = 100
	}
	if o.LinkTTL <= 0 {
		o.LinkTTL = 30 * 24 * time.Hour
	}
	if o.MaxPerCycle <= 0 {
		o.MaxPerCycle = 50
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	return o
}

// Collections counts.
const (
	collectQueued      = "queued"
	collectSkipped     = "skipped"
	collectPostponed   = "postponed"
	collectSent        = "sent"
	collectDryRun      = "dry_run"
	collectFailed      = "failed"
	collectSuppressed  = "suppressed"
	collectCapped      = "capped"
	collectNeedsReview = "needs_review"
	collectJobFailed   = "job_failed"
)

// jobRetryAfter is how long a job whose e-mail could not be written waits
// before it is tried again.
const jobRetryAfter = 15 * time.Minute

// PortalLinkSlot is how often a client may have a fresh portal link mailed
// on request: one per slot per customer, however often they ask.
const PortalLinkSlot = 15 * time.Minute

// CollectionsCycle tells clients what they owe and thanks them when they
// pay: it writes the welcome, invoice, receipt and reminder e-mails that
// the store's collection jobs ask for, with their PDFs, into the clients'
// outbox, and sends them within their own caps. Like BizDev's, each
// message is claimed (sending) before the provider sees it, so none is
// sent twice across crashes or concurrent runs, and each has a unique key,
// so none is written twice either.
type CollectionsCycle struct {
	store  *db.DB
	env    Env
	mailer Mailer
	opts   CollectionsOptions
}

// NewCollectionsCycle builds the Collections cycle.
func NewCollectionsCycle(store *db.DB, env Env, mailer Mailer, opts CollectionsOptions) *CollectionsCycle {
	return &CollectionsCycle{store: store, env: env, mailer: mailer, opts: opts.withDefaults()}
}

// Run composes the due jobs, then sends the client outbox.
func (c *CollectionsCycle) Run(ctx context.Context) (Counts, error) {
	counts := Counts{}
	if n, err := c.store.FlagStaleClientSending(ctx, StaleSendingAfter); err != nil {
		return counts, err
	} else if n > 0 {
		counts[collectNeedsReview] += n
	}
	jobs, err := c.store.DueCollectionJobs(ctx, c.env.Now(), c.opts.MaxPerCycle)
	if err != nil {
		return counts, err
	}
	// A job whose e-mail cannot be written (a document that fails to
	// render) is tried again later; the other jobs and the sending go on,
	// and the run reports it as failed.
	var failed []error
	for _, j := range jobs {
		outcome, _, err := c.store.CompleteCollectionJob(ctx, j.ID, c.compose)
		if err != nil {
			if ctx.Err() != nil {
				return counts, err
			}
			counts[collectJobFailed]++
			failed = append(failed, err)
			if err := c.store.PostponeFailedJob(ctx, j.ID, c.env.Now().Add(jobRetryAfter), err.Error()); err != nil {
				return counts, err
			}
			continue
		}
		switch outcome {
		case db.JobQueued:
			counts[collectQueued]++
			counts[j.Kind]++
		case db.JobSkipped, db.JobDup:
			counts[collectSkipped]++
		case db.JobLater:
			counts[collectPostponed]++
		}
	}
	err = errors.Join(c.send(ctx, counts), errors.Join(failed...))
	if c.env.Events != nil && (counts[collectQueued] > 0 || counts[collectSent]+counts[collectDryRun] > 0) {
		c.env.Events.Publish(Event{Kind: EventDataChanged, Agent: Collections, At: c.env.Now()})
	}
	return counts, err
}

// send hands the client outbox to the mailer, oldest first, within the
// caps.
func (c *CollectionsCycle) send(ctx context.Context, counts Counts) error {
	batch, err := c.store.SendableClientMessages(ctx, c.opts.MaxPerCycle)
	if err != nil {
		return err
	}
	dryRun := c.mailer.Mode() == MailModeDryRun
	// Requested portal links and the other client e-mail have caps of
	// their own: a full one holds back its own kind only.
	full := map[bool]bool{}
	for i := range batch {
		m := &batch[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		link := m.Kind == db.ClientPortalLink
		if full[link] {
			counts[collectCapped]++
			continue
		}
		// The link is made for this send only, and only for real mail: its
		// token is in the e-mail alone, its hash goes in with the claim.
		grant, token := (*db.PortalLinkGrant)(nil), ""
		if !dryRun && carriesLink(m) {
			t, hash, err := db.NewToken(c.env.Random)
			if err != nil {
				return err
			}
			token = t
			grant = &db.PortalLinkGrant{TokenHash: hash, ExpiresAt: c.env.Now().Add(c.opts.LinkTTL)}
		}
		claim, err := c.store.ClaimClientMessage(ctx, m.ID, c.opts.Caps, grant)
		if err != nil {
			return err
		}
		switch claim {
		case db.ClaimCapped:
			// This one and the rest of its kind stay queued.
			full[link] = true
			counts[collectCapped]++
			continue
		case db.ClaimSuppressed:
			counts[collectSuppressed]++
			continue
		case db.ClaimGone:
			continue
		}
		if err := c.deliver(ctx, m, token, dryRun, counts); err != nil {
			return err
		}
	}
	return nil
}

func carriesLink(m *db.ClientMessage) bool {
	return strings.Contains(m.BodyText, PortalLinkPlaceholder) || strings.Contains(m.BodyHTML, PortalLinkPlaceholder)
}

// deliver sends one claimed client message and records the answer.
func (c *CollectionsCycle) deliver(ctx context.Context, m *db.ClientMessage, token string, dryRun bool, counts Counts) error {
	files, err := c.store.ClientAttachments(ctx, m.ID)
	if err != nil {
		return err
	}
	link := c.opts.BaseURL + "/portal"
	if token != "" {
		link = c.opts.BaseURL + "/portal/link/" + token
	}
	mail := OutgoingMail{
		To: m.ToAddr, From: c.opts.From, FromName: c.opts.Company.Name, Subject: m.Subject,
		Body:     strings.ReplaceAll(m.BodyText, PortalLinkPlaceholder, link),
		HTML:     strings.ReplaceAll(m.BodyHTML, PortalLinkPlaceholder, html.EscapeString(link)),
		OutboxID: clientOutboxID(m.ID),
	}
	if b := c.opts.Company.BillingEmail; b != "" && !strings.EqualFold(b, c.opts.From) {
		mail.ReplyTo = b
	}
	for _, f := range files {
		mail.Attachments = append(mail.Attachments, Attachment{Filename: f.Filename, ContentType: f.ContentType, Content: f.Content})
	}
	providerID, sendErr := c.mailer.Send(ctx, mail)
	if sendErr != nil && ctx.Err() != nil {
		return errors.Join(sendErr, ctx.Err())
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	switch {
	case IsUnknownMailOutcome(sendErr):
		counts[collectNeedsReview]++
		return c.store.FlagClientForReview(bctx, m.ID, sendErr.Error())
	case sendErr != nil:
		counts[collectFailed]++
		if err := c.store.MarkClientFailed(bctx, m.ID, sendErr.Error()); err != nil {
			return err
		}
		// A mail server that refused the address itself on every attempt
		// is a hard bounce: the operator is told and nothing more is
		// written to it until they clear the flag. Only a refusal of the
		// recipient counts: a refused login, sender or account would flag
		// every client at once. (SendGrid's bounces come through its event
		// webhook.)
		if refusedRecipient(sendErr) && m.Attempts+1 >= db.MaxSendAttempts {
			_, err := c.store.FlagCustomerMail(bctx, m.ToAddr, "hard bounce: "+truncateText(sendErr.Error(), 120))
			return err
		}
		return nil
	}
	if err := c.store.MarkClientSent(bctx, m.ID, providerID, dryRun); err != nil {
		return err
	}
	if dryRun {
		counts[collectDryRun]++
	} else {
		counts[collectSent]++
	}
	return nil
}

// clientOutboxID keeps client message ids apart from outreach message ids
// where a mailer derives a Message-ID from the outbox id: client messages
// count down from -1.
func clientOutboxID(id int64) int64 { return -id }

// RequestPortalLink queues a fresh portal link for the client whose contact
// address is email, at most one per PortalLinkSlot; the next run sends it.
// An unknown or flagged address queues nothing and is no error.
func (c *CollectionsCycle) RequestPortalLink(ctx context.Context, email string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || len(email) > 254 {
		return nil
	}
	slot := strconv.FormatInt(c.env.Now().UTC().Truncate(PortalLinkSlot).Unix(), 10)
	_, err := c.store.QueuePortalLinkMail(ctx, email, slot, func(cu db.Customer) (db.ClientDraft, error) {
		d, err := c.portalLinkMail(cu)
		if err != nil {
			return db.ClientDraft{}, err
		}
		return *d, nil
	})
	return err
}

// compose writes the e-mail a job asks for (collections_mail.go).
func (c *CollectionsCycle) compose(cs db.CollectionCase) (*db.ClientDraft, []db.NewCollectionJob, error) {
	switch cs.Job.Kind {
	case db.ClientWelcome:
		d, err := c.welcomeMail(cs)
		return d, nil, err
	case db.ClientInvoice:
		return c.invoiceJob(cs)
	case db.ClientReceipt:
		if cs.Invoice.Status != db.InvoicePaid {
			return nil, nil, db.ErrSkipJob
		}
		d, err := c.receiptMail(cs)
		return d, nil, err
	case db.ClientReminder:
		if cs.Invoice.Status != db.InvoiceOpen || c.laterStepDue(cs) {
			return nil, nil, db.ErrSkipJob
		}
		d, err := c.reminderMail(cs)
		return d, nil, err
	}
	return nil, nil, fmt.Errorf("collections: unknown job kind %q", cs.Job.Kind)
}

// invoiceJob writes the invoice e-mail and adds the invoice's reminders:
// one job per schedule step, at the due date plus the step, leaving out the
// steps already past when the invoice was issued or now (no "due in 3 days"
// for an invoice due tomorrow; no burst of reminders with a late e-mail).
func (c *CollectionsCycle) invoiceJob(cs db.CollectionCase) (*db.ClientDraft, []db.NewCollectionJob, error) {
	inv := cs.Invoice
	if inv.Status != db.InvoiceOpen {
		return nil, nil, db.ErrSkipJob
	}
	now := c.env.Now()
	// Measured from the job's creation (the issue), which a postponement
	// does not move.
	if inv.PaymentURL == "" && inv.Flag == "" && c.opts.WaitForLink > 0 && now.Before(cs.Job.CreatedAt.Add(c.opts.WaitForLink)) {
		return nil, nil, &db.PostponeJob{Until: now.Add(time.Minute)}
	}
	d, err := c.invoiceMail(cs)
	if err != nil {
		return nil, nil, err
	}
	var jobs []db.NewCollectionJob
	if inv.DueAt != nil {
		for _, step := range c.opts.Schedule {
			at := inv.DueAt.Add(step)
			if at.Before(cs.Job.RunAt) || at.Before(now) {
				continue
			}
			jobs = append(jobs, db.NewCollectionJob{Kind: db.ClientReminder, Step: StepName(step), RunAt: at})
		}
	}
	return d, jobs, nil
}

// StepName is a reminder step as DUNNING_SCHEDULE spells it ("-3d", "0d",
// "+7d").
func StepName(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	if n > 0 {
		return "+" + strconv.Itoa(n) + "d"
	}
	return strconv.Itoa(n) + "d"
}

// stepDays reads a step name back as days from the due date.
func stepDays(step string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(step, "+"), "d"))
	return n
}

// truncateText cuts s to at most n bytes on a rune boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// refusedRecipient reports whether err is an SMTP server refusing the
// recipient's mailbox: 550, 551 or 553, without a 5.7.x (policy,
// authentication) enhanced status.
func refusedRecipient(err error) bool {
	var me *MailError
	if !errors.As(err, &me) || !me.Permanent || me.Provider != "smtp" {
		return false
	}
	switch me.Code {
	case 550, 551, 553:
		return !strings.Contains(me.Error(), " 5.7.")
	}
	return false
}

// laterStepDue reports whether a later reminder of the case's invoice is
// due already (Collections did not run for a while): only the latest due
// step is sent, never a burst of them.
func (c *CollectionsCycle) laterStepDue(cs db.CollectionCase) bool {
	if cs.Invoice.DueAt == nil {
		return false
	}
	this := time.Duration(stepDays(cs.Job.Step)) * 24 * time.Hour
	for _, step := range c.opts.Schedule {
		if step > this && !cs.Invoice.DueAt.Add(step).After(c.env.Now()) {
			return true
		}
	}
	return false
}
