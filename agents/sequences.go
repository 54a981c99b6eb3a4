package agents

import (
	"time"
)

// Sequences: outreach is the pack's first e-mail and its follow-ups. A lead
// moves step by step while it has not replied, bounced, unsubscribed,
// converted or been stopped; each follow-up threads under the first e-mail
// (In-Reply-To, References, "Re:" subject) and goes through the outbox and
// the caps like the first.

// FollowUp is one follow-up step of a pack: sent DelayDays business days
// (Monday to Friday, in the send time zone) after the step before it. Body
// takes the first e-mail's placeholders ({first_name}, {company}, …); the
// subject is the first e-mail's, as "Re: …".
type FollowUp struct {
	Step      int // 2, 3, …
	DelayDays int // business days after the previous step, 1 to 30
	Body      string
}

// Sequences gives each pack's follow-ups, in step order. The built-in
// ones (DefaultFollowUps) serve until the store holds the operator's.
type Sequences interface {
	FollowUps(pack string) []FollowUp
}

// MaxFollowUps bounds a pack's follow-ups.
const MaxFollowUps = 5

// builtinFollowUps are the follow-ups every pack starts with: a short nudge
// after three business days, a last note after five more.
var builtinFollowUps = []FollowUp{
	{Step: 2, DelayDays: 3, Body: `Hi {first_name},

A quick follow-up on my note below, in case it got buried: {Sender} offers {offer}, and I think it could save {company} time.

Would it be worth a short call?

{signature}`},
	{Step: 3, DelayDays: 5, Body: `Hi {first_name},

I won't keep writing: if outside help with research and outreach copy is ever useful to {company}, a one-line reply to this thread reaches me.

{signature}`},
}

// DefaultFollowUps are the built-in follow-ups of every pack.
type DefaultFollowUps struct{}

// FollowUps returns the built-in follow-ups (the same for every pack).
func (DefaultFollowUps) FollowUps(pack string) []FollowUp {
	out := make([]FollowUp, len(builtinFollowUps))
	copy(out, builtinFollowUps)
	return out
}

// AddBusinessDays is t plus n business days (Monday to Friday) in loc, at
// the same clock time: a follow-up due on a weekend waits for Monday.
func AddBusinessDays(t time.Time, n int, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	d := t.In(loc)
	for n > 0 {
		d = d.AddDate(0, 0, 1)
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	for wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday; wd = d.Weekday() {
		d = d.AddDate(0, 0, 1)
	}
	return d.UTC()
}
