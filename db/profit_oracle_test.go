package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The whole-business profit sums below read every finished task and every
// paid invoice. No page, live update or cycle may do that (the pages read
// the kept totals and CustomerDetail one customer's rows), so they live
// here, as the tests' oracle: the figures the kept totals and the customer
// page must equal.

// ProfitTotal is the whole business's money in one currency.
type ProfitTotal struct {
	Currency    string `bun:"currency"`
	RewardCents int64  `bun:"reward_cents"`
	CostCents   int64  `bun:"cost_cents"`
	ProfitCents int64  `bun:"profit_cents"`
	PaidCents   int64  `bun:"paid_cents"`
}

// profitSources are the per customer and currency sums the profit figures
// are built from: finished work and paid invoices (refunded money is not
// revenue).
const profitSources = `WITH work AS (
		SELECT customer_id, currency, ` + finishedWork + `
		FROM tasks WHERE status IN ('done', 'failed') GROUP BY customer_id, currency),
	paid AS (
		SELECT customer_id, currency, SUM(amount_cents) AS paid
		FROM invoices WHERE status = 'paid' GROUP BY customer_id, currency),
	keys AS (SELECT customer_id, currency FROM work UNION SELECT customer_id, currency FROM paid),
	money AS (
		SELECT k.customer_id, k.currency, COALESCE(w.reward, 0) AS reward, COALESCE(w.cost, 0) AS cost,
		       COALESCE(w.profit, 0) AS profit, COALESCE(p.paid, 0) AS paid
		FROM keys AS k
		LEFT JOIN work AS w ON w.customer_id = k.customer_id AND w.currency = k.currency
		LEFT JOIN paid AS p ON p.customer_id = k.customer_id AND p.currency = k.currency)
	`

// ProfitByCustomer returns, for every customer with finished work or
// payments, one row per currency, by customer id. Per-task profit is
// Task.Profit.
func (d *DB) ProfitByCustomer(ctx context.Context) ([]CustomerProfit, error) {
	var out []CustomerProfit
	err := d.bun.NewRaw(profitSources+`SELECT m.customer_id, c.company, m.currency, m.reward AS reward_cents,
			m.cost AS cost_cents, m.profit AS profit_cents, m.paid AS paid_cents
		FROM money AS m JOIN customers AS c ON c.id = m.customer_id
		ORDER BY m.customer_id, m.currency`).Scan(ctx, &out)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to sum profit by customer: %w", err)
	}
	return out, nil
}

// ProfitTotals returns the reward, cost and profit of all finished work and
// the paid revenue, one row per currency, sorted by currency.
func (d *DB) ProfitTotals(ctx context.Context) ([]ProfitTotal, error) {
	var out []ProfitTotal
	err := d.bun.NewRaw(profitSources+`SELECT currency, SUM(reward) AS reward_cents, SUM(cost) AS cost_cents,
			SUM(profit) AS profit_cents, SUM(paid) AS paid_cents
		FROM money GROUP BY currency ORDER BY currency`).Scan(ctx, &out)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: unable to sum profit: %w", err)
	}
	return out, nil
}
