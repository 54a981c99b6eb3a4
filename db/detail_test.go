package db

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// events lists a timeline's entries as "event|ref|ref_id" for comparison.
func events(tl Timeline) []string {
	var out []string
	for _, e := range tl.Entries {
		out = append(out, e.Event+"|"+e.Ref+"|"+itoa(e.RefID))
	}
	return out
}

func assertNewestFirst(t *testing.T, tl Timeline) {
	t.Helper()
	for i := 1; i < len(tl.Entries); i++ {
		if tl.Entries[i].At.After(tl.Entries[i-1].At) {
			t.Errorf("timeline not newest first at %d: %v after %v", i, tl.Entries[i].At, tl.Entries[i-1].At)
		}
	}
}

func TestLeadDetail(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	lead := f.leads[23] // converted, the lead of Customer 00
	if _, err := d.bun.NewInsert().Model(&Reply{LeadID: lead.ID, FromAddr: "x@y.test", Subject: "Yes please",
		Simulated: true, ReceivedAt: fixedNow.Add(-30 * time.Minute)}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.RecordAudit(ctx, AuditEntry{Actor: "ops@x.test", Action: "mark responded", Target: "Lead " + itoa(lead.ID), CreatedAt: fixedNow}); err != nil {
		t.Fatal(err)
	}
	r, err := d.LeadDetail(ctx, lead.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Customer == nil || r.Customer.ID != f.customers[0].ID {
		t.Errorf("customer = %+v, want Customer 00", r.Customer)
	}
	if r.ReplyCount != 1 || len(r.Replies) != 1 || !r.Replies[0].Simulated {
		t.Errorf("replies = %d %+v", r.ReplyCount, r.Replies)
	}
	got := events(r.Timeline)
	for _, want := range []string{
		"Admin: mark responded|audit|1", "Reply received (simulated)|reply|1",
		"Customer created|customer|" + itoa(f.customers[0].ID), "Lead created|lead|" + itoa(lead.ID),
	} {
		if !slices.Contains(got, want) {
			t.Errorf("timeline %v lacks %q", got, want)
		}
	}
	if got[0] != "Admin: mark responded|audit|1" {
		t.Errorf("newest entry = %q", got[0])
	}
	assertNewestFirst(t, r.Timeline)

	// A lead with outreach shows each message's queue and send.
	r, err = d.LeadDetail(ctx, f.messages[5].LeadID) // the "sending" message's lead
	if err != nil {
		t.Fatal(err)
	}
	if r.MessageCount != 1 || r.Customer != nil || !slices.Contains(events(r.Timeline), "E-mail queued|message|"+itoa(f.messages[5].ID)) {
		t.Errorf("messages %d, timeline %v", r.MessageCount, events(r.Timeline))
	}
	if _, err := d.LeadDetail(ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing lead: %v, want ErrNotFound", err)
	}
}

func TestCustomerDetail(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	c := f.customers[0] // from lead 24; tasks u1, u26 and the negative one; invoices 1 and 29
	r, err := d.CustomerDetail(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lead == nil || r.Lead.ID != f.leads[23].ID {
		t.Errorf("lead = %+v", r.Lead)
	}
	// Done usd work: u1 (600-50), u26 (3100-1300), negative (1000-2500); nothing paid.
	want := []CustomerProfit{{CustomerID: c.ID, Company: c.Company, Currency: "usd", RewardCents: 4700, CostCents: 3850, ProfitCents: 850}}
	if !slices.Equal(r.Profit, want) {
		t.Errorf("profit = %+v, want %+v", r.Profit, want)
	}
	got := events(r.Timeline)
	for _, want := range []string{
		"Customer created|customer|" + itoa(c.ID), "Lead created|lead|" + itoa(f.leads[23].ID),
		"Task done|task|" + itoa(f.negative.ID), "Task opened|task|" + itoa(f.doneUSD[0].ID),
		"Invoice issued|invoice|" + itoa(f.invoices[28].ID),
	} {
		if !slices.Contains(got, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	for _, e := range r.Timeline.Entries {
		if e.Event == "Invoice issued" && e.RefID == f.invoices[28].ID && e.Detail != "INV-000025 · 41.00 USD" {
			t.Errorf("issued detail = %q", e.Detail)
		}
	}
	assertNewestFirst(t, r.Timeline)
}

func TestTaskAndInvoiceDetail(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	inv := f.invoices[12] // paid, with a Stripe event, bills u13
	task := f.doneUSD[12]
	tr, err := d.TaskDetail(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Line == nil || tr.Line.InvoiceID != inv.ID || tr.Line.InvoiceStatus != InvoicePaid || tr.Customer.ID != task.CustomerID {
		t.Errorf("task line = %+v, customer %d", tr.Line, tr.Customer.ID)
	}
	got := events(tr.Timeline)
	for _, want := range []string{"Task done|task|" + itoa(task.ID), "Billed|invoice|" + itoa(inv.ID),
		"Invoice paid|invoice|" + itoa(inv.ID), "Stripe event checkout.session.completed|stripe_event|" + itoa(f.events[0].ID)} {
		if !slices.Contains(got, want) {
			t.Errorf("task timeline %v lacks %q", got, want)
		}
	}

	ir, err := d.InvoiceDetail(ctx, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ir.Lines) != 1 || ir.Lines[0].TaskID != task.ID || ir.Lines[0].TaskKind != "report" || ir.EventCount != 1 {
		t.Errorf("lines %+v events %d", ir.Lines, ir.EventCount)
	}
	if err := d.RecordAudit(ctx, AuditEntry{Actor: "a@x.test", Action: "mark paid", Target: *inv.Number, CreatedAt: fixedNow}); err != nil {
		t.Fatal(err)
	}
	ir, _ = d.InvoiceDetail(ctx, inv.ID)
	if got := events(ir.Timeline); !slices.Contains(got, "Admin: mark paid|audit|1") || !slices.Contains(got, "Invoice created|invoice|"+itoa(inv.ID)) {
		t.Errorf("invoice timeline = %v", got)
	}
	if _, err := d.TaskDetail(ctx, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing task: %v", err)
	}
	if _, err := d.InvoiceDetail(ctx, -1); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing invoice: %v", err)
	}
}

func TestTimelineIsBounded(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	c := f.customers[1]
	for i := range TimelineLimit + 5 {
		err := d.RecordAudit(ctx, AuditEntry{Actor: "a@x.test", Action: "note", Target: "customer " + itoa(c.ID),
			CreatedAt: fixedNow.Add(time.Duration(i) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := d.CustomerDetail(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Timeline.Entries) != TimelineLimit || !r.Timeline.More {
		t.Errorf("entries %d more %v", len(r.Timeline.Entries), r.Timeline.More)
	}
	if !strings.HasPrefix(r.Timeline.Entries[0].Event, "Admin: note") || !r.Timeline.Entries[0].At.Equal(fixedNow.Add((TimelineLimit+4)*time.Second)) {
		t.Errorf("newest = %+v", r.Timeline.Entries[0])
	}
}

func TestExportPagesByID(t *testing.T) {
	d := mustOpen(t)
	seed(t, d)
	ctx := context.Background()
	var ids []int64
	for after := int64(0); ; {
		page, err := d.LeadsAfter(ctx, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, l := range page {
			ids = append(ids, l.ID)
		}
		after = page[len(page)-1].ID
	}
	if len(ids) != 37 || !slices.IsSorted(ids) || ids[0] != 1 {
		t.Errorf("exported ids = %v", ids)
	}
	for name, n := range map[string]func() (int, error){
		"customers": func() (int, error) { r, err := d.CustomersAfter(ctx, 0, 0); return len(r), err },
		"tasks":     func() (int, error) { r, err := d.TasksAfter(ctx, 0, 1000); return len(r), err },
		"invoices":  func() (int, error) { r, err := d.InvoicesAfter(ctx, 29, 10); return len(r), err },
	} {
		got, err := n()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"customers": 25, "tasks": 60, "invoices": 1}[name]
		if got != want {
			t.Errorf("%s = %d rows, want %d", name, got, want)
		}
	}
}
