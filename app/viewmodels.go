package app

import (
	"time"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// This file turns the store's rows and aggregates into the views' models
// (views/models.go). The views never see a db type: they link neither bun
// nor SQLite, and each model carries what its page shows and nothing else,
// so no hash reaches a page (a portal token's is cut to the prefix the
// customer page prints, API token and password hashes never leave the
// store's rows). The store's methods apply the business rules here (Profit,
// Overdue, Revoked, …), so the views only format the results.

// viewsOf converts every row of in with f.
func viewsOf[T, V any](in []T, f func(T) V) []V {
	if in == nil {
		return nil
	}
	out := make([]V, len(in))
	for i, row := range in {
		out[i] = f(row)
	}
	return out
}

// pageView is a list's page with its cursors in their URL form.
func pageView(p db.Page) views.Page {
	return views.Page{
		Number: p.Number, Pages: p.Pages(), Total: p.Total, AtLeast: p.AtLeast,
		HasPrev: p.HasPrev(), HasNext: p.HasNext(),
		At: p.At.String(), Prev: p.Prev.String(), Next: p.Next.String(),
	}
}

func statsView(s db.Stats) views.Stats {
	return views.Stats{
		Revenue: s.Revenue, Outstanding: s.Outstanding, Money: moneyFiguresView(s),
		LeadsByStatus: s.LeadsByStatus, TasksByStatus: s.TasksByStatus, InvoicesByStatus: s.InvoicesByStatus,
		Leads: s.Leads, Customers: s.Customers, ActiveLeads: s.ActiveLeads(),
	}
}

// moneyFiguresView is the money cards' figures. Stats.Profit (reward less
// cost of all finished work at list price) is not among them: it is not
// money made, and the cards show the list value of done work apart.
func moneyFiguresView(s db.Stats) views.MoneyFigures {
	return views.MoneyFigures{
		Collected: s.Revenue, Refunded: s.Refunded, CollectedCost: s.CollectedCost, CollectedProfit: s.CollectedProfit,
		Outstanding: s.Outstanding, NotDue: s.Aging.NotDue, Days0To30: s.Aging.Days0To30, Days31To60: s.Aging.Days31To60,
		DaysOver60: s.Aging.DaysOver60, Unbilled: s.Unbilled, WrittenOff: s.WrittenOff, WorkValue: s.Reward,
		TasksDone: s.TasksByStatus[db.TaskDone], ReplySortCost: s.ReplySortCost,
	}
}

func leadView(l db.Lead) views.Lead {
	return views.Lead{
		ID: l.ID, Name: l.Name, Email: l.EmailAddr(), Company: l.Company, DomainKey: l.DomainKey,
		Niche: l.Niche, Website: l.Website, Source: l.Source, Status: l.Status, DryRun: l.DryRun,
		ContactedAt: l.ContactedAt, RespondedAt: l.RespondedAt, ConvertedAt: l.ConvertedAt,
		CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt,
		SequenceStep: l.SequenceStep, NextStepAt: l.NextStepAt, SequenceStop: l.SequenceStop,
	}
}

// customerView is a customer for its own record page: of the portal token
// only the short form the page prints.
func customerView(c db.Customer) views.Customer {
	return views.Customer{
		ID: c.ID, Company: c.Company, ContactName: c.ContactName, ContactEmail: c.ContactEmail, Plan: c.Plan, LeadID: c.LeadID,
		Status: c.Status, StripeCustomerID: c.StripeCustomerID, PortalToken: views.ShortHash(c.PortalTokenHash),
		TokenCreatedAt: c.TokenCreatedAt, TokenRevokedAt: c.TokenRevokedAt, CreatedAt: c.CreatedAt,
	}
}

func customerRef(c db.Customer) views.CustomerRef {
	return views.CustomerRef{ID: c.ID, Company: c.Company, Status: c.Status, CreatedAt: c.CreatedAt}
}

func customerRowView(c db.CustomerRow) views.CustomerRow {
	return views.CustomerRow{
		ID: c.ID, Company: c.Company, ContactEmail: c.ContactEmail, Plan: c.Plan, Status: c.Status,
		TaskCount: c.TaskCount, Billed: c.Billed, Paid: c.Paid,
	}
}

func taskView(t db.Task) views.Task {
	return views.Task{
		ID: t.ID, CustomerID: t.CustomerID, Kind: t.Kind, Description: t.Description, Status: t.Status,
		Currency: t.Currency, Reward: t.Reward(), Cost: t.Cost(), Profit: t.Profit(),
		Attempts: t.Attempts, LeaseExpiresAt: t.LeaseExpiresAt, StartedAt: t.StartedAt, Result: t.Result,
		LastError: t.LastError, CompletedAt: t.CompletedAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

func taskRowView(t db.TaskRow) views.TaskRow {
	return views.TaskRow{Task: taskView(t.Task), Company: t.Company}
}

// invoiceView is an invoice as its pages show it at now.
func invoiceView(i db.Invoice, now time.Time) views.Invoice {
	return views.Invoice{
		ID: i.ID, CustomerID: i.CustomerID, Number: i.Number, Label: i.NumberOrDraft(), Currency: i.Currency,
		Amount: i.Amount(), Status: i.Status, Overdue: i.Overdue(now), IssuedAt: i.IssuedAt, DueAt: i.DueAt,
		StripePriceID: i.StripePriceID, StripePaymentLinkID: i.StripePaymentLinkID, PaymentURL: i.PaymentURL,
		PaidAt: i.PaidAt, PayerEmail: i.PayerEmail, PayerName: i.PayerName, Flag: i.Flag,
		CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt,
	}
}

// invoiceRowViews converts a list of invoices as seen at now.
func invoiceRowViews(rows []db.InvoiceRow, now time.Time) []views.InvoiceRow {
	return viewsOf(rows, func(i db.InvoiceRow) views.InvoiceRow {
		return views.InvoiceRow{Invoice: invoiceView(i.Invoice, now), Company: i.Company, LineCount: i.LineCount}
	})
}

func agentRunView(r db.AgentRun) views.AgentRun {
	return views.AgentRun{ID: r.ID, Agent: r.Agent, Trigger: r.Trigger, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Outcome: r.Outcome, Message: r.Message}
}

func auditView(e db.AuditEntry) views.AuditEntry {
	return views.AuditEntry{Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail, RemoteAddr: e.RemoteAddr, CreatedAt: e.CreatedAt}
}

// apiTokenView is a token as its list shows it: without its hash.
func apiTokenView(t db.APIToken) views.APIToken {
	return views.APIToken{
		ID: t.ID, Name: t.Name, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt, Revoked: t.Revoked(),
	}
}

func messageView(m db.Message) views.Message {
	return views.Message{
		ID: m.ID, ToAddr: m.ToAddr, Template: m.Template, Subject: m.Subject, Body: m.Body, Status: m.Status,
		ProviderID: m.ProviderID, Error: m.Error, Attempts: m.Attempts, NeedsReview: m.NeedsReview,
		CreatedAt: m.CreatedAt, SentAt: m.SentAt, UpdatedAt: m.UpdatedAt,
	}
}

func replyView(r db.Reply) views.Reply {
	return views.Reply{ID: r.ID, FromAddr: r.FromAddr, Subject: r.Subject, Body: r.Body, Simulated: r.Simulated, ReceivedAt: r.ReceivedAt,
		Class: r.Class, ClassReason: r.ClassReason, ClassBy: r.ClassBy}
}

func stripeEventView(e db.StripeEvent) views.StripeEvent {
	return views.StripeEvent{EventID: e.EventID, Type: e.Type, Outcome: e.Outcome, ReceivedAt: e.ReceivedAt}
}

func timelineView(t db.Timeline) views.Timeline {
	return views.Timeline{More: t.More, Entries: viewsOf(t.Entries, func(e db.TimelineEntry) views.TimelineEntry {
		return views.TimelineEntry{At: e.At, Event: e.Event, Detail: e.Detail, Ref: e.Ref, RefID: e.RefID}
	})}
}

func leadRecordView(r db.LeadDetail) views.LeadRecord {
	v := views.LeadRecord{
		Lead: leadView(r.Lead), Messages: viewsOf(r.Messages, messageView), MessageCount: r.MessageCount,
		Replies: viewsOf(r.Replies, replyView), ReplyCount: r.ReplyCount, Timeline: timelineView(r.Timeline),
	}
	if r.Customer != nil {
		c := customerRef(*r.Customer)
		v.Customer = &c
	}
	return v
}

func customerRecordView(r db.CustomerDetail) views.CustomerRecord {
	v := views.CustomerRecord{
		Customer: customerView(r.Customer), Timeline: timelineView(r.Timeline),
		Profit: viewsOf(r.Profit, func(p db.CustomerProfit) views.CustomerProfit {
			return views.CustomerProfit{Currency: p.Currency, RewardCents: p.RewardCents, CostCents: p.CostCents, ProfitCents: p.ProfitCents, PaidCents: p.PaidCents}
		}),
	}
	if r.Lead != nil {
		v.Lead = &views.LeadRef{ID: r.Lead.ID, Company: r.Lead.Company, Status: r.Lead.Status, Name: r.Lead.Name}
	}
	return v
}

func taskRecordView(r db.TaskDetail) views.TaskRecord {
	v := views.TaskRecord{Task: taskView(r.Task), Customer: customerRef(r.Customer), Timeline: timelineView(r.Timeline)}
	if ln := r.Line; ln != nil {
		v.Line = &views.BilledLine{
			ID: ln.ID, InvoiceID: ln.InvoiceID, Number: ln.Number, InvoiceStatus: ln.InvoiceStatus,
			Description: ln.Description, Amount: ln.Amount(), CreatedAt: ln.CreatedAt,
		}
	}
	return v
}

func invoiceRecordView(r db.InvoiceDetail, now time.Time) views.InvoiceRecord {
	return views.InvoiceRecord{
		Invoice: invoiceView(r.Invoice, now), Customer: customerRef(r.Customer),
		Lines: viewsOf(r.Lines, func(l db.InvoiceLineRow) views.InvoiceLineRow {
			return views.InvoiceLineRow{TaskID: l.TaskID, TaskKind: l.TaskKind, TaskStatus: l.TaskStatus, Description: l.Description, AmountCents: l.AmountCents}
		}),
		Events: viewsOf(r.Events, stripeEventView), EventCount: r.EventCount, Timeline: timelineView(r.Timeline),
	}
}

func activityView(a db.Activity) views.ActivitySummary {
	return views.ActivitySummary{
		Since: a.Since, Until: a.Until,
		LeadsCreated: a.LeadsCreated, LeadsContacted: a.LeadsContacted, LeadsResponded: a.LeadsResponded, LeadsConverted: a.LeadsConverted,
		EmailsByStatus: a.EmailsByStatus, Emails: a.Emails,
		TasksDone: a.TasksDone, WorkValue: a.Reward,
		InvoicesIssued: a.InvoicesIssued, Issued: a.Issued, InvoicesPaid: a.InvoicesPaid, Revenue: a.Revenue,
	}
}

func emailCapsView(c db.EmailCaps) views.EmailCaps {
	return views.EmailCaps{PerCycle: c.PerCycle, PerHour: c.PerHour, PerDay: c.PerDay}
}

func outreachPauseView(p db.OutreachPause) views.OutreachPause {
	return views.OutreachPause{Errors: p.Errors, Paused: p.Paused, PausedAt: p.PausedAt, PausedAfter: p.PausedAfter, Reason: p.Reason, Why: p.Why()}
}

func emailHealthView(h db.EmailHealth) views.EmailHealth {
	return views.EmailHealth{
		SentLastHour: h.SentLastHour, SentLastDay: h.SentLastDay, Outbox: h.Outbox,
		NeedsReview: h.NeedsReview, Suppressions: h.Suppressions, Failures: viewsOf(h.Failures, messageView),
	}
}

// stripeHealthView is the Stripe panel's figures; its flagged invoices are
// seen at now.
func stripeHealthView(h db.StripeHealth, now time.Time) views.StripeHealth {
	v := views.StripeHealth{
		MissingLinks: h.MissingLinks, Flagged: h.Flagged, FlaggedList: invoiceRowViews(h.FlaggedList, now),
		SetAside: h.SetAside, SetAsideTotal: h.SetAsideTotal(),
		SetAsideList: viewsOf(h.SetAsideList, func(e db.SetAsideEvent) views.SetAsideEvent {
			return views.SetAsideEvent{EventID: e.EventID, Type: e.Type, Outcome: e.Outcome, Detail: e.Detail, ReceivedAt: e.ReceivedAt}
		}),
	}
	if h.LastEvent != nil {
		e := stripeEventView(*h.LastEvent)
		v.LastEvent = &e
	}
	v.LastLinkError = linkErrorView(h.LastLinkError)
	return v
}

// linkErrorView is an invoice's last payment-link error (nil for none).
func linkErrorView(e *db.InvoiceLinkError) *views.LinkError {
	if e == nil {
		return nil
	}
	return &views.LinkError{InvoiceID: e.InvoiceID, Number: e.Number, Text: e.Text(), Failures: e.Failures, At: e.At}
}

// portalCustomerView is all the portal shows of its customer: no token
// hash, no Stripe id, no contact details.
func portalCustomerView(c db.Customer) views.PortalCustomer {
	return views.PortalCustomer{Company: c.Company}
}

func accountSummaryView(s db.AccountSummary) views.AccountSummary {
	return views.AccountSummary{
		Invoiced: s.Invoiced, Paid: s.Paid, Outstanding: s.Outstanding,
		Overdue: s.Overdue, OpenCount: s.OpenCount,
	}
}
