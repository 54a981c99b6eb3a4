package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// This file holds customers: creating one, onboarding (turning a responded
// lead into a customer with its plan's tasks, in one transaction whose
// times come from the caller's clock), and the customer list.

// NewCustomer is what onboarding supplies for a customer.
type NewCustomer struct {
	Company, ContactEmail, Plan string
	LeadID                      *int64
	// NextPeriodAt is the first renewal of a monthly plan; nil on a one-off
	// plan.
	NextPeriodAt *time.Time
}

// CreateCustomer stores a customer with a fresh portal token drawn from
// random and returns the plain token, which is never stored.
func (d *DB) CreateCustomer(ctx context.Context, idb bun.IDB, in NewCustomer, random io.Reader) (*Customer, string, error) {
	token, hash, err := NewToken(random)
	if err != nil {
		return nil, "", err
	}
	now := d.Now()
	c := &Customer{
		Company: in.Company, ContactEmail: strings.ToLower(strings.TrimSpace(in.ContactEmail)),
		Plan: in.Plan, LeadID: in.LeadID, Status: CustomerActive,
		PortalTokenHash: hash, TokenCreatedAt: now, CreatedAt: now, NextPeriodAt: in.NextPeriodAt,
	}
	if _, err := d.or(idb).NewInsert().Model(c).Exec(ctx); err != nil {
		return nil, "", fmt.Errorf("store: unable to create customer %q: %w", in.Company, err)
	}
	return c, token, nil
}

// Conversion outcomes.
const (
	ConversionCreated         = "converted"
	ConversionAlreadyCustomer = "already_customer"
	ConversionNoEmail         = "no_email"
	// ConversionSkipped: the lead was no longer responded when its
	// transaction began (another run converted it first).
	ConversionSkipped = "skipped"
)

// Conversion is what converting one lead did.
type Conversion struct {
	Outcome string
	// Customer is the new customer, or the existing one the lead's e-mail
	// already belongs to.
	Customer *Customer
	// PortalToken is the plain portal token of a new customer. It is never
	// stored; whoever sends the portal link must take it from here.
	PortalToken string
	Tasks       []Task
}

// ConvertLead turns a responded lead into a customer on plan with tasks
// opened, in one transaction: the customer (with a portal token drawn from
// random), the lead marked converted, the tasks pending.
//
// A lead whose e-mail (or id) already belongs to a customer is marked
// converted without a second customer or new tasks; a lead without an e-mail
// cannot be a customer and is marked dead. A lead that is no longer responded
// is left alone. None of these is an error.
func (d *DB) ConvertLead(ctx context.Context, leadID int64, plan string, tasks []NewTask, now time.Time, random io.Reader) (Conversion, error) {
	return d.ConvertLeadOnPlan(ctx, leadID, PlanChoice{Plan: plan, Tasks: tasks}, now, random)
}

// PlanChoice is the plan a converted lead gets: its name, the tasks of its
// first period, and whether it recurs monthly (the customer's next period
// is then one calendar month after the conversion).
type PlanChoice struct {
	Plan    string
	Tasks   []NewTask
	Monthly bool
}

// ConvertLeadOnPlan is ConvertLead with the plan's billing: a new customer
// on a monthly plan has its next period set one calendar month after now.
func (d *DB) ConvertLeadOnPlan(ctx context.Context, leadID int64, choice PlanChoice, now time.Time, random io.Reader) (Conversion, error) {
	now = now.UTC()
	plan, tasks := choice.Plan, choice.Tasks
	var next *time.Time
	if choice.Monthly {
		n := AddMonth(now)
		next = &n
	}
	var conv Conversion
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		conv = Conversion{}
		lead := new(Lead)
		if err := tx.NewSelect().Model(lead).Where("l.id = ?", leadID).Scan(ctx); err != nil {
			return notFound(err)
		}
		if lead.Status != LeadResponded {
			conv.Outcome = ConversionSkipped
			return nil
		}
		if lead.Email == nil {
			conv.Outcome = ConversionNoEmail
			return setLeadStatus(ctx, tx, lead.ID, LeadDead, now)
		}
		existing := new(Customer)
		err := existingCustomerQuery(tx, existing, *lead.Email, lead.ID).Scan(ctx)
		switch {
		case err == nil:
			conv.Outcome, conv.Customer = ConversionAlreadyCustomer, existing
			return setLeadStatus(ctx, tx, lead.ID, LeadConverted, now)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		c, token, err := d.CreateCustomer(ctx, tx, NewCustomer{
			Company: lead.Company, ContactEmail: *lead.Email, Plan: plan, LeadID: &lead.ID, NextPeriodAt: next,
		}, random)
		if err != nil {
			return err
		}
		conv.Outcome, conv.Customer, conv.PortalToken = ConversionCreated, c, token
		if err := setLeadStatus(ctx, tx, lead.ID, LeadConverted, now); err != nil {
			return err
		}
		conv.Tasks, err = openTasks(ctx, tx, c.ID, tasks, now)
		return err
	})
	if err != nil {
		return Conversion{}, fmt.Errorf("store: unable to convert lead %d: %w", leadID, err)
	}
	return conv, nil
}

// existingCustomerQuery finds the first customer with e-mail email or lead
// leadID. Each is a search of its UNIQUE index (contact_email, lead_id); the
// two ids are looked up by primary key. (One OR ordered by id with LIMIT 1
// lets the planner walk every customer in id order instead.) PostgreSQL
// wants the subquery in FROM named.
func existingCustomerQuery(idb bun.IDB, dst *Customer, email string, leadID int64) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).
		Where(`c.id = (SELECT MIN(id) FROM (
			SELECT id FROM customers WHERE contact_email = ?
			UNION ALL SELECT id FROM customers WHERE lead_id = ?) AS ids)`, email, leadID)
}

// CustomerRow is a customer with its money figures, for lists.
type CustomerRow struct {
	Customer `bun:",extend"`

	TaskCount int64 `bun:"task_count"`
	// Billed (open and paid invoices) and Paid, one entry per currency:
	// amounts in different currencies are never added together.
	Billed Totals `bun:"-"`
	Paid   Totals `bun:"-"`
}

// ListCustomers returns a page of customers, newest first.
func (d *DB) ListCustomers(ctx context.Context, q ListQuery) ([]CustomerRow, Page, error) {
	q = q.normal()
	var rows []CustomerRow
	l := list[CustomerRow]{table: "customers", alias: "c", sortCol: "created_at",
		query: func() *bun.SelectQuery {
			return d.bun.NewSelect().Model(&rows).ColumnExpr("c.*").
				ColumnExpr("(SELECT COUNT(*) FROM tasks AS t WHERE t.customer_id = c.id) AS task_count")
		},
		filter: func(sq *bun.SelectQuery) *bun.SelectQuery {
			if q.Status != "" {
				sq = sq.Where("c.status = ?", q.Status)
			}
			return searchIndexed(sq, q.Search, ftsSource{idCol: "c.id", fts: "customers_fts",
				likeCols: []string{"c.company", "c.contact_email", "c.plan"}})
		},
		count: d.kept("customers", q.statuses()),
		id:    func(c *CustomerRow) int64 { return c.ID },
	}
	pg, err := l.fetch(ctx, d, q, &rows)
	if err != nil {
		return nil, Page{}, err
	}
	if err := d.customerMoney(ctx, rows); err != nil {
		return nil, Page{}, err
	}
	return rows, pg, nil
}

// customerMoney fills Billed and Paid for a page of customers in one
// aggregate query, per customer and currency.
func (d *DB) customerMoney(ctx context.Context, rows []CustomerRow) error {
	if len(rows) == 0 {
		return nil
	}
	at := make(map[int64]*CustomerRow, len(rows))
	ids := make([]int64, len(rows))
	for i := range rows {
		ids[i], at[rows[i].ID] = rows[i].ID, &rows[i]
	}
	var sums []struct {
		CustomerID int64  `bun:"customer_id"`
		Currency   string `bun:"currency"`
		Billed     int64  `bun:"billed"`
		Paid       int64  `bun:"paid"`
	}
	err := d.bun.NewRaw(`SELECT customer_id, currency,
			SUM(CASE WHEN status IN ('open','paid') THEN amount_cents ELSE 0 END) AS billed,
			SUM(CASE WHEN status = 'paid' THEN amount_cents ELSE 0 END) AS paid
		FROM invoices WHERE customer_id IN (?) AND status IN ('open','paid')
		GROUP BY customer_id, currency ORDER BY currency`, bun.List(ids)).Scan(ctx, &sums)
	if err != nil {
		return fmt.Errorf("store: unable to sum customers' invoices: %w", err)
	}
	for _, s := range sums {
		r := at[s.CustomerID]
		r.Billed = append(r.Billed, Money{Cents: s.Billed, Currency: s.Currency})
		if s.Paid != 0 {
			r.Paid = append(r.Paid, Money{Cents: s.Paid, Currency: s.Currency})
		}
	}
	return nil
}
