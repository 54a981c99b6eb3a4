package money

import (
	"strings"
	"testing"
)

func TestParseCentsIsExact(t *testing.T) {
	for in, want := range map[string]int64{
		"150": 15000, "150.00": 15000, "150.5": 15050, "150.05": 15005, " 150.99 ": 15099, "0": 0, "0.01": 1,
		".5": 50, "150.": 15000, "1,500.00": 150000, "$999,999.99": 99999999, "$12": 1200,
		"0.29": 29, "1.10": 110, "19.99": 1999, // where a float parse would round wrong
	} {
		got, err := ParseCents(in)
		if err != nil || got != want {
			t.Errorf("ParseCents(%q) = %d, %v; want %d", in, got, err, want)
		}
		if err == nil && want > 0 {
			if back, _ := ParseCents(FormatCents(got)); back != got {
				t.Errorf("FormatCents(%d) = %q does not read back", got, FormatCents(got))
			}
		}
	}
	for in, wantMsg := range map[string]string{
		"": "enter a price", "  ": "enter a price", "abc": "not a price", "-5": "not a price", "1e3": "not a price",
		"1.234": "more than two decimals", "1.2.3": "more than one decimal point", "1,50": "thousands separators",
		"1000000": "largest price", "99999999999999999999": "largest price", ".": "not a price", "1.5x": "not a price",
		"١٢": "not a price", "+5": "not a price", "5 00": "not a price",
	} {
		if got, err := ParseCents(in); err == nil || !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("ParseCents(%q) = %d, %v; want an error saying %q", in, got, err, wantMsg)
		}
	}
	if FormatCents(15005) != "150.05" || FormatCents(7) != "0.07" {
		t.Errorf("FormatCents: %s %s", FormatCents(15005), FormatCents(7))
	}
}
