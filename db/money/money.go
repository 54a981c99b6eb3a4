// Package money is HossAgent's amount type: integer minor units with a
// currency, and how people read it. It imports nothing of the project, so
// the store (db.Money is this type) and the views (views.Money too) share
// one definition and one formatting without the views linking the store.
package money

import (
	"fmt"
	"strings"
)

// Money is an amount in minor units (cents) of a currency. It is never a
// float: every sum in HossAgent is exact to the cent.
type Money struct {
	Cents    int64
	Currency string // ISO 4217, lower case ("usd")
}

// currencySymbols covers the currencies an operator is likely to bill in;
// others are shown with their code.
var currencySymbols = map[string]string{"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}

// String formats the amount for people: "$1,234.50", "-$3.00", "12.00 CHF".
func (m Money) String() string {
	cents := m.Cents
	sign := ""
	if cents < 0 {
		sign = "-"
		cents = -cents
	}
	whole := groupThousands(cents / 100)
	frac := cents % 100
	if sym, ok := currencySymbols[strings.ToLower(m.Currency)]; ok {
		return fmt.Sprintf("%s%s%s.%02d", sign, sym, whole, frac)
	}
	return fmt.Sprintf("%s%s.%02d %s", sign, whole, frac, strings.ToUpper(m.Currency))
}

func groupThousands(n int64) string {
	s := fmt.Sprintf("%d", n)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// Totals is a sum of money that may span currencies, one entry per currency,
// sorted by currency code.
type Totals []Money

// In returns the total in one currency (zero when there is none).
func (t Totals) In(currency string) Money {
	for _, m := range t {
		if m.Currency == currency {
			return m
		}
	}
	return Money{Currency: currency}
}

// Format shows the totals joined with " + "; an empty total shows as zero in
// the fallback currency.
func (t Totals) Format(fallback string) string {
	if len(t) == 0 {
		return Money{Currency: fallback}.String()
	}
	parts := make([]string, len(t))
	for i, m := range t {
		parts[i] = m.String()
	}
	return strings.Join(parts, " + ")
}
