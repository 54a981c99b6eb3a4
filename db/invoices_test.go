package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestBillCustomerOnTheFixtureContinuesNumbering(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	ids, err := d.CustomersWithUnbilledWork(ctx, 0, 100)
	// u28, u29 and e4 are unbilled: customers 2, 3 and 23.
	want := []int64{f.customers[2].ID, f.customers[3].ID, f.customers[23].ID}
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("CustomersWithUnbilledWork = %v, %v; want %v", ids, err, want)
	}
	if page, _ := d.CustomersWithUnbilledWork(ctx, ids[0], 1); !slices.Equal(page, ids[1:2]) {
		t.Errorf("second page = %v", page)
	}
	rules := BillingRules{MinAmountCents: 100, MaxAmountCents: 50000, DueAfter: 14 * 24 * time.Hour}
	// The fixture issued 26 numbers without the counter row: billing goes on from there.
	for i, id := range ids {
		b, err := d.BillCustomer(ctx, id, fixedNow, rules)
		if err != nil || len(b.Invoices) != 1 || b.Lines != 1 {
			t.Fatalf("BillCustomer(%d) = %+v, %v", id, b, err)
		}
		if n := *b.Invoices[0].Number; n != fmt.Sprintf("INV-%06d", 27+i) {
			t.Errorf("number = %s", n)
		}
	}
	if again, err := d.BillCustomer(ctx, ids[0], fixedNow, rules); err != nil || len(again.Invoices) != 0 {
		t.Errorf("billing again = %+v, %v", again, err)
	}
	if ids, _ := d.CustomersWithUnbilledWork(ctx, 0, 100); len(ids) != 0 {
		t.Errorf("still unbilled: %v", ids)
	}
	requireAllInvariants(t, d, fixedNow)
}

// The driver's own errors, from a scratch database: a second line for one
// task is a double billing, a duplicate invoice number is not, and neither
// is told apart by matching "UNIQUE constraint failed" in its text alone.
func TestBillCustomerAlreadyBilledIsRecognised(t *testing.T) {
	scratch, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer scratch.Close()
	scratch.SetMaxOpenConns(1)
	violation := func(table, column string) error {
		t.Helper()
		if _, err := scratch.Exec("CREATE TABLE " + table + " (" + column + " UNIQUE)"); err != nil {
			t.Fatal(err)
		}
		if _, err := scratch.Exec("INSERT INTO " + table + " VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		_, err := scratch.Exec("INSERT INTO " + table + " VALUES (1)")
		if err == nil {
			t.Fatalf("a duplicate %s.%s was taken", table, column)
		}
		return fmt.Errorf("wrapped: %w", err)
	}
	billedTwice, otherDuplicate := violation("invoice_lines", "task_id"), violation("invoices", "number")
	if !IsUniqueViolation(billedTwice) || !IsConstraintViolation(billedTwice) || !isTaskBilledTwice(billedTwice) {
		t.Errorf("a second line for one task (%v) is not recognised as a double billing", billedTwice)
	}
	if !IsUniqueViolation(otherDuplicate) || isTaskBilledTwice(otherDuplicate) {
		t.Errorf("a duplicate invoice number (%v) is taken for a double billing", otherDuplicate)
	}
	if text := errors.New("UNIQUE constraint failed: invoice_lines.task_id"); IsUniqueViolation(text) || isTaskBilledTwice(text) {
		t.Error("an error that only reads like SQLite's is taken for a unique violation")
	}
}

func TestPaymentLinkCandidatesAndSaving(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	f := seed(t, d)
	mustExec(t, d.Bun(), "UPDATE invoices SET flag = ? WHERE id = ?", FlagOverMaximum, f.invoices[10].ID)
	got, err := d.InvoicesNeedingPaymentLink(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, c := range got {
		ids = append(ids, c.InvoiceID)
	}
	// Open invoices 5-12 (11 is flagged), 27, 28 and 29, oldest first.
	var want []int64
	for _, n := range []int{5, 6, 7, 8, 9, 10, 12, 27, 28, 29} {
		want = append(want, f.invoices[n-1].ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("candidates = %v, want %v", ids, want)
	}
	if got[0].Number != "INV-000001" || got[0].CustomerEmail != "billing@customer04.com" || got[0].AmountCents != f.invoices[4].AmountCents {
		t.Errorf("first candidate = %+v", got[0])
	}
	if ok, err := d.SetInvoicePaymentLink(ctx, ids[0], "price_1", "plink_1", "https://pay.example/1", fixedNow); !ok || err != nil {
		t.Errorf("SetInvoicePaymentLink: %v, %v", ok, err)
	}
	if ok, _ := d.SetInvoicePaymentLink(ctx, ids[0], "price_2", "plink_2", "https://pay.example/2", fixedNow); ok {
		t.Error("a second link overwrote the first")
	}
	if ok, _ := d.SetInvoicePaymentLink(ctx, f.invoices[12].ID, "p", "l", "https://pay.example/paid", fixedNow); ok {
		t.Error("a paid invoice got a link")
	}
	if limited, _ := d.InvoicesNeedingPaymentLink(ctx, 2); len(limited) != 2 || limited[0].InvoiceID != want[1] {
		t.Errorf("limited candidates = %+v", limited)
	}
}
