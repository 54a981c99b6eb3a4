package views

import (
	"strconv"
	"time"
)

// The view models of the review queue (/admin/outreach/drafts): the
// outreach drafts waiting for an admin's decision, with the forms that
// approve, edit and reject them (app/admin_drafts.go).

// DraftsPage is the review queue.
type DraftsPage struct {
	Meta
	// Review is OUTREACH_REVIEW: BizDev drafts every step while it is on.
	Review bool
	// Waiting counts every waiting draft; Drafts are the oldest of them,
	// the ones shown (and the ones "Approve all shown" approves).
	Waiting int
	Drafts  []Draft
	// Result says what the last action did; ResultClass is ok, warn or bad.
	Result, ResultClass string
	// Limits of an edit.
	MaxSubjectChars, MaxBodyChars int
}

// Draft is one waiting draft.
type Draft struct {
	ID, LeadID                    int64
	LeadName, LeadCompany, ToAddr string
	Step                          int
	Template, Subject, Body       string
	InReplyTo                     string // a follow-up's thread, "" for a first e-mail
	Revision                      int
	CreatedAt                     time.Time
}

// Ref is the draft as "Approve all shown" names it: id and the revision
// shown, so that a draft edited since is not approved unseen.
func (d Draft) Ref() string {
	return strconv.FormatInt(d.ID, 10) + ":" + strconv.Itoa(d.Revision)
}

// draftURL is the address of action on draft id.
func draftURL(id int64, action string) string {
	return "/admin/outreach/drafts/" + strconv.FormatInt(id, 10) + "/" + action
}

// draftField is the id of a draft's form field.
func draftField(id int64, name string) string {
	return "draft-" + strconv.FormatInt(id, 10) + "-" + name
}

// draftStepText names a draft's step.
func draftStepText(d Draft) string {
	if d.Step == 1 {
		return "step 1 (first e-mail)"
	}
	return "step " + strconv.Itoa(d.Step) + " (follow-up)"
}

// draftsCountText says how many drafts wait and how many are shown.
func draftsCountText(p DraftsPage) string {
	switch {
	case p.Waiting == 0:
		return "No draft is waiting for review."
	case p.Waiting > len(p.Drafts):
		return strconv.Itoa(p.Waiting) + " drafts are waiting; the oldest " + strconv.Itoa(len(p.Drafts)) + " are shown."
	case p.Waiting == 1:
		return "1 draft is waiting."
	}
	return strconv.Itoa(p.Waiting) + " drafts are waiting."
}

// draftsWaitingText is the e-mail panel's drafts row.
func draftsWaitingText(n int) string {
	if n == 1 {
		return "1 waiting for review"
	}
	return strconv.Itoa(n) + " waiting for review"
}
