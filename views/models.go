package views

import (
	"time"

	"github.com/hossagent/hossagent/db/money"
)

// This file holds the view models: plain structs with the fields the pages
// show, filled by the app from the store's rows (app/viewmodels.go). Views
// never see a store row, so they link neither bun nor SQLite, and a page is
// handed no secret it does not show: no password, session or API token
// hash, and of a portal token only the prefix the customer page prints.
// Business rules (what a failed task earns, when an invoice is overdue,
// whether a token is revoked) are applied by the store's methods before the
// figures reach a view model; views only format them.

// Statuses the pages compare against or list. They equal the store's
// (db.TaskDone, …); views/parity_test.go keeps them from drifting.
const (
	LeadNew          = "new"
	LeadContacted    = "contacted"
	LeadResponded    = "responded"
	LeadConverted    = "converted"
	LeadBounced      = "bounced"
	LeadUnsubscribed = "unsubscribed"
	LeadFailed       = "failed"
	LeadDead         = "dead"

	TaskPending = "pending"
	TaskRunning = "running"
	TaskDone    = "done"
	TaskFailed  = "failed"

	InvoiceDraft    = "draft"
	InvoiceOpen     = "open"
	InvoicePaid     = "paid"
	InvoiceVoid     = "void"
	InvoiceRefunded = "refunded"

	CustomerActive = "active"
	CustomerPaused = "paused"
	CustomerClosed = "closed"

	MessageQueued     = "queued"
	MessageSending    = "sending"
	MessageSent       = "sent"
	MessageDryRun     = "dry_run"
	MessageFailed     = "failed"
	MessageSuppressed = "suppressed"

	RunOK          = "ok"
	RunInterrupted = "interrupted"

	// AuditPortalRevoked is the audit action of a portal link revocation.
	AuditPortalRevoked = "portal link revoked"
)

// SearchCountCap is where a search that reads every row stops counting.
const SearchCountCap = 1000

// LeadStatuses lists every lead status in display order.
var LeadStatuses = []string{LeadNew, LeadContacted, LeadResponded, LeadConverted, LeadBounced, LeadUnsubscribed, LeadFailed, LeadDead}

// MessageStatuses lists every outbox status in display order.
var MessageStatuses = []string{MessageQueued, MessageSending, MessageSent, MessageDryRun, MessageFailed, MessageSuppressed}

// Money and Totals are the store's amount types (db/money, which imports
// nothing): the views format money exactly as everything else does.
type (
	Money  = money.Money
	Totals = money.Totals
)

// Page is where a page sits in its list, with the cursors of its
// neighbours already in their URL form ("" for the first page).
type Page struct {
	Number, Pages, Total int
	// AtLeast says Total is a lower bound: a search stopped counting.
	AtLeast          bool
	HasPrev, HasNext bool
	At, Prev, Next   string
}

// Stats are the business's figures, for the dashboard and the control room.
type Stats struct {
	Revenue, Outstanding Totals
	Money                MoneyFigures // the money cards (models_money.go)

	LeadsByStatus    map[string]int64
	TasksByStatus    map[string]int64
	InvoicesByStatus map[string]int64

	Leads, Customers int64
	ActiveLeads      int64 // leads still in the pipeline
}

// Lead is a prospect.
type Lead struct {
	ID          int64
	Name        string
	Email       string // "" when it has none
	Company     string
	DomainKey   *string
	Niche       string
	Website     string
	Source      string
	Status      string
	DryRun      bool
	ContactedAt *time.Time
	RespondedAt *time.Time
	ConvertedAt *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// The lead's sequence: steps sent, when the next is due (nil: none),
	// why it ended early ("" while it runs).
	SequenceStep int
	NextStepAt   *time.Time
	SequenceStop string
	// DraftStep is the step drafted and waiting for an admin's review
	// (OUTREACH_REVIEW), 0 when none waits.
	DraftStep int
}

// LeadRef is a lead named on another record's page.
type LeadRef struct {
	ID      int64
	Company string
	Status  string
	Name    string
}

// Customer is a customer on its own record page. PortalToken is what the
// page shows of the token's hash (ShortHash), never the hash itself.
type Customer struct {
	ID               int64
	Company          string
	ContactName      string // as stored; "" means the lead's name
	ContactEmail     string
	Plan             string
	LeadID           *int64
	Status           string
	StripeCustomerID string
	PortalToken      string
	TokenCreatedAt   time.Time
	TokenRevokedAt   *time.Time
	CreatedAt        time.Time
}

// CustomerRef is a customer named on another record's page.
type CustomerRef struct {
	ID        int64
	Company   string
	Status    string
	CreatedAt time.Time
}

// CustomerRow is a customer in the control room's list, with its money.
type CustomerRow struct {
	ID           int64
	Company      string
	ContactEmail string
	Plan         string
	Status       string
	TaskCount    int64
	Billed, Paid Totals
}

// Task is one piece of work. Reward is its price; Profit is what it earns
// less what it cost (minus its cost for a failed task, which earns nothing).
type Task struct {
	ID                   int64
	CustomerID           int64
	Kind                 string
	Description          string
	Status               string
	Currency             string
	Reward, Cost, Profit Money
	Attempts             int
	LeaseExpiresAt       *time.Time
	StartedAt            *time.Time
	Result               string
	LastError            string
	CompletedAt          *time.Time
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// TaskRow is a task with its customer's company.
type TaskRow struct {
	Task
	Company string
}

// Invoice is a bill. Label is its number, or DRAFT before it is issued;
// Overdue is whether it is open past its due date at the page's time.
type Invoice struct {
	ID                  int64
	CustomerID          int64
	Number              *string
	Label               string
	Currency            string
	Amount              Money
	Status              string
	Overdue             bool
	IssuedAt            *time.Time
	DueAt               *time.Time
	StripePriceID       string
	StripePaymentLinkID string
	PaymentURL          string
	PaidAt              *time.Time
	PayerEmail          string
	PayerName           string
	Flag                string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// InvoiceRow is an invoice with its customer's company and line count.
type InvoiceRow struct {
	Invoice
	Company   string
	LineCount int64
}

// AgentRun is one entry of the cycle log.
type AgentRun struct {
	ID         int64
	Agent      string
	Trigger    string
	StartedAt  time.Time
	FinishedAt *time.Time
	Outcome    string
	Message    string
}

// AuditEntry is one admin action.
type AuditEntry struct {
	Actor      string
	Action     string
	Target     string
	Detail     string
	RemoteAddr string
	CreatedAt  time.Time
}

// APIToken is a JSON API token as its list shows it: never its hash.
type APIToken struct {
	ID         int64
	Name       string
	CreatedBy  string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	Revoked    bool // it no longer opens the API
}

// Message is one outreach e-mail.
type Message struct {
	ID          int64
	ToAddr      string
	Template    string
	Subject     string
	Body        string
	Status      string
	ProviderID  string
	Error       string
	Attempts    int
	NeedsReview bool
	CreatedAt   time.Time
	SentAt      *time.Time
	UpdatedAt   time.Time
}

// Reply is an inbound answer to outreach, with how it was sorted: Class
// (one of ReplyClasses; "" before sorting existed), why, and by whom
// ("rules", "llm", "operator").
type Reply struct {
	ID          int64
	FromAddr    string
	Subject     string
	Body        string
	Simulated   bool
	ReceivedAt  time.Time
	Class       string
	ClassReason string
	ClassBy     string
}

// ReplyClasses are the classes an operator may sort a reply into (the
// agents' ReplyClasses, pinned by views/parity_test.go).
var ReplyClasses = []string{"interested", "not_now", "not_interested", "out_of_office", "unsubscribe", "bounce", "other"}

// StripeEvent is a Stripe webhook event as recorded.
type StripeEvent struct {
	EventID    string
	Type       string
	Outcome    string
	ReceivedAt time.Time
}

// SetAsideEvent is a Stripe event recorded without being applied, and why.
type SetAsideEvent struct {
	EventID    string
	Type       string
	Outcome    string
	Detail     string
	ReceivedAt time.Time
}

// TimelineEntry is one thing that happened to a record or a row around it;
// Ref and RefID name the row it comes from.
type TimelineEntry struct {
	At     time.Time
	Event  string
	Detail string
	Ref    string
	RefID  int64
}

// Timeline is a record's history, newest first.
type Timeline struct {
	Entries []TimelineEntry
	More    bool // older entries were left out
}

// LeadRecord is a lead with its outreach, replies and customer.
type LeadRecord struct {
	Lead         Lead
	Customer     *CustomerRef // nil until the lead is converted
	Messages     []Message
	MessageCount int64
	Replies      []Reply
	ReplyCount   int64
	Timeline     Timeline
}

// CustomerProfit is a customer's money in one currency.
type CustomerProfit struct {
	Currency                                       string
	RewardCents, CostCents, ProfitCents, PaidCents int64
}

// CustomerRecord is a customer with its lead and money.
type CustomerRecord struct {
	Customer Customer
	Lead     *LeadRef // nil for a customer an admin created by hand
	Profit   []CustomerProfit
	Timeline Timeline
}

// BilledLine is the invoice line that bills a task, with its invoice.
type BilledLine struct {
	ID            int64
	InvoiceID     int64
	Number        *string
	InvoiceStatus string
	Description   string
	Amount        Money
	CreatedAt     time.Time
}

// TaskRecord is a task with its customer and the line that bills it.
type TaskRecord struct {
	Task     Task
	Customer CustomerRef
	Line     *BilledLine // nil while unbilled
	Timeline Timeline
}

// InvoiceLineRow is an invoice line with its task's kind and status.
type InvoiceLineRow struct {
	TaskID      int64
	TaskKind    string
	TaskStatus  string
	Description string
	AmountCents int64
}

// InvoiceRecord is an invoice with its customer, lines and Stripe events.
type InvoiceRecord struct {
	Invoice    Invoice
	Customer   CustomerRef
	Lines      []InvoiceLineRow
	Events     []StripeEvent
	EventCount int64
	Timeline   Timeline
}

// ActivitySummary is what the business did in a window of time.
type ActivitySummary struct {
	Since, Until time.Time

	LeadsCreated, LeadsContacted, LeadsResponded, LeadsConverted int64

	EmailsByStatus map[string]int64
	Emails         int64

	TasksDone int64
	WorkValue Totals // reward of the tasks done in the window, at list price: not profit

	InvoicesIssued int64
	Issued         Totals
	InvoicesPaid   int64
	Revenue        Totals
}

// EmailCaps are the outreach sending limits.
type EmailCaps struct {
	PerCycle, PerHour, PerDay int
}

// OutreachPause is the state of the outreach circuit breaker.
type OutreachPause struct {
	Errors      int // consecutive provider errors
	Paused      bool
	PausedAt    time.Time
	PausedAfter int
	// Reason is why outreach is paused (provider_errors, bounce_rate,
	// complaint), and Why the same in words.
	Reason string
	Why    string
}

// Pause reasons (OutreachPause.Reason).
const (
	PauseProviderErrors = "provider_errors"
	PauseBounceRate     = "bounce_rate"
	PauseComplaint      = "complaint"
)

// Warmup is the warm-up ramp of the daily cap: Text in words ("warm-up day
// 3 of 14: cap 39 today (max 200)") and the cap of the day.
type Warmup struct {
	Text   string
	CapDay int
}

// EmailHealth is the outbox's recent figures.
type EmailHealth struct {
	SentLastHour int
	SentLastDay  int
	Outbox       map[string]int64
	NeedsReview  int64
	Suppressions int64
	Failures     []Message // the newest failed messages
}

// StripeHealth is the payments side of the control room.
type StripeHealth struct {
	LastEvent     *StripeEvent // nil when no event ever arrived
	MissingLinks  int64
	Flagged       int64
	FlaggedList   []InvoiceRow
	SetAside      map[string]int64 // by outcome, in the store's window
	SetAsideTotal int64
	SetAsideList  []SetAsideEvent
	// LastLinkError is the newest payment-link error of an invoice still
	// without its link.
	LastLinkError *LinkError
}

// LinkError is the last failure to create an invoice's payment link.
type LinkError struct {
	InvoiceID int64
	Number    string
	Text      string // the provider's type/code: message
	Failures  int64  // in a row
	At        time.Time
}

// PortalCustomer is all the portal shows of its customer.
type PortalCustomer struct {
	Company string
}

// AccountSummary is a customer's money at a glance, for the portal.
type AccountSummary struct {
	Invoiced, Paid, Outstanding, Overdue Totals
	OpenCount                            int64
}

// ShortHash shows the start of a stored hash: enough to tell two apart,
// never the secret it stands for.
func ShortHash(h string) string {
	if len(h) > 12 {
		return "sha256 " + h[:12] + "…"
	}
	return orDash(h)
}
