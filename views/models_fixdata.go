package views

import (
	"net/url"
	"strconv"
	"time"

	"github.com/a-h/templ"
)

// The operators' data fixes (issue 13): the controls on the lead, task and
// customer pages, the bulk forms of the leads and tasks tables, and the
// suppression list.

// MaxBulk is how many rows one bulk form may name (db.MaxBulk).
const MaxBulk = 200

// LeadMarkable are the statuses a lead may be marked responded from, and
// LeadKillable those it may be marked dead from (db.LeadMarkFrom).
var (
	LeadMarkable = []string{LeadNew, LeadContacted, LeadFailed, LeadDead}
	LeadKillable = []string{LeadNew, LeadContacted, LeadResponded, LeadFailed}
)

// LeadActionsPanel is the lead page's controls: mark responded, mark dead
// (with a note). Result is what the last action did.
type LeadActionsPanel struct {
	LeadID     int64
	Company    string
	Status     string
	Note       string // the note typed, kept after a refusal
	Result     string
	ResultKind string
}

// CanRespond and CanKill say which marks the lead's status allows.
func (p LeadActionsPanel) CanRespond() bool { return inList(p.Status, LeadMarkable) }
func (p LeadActionsPanel) CanKill() bool    { return inList(p.Status, LeadKillable) }

func inList(s string, list []string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TaskActionsPanel is the task page's retry control.
type TaskActionsPanel struct {
	TaskID     int64
	Status     string
	Billed     bool
	Attempts   int
	Result     string
	ResultKind string
}

// MessagesPanel is the lead page's outreach e-mails, with a retry control
// on each failed message and each one waiting for review.
type MessagesPanel struct {
	LeadID     int64
	Messages   []Message
	Count      int64
	Result     string
	ResultKind string
}

// MessageRetryable reports whether m gets a retry control: failed with no
// attempts left (3, db.MaxSendAttempts), or waiting for review.
func MessageRetryable(m Message) bool {
	return (m.Status == LeadFailed && m.Attempts >= 3) || (m.Status == "sending" && m.NeedsReview)
}

// CustomerEditPanel is the customer page's edit form.
type CustomerEditPanel struct {
	CustomerID   int64
	Company      string
	ContactName  string
	ContactEmail string
	// LeadName is the name of the lead the customer came from, used while
	// ContactName is "".
	LeadName   string
	Result     string
	ResultKind string
}

// Suppression is one suppressed address or domain.
type Suppression struct {
	ID        int64
	Kind      string
	Value     string
	Reason    string
	Source    string
	CreatedAt time.Time
}

// SuppressionsPage is the suppression list at /admin/suppressions.
type SuppressionsPage struct {
	Meta
	Panel SuppressionsPanel
}

// SuppressionsPanel is the list with its add form; AddKind and AddValue are
// kept after a refusal.
type SuppressionsPanel struct {
	Search       string
	Rows         []Suppression
	Page         Page
	AddKind      string
	AddValue     string
	Result       string
	ResultKind   string
	RemovedValue string // the row just removed, named in the result
}

// pageURL is the list at cursor, keeping the search.
func (p SuppressionsPanel) pageURL(cursor string) templ.SafeURL {
	q := url.Values{}
	if p.Search != "" {
		q.Set("q", p.Search)
	}
	return pageURL("/admin/suppressions", q, "p", cursor)
}

// ConfirmPage asks a browser without scripts to confirm an action: the
// form posts Fields again with confirm=yes.
type ConfirmPage struct {
	Meta
	Question string
	Action   string      // the POST address
	Fields   [][2]string // name, value
	Back     string      // where "Cancel" goes
}

func idString(id int64) string { return strconv.FormatInt(id, 10) }

// LeadActionsFor is the actions panel of l as stored.
func LeadActionsFor(l Lead) LeadActionsPanel {
	return LeadActionsPanel{LeadID: l.ID, Company: l.Company, Status: l.Status}
}

// MessagesFor is the e-mails panel of a lead's record.
func MessagesFor(r LeadRecord) MessagesPanel {
	return MessagesPanel{LeadID: r.Lead.ID, Messages: r.Messages, Count: r.MessageCount}
}

// TaskActionsFor is the actions panel of a task's record.
func TaskActionsFor(r TaskRecord) TaskActionsPanel {
	return TaskActionsPanel{TaskID: r.Task.ID, Status: r.Task.Status, Billed: r.Line != nil, Attempts: r.Task.Attempts}
}

// CustomerEditFor is the edit form of a customer's record as stored.
func CustomerEditFor(r CustomerRecord) CustomerEditPanel {
	p := CustomerEditPanel{CustomerID: r.Customer.ID, Company: r.Customer.Company, ContactName: r.Customer.ContactName, ContactEmail: r.Customer.ContactEmail}
	if r.Lead != nil {
		p.LeadName = r.Lead.Name
	}
	return p
}

// contactNameText is the customer's contact name as the page shows it.
func contactNameText(r CustomerRecord) string {
	switch {
	case r.Customer.ContactName != "":
		return r.Customer.ContactName
	case r.Lead != nil && r.Lead.Name != "":
		return r.Lead.Name + " (the lead's name)"
	}
	return dash
}
