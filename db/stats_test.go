package db

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func usd(c int64) Money { return Money{Cents: c, Currency: "usd"} }
func eur(c int64) Money { return Money{Cents: c, Currency: "eur"} }

func assertTotals(t *testing.T, name string, got, want Totals) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

func assertCounts(t *testing.T, name string, got, want map[string]int64) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// TestStatsSumsEveryRow checks every figure against sums worked out by hand
// from the fixture recipe (see fixture_test.go).
func TestStatsSumsEveryRow(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	s, err := d.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}

	// Paid: usd invoices 13-20 (1800..2500, 17200) + invoice 30 (3200); eur invoice 26.
	assertTotals(t, "Revenue", s.Revenue, Totals{eur(2000), usd(20400)})
	// Open: usd 5-12 (1000..1700, 10800) + invoice 29 (1000+3100); eur 27 and 28.
	assertTotals(t, "Outstanding", s.Outstanding, Totals{eur(7000), usd(14900)})
	// Overdue: usd 5-8 (4600) + 29 (4100); invoice 9 is due exactly now, not overdue; eur 27.
	assertTotals(t, "Overdue", s.Overdue, Totals{eur(3000), usd(8700)})
	// Done usd: sum(500+100i, i=1..29) = 58000, + 1000; eur 2000+3000+4000+5000.
	assertTotals(t, "Reward", s.Reward, Totals{eur(14000), usd(59000)})
	// Done usd: sum(50i) = 21750, + 2500, + failed 8 x 3333 (paid for, earning
	// nothing); eur 4 x 500. Running and pending tasks count when they end.
	assertTotals(t, "Cost", s.Cost, Totals{eur(2000), usd(24250 + 26664)})
	// Includes the negative-profit task (-1500), never clamped.
	assertTotals(t, "Profit", s.Profit, Totals{eur(12000), usd(59000 - 50914)})
	// u28 (3300) + u29 (3400); e4 (5000). Running, pending and failed rewards never count.
	assertTotals(t, "Unbilled", s.Unbilled, Totals{eur(5000), usd(6700)})

	assertCounts(t, "LeadsByStatus", s.LeadsByStatus, map[string]int64{
		"new": 10, "contacted": 8, "responded": 5, "converted": 6, "bounced": 3, "unsubscribed": 2, "failed": 2, "dead": 1,
	})
	assertCounts(t, "CustomersByStatus", s.CustomersByStatus, map[string]int64{"active": 20, "paused": 3, "closed": 2})
	assertCounts(t, "TasksByStatus", s.TasksByStatus, map[string]int64{"done": 34, "running": 6, "pending": 12, "failed": 8})
	assertCounts(t, "InvoicesByStatus", s.InvoicesByStatus, map[string]int64{"draft": 4, "open": 11, "paid": 10, "void": 2, "refunded": 3})
	assertCounts(t, "MessagesByStatus", s.MessagesByStatus, map[string]int64{
		"queued": 5, "sending": 1, "sent": 10, "dry_run": 3, "failed": 2, "suppressed": 1,
	})
	if s.Leads != 37 || s.Customers != 25 || s.Tasks != 60 || s.Invoices != 30 || s.Messages != 22 {
		t.Errorf("totals = leads %d customers %d tasks %d invoices %d messages %d; want 37 25 60 30 22",
			s.Leads, s.Customers, s.Tasks, s.Invoices, s.Messages)
	}
	if got := s.ActiveLeads(); got != 23 {
		t.Errorf("ActiveLeads = %d, want 23", got)
	}
}

func TestStatsOnEmptyStore(t *testing.T) {
	s, err := mustOpen(t).Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if len(s.Revenue) != 0 || len(s.Unbilled) != 0 || s.Leads != 0 || s.ActiveLeads() != 0 {
		t.Fatalf("Stats on an empty store = %+v", s)
	}
	if got := s.Revenue.Format("usd"); got != "$0.00" {
		t.Fatalf("empty Revenue.Format = %q", got)
	}
}

func leadIDs(leads []Lead) []int64 {
	ids := make([]int64, len(leads))
	for i, l := range leads {
		ids[i] = l.ID
	}
	return ids
}

func TestListLeadsPages(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)

	var seen []int64
	for n := 1; n <= 4; n++ {
		leads, p, err := d.ListLeads(ctx, ListQuery{Page: n, PerPage: 10})
		if err != nil {
			t.Fatalf("page %d: %v", n, err)
		}
		wantLen := 10
		if n == 4 {
			wantLen = 7
		}
		if len(leads) != wantLen || p.Total != 37 || p.Pages() != 4 || p.Number != n {
			t.Fatalf("page %d: %d rows, page %+v (pages %d); want %d rows of 37 in 4 pages", n, len(leads), p, p.Pages(), wantLen)
		}
		if p.HasPrev() != (n > 1) || p.HasNext() != (n < 4) {
			t.Errorf("page %d: HasPrev %v HasNext %v", n, p.HasPrev(), p.HasNext())
		}
		seen = append(seen, leadIDs(leads)...)
	}
	// Newest first, every lead exactly once.
	var want []int64
	for k := len(f.leads) - 1; k >= 0; k-- {
		want = append(want, f.leads[k].ID)
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("leads across pages = %v, want %v", seen, want)
	}

	// Out-of-range requests are brought back into range.
	leads, p, err := d.ListLeads(ctx, ListQuery{Page: -3})
	if err != nil || p.Number != 1 || p.PerPage != 25 || len(leads) != 25 {
		t.Fatalf("default page: %d rows, %+v, %v", len(leads), p, err)
	}
	if _, p, _ := d.ListLeads(ctx, ListQuery{PerPage: 10_000}); p.PerPage != MaxPerPage {
		t.Fatalf("PerPage not capped: %+v", p)
	}
	leads, p, err = d.ListLeads(ctx, ListQuery{Page: 9, PerPage: 10})
	if err != nil || len(leads) != 0 || p.Total != 37 || p.HasNext() {
		t.Fatalf("page past the end: %d rows, %+v, %v", len(leads), p, err)
	}
}

func TestListLeadsSearchAndFilter(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)

	for _, tc := range []struct {
		name string
		q    ListQuery
		want []int64 // lead numbers (1-based), newest first; nil means check total only
		tot  int
	}{
		{name: "case-insensitive niche", q: ListQuery{Search: "  DENTIST "}, tot: 9},
		{name: "case-insensitive email", q: ListQuery{Search: "CONTACT07@company07"}, want: []int64{7}},
		{name: "percent is literal", q: ListQuery{Search: "%"}, want: []int64{35}},
		{name: "underscore is literal", q: ListQuery{Search: "_"}, want: []int64{34}},
		{name: "percent inside a term", q: ListQuery{Search: "100% org"}, want: []int64{35}},
		{name: "backslash is literal", q: ListQuery{Search: `\`}, tot: 0},
		{name: "status filter", q: ListQuery{Status: LeadContacted}, tot: 8},
		{name: "status and search", q: ListQuery{Status: LeadNew, Search: "dentist"}, want: []int64{8, 4}},
		{name: "free mail", q: ListQuery{Search: "gmail"}, want: []int64{37, 36}},
		{name: "no match", q: ListQuery{Search: "zzz"}, tot: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leads, p, err := d.ListLeads(ctx, tc.q)
			if err != nil {
				t.Fatalf("ListLeads: %v", err)
			}
			if tc.want != nil {
				tc.tot = len(tc.want)
				var want []int64
				for _, k := range tc.want {
					want = append(want, f.leads[k-1].ID)
				}
				if got := leadIDs(leads); !slices.Equal(got, want) {
					t.Errorf("ids = %v, want %v", got, want)
				}
			}
			if p.Total != tc.tot || len(leads) != tc.tot {
				t.Errorf("total %d, %d rows; want %d", p.Total, len(leads), tc.tot)
			}
			for _, l := range leads {
				if tc.q.Status != "" && l.Status != tc.q.Status {
					t.Errorf("lead %d has status %s", l.ID, l.Status)
				}
			}
		})
	}
}

func TestListTasksCarriesCompany(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	company := map[int64]string{}
	for _, c := range f.customers {
		company[c.ID] = c.Company
	}

	rows, p, err := d.ListTasks(ctx, ListQuery{Status: TaskDone, PerPage: 100})
	if err != nil {
		t.Fatalf("ListTasks: %v", err)
	}
	if p.Total != 34 || len(rows) != 34 {
		t.Fatalf("done tasks: %d rows, total %d; want 34", len(rows), p.Total)
	}
	for i, r := range rows {
		if r.Status != TaskDone || r.Company == "" || r.Company != company[r.CustomerID] {
			t.Errorf("row %d: task %d status %s company %q, want done for %q", i, r.ID, r.Status, r.Company, company[r.CustomerID])
		}
		if i > 0 && r.CompletedAt.After(*rows[i-1].CompletedAt) {
			t.Errorf("row %d completed after the row before it", i)
		}
		if r.Profit().Cents != r.RewardCents-r.CostCents {
			t.Errorf("task %d profit %d", r.ID, r.ProfitCents)
		}
	}
	// Search reaches the joined company.
	rows, p, err = d.ListTasks(ctx, ListQuery{Search: "customer 00"})
	if err != nil || p.Total != 3 {
		t.Fatalf("search by company: total %d, %v; want 3", p.Total, err)
	}
	for _, r := range rows {
		if !strings.Contains(strings.ToLower(r.Company), "customer 00") {
			t.Errorf("search by company returned task %d of %q", r.ID, r.Company)
		}
	}
	rows, p, err = d.ListCustomerTasks(ctx, f.customers[0].ID, ListQuery{})
	if err != nil || p.Total != 3 {
		t.Fatalf("ListCustomerTasks: total %d, %v; want 3", p.Total, err)
	}
	if rows[0].ID != f.negative.ID || rows[0].Profit() != usd(-1500) {
		t.Errorf("newest task of customer 00 = %d (%v), want the negative-profit task", rows[0].ID, rows[0].Profit())
	}
	if _, p, _ := d.ListTasks(ctx, ListQuery{}); p.Total != 60 {
		t.Errorf("all tasks: total %d, want 60", p.Total)
	}
}

func TestListInvoicesCarriesCompanyAndLines(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)

	rows, p, err := d.ListInvoices(ctx, ListQuery{PerPage: 5})
	if err != nil {
		t.Fatalf("ListInvoices: %v", err)
	}
	if p.Total != 30 || len(rows) != 5 || p.Pages() != 6 {
		t.Fatalf("%d rows, %+v; want 5 of 30", len(rows), p)
	}
	// Newest first: invoice 30, then 29 (two lines, customer 00).
	if rows[0].ID != f.invoices[29].ID || rows[1].ID != f.invoices[28].ID {
		t.Fatalf("first rows = %d, %d", rows[0].ID, rows[1].ID)
	}
	r := rows[1]
	if r.Company != "Customer 00" || r.LineCount != 2 || r.Amount() != usd(4100) || !r.Overdue(fixedNow) {
		t.Errorf("invoice 29 row = company %q lines %d amount %v overdue %v", r.Company, r.LineCount, r.Amount(), r.Overdue(fixedNow))
	}
	if rows[0].Company != "Customer 01" || rows[0].LineCount != 1 || rows[0].NumberOrDraft() != "INV-000026" {
		t.Errorf("invoice 30 row = %q %d %s", rows[0].Company, rows[0].LineCount, rows[0].NumberOrDraft())
	}

	for _, tc := range []struct {
		q    ListQuery
		want int
	}{
		{ListQuery{Status: InvoiceOpen}, 11},
		{ListQuery{Status: InvoiceDraft}, 4},
		{ListQuery{Search: "inv-"}, 26},
		{ListQuery{Search: "INV-000001"}, 1},
		{ListQuery{Search: "customer 2"}, 8}, // customers 20-24: invoices 21-25 and 26-28
		{ListQuery{Search: "PAYER@"}, 13},    // paid and refunded
	} {
		_, p, err := d.ListInvoices(ctx, tc.q)
		if err != nil || p.Total != tc.want {
			t.Errorf("ListInvoices(%+v): total %d, %v; want %d", tc.q, p.Total, err, tc.want)
		}
	}
	rows, _, err = d.ListCustomerInvoices(ctx, f.customers[0].ID, ListQuery{})
	if err != nil || len(rows) != 2 || rows[0].ID != f.invoices[28].ID || rows[1].NumberOrDraft() != "DRAFT" {
		t.Fatalf("ListCustomerInvoices(customer 00) = %d rows, %v", len(rows), err)
	}
}

func TestListCustomersCarriesFigures(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)

	rows, p, err := d.ListCustomers(ctx, ListQuery{PerPage: 50})
	if err != nil || p.Total != 25 || len(rows) != 25 {
		t.Fatalf("ListCustomers: %d rows, %+v, %v", len(rows), p, err)
	}
	byID := map[int64]CustomerRow{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	for _, tc := range []struct {
		n                   int
		tasks, billed, paid int64
	}{
		{0, 3, 4100, 0},     // u1 (draft), u26 + negative on open invoice 29
		{1, 2, 3200, 3200},  // u2 (draft), u27 on paid invoice 30
		{12, 4, 1800, 1800}, // u13 on paid invoice 13, one running, pending and failed task
		{20, 3, 2000, 2000}, // u21 on a void invoice, e1 on paid eur invoice 26, a pending task
		{24, 1, 0, 0},       // u25 refunded: neither billed nor paid
	} {
		r, ok := byID[f.customers[tc.n].ID]
		if !ok {
			t.Fatalf("customer %02d missing", tc.n)
		}
		cur := "usd"
		if tc.n == 20 {
			cur = "eur" // its only billed work is the paid eur invoice
		}
		if r.TaskCount != tc.tasks || r.Billed.In(cur).Cents != tc.billed || r.Paid.In(cur).Cents != tc.paid || len(r.Billed) > 1 {
			t.Errorf("customer %02d: tasks %d billed %v paid %v; want %d %d %d %s",
				tc.n, r.TaskCount, r.Billed, r.Paid, tc.tasks, tc.billed, tc.paid, cur)
		}
		if r.Company != f.customers[tc.n].Company || r.PortalTokenHash != f.customers[tc.n].PortalTokenHash {
			t.Errorf("customer %02d: columns not filled: %+v", tc.n, r.Customer)
		}
	}
	if rows[0].ID != f.customers[24].ID {
		t.Errorf("first row = %d, want the newest customer", rows[0].ID)
	}
	if _, p, _ := d.ListCustomers(ctx, ListQuery{Status: CustomerPaused}); p.Total != 3 {
		t.Errorf("paused customers = %d, want 3", p.Total)
	}
	if _, p, _ := d.ListCustomers(ctx, ListQuery{Search: "CUSTOMER 0"}); p.Total != 10 {
		t.Errorf("search customers = %d, want 10", p.Total)
	}
}

func TestCustomerSummary(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	for _, tc := range []struct {
		n                                    int
		invoiced, paid, outstanding, overdue Totals
		open                                 int64
	}{
		{0, Totals{usd(4100)}, nil, Totals{usd(4100)}, Totals{usd(4100)}, 1},
		{1, Totals{usd(3200)}, Totals{usd(3200)}, nil, nil, 0},
		{8, Totals{usd(1400)}, nil, Totals{usd(1400)}, nil, 1}, // due exactly now
		{22, Totals{eur(4000), usd(2800)}, nil, Totals{eur(4000)}, nil, 1},
		{23, Totals{usd(2900)}, nil, nil, nil, 0}, // refunded counts as invoiced
	} {
		s, err := d.CustomerSummary(ctx, f.customers[tc.n].ID)
		if err != nil {
			t.Fatalf("CustomerSummary(%02d): %v", tc.n, err)
		}
		assertTotals(t, "Invoiced", s.Invoiced, tc.invoiced)
		assertTotals(t, "Paid", s.Paid, tc.paid)
		assertTotals(t, "Outstanding", s.Outstanding, tc.outstanding)
		assertTotals(t, "Overdue", s.Overdue, tc.overdue)
		if s.OpenCount != tc.open {
			t.Errorf("customer %02d: OpenCount %d, want %d", tc.n, s.OpenCount, tc.open)
		}
	}
}

func TestCustomerByPortalToken(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)

	c, err := d.CustomerByPortalToken(ctx, f.tokens[3])
	if err != nil || c.ID != f.customers[3].ID {
		t.Fatalf("right token: %v, %v; want customer 03", c, err)
	}
	for name, token := range map[string]string{
		"wrong":       f.tokens[3][:42] + "x",
		"empty":       "",
		"revoked":     f.tokens[23],
		"stored hash": f.customers[3].PortalTokenHash,
		"too long":    strings.Repeat("a", 200),
	} {
		c, err := d.CustomerByPortalToken(ctx, token)
		if !errors.Is(err, ErrNotFound) || c != nil {
			t.Errorf("%s token: %v, %v; want ErrNotFound", name, c, err)
		}
	}

	// A new customer has a working link at once.
	nc, token, err := d.CreateCustomer(ctx, nil, NewCustomer{Company: "Fresh", ContactEmail: "x@fresh.io", Plan: "starter"}, rand.Reader)
	if err != nil {
		t.Fatalf("CreateCustomer: %v", err)
	}
	if got, err := d.CustomerByPortalToken(ctx, token); err != nil || got.ID != nc.ID {
		t.Fatalf("new customer's token: %v, %v", got, err)
	}
}

func TestSettings(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	if v, err := d.Setting(ctx, "autopilot", "off"); err != nil || v != "off" {
		t.Fatalf("unset setting = %q, %v; want the default", v, err)
	}
	for _, v := range []string{"on", "off", ""} {
		if err := d.SetSetting(ctx, "autopilot", v); err != nil {
			t.Fatalf("SetSetting(%q): %v", v, err)
		}
		if got, err := d.Setting(ctx, "autopilot", "default"); err != nil || got != v {
			t.Fatalf("after SetSetting(%q): %q, %v", v, got, err)
		}
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM settings"); n != 1 {
		t.Fatalf("settings rows = %d, want 1 (overwritten in place)", n)
	}
	var s Setting
	if err := d.Bun().NewSelect().Model(&s).Where("key = ?", "autopilot").Scan(ctx); err != nil || !s.UpdatedAt.Equal(fixedNow) {
		t.Fatalf("updated_at = %v, %v; want the store clock", s.UpdatedAt, err)
	}
	if err := d.SetSetting(ctx, "", "x"); !IsConstraintViolation(err) {
		t.Fatalf("empty key: %v, want a constraint violation", err)
	}
}

func TestMoneyString(t *testing.T) {
	for _, tc := range []struct {
		m    Money
		want string
	}{
		{usd(0), "$0.00"},
		{usd(5), "$0.05"},
		{usd(-5), "-$0.05"},
		{usd(99999), "$999.99"},
		{usd(100000), "$1,000.00"},
		{usd(123456), "$1,234.56"},
		{usd(-300), "-$3.00"},
		{usd(123456789012), "$1,234,567,890.12"},
		{eur(1234500), "€12,345.00"},
		{eur(-1234567), "-€12,345.67"},
		{Money{Cents: 1200, Currency: "USD"}, "$12.00"},
		{Money{Cents: 1200, Currency: "gbp"}, "£12.00"},
		{Money{Cents: 1200, Currency: "chf"}, "12.00 CHF"},
		{Money{Cents: -123456789, Currency: "sek"}, "-1,234,567.89 SEK"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.m, got, tc.want)
		}
	}
	tot := Totals{eur(2000), usd(20400)}
	if got := tot.Format("usd"); got != "€20.00 + $204.00" {
		t.Errorf("Format = %q", got)
	}
	if tot.In("usd") != usd(20400) || tot.In("gbp") != (Money{Currency: "gbp"}) {
		t.Errorf("In = %v, %v", tot.In("usd"), tot.In("gbp"))
	}
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		token, hash, err := NewToken(rand.Reader)
		if err != nil {
			t.Fatalf("NewToken: %v", err)
		}
		if len(token) != 43 || strings.ContainsAny(token, "+/=") {
			t.Fatalf("token %q: want 43 URL-safe characters", token)
		}
		if hash != HashToken(token) || len(hash) != 64 || hash != strings.ToLower(hash) {
			t.Fatalf("hash %q does not match HashToken(%q)", hash, token)
		}
		if seen[token] {
			t.Fatalf("token %q drawn twice", token)
		}
		seen[token] = true
	}
	// An exhausted random source is an error, not a weak token.
	if _, _, err := NewToken(strings.NewReader("short")); err == nil {
		t.Fatal("NewToken on a short reader succeeded")
	}
	// Known vector: SHA-256 of "abc".
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashToken(abc) = %s", got)
	}
}
