package db

import "github.com/hossagent/hossagent/db/money"

// Money is an amount in minor units (cents) of a currency (db/money, shared
// with the views). It is never a float: every sum in HossAgent is exact to
// the cent.
type Money = money.Money

// Totals is a sum of money that may span currencies, one entry per currency,
// sorted by currency code.
type Totals = money.Totals
