package money

import (
	"errors"
	"fmt"
	"strings"
)

// MaxPriceCents is the largest price the catalogue accepts: Stripe's
// largest amount in a two-decimal currency (999,999.99).
const MaxPriceCents = 99_999_999

// ParseCents reads an amount as people type it into a price field — "150",
// "150.5", "150.50", "1,500.00", "$150" — into cents, exactly: the text is
// read digit by digit, never through a float. At most two decimals, no
// sign, no exponent, at most MaxPriceCents. The error says what is wrong in
// words an operator reads next to the field.
func ParseCents(text string) (int64, error) {
	s := strings.TrimSpace(text)
	s = strings.TrimSpace(strings.TrimPrefix(s, "$"))
	if s == "" {
		return 0, errors.New("enter a price, such as 150 or 150.00")
	}
	whole, frac, hasPoint := strings.Cut(s, ".")
	if hasPoint && strings.Contains(frac, ".") {
		return 0, fmt.Errorf("%q has more than one decimal point", clip(text))
	}
	if len(frac) > 2 {
		return 0, fmt.Errorf("%q has more than two decimals: prices are in cents", clip(text))
	}
	if whole == "" && frac == "" {
		return 0, fmt.Errorf("%q is not a price", clip(text))
	}
	// Thousands separators are allowed only in groups of three.
	if strings.Contains(whole, ",") {
		groups := strings.Split(whole, ",")
		for i, g := range groups {
			if (i == 0 && (len(g) < 1 || len(g) > 3)) || (i > 0 && len(g) != 3) {
				return 0, fmt.Errorf("%q has misplaced thousands separators", clip(text))
			}
		}
		whole = strings.Join(groups, "")
	}
	var cents int64
	for _, r := range whole {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a price: use digits and at most one decimal point (150 or 150.00)", clip(text))
		}
		cents = cents*10 + int64(r-'0')
		if cents > MaxPriceCents/100 {
			return 0, fmt.Errorf("%q is more than the largest price, 999,999.99", clip(text))
		}
	}
	cents *= 100
	for i, scale := 0, int64(10); i < 2; i, scale = i+1, scale/10 {
		if i >= len(frac) {
			break
		}
		r := frac[i]
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a price: use digits and at most one decimal point (150 or 150.00)", clip(text))
		}
		cents += int64(r-'0') * scale
	}
	return cents, nil
}

// FormatCents writes cents as ParseCents reads them back: "150.00",
// "1500.05", with no symbol or separators (the value of a price field).
func FormatCents(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if s[i]&0xC0 != 0x80 { // a rune boundary
			return s[:i] + "…"
		}
	}
	return s[:max] + "…"
}
