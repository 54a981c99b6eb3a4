package db

// CustomerProfit is one customer's money in one currency: the reward of its
// done tasks, the cost of its finished ones (done and failed: a failed
// task earns nothing, but its attempts were paid for), the profit (reward -
// cost), and what it has paid.
type CustomerProfit struct {
	CustomerID  int64  `bun:"customer_id"`
	Company     string `bun:"company"`
	Currency    string `bun:"currency"`
	RewardCents int64  `bun:"reward_cents"`
	CostCents   int64  `bun:"cost_cents"`
	ProfitCents int64  `bun:"profit_cents"`
	PaidCents   int64  `bun:"paid_cents"`
}

// finishedWork sums, per currency, the finished tasks (the caller's FROM
// tasks WHERE … AND): the reward of the done ones, the cost of done and
// failed ones, and the difference.
const finishedWork = `SUM(CASE WHEN status = 'done' THEN reward_cents ELSE 0 END) AS reward, SUM(cost_cents) AS cost,
		SUM(CASE WHEN status = 'done' THEN reward_cents ELSE 0 END) - SUM(cost_cents) AS profit`
