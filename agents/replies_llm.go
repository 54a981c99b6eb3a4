package agents

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// The LLM's second opinion on a reply the rules were unsure about
// (Sorted.Unsure): when a classifier is configured (the LLM executor,
// TASK_EXECUTOR=openai), the Replies cycle asks it, takes its class, and
// records the call and its cost with the reply (db.LLMSorting). Rules
// always win where they are sure: a DSN, an automatic reply, a complaint, an
// unsubscribe phrasing, a one-word answer never reach the LLM. An LLM that
// fails or runs out of time loses nothing: the reply is stored with the
// rules' class, and its reason says the LLM was unavailable.

// ReplyClassifier sorts a reply's text into one of ReplyClasses.
type ReplyClassifier interface {
	// ClassifyReply returns the class and its reason. It must honour ctx.
	// An error may still carry the cost of a call that was answered (an
	// unusable answer was paid for); CostCents is never negative.
	ClassifyReply(ctx context.Context, in ReplyToClassify) (ReplyVerdict, error)
}

// ReplyToClassify is what the classifier reads of a reply.
type ReplyToClassify struct {
	Subject string
	// Text is the reply's text; the classifier strips the quoted history
	// (StripQuoted) and clips it.
	Text string
}

// ReplyVerdict is a classifier's answer.
type ReplyVerdict struct {
	Class  string // one of ReplyClasses (ValidReplyClass)
	Reason string // one short sentence
	Model  string
	// CostCents is what the call cost, in minor units of the currency the
	// executor's prices are in (the tasks' currency).
	CostCents int64
}

// defaultClassifyTimeout bounds one reply's second opinion.
const defaultClassifyTimeout = 45 * time.Second

// maxLLMReason bounds the reason shown, in bytes.
const maxLLMReason = 300

// wantsSecondOpinion says whether a reply sorted s goes to the LLM: never a
// simulated one (the development simulator must not spend money).
func wantsSecondOpinion(p ParsedReply, s Sorted, simulated bool) bool {
	if simulated || !s.Unsure || s.Automatic || s.Complaint || p.DSN != nil || p.Complaint != nil {
		return false
	}
	switch s.Class {
	case ReplyBounce, ReplyUnsubscribe, ReplyOutOfOffice:
		return false // rules are never unsure of these; belt and braces
	}
	return strings.TrimSpace(p.NewText) != "" || strings.TrimSpace(StripQuoted(p.Text)) != ""
}

// secondOpinion asks the classifier about reply p (stored as in) and
// returns in with the LLM's class and reason, or with the rules' and a note
// that the LLM was unavailable; in.LLM records the call either way.
func (c *RepliesCycle) secondOpinion(ctx context.Context, p ParsedReply, in db.SortedReply) db.SortedReply {
	cctx, cancel := context.WithTimeout(ctx, c.opts.ClassifyTimeout)
	defer cancel()
	v, err := c.opts.Classifier.ClassifyReply(cctx, ReplyToClassify{Subject: p.Subject, Text: p.Text})
	rec := &db.LLMSorting{Model: v.Model, CostCents: max(v.CostCents, 0), Currency: c.opts.Currency}
	in.LLM = rec
	if err == nil && !ValidReplyClass(v.Class) {
		err = errors.New("an answer outside the reply classes: " + clipBytes(v.Class, 40))
	}
	if err != nil {
		why := oneLine(err.Error(), 200)
		if cctx.Err() != nil && ctx.Err() == nil {
			why = "no answer within " + c.opts.ClassifyTimeout.String()
		}
		rec.Reason = "unavailable: " + why
		in.Reason = clipBytes(in.Reason+"; the LLM was unavailable ("+why+"), so the rules' class stands", 500)
		return in
	}
	reason := oneLine(v.Reason, maxLLMReason)
	if reason == "" {
		reason = "no reason given"
	}
	rec.Class, rec.Reason = v.Class, reason
	if v.Class == ReplyBounce {
		// A bounce is told by a DSN, which the rules read; a person's
		// words cannot bounce an address.
		in.Reason = clipBytes(in.Reason+"; the LLM said bounce (LLM: "+reason+"), which only a delivery report can show, so the rules' class stands", 500)
		return in
	}
	in.Class, in.By, in.Reason = v.Class, "llm", "LLM: "+reason
	if v.Class == ReplyOutOfOffice {
		text := p.NewText
		if strings.TrimSpace(text) == "" {
			text = StripQuoted(p.Text)
		}
		if back := returnDate(normalizeReply(p.Subject)+"\n"+normalizeReply(clipBytes(text, maxSortText)), c.env.Now()); !back.IsZero() {
			in.ReturnDate = &back
		}
	}
	return in
}

// oneLine is s on one line, at most n bytes.
func oneLine(s string, n int) string {
	return clipBytes(strings.Join(strings.Fields(cleanLine(s)), " "), n)
}
