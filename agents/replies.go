package agents

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// The Replies agent reads the replies mailbox (IMAP), sorts each message
// (SortReply, and the LLM's second opinion when the rules are unsure and a
// classifier is configured: replies_llm.go), finds the lead it answers and
// stores it once, acting on its
// class in the same transaction (db.ApplyReply); only then is the message
// marked handled on the server. A crash between the fetch and the store
// loses nothing (the message is fetched again) and stores nothing twice
// (the reply's Message-ID is its key).

// RepliesOptions configure the Replies cycle.
type RepliesOptions struct {
	// MaxPerCycle bounds the messages read per run; default 50.
	MaxPerCycle int
	// Classifier gives the second opinion on the replies the rules are
	// unsure about (replies_llm.go); nil: the rules decide alone.
	Classifier ReplyClassifier
	// Currency is what the classifier's cost is in (the tasks' currency,
	// STRIPE_DEFAULT_CURRENCY); default "usd".
	Currency string
	// ClassifyTimeout bounds one second opinion; default 45 s.
	ClassifyTimeout time.Duration
}

// Replies counts.
const (
	repliesFetched    = "fetched"
	repliesStored     = "stored"
	repliesDuplicate  = "duplicate"
	repliesUnmatched  = "unmatched"
	repliesUnreadable = "unreadable"
	repliesUnstorable = "unstorable"
)

// RepliesCycle is the Replies agent's cycle over a mailbox.
type RepliesCycle struct {
	store *db.DB
	env   Env
	box   Mailbox
	opts  RepliesOptions
}

// NewRepliesCycle builds the Replies cycle; box nil is a cycle with no
// mailbox configured, which does nothing.
func NewRepliesCycle(store *db.DB, env Env, box Mailbox, opts RepliesOptions) *RepliesCycle {
	if opts.MaxPerCycle <= 0 {
		opts.MaxPerCycle = 50
	}
	if opts.Currency = strings.ToLower(strings.TrimSpace(opts.Currency)); opts.Currency == "" {
		opts.Currency = "usd"
	}
	if opts.ClassifyTimeout <= 0 {
		opts.ClassifyTimeout = defaultClassifyTimeout
	}
	return &RepliesCycle{store: store, env: env, box: box, opts: opts}
}

// Run reads the new messages of the mailbox, stores and acts on each, and
// marks handled the ones it is done with.
func (c *RepliesCycle) Run(ctx context.Context) (Counts, error) {
	counts := Counts{repliesFetched: 0, repliesStored: 0}
	if c.box == nil {
		counts["no_mailbox"] = 1
		return counts, nil
	}
	mails, err := c.box.Fetch(ctx, c.opts.MaxPerCycle)
	if err != nil {
		return counts, fmt.Errorf("replies: %w", err)
	}
	counts[repliesFetched] = len(mails)
	var handled []uint32
	var failed error
	for _, m := range mails {
		outcome, err := c.Apply(ctx, m.Raw, false)
		if err != nil && db.IsConstraintViolation(err) {
			// The store will never take this one as it is: counted and
			// marked handled, so it cannot hold back the mail after it.
			outcome, err = repliesUnstorable, nil
		}
		if err != nil {
			// Not marked handled: fetched again next run.
			failed = err
			break
		}
		counts[outcome]++
		handled = append(handled, m.UID)
	}
	if len(handled) > 0 {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
		defer cancel()
		if err := c.box.MarkHandled(bctx, handled); err != nil {
			failed = errors.Join(failed, err)
		}
	}
	if counts[repliesStored] > 0 && c.env.Events != nil {
		c.env.Events.Publish(Event{Kind: EventDataChanged, Agent: Replies, At: c.env.Now(), Subject: "replies"})
	}
	if failed != nil {
		return counts, fmt.Errorf("replies: %w", failed)
	}
	return counts, nil
}

// Apply reads, sorts, matches and stores one inbound message; it is the
// one path of every reply (the mailbox, SendGrid's Inbound Parse, the
// development simulator with simulated set). It returns what happened:
// "stored" (and the class), "duplicate", "unmatched" (no lead: mail from
// strangers creates nothing) or "unreadable"; an error only when the
// store failed, and then nothing was stored.
func (c *RepliesCycle) Apply(ctx context.Context, raw []byte, simulated bool) (string, error) {
	p, err := ParseInbound(raw)
	if err != nil {
		return repliesUnreadable, nil
	}
	return c.ApplyParsed(ctx, p, simulated)
}

// ApplyParsed is Apply for a message already parsed.
func (c *RepliesCycle) ApplyParsed(ctx context.Context, p ParsedReply, simulated bool) (string, error) {
	sorted := SortReply(p, c.env.Now())
	leadID, messageID, err := c.match(ctx, p, sorted)
	if err != nil {
		return "", err
	}
	if leadID == 0 {
		return repliesUnmatched, nil
	}
	class, reason := sorted.Class, sorted.Reason
	if class == ReplyBounce && !sorted.Hard {
		class, reason = ReplyOther, "not delivered, the address may be fine: "+reason
	}
	in := db.SortedReply{
		LeadID: leadID, MessageID: messageID, FromAddr: p.From, Subject: p.Subject, Body: p.Text,
		InboundID: p.MessageID, Class: class, Reason: reason, By: "rules", Simulated: simulated,
		Automatic: sorted.Automatic,
	}
	if !sorted.ReturnDate.IsZero() {
		back := sorted.ReturnDate
		in.ReturnDate = &back
	}
	if sorted.Complaint && p.Complaint != nil {
		in.Complaint = &db.ReplyComplaint{Source: complaintSource(*p.Complaint), Complained: p.Complaint.Recipients}
	}
	if c.opts.Classifier != nil && wantsSecondOpinion(p, sorted, simulated) {
		// Asked once per message: not again for a second delivery of one
		// stored already.
		dup, err := c.store.ReplyStored(ctx, in)
		if err != nil {
			return "", err
		}
		if dup {
			return repliesDuplicate, nil
		}
		in = c.secondOpinion(ctx, p, in)
	}
	out, err := c.store.ApplyReply(ctx, in)
	if err != nil {
		return "", err
	}
	if !out.Stored {
		return repliesDuplicate, nil
	}
	return repliesStored, nil
}

// match finds the lead a message answers and the outreach message it
// names: by the Message-IDs it refers to (the bounced message's first for
// a DSN, then In-Reply-To, then References from the latest), then by the
// addresses a bounce reports, then by the sender.
func (c *RepliesCycle) match(ctx context.Context, p ParsedReply, s Sorted) (int64, *int64, error) {
	var refs []string
	if p.Complaint != nil {
		// A complaint comes from the mailbox provider, not from the lead,
		// and it suppresses the address and pauses all outreach: it is
		// matched only by the message complained about, one a provider
		// really accepted from us, never by the addresses it names (a
		// forged report could list any lead) nor by its sender.
		if p.Complaint.OriginalMessageID != "" {
			refs = append(refs, p.Complaint.OriginalMessageID)
		}
	} else {
		if p.DSN != nil && p.DSN.OriginalMessageID != "" {
			refs = append(refs, p.DSN.OriginalMessageID)
		}
		if p.InReplyTo != "" {
			refs = append(refs, p.InReplyTo)
		}
		for i := len(p.References) - 1; i >= 0; i-- {
			refs = append(refs, p.References[i])
		}
	}
	for _, ref := range refs {
		id := MessageFromReference(ref)
		if id == 0 {
			continue
		}
		m, err := c.store.MessageLead(ctx, id)
		if err != nil {
			return 0, nil, err
		}
		if p.Complaint != nil && m.Status != db.MessageSent {
			continue // a message never sent for real draws no complaint
		}
		// Our Message-IDs can be guessed: a reference counts only with a
		// sender the message could come from — the address it went to or
		// its domain, or for a bounce a failed recipient that is that
		// address — so that nobody acts on a lead by naming its message.
		if m.LeadID != 0 && plausibleSender(p, s, m.To) {
			return m.LeadID, &id, nil
		}
	}
	var addrs []string
	switch {
	case p.Complaint != nil:
		// Matched by its message or not at all.
	case p.DSN != nil:
		addrs = s.BounceRecipients
	default:
		addrs = append(s.BounceRecipients, p.From)
	}
	for _, a := range addrs {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" {
			continue
		}
		lead, err := c.store.LeadIDByEmail(ctx, a)
		if err != nil {
			return 0, nil, err
		}
		if lead != 0 {
			return lead, nil, nil
		}
	}
	return 0, nil, nil
}

// plausibleSender reports whether message p, sorted s, may answer a message
// sent to address to: a bounce must report to as failed; a complaint must
// name to or no one; a reply must come from to or from its domain.
func plausibleSender(p ParsedReply, s Sorted, to string) bool {
	if p.Complaint != nil {
		// The provider names the recipient, or redacts it (Microsoft's
		// reports do): a named one must be the address written to.
		if len(p.Complaint.Recipients) == 0 {
			return true
		}
		return slices.Contains(p.Complaint.Recipients, strings.ToLower(to))
	}
	if p.DSN != nil {
		for _, r := range s.BounceRecipients {
			if strings.EqualFold(r, to) {
				return true
			}
		}
		return false
	}
	from := strings.ToLower(p.From)
	if from == "" || to == "" {
		return false
	}
	if from == to {
		return true
	}
	_, fd, ok1 := strings.Cut(from, "@")
	_, td, ok2 := strings.Cut(to, "@")
	return ok1 && ok2 && fd == td
}

// complaintSource is the suppression source of a complaint: "arf:" and its
// feedback type, or its user agent when it gives none.
func complaintSource(c Complaint) string {
	what := c.FeedbackType
	if what == "" {
		what = oneLine(c.UserAgent, 60)
	}
	if what == "" {
		what = "unspecified"
	}
	return "arf:" + what
}
