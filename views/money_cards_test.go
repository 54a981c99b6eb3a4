package views

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// cardsByLabel maps each money card's label to the card.
func cardsByLabel(doc *goquery.Document, region string) map[string]*goquery.Selection {
	out := map[string]*goquery.Selection{}
	doc.Find(region + " .card").Each(func(_ int, s *goquery.Selection) { out[text(s.Find(".label"))] = s })
	return out
}

// TestMoneyCardsShowEachFigureApart: collected (refunds out and said so),
// the profit on it, outstanding with each aging line, unbilled work,
// written off, and the list value of done work, labelled as not profit, on
// the dashboard and in the control room alike.
func TestMoneyCardsShowEachFigureApart(t *testing.T) {
	usd := func(c int64) Totals { return Totals{{Cents: c, Currency: "usd"}} }
	m := MoneyFigures{
		Collected: usd(81000), Refunded: usd(5000), CollectedCost: usd(12000), CollectedProfit: usd(69000),
		Outstanding: usd(60000), NotDue: usd(10000), Days0To30: usd(20000), Days31To60: usd(0), DaysOver60: usd(30000),
		Unbilled: usd(4000), WrittenOff: usd(250000), WorkValue: usd(918000), TasksDone: 42,
	}
	stats := Stats{Money: m}
	dash, _ := render(t, Dashboard(DashboardPage{Meta: meta(), Stats: stats}))
	admin, _ := render(t, Admin(AdminPage{Meta: meta(), Stats: stats}))
	for name, cards := range map[string]map[string]*goquery.Selection{
		"dashboard": cardsByLabel(dash, "#dash-cards"), "control room": cardsByLabel(admin, "#admin-cards"),
	} {
		for label, want := range map[string]string{
			"Collected": "$810.00", "Profit on collected": "$690.00", "Outstanding": "$600.00",
			"Unbilled work": "$40.00", "Written off": "$2,500.00", "Work done (list)": "$9,180.00",
		} {
			c, ok := cards[label]
			if !ok {
				t.Errorf("%s: no %q card (cards: %v)", name, label, cards)
				continue
			}
			if got := text(c.Find(".value")); got != want {
				t.Errorf("%s: %s = %q, want %q", name, label, got, want)
			}
		}
		if _, ok := cards["Profit"]; ok {
			t.Errorf("%s still has a card called just Profit", name)
		}
		if got := text(cards["Collected"].Find(".sub")); !strings.Contains(got, "refunded $50.00, not counted") {
			t.Errorf("%s: collected card does not say the refunds are out: %q", name, got)
		}
		if got := text(cards["Profit on collected"].Find(".sub")); !strings.Contains(got, "$120.00") {
			t.Errorf("%s: profit card does not show the cost of collected work: %q", name, got)
		}
		if got := text(cards["Work done (list)"].Find(".sub")); !strings.Contains(got, "42 tasks") || !strings.Contains(got, "not profit") {
			t.Errorf("%s: work value card = %q", name, got)
		}
		var aging []string
		cards["Outstanding"].Find(".sub.aging").Each(func(_ int, s *goquery.Selection) { aging = append(aging, text(s)) })
		want := []string{"Not yet due $100.00", "0–30 days late $200.00", "31–60 days late $0.00", "Over 60 days late $300.00"}
		if strings.Join(aging, "|") != strings.Join(want, "|") {
			t.Errorf("%s: aging = %q, want %q", name, aging, want)
		}
		if got := text(cards["Outstanding"].Find(".sub.aging .bad")); got != "$300.00" {
			t.Errorf("%s: over 60 days is not shown as bad: %q", name, got)
		}
		if got := cards["Outstanding"].Find(".sub.aging .warn").Length(); got != 1 {
			t.Errorf("%s: %d aging amounts in warn, want 1 (a zero is plain)", name, got)
		}
	}
}

// What the LLM's reply sortings cost is a small line of the profit card,
// shown only when there is any.
func TestMoneyCardsShowTheCostOfLLMReplySorting(t *testing.T) {
	usd := func(c int64) Totals { return Totals{{Cents: c, Currency: "usd"}} }
	for _, tc := range []struct {
		cost Totals
		want string
	}{{usd(137), "replies sorted by the LLM: $1.37"}, {nil, ""}} {
		m := MoneyFigures{Collected: usd(1000), CollectedCost: usd(100), CollectedProfit: usd(900), ReplySortCost: tc.cost}
		doc, _ := render(t, Admin(AdminPage{Meta: meta(), Stats: Stats{Money: m}}))
		got := text(cardsByLabel(doc, "#admin-cards")["Profit on collected"].Find(".sub"))
		if tc.want != "" && !strings.Contains(got, tc.want) || tc.want == "" && strings.Contains(got, "LLM") {
			t.Errorf("cost %v: profit card details = %q, want …%q…", tc.cost, got, tc.want)
		}
	}
}
