package stripe

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

// world is what the billing and reconcile tests run against: a real SQLite
// store on a temporary file, at a fixed time, and a recorder of the events
// the agents publish. Every invariant must hold when the test ends.
type world struct {
	t      *testing.T
	ctx    context.Context
	store  *db.DB
	now    time.Time
	events *agentstest.Events
}

// worldStart is the time every world stands at.
var worldStart = time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC)

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, ctx: ctx, now: worldStart, events: &agentstest.Events{}}
	w.store = agentstest.Open(t, ctx, filepath.Join(t.TempDir(), db.FileName), w.clock)
	t.Cleanup(func() { agentstest.RequireInvariants(t, ctx, w.store, w.now) }) // runs before the store's close
	return w
}

func (w *world) clock() time.Time { return w.now }

// customer stores customer n.
func (w *world) customer(n int) *db.Customer {
	w.t.Helper()
	c, _, err := w.store.CreateCustomer(w.ctx, nil, db.NewCustomer{
		Company: fmt.Sprintf("Customer %03d", n), ContactEmail: fmt.Sprintf("billing@customer%03d.example", n), Plan: agents.PlanStarter,
	}, rand.Reader)
	if err != nil {
		w.t.Fatalf("CreateCustomer: %v", err)
	}
	return c
}

// doneTask stores a done task of customer, for reward, at cost.
func (w *world) doneTask(customerID int64, reward, cost int64) {
	w.t.Helper()
	now := w.now
	task := &db.Task{
		CustomerID: customerID, Kind: agents.KindMarketResearch, Description: "Market research brief",
		Status: db.TaskDone, Currency: "usd", RewardCents: reward, CostCents: cost, ProfitCents: reward - cost,
		Attempts: 1, StartedAt: &now, CompletedAt: &now, Result: "delivered", CreatedAt: now, UpdatedAt: now,
	}
	if _, err := w.store.Bun().NewInsert().Model(task).Exec(w.ctx); err != nil {
		w.t.Fatalf("insert task: %v", err)
	}
}

// linkedInvoice bills one done task of a new customer and gives the invoice
// the payment link linkID.
func (w *world) linkedInvoice(n int, reward int64, linkID string) db.Invoice {
	w.t.Helper()
	c := w.customer(n)
	w.doneTask(c.ID, reward, 0)
	b, err := w.store.BillCustomer(w.ctx, c.ID, w.now, db.BillingRules{MinAmountCents: 1, MaxAmountCents: 1 << 40})
	if err != nil || len(b.Invoices) != 1 {
		w.t.Fatalf("BillCustomer: %v %+v", err, b)
	}
	inv := b.Invoices[0]
	if linkID != "" {
		if _, err := w.store.SetInvoicePaymentLink(w.ctx, inv.ID, "price_"+linkID, linkID, "https://buy.stripe.com/"+linkID, w.now); err != nil {
			w.t.Fatal(err)
		}
	}
	return inv
}

func (w *world) invoice(id int64) db.Invoice {
	w.t.Helper()
	var inv db.Invoice
	if err := w.store.Bun().NewSelect().Model(&inv).Where("i.id = ?", id).Scan(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	return inv
}

func (w *world) invoices() []db.Invoice {
	w.t.Helper()
	var out []db.Invoice
	if err := w.store.Bun().NewSelect().Model(&out).OrderExpr("i.id").Scan(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) count(query string, args ...any) int {
	w.t.Helper()
	return agentstest.Count(w.t, w.ctx, w.store, query, args...)
}

func (w *world) ledger(links agents.LinkDeactivator) *agents.PaymentLedger {
	return &agents.PaymentLedger{Store: w.store, Links: links, Events: w.events, Now: w.clock}
}

// billing is the billing cycle creating links through payments.
func (w *world) billing(payments agents.PaymentLinks, opts agents.BillingOptions) *agents.BillingCycle {
	if opts.Currency == "" {
		opts.Currency = "usd"
	}
	env := agents.Env{Now: w.clock, Random: rand.Reader, Events: w.events}
	return agents.NewBillingCycle(w.store, env, payments, opts)
}

// run runs a cycle and fails the test on error.
func (w *world) run(c agents.Cycle) agents.Counts {
	w.t.Helper()
	return agentstest.Run(w.t, w.ctx, c)
}
