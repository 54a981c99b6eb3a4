package db

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"
)

func TestActivityCountsTheWindowOnly(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	until := fixedNow
	since := until.Add(-24 * time.Hour)
	in, in2, out, late := since.Add(time.Second), until, since.Add(-time.Second), until.Add(time.Second)
	insert := func(model any) {
		t.Helper()
		if _, err := d.bun.NewInsert().Model(model).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Leads: created in, in (at the very end), out, late; contacted,
	// responded and converted once in and once out each.
	times := []struct{ created, contacted, responded, converted *time.Time }{
		{&in, &in, &out, &in2},
		{&in2, &out, &in, nil},
		{&out, &in2, &late, &out},
		{&late, nil, &in, nil},
	}
	var leads []*Lead
	for i, tm := range times {
		l := &Lead{Name: "n", Company: fmt.Sprintf("Co %d", i), Website: fmt.Sprintf("https://co%d.test", i), Source: "test",
			Status: LeadNew, ContactedAt: tm.contacted, RespondedAt: tm.responded, ConvertedAt: tm.converted,
			CreatedAt: *tm.created, UpdatedAt: *tm.created}
		insert(l)
		leads = append(leads, l)
	}
	// E-mails: sent in, dry-run in, failed in (updated_at), sent out,
	// queued late.
	msgs := []struct {
		status  string
		sent    *time.Time
		updated time.Time
	}{
		{MessageSent, &in, in}, {MessageDryRun, &in2, in2}, {MessageFailed, nil, in},
		{MessageSent, &out, in}, {MessageQueued, nil, late},
	}
	for _, m := range msgs {
		insert(&Message{LeadID: leads[0].ID, ToAddr: "a@b.test", Template: "t", Subject: "s", Body: "b",
			Status: m.status, SentAt: m.sent, CreatedAt: out, UpdatedAt: m.updated})
	}
	c, _, err := d.CreateCustomer(ctx, nil, NewCustomer{Company: "C", ContactEmail: "c@c.test", Plan: "p"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	task := func(currency string, reward, cost int64, done time.Time) *Task {
		tk := &Task{CustomerID: c.ID, Kind: "k", Status: TaskDone, Currency: currency, RewardCents: reward, CostCents: cost,
			ProfitCents: reward - cost, CompletedAt: &done, CreatedAt: out, UpdatedAt: done}
		insert(tk)
		return tk
	}
	task("usd", 1000, 100, in)
	task("usd", 500, 0, in2)
	task("eur", 200, 250, in) // negative profit, never clamped
	task("usd", 9999, 0, out)
	task("usd", 9999, 0, late)
	invoice := func(n int, status string, amount int64, issued, paid *time.Time) {
		inv := &Invoice{CustomerID: c.ID, Number: ptr(fmt.Sprintf("INV-%06d", n)), Currency: "usd", AmountCents: amount,
			Status: status, IssuedAt: issued, PaidAt: paid, CreatedAt: out, UpdatedAt: out}
		insert(inv)
	}
	invoice(1, InvoiceOpen, 100, &in, nil)
	invoice(2, InvoicePaid, 200, &out, &in)     // paid in the window, issued before it
	invoice(3, InvoicePaid, 400, &in2, &late)   // issued in, paid after
	invoice(4, InvoiceRefunded, 800, &out, &in) // refunded: not revenue
	invoice(5, InvoicePaid, 1600, &out, &out)   // both before

	a, err := d.Activity(ctx, since, until)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string][2]int64{
		"leads created":   {a.LeadsCreated, 2},
		"leads contacted": {a.LeadsContacted, 2},
		"leads responded": {a.LeadsResponded, 2},
		"leads converted": {a.LeadsConverted, 1},
		"tasks done":      {a.TasksDone, 3},
		"invoices issued": {a.InvoicesIssued, 2},
		"invoices paid":   {a.InvoicesPaid, 1},
		"e-mails":         {a.Emails, 3},
	}
	for name, c := range counts {
		if c[0] != c[1] {
			t.Errorf("%s = %d, want %d", name, c[0], c[1])
		}
	}
	assertCounts(t, "e-mails by status", a.EmailsByStatus, map[string]int64{MessageSent: 1, MessageDryRun: 1, MessageFailed: 1})
	assertTotals(t, "profit", a.Profit, Totals{eur(-50), usd(1400)})
	assertTotals(t, "reward", a.Reward, Totals{eur(200), usd(1500)})
	assertTotals(t, "issued", a.Issued, Totals{usd(500)})
	assertTotals(t, "revenue", a.Revenue, Totals{usd(200)})

	empty, err := d.Activity(ctx, late.Add(time.Hour), late.Add(2*time.Hour))
	if err != nil || empty.LeadsCreated != 0 || len(empty.Profit) != 0 || len(empty.EmailsByStatus) != 0 {
		t.Errorf("empty window = %+v, %v", empty, err)
	}
}

// ActivityByHour puts each e-mail outcome and each task done in the hour
// it happened, from the window's first hour to its last, and nothing from
// outside the window.
func TestActivityByHourBucketsTheWindow(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	until := time.Date(2026, 3, 14, 12, 30, 0, 0, time.UTC)
	since := until.Add(-3 * time.Hour) // 09:30 … 12:30: the hours 09, 10, 11, 12
	insert := func(model any) {
		t.Helper()
		if _, err := d.bun.NewInsert().Model(model).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l := &Lead{Name: "n", Company: "Co", Website: "https://co.test", Source: "test", Status: LeadNew, CreatedAt: since, UpdatedAt: since}
	insert(l)
	at := func(h, m int) time.Time { return time.Date(2026, 3, 14, h, m, 0, 0, time.UTC) }
	for _, sent := range []time.Time{at(9, 45), at(10, 5), at(10, 59), at(12, 30), at(9, 0), at(12, 31)} {
		s := sent
		insert(&Message{LeadID: l.ID, ToAddr: "a@b.test", Template: "t", Subject: "s", Body: "b", Status: MessageSent, SentAt: &s, CreatedAt: s, UpdatedAt: s})
	}
	insert(&Message{LeadID: l.ID, ToAddr: "a@b.test", Template: "t", Subject: "s", Body: "b", Status: MessageFailed, CreatedAt: since, UpdatedAt: at(11, 10)})
	c, _, err := d.CreateCustomer(ctx, nil, NewCustomer{Company: "C", ContactEmail: "c@c.test", Plan: "p"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, done := range []time.Time{at(11, 0), at(11, 59), at(8, 0)} {
		dn := done
		insert(&Task{CustomerID: c.ID, Kind: "k", Status: TaskDone, Currency: "usd", CompletedAt: &dn, CreatedAt: since, UpdatedAt: dn})
	}
	got, err := d.ActivityByHour(ctx, since, until)
	if err != nil {
		t.Fatal(err)
	}
	want := []HourCount{{at(9, 0), 1, 0}, {at(10, 0), 2, 0}, {at(11, 0), 1, 2}, {at(12, 0), 1, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ActivityByHour = %v, want %v", got, want)
	}
}
