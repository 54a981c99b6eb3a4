package db

import (
	"time"

	"github.com/uptrace/bun"
)

// Lead statuses, in pipeline order, then the terminal side states.
const (
	LeadNew          = "new"
	LeadContacted    = "contacted"
	LeadResponded    = "responded"
	LeadConverted    = "converted"
	LeadBounced      = "bounced"
	LeadUnsubscribed = "unsubscribed"
	LeadFailed       = "failed"
	LeadDead         = "dead"
)

// LeadStatuses lists every lead status in display order.
var LeadStatuses = []string{LeadNew, LeadContacted, LeadResponded, LeadConverted, LeadBounced, LeadUnsubscribed, LeadFailed, LeadDead}

// Task statuses.
const (
	TaskPending = "pending"
	TaskRunning = "running"
	TaskDone    = "done"
	TaskFailed  = "failed"
)

// TaskStatuses lists every task status in display order.
var TaskStatuses = []string{TaskPending, TaskRunning, TaskDone, TaskFailed}

// Invoice statuses.
const (
	InvoiceDraft    = "draft"
	InvoiceOpen     = "open"
	InvoicePaid     = "paid"
	InvoiceVoid     = "void"
	InvoiceRefunded = "refunded"
)

// InvoiceStatuses lists every invoice status in display order.
var InvoiceStatuses = []string{InvoiceDraft, InvoiceOpen, InvoicePaid, InvoiceVoid, InvoiceRefunded}

// Customer statuses.
const (
	CustomerActive = "active"
	CustomerPaused = "paused"
	CustomerClosed = "closed"
)

// Message (outbox) statuses.
const (
	MessageQueued     = "queued"
	MessageSending    = "sending"
	MessageSent       = "sent"
	MessageDryRun     = "dry_run"
	MessageFailed     = "failed"
	MessageSuppressed = "suppressed"
)

// MessageStatuses lists every outbox status in display order.
var MessageStatuses = []string{MessageQueued, MessageSending, MessageSent, MessageDryRun, MessageFailed, MessageSuppressed}

// Setting is one run-time setting an admin can change.
type Setting struct {
	bun.BaseModel `bun:"table:settings"`

	Key       string    `bun:"key,pk"`
	Value     string    `bun:"value,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// Lead is a prospect company and its contact.
type Lead struct {
	bun.BaseModel `bun:"table:leads,alias:l"`

	ID          int64      `bun:"id,pk,autoincrement"`
	Name        string     `bun:"name,notnull"`
	Email       *string    `bun:"email"`
	Company     string     `bun:"company,notnull"`
	DomainKey   *string    `bun:"domain_key"`
	Niche       string     `bun:"niche,notnull"`
	Website     string     `bun:"website,notnull"`
	WebsiteKey  *string    `bun:"website_key"` // WebsiteKey(Website); NULL when it has none
	Source      string     `bun:"source,notnull"`
	Status      string     `bun:"status,notnull"`
	DryRun      bool       `bun:"dry_run,notnull"`
	ContactedAt *time.Time `bun:"contacted_at"`
	RespondedAt *time.Time `bun:"responded_at"`
	ConvertedAt *time.Time `bun:"converted_at"`
	CreatedAt   time.Time  `bun:"created_at,notnull"`
	UpdatedAt   time.Time  `bun:"updated_at,notnull"`
	// SequenceStep is how many steps of its sequence the lead was sent;
	// NextStepAt when the next follow-up is due (nil: none); SequenceStop
	// why the sequence ended early ("" while it runs).
	SequenceStep int        `bun:"sequence_step,notnull"`
	NextStepAt   *time.Time `bun:"next_step_at"`
	SequenceStop string     `bun:"sequence_stop,notnull"`
}

// EmailAddr is the lead's e-mail address, or "" when it has none.
func (l *Lead) EmailAddr() string {
	if l.Email == nil {
		return ""
	}
	return *l.Email
}

// Reply is an inbound answer to outreach; Simulated marks the prospect
// simulator's replies so they are never mistaken for real ones.
type Reply struct {
	bun.BaseModel `bun:"table:replies"`

	ID         int64     `bun:"id,pk,autoincrement"`
	LeadID     int64     `bun:"lead_id,notnull"`
	FromAddr   string    `bun:"from_addr,notnull"`
	Subject    string    `bun:"subject,notnull"`
	Body       string    `bun:"body,notnull"`
	Simulated  bool      `bun:"simulated,notnull"`
	ReceivedAt time.Time `bun:"received_at,notnull"`
	// DedupeKey names the inbound message the reply was stored from
	// (replyDedupeKey); nil for simulated replies and rows older than
	// migration 0007.
	DedupeKey *string `bun:"dedupe_key"`
	// Class is how the reply was sorted (Reply* classes), ClassReason why,
	// ClassBy who sorted it ("rules", "llm", "operator"); "" for replies
	// older than migration 0015. MessageID is the outreach message it
	// answers, when that could be told.
	Class       string `bun:"class,notnull"`
	ClassReason string `bun:"class_reason,notnull"`
	ClassBy     string `bun:"class_by,notnull"`
	MessageID   *int64 `bun:"message_id"`
}

// Customer is a lead that answered and was onboarded.
type Customer struct {
	bun.BaseModel `bun:"table:customers,alias:c"`

	ID           int64  `bun:"id,pk,autoincrement"`
	Company      string `bun:"company,notnull"`
	ContactEmail string `bun:"contact_email,notnull"`
	// ContactName is the contact's name as an operator set it; "" means
	// the name of the lead the customer came from (ContactNameOr).
	ContactName      string     `bun:"contact_name,notnull"`
	Plan             string     `bun:"plan,notnull"`
	LeadID           *int64     `bun:"lead_id"`
	Status           string     `bun:"status,notnull"`
	StripeCustomerID string     `bun:"stripe_customer_id,notnull"`
	PortalTokenHash  string     `bun:"portal_token_hash,notnull"`
	TokenCreatedAt   time.Time  `bun:"token_created_at,notnull"`
	TokenRevokedAt   *time.Time `bun:"token_revoked_at"`
	// MailFlag says why Collections must not write to the contact address
	// (a hard bounce, a complaint); "" when it may.
	MailFlag      string     `bun:"mail_flag,notnull"`
	MailFlaggedAt *time.Time `bun:"mail_flagged_at"`
	CreatedAt     time.Time  `bun:"created_at,notnull"`
	// NextPeriodAt is when a customer on a monthly plan has its plan's
	// tasks opened again (db/plans.go); nil on a one-off plan.
	NextPeriodAt *time.Time `bun:"next_period_at"`
}

// Task is one piece of work done for a customer.
type Task struct {
	bun.BaseModel `bun:"table:tasks,alias:t"`

	ID             int64      `bun:"id,pk,autoincrement"`
	CustomerID     int64      `bun:"customer_id,notnull"`
	Kind           string     `bun:"kind,notnull"`
	Description    string     `bun:"description,notnull"`
	Status         string     `bun:"status,notnull"`
	Currency       string     `bun:"currency,notnull"`
	RewardCents    int64      `bun:"reward_cents,notnull"`
	CostCents      int64      `bun:"cost_cents,notnull"`
	ProfitCents    int64      `bun:"profit_cents,notnull"`
	Attempts       int        `bun:"attempts,notnull"`
	LeaseExpiresAt *time.Time `bun:"lease_expires_at"`
	StartedAt      *time.Time `bun:"started_at"`
	Result         string     `bun:"result,notnull"`
	LastError      string     `bun:"last_error,notnull"`
	CompletedAt    *time.Time `bun:"completed_at"`
	CreatedAt      time.Time  `bun:"created_at,notnull"`
	UpdatedAt      time.Time  `bun:"updated_at,notnull"`
}

// Reward is the task's price as money.
func (t *Task) Reward() Money { return Money{Cents: t.RewardCents, Currency: t.Currency} }

// Earned is the reward the task earns: its price, except for a failed task,
// which delivered nothing and earns nothing (its price stays in
// reward_cents, as the price it was sold at).
func (t *Task) Earned() Money {
	if t.Status == TaskFailed {
		return Money{Currency: t.Currency}
	}
	return t.Reward()
}

// Cost is what executing the task really cost.
func (t *Task) Cost() Money { return Money{Cents: t.CostCents, Currency: t.Currency} }

// Profit is what the task earns less what it cost; it may be negative. A
// failed task earns nothing, so its profit is minus what its attempts cost
// (the stored profit_cents is always reward - cost, for every status).
func (t *Task) Profit() Money {
	if t.Status == TaskFailed {
		return Money{Cents: -t.CostCents, Currency: t.Currency}
	}
	return Money{Cents: t.ProfitCents, Currency: t.Currency}
}

// Invoice bills a customer's finished tasks, one line per task.
type Invoice struct {
	bun.BaseModel `bun:"table:invoices,alias:i"`

	ID                  int64      `bun:"id,pk,autoincrement"`
	CustomerID          int64      `bun:"customer_id,notnull"`
	Number              *string    `bun:"number"`
	Currency            string     `bun:"currency,notnull"`
	AmountCents         int64      `bun:"amount_cents,notnull"`
	Status              string     `bun:"status,notnull"`
	IssuedAt            *time.Time `bun:"issued_at"`
	DueAt               *time.Time `bun:"due_at"`
	StripePriceID       string     `bun:"stripe_price_id,notnull"`
	StripePaymentLinkID string     `bun:"stripe_payment_link_id,notnull"`
	PaymentURL          string     `bun:"payment_url,notnull"`
	PaidAt              *time.Time `bun:"paid_at"`
	PayerEmail          string     `bun:"payer_email,notnull"`
	PayerName           string     `bun:"payer_name,notnull"`
	Flag                string     `bun:"flag,notnull"`
	CreatedAt           time.Time  `bun:"created_at,notnull"`
	UpdatedAt           time.Time  `bun:"updated_at,notnull"`
}

// Amount is the invoice total as money.
func (i *Invoice) Amount() Money { return Money{Cents: i.AmountCents, Currency: i.Currency} }

// NumberOrDraft is the invoice number, or "DRAFT" before it is issued.
func (i *Invoice) NumberOrDraft() string {
	if i.Number != nil {
		return *i.Number
	}
	return "DRAFT"
}

// Overdue reports whether an open invoice is past its due date at now.
// Overdue is computed, never stored.
func (i *Invoice) Overdue(now time.Time) bool {
	return i.Status == InvoiceOpen && i.DueAt != nil && now.After(*i.DueAt)
}

// InvoiceLine bills one task on one invoice.
type InvoiceLine struct {
	bun.BaseModel `bun:"table:invoice_lines"`

	ID          int64     `bun:"id,pk,autoincrement"`
	InvoiceID   int64     `bun:"invoice_id,notnull"`
	TaskID      int64     `bun:"task_id,notnull"`
	Description string    `bun:"description,notnull"`
	AmountCents int64     `bun:"amount_cents,notnull"`
	CreatedAt   time.Time `bun:"created_at,notnull"`
}

// Message is one outreach e-mail in the outbox.
type Message struct {
	bun.BaseModel `bun:"table:messages,alias:m"`

	ID          int64      `bun:"id,pk,autoincrement"`
	LeadID      int64      `bun:"lead_id,notnull"`
	ToAddr      string     `bun:"to_addr,notnull"`
	Template    string     `bun:"template,notnull"`
	Subject     string     `bun:"subject,notnull"`
	Body        string     `bun:"body,notnull"`
	Status      string     `bun:"status,notnull"`
	ProviderID  string     `bun:"provider_id,notnull"`
	Error       string     `bun:"error,notnull"`
	Attempts    int        `bun:"attempts,notnull"`
	NeedsReview bool       `bun:"needs_review,notnull"`
	CreatedAt   time.Time  `bun:"created_at,notnull"`
	SendingAt   *time.Time `bun:"sending_at"`
	SentAt      *time.Time `bun:"sent_at"`
	UpdatedAt   time.Time  `bun:"updated_at,notnull"`
	Step        int        `bun:"step,nullzero,notnull,default:1"` // its step in the lead's sequence, from 1 (0 is 1)
}

// Suppression stops mail to an address or a whole domain.
type Suppression struct {
	bun.BaseModel `bun:"table:suppressions"`

	ID        int64     `bun:"id,pk,autoincrement"`
	Kind      string    `bun:"kind,notnull"`
	Value     string    `bun:"value,notnull"`
	Reason    string    `bun:"reason,notnull"`
	Source    string    `bun:"source,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
}

// StripeEvent records a Stripe webhook event applied (or refused) once.
type StripeEvent struct {
	bun.BaseModel `bun:"table:stripe_events"`

	ID         int64     `bun:"id,pk,autoincrement"`
	EventID    string    `bun:"event_id,notnull"`
	Type       string    `bun:"type,notnull"`
	InvoiceID  *int64    `bun:"invoice_id"`
	Outcome    string    `bun:"outcome,notnull"`
	ReceivedAt time.Time `bun:"received_at,notnull"`
}

// AgentRun is one entry of the persisted cycle log.
type AgentRun struct {
	bun.BaseModel `bun:"table:agent_runs,alias:r"`

	ID         int64      `bun:"id,pk,autoincrement"`
	Agent      string     `bun:"agent,notnull"`
	Trigger    string     `bun:"trigger,notnull"`
	StartedAt  time.Time  `bun:"started_at,notnull"`
	FinishedAt *time.Time `bun:"finished_at"`
	Outcome    string     `bun:"outcome,notnull"`
	Message    string     `bun:"message,notnull"`
	Counts     string     `bun:"counts,notnull"`
}

// User is an operator account.
type User struct {
	bun.BaseModel `bun:"table:users,alias:u"`

	ID           int64     `bun:"id,pk,autoincrement"`
	Email        string    `bun:"email,notnull"`
	PasswordHash string    `bun:"password_hash,notnull"`
	Role         string    `bun:"role,notnull"`
	CreatedAt    time.Time `bun:"created_at,notnull"`
}

// Session is a signed-in operator's server-side session.
type Session struct {
	bun.BaseModel `bun:"table:sessions"`

	TokenHash  string    `bun:"token_hash,pk"`
	UserID     int64     `bun:"user_id,notnull"`
	CreatedAt  time.Time `bun:"created_at,notnull"`
	ExpiresAt  time.Time `bun:"expires_at,notnull"`
	LastSeenAt time.Time `bun:"last_seen_at,notnull"`
}

// AuditEntry records one admin action.
type AuditEntry struct {
	bun.BaseModel `bun:"table:audit_log,alias:a"`

	ID         int64     `bun:"id,pk,autoincrement"`
	Actor      string    `bun:"actor,notnull"`
	Action     string    `bun:"action,notnull"`
	Target     string    `bun:"target,notnull"`
	Detail     string    `bun:"detail,notnull"`
	RemoteAddr string    `bun:"remote_addr,notnull"`
	CreatedAt  time.Time `bun:"created_at,notnull"`
}
