package app

import (
	"encoding/json"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// The JSON shapes of the API: snake_case fields, money as cents with a
// currency, times in RFC 3339 UTC. Secrets (token and password hashes,
// sessions) have no field here, so they cannot leak by accident.

type apiMoney struct {
	Cents    int64  `json:"cents"`
	Currency string `json:"currency"`
}

func apiMoneyOf(cents int64, currency string) apiMoney {
	return apiMoney{Cents: cents, Currency: currency}
}

func apiTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// apiTimePtr is apiTime for optional times: nil (and the zero time) is null.
func apiTimePtr(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := apiTime(*t)
	return &s
}

type apiLead struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Email       *string `json:"email"`
	Company     string  `json:"company"`
	DomainKey   *string `json:"domain_key"`
	Niche       string  `json:"niche"`
	Website     string  `json:"website"`
	Source      string  `json:"source"`
	Status      string  `json:"status"`
	DryRun      bool    `json:"dry_run"`
	ContactedAt *string `json:"contacted_at"`
	RespondedAt *string `json:"responded_at"`
	ConvertedAt *string `json:"converted_at"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

func apiLeadOf(l db.Lead) apiLead {
	return apiLead{
		ID: l.ID, Name: l.Name, Email: l.Email, Company: l.Company, DomainKey: l.DomainKey,
		Niche: l.Niche, Website: l.Website, Source: l.Source, Status: l.Status, DryRun: l.DryRun,
		ContactedAt: apiTimePtr(l.ContactedAt), RespondedAt: apiTimePtr(l.RespondedAt),
		ConvertedAt: apiTimePtr(l.ConvertedAt), CreatedAt: apiTime(l.CreatedAt), UpdatedAt: apiTime(l.UpdatedAt),
	}
}

// apiCustomer leaves out the portal token's hash; whether the portal link
// works is told by its times. The list's billed and paid sums are left out
// too: they add cents across currencies, which only a page may round off.
type apiCustomer struct {
	ID                   int64   `json:"id"`
	Company              string  `json:"company"`
	ContactEmail         string  `json:"contact_email"`
	Plan                 string  `json:"plan"`
	LeadID               *int64  `json:"lead_id"`
	Status               string  `json:"status"`
	StripeCustomerID     string  `json:"stripe_customer_id"`
	PortalTokenCreatedAt string  `json:"portal_token_created_at"`
	PortalTokenRevokedAt *string `json:"portal_token_revoked_at"`
	TaskCount            *int64  `json:"task_count,omitempty"` // lists only
	CreatedAt            string  `json:"created_at"`
}

func apiCustomerOf(c db.CustomerRow) apiCustomer {
	return apiCustomer{
		ID: c.ID, Company: c.Company, ContactEmail: c.ContactEmail, Plan: c.Plan, LeadID: c.LeadID,
		Status: c.Status, StripeCustomerID: c.StripeCustomerID,
		PortalTokenCreatedAt: apiTime(c.TokenCreatedAt), PortalTokenRevokedAt: apiTimePtr(c.TokenRevokedAt),
		CreatedAt: apiTime(c.CreatedAt),
	}
}

func apiCustomerRowOf(c db.CustomerRow) apiCustomer {
	out := apiCustomerOf(c)
	out.TaskCount = &c.TaskCount
	return out
}

type apiTask struct {
	ID             int64    `json:"id"`
	CustomerID     int64    `json:"customer_id"`
	Company        string   `json:"company"`
	Kind           string   `json:"kind"`
	Description    string   `json:"description"`
	Status         string   `json:"status"`
	Reward         apiMoney `json:"reward"`
	Cost           apiMoney `json:"cost"`
	Profit         apiMoney `json:"profit"`
	Attempts       int      `json:"attempts"`
	LeaseExpiresAt *string  `json:"lease_expires_at"`
	StartedAt      *string  `json:"started_at"`
	CompletedAt    *string  `json:"completed_at"`
	Result         string   `json:"result"`
	LastError      string   `json:"last_error"`
	CreatedAt      string   `json:"created_at"`
	UpdatedAt      string   `json:"updated_at"`
}

func apiTaskOf(t db.TaskRow) apiTask {
	return apiTask{
		ID: t.ID, CustomerID: t.CustomerID, Company: t.Company, Kind: t.Kind, Description: t.Description,
		Status: t.Status, Reward: apiMoneyOf(t.Earned().Cents, t.Currency), Cost: apiMoneyOf(t.CostCents, t.Currency),
		Profit: apiMoneyOf(t.Profit().Cents, t.Currency), Attempts: t.Attempts, // a failed task earns nothing
		LeaseExpiresAt: apiTimePtr(t.LeaseExpiresAt), StartedAt: apiTimePtr(t.StartedAt),
		CompletedAt: apiTimePtr(t.CompletedAt), Result: t.Result, LastError: t.LastError,
		CreatedAt: apiTime(t.CreatedAt), UpdatedAt: apiTime(t.UpdatedAt),
	}
}

type apiInvoice struct {
	ID                  int64    `json:"id"`
	CustomerID          int64    `json:"customer_id"`
	Company             string   `json:"company"`
	Number              *string  `json:"number"`
	Status              string   `json:"status"`
	Overdue             bool     `json:"overdue"`
	Amount              apiMoney `json:"amount"`
	LineCount           int64    `json:"line_count"`
	IssuedAt            *string  `json:"issued_at"`
	DueAt               *string  `json:"due_at"`
	PaidAt              *string  `json:"paid_at"`
	PaymentURL          string   `json:"payment_url"`
	StripePriceID       string   `json:"stripe_price_id"`
	StripePaymentLinkID string   `json:"stripe_payment_link_id"`
	PayerEmail          string   `json:"payer_email"`
	PayerName           string   `json:"payer_name"`
	Flag                string   `json:"flag"`
	CreatedAt           string   `json:"created_at"`
	UpdatedAt           string   `json:"updated_at"`
}

// apiInvoiceOf converts an invoice; overdue is computed at now, as the
// pages do, never stored.
func apiInvoiceOf(i db.InvoiceRow, now time.Time) apiInvoice {
	return apiInvoice{
		ID: i.ID, CustomerID: i.CustomerID, Company: i.Company, Number: i.Number, Status: i.Status,
		Overdue: i.Overdue(now), Amount: apiMoneyOf(i.AmountCents, i.Currency), LineCount: i.LineCount,
		IssuedAt: apiTimePtr(i.IssuedAt), DueAt: apiTimePtr(i.DueAt), PaidAt: apiTimePtr(i.PaidAt),
		PaymentURL: i.PaymentURL, StripePriceID: i.StripePriceID, StripePaymentLinkID: i.StripePaymentLinkID,
		PayerEmail: i.PayerEmail, PayerName: i.PayerName, Flag: i.Flag,
		CreatedAt: apiTime(i.CreatedAt), UpdatedAt: apiTime(i.UpdatedAt),
	}
}

// apiInvoiceWithLines is a single invoice: its lines come along.
type apiInvoiceWithLines struct {
	apiInvoice
	Lines []apiInvoiceLine `json:"lines"`
}

type apiInvoiceLine struct {
	ID          int64    `json:"id"`
	TaskID      int64    `json:"task_id"`
	TaskKind    string   `json:"task_kind"`
	Description string   `json:"description"`
	Amount      apiMoney `json:"amount"`
	CreatedAt   string   `json:"created_at"`
}

func apiInvoiceWithLinesOf(d *db.InvoiceDetail, now time.Time) apiInvoiceWithLines {
	row := db.InvoiceRow{Invoice: d.Invoice, Company: d.Customer.Company, LineCount: int64(len(d.Lines))}
	out := apiInvoiceWithLines{apiInvoice: apiInvoiceOf(row, now), Lines: make([]apiInvoiceLine, len(d.Lines))}
	for i, l := range d.Lines {
		out.Lines[i] = apiInvoiceLine{
			ID: l.ID, TaskID: l.TaskID, TaskKind: l.TaskKind, Description: l.Description,
			Amount: apiMoneyOf(l.AmountCents, d.Invoice.Currency), CreatedAt: apiTime(l.CreatedAt),
		}
	}
	return out
}

type apiAgent struct {
	Name        string  `json:"name"`
	State       string  `json:"state"`
	Runs        int64   `json:"runs"`
	Failures    int64   `json:"failures"`
	Restarts    int64   `json:"restarts"`
	LastRunAt   *string `json:"last_run_at"`
	LastOutcome string  `json:"last_outcome"`
	LastError   string  `json:"last_error"`
	Stack       string  `json:"stack"`
	Mailbox     int     `json:"mailbox"`
}

func apiAgentOf(a agents.AgentState) apiAgent {
	return apiAgent{
		Name: a.Name, State: a.State, Runs: a.Runs, Failures: a.Failures, Restarts: a.Restarts,
		LastRunAt: apiTimePtr(&a.LastRunAt), LastOutcome: a.LastOutcome, LastError: a.LastError,
		Stack: a.Stack, Mailbox: a.Mailbox,
	}
}

type apiRun struct {
	ID         int64           `json:"id"`
	Agent      string          `json:"agent"`
	Trigger    string          `json:"trigger"`
	Outcome    string          `json:"outcome"`
	Message    string          `json:"message"`
	Counts     json.RawMessage `json:"counts"`
	StartedAt  string          `json:"started_at"`
	FinishedAt *string         `json:"finished_at"`
	DurationMS *int64          `json:"duration_ms"`
}

func apiRunOf(r db.AgentRun) apiRun {
	out := apiRun{
		ID: r.ID, Agent: r.Agent, Trigger: r.Trigger, Outcome: r.Outcome, Message: r.Message,
		Counts: json.RawMessage("{}"), StartedAt: apiTime(r.StartedAt), FinishedAt: apiTimePtr(r.FinishedAt),
	}
	// counts is stored JSON; a damaged value must not break the whole page.
	if json.Valid([]byte(r.Counts)) {
		out.Counts = json.RawMessage(r.Counts)
	}
	if r.FinishedAt != nil {
		ms := r.Duration().Milliseconds()
		out.DurationMS = &ms
	}
	return out
}
