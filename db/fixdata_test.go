package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// auditCount counts the audit entries with action.
func auditCount(t *testing.T, d *DB, action string) int {
	t.Helper()
	n, err := d.bun.NewSelect().Model((*AuditEntry)(nil)).Where("action = ?", action).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func leadStatus(t *testing.T, d *DB, id int64) Lead {
	t.Helper()
	var l Lead
	if err := d.bun.NewSelect().Model(&l).Where("l.id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

func setStatus(t *testing.T, d *DB, table string, id int64, status string) {
	t.Helper()
	mustExec(t, d.bun, "UPDATE "+table+" SET status = ? WHERE id = ?", status, id)
}

var operator = AuditEntry{Actor: "ops@hossagent.test", Action: AuditLeadMarked, RemoteAddr: "192.0.2.1"}

func TestMarkLeadsFollowsTheStateMachine(t *testing.T) {
	r := newInboundRig(t)
	d, ctx := r.store, r.ctx
	statuses := []string{LeadNew, LeadContacted, LeadConverted, LeadBounced, LeadDead, LeadResponded}
	ids := make([]int64, len(statuses))
	for i, s := range statuses {
		l, _ := r.lead(fmt.Sprintf("p%d@lead%d.example", i, i), fmt.Sprintf("lead%d.example", i), LeadNew)
		setStatus(t, d, "leads", l.ID, s)
		ids[i] = l.ID
	}
	// The contacted lead has a follow-up queued: marking it dead stops it.
	mustExec(t, d.bun, `INSERT INTO messages (lead_id, to_addr, template, subject, body, status, step, created_at, updated_at)
		VALUES (?, 'p1@lead1.example', 't', 's', 'b', 'queued', 2, ?, ?)`, ids[1], fixedNow, fixedNow)

	out, err := d.MarkLeads(ctx, append(ids, 999999, ids[0]), LeadDead, "no budget", operator)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(ids)+1 {
		t.Fatalf("%d outcomes for %d distinct ids: %+v", len(out), len(ids)+1, out)
	}
	want := []struct {
		moved, already bool
		refused        string
	}{
		{moved: true}, {moved: true}, {refused: "converted"}, {refused: "bounced"}, {already: true}, {moved: true}, {refused: "no such lead"},
	}
	for i, w := range want {
		got := out[i]
		if got.Moved != w.moved || got.Already != w.already || !strings.Contains(got.Refused, w.refused) || (w.refused == "") != (got.Refused == "") {
			t.Errorf("lead %d (%s): got %+v, want %+v", got.ID, got.From, got, w)
		}
	}
	for i, s := range []string{LeadDead, LeadDead, LeadConverted, LeadBounced, LeadDead, LeadDead} {
		l := leadStatus(t, d, ids[i])
		if l.Status != s {
			t.Errorf("lead %d is %s, want %s", ids[i], l.Status, s)
		}
		if s == LeadDead && i != 4 && !strings.Contains(l.SequenceStop, "marked dead") {
			t.Errorf("lead %d's sequence not stopped: %q", ids[i], l.SequenceStop)
		}
	}
	var followUp string
	if err := d.bun.NewSelect().Model((*Message)(nil)).Column("status").Where("lead_id = ? AND step = 2", ids[1]).Scan(ctx, &followUp); err != nil {
		t.Fatal(err)
	}
	if followUp != MessageSuppressed {
		t.Errorf("the dead lead's queued follow-up is %s, want suppressed", followUp)
	}
	if n := auditCount(t, d, AuditLeadMarked); n != 3 {
		t.Fatalf("%d audit entries, want one per lead moved (3)", n)
	}
	var e AuditEntry
	if err := d.bun.NewSelect().Model(&e).Where("target = ?", fmt.Sprintf("lead %d", ids[0])).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Detail != "new → dead; note: no budget" || e.Actor != operator.Actor || e.RemoteAddr != operator.RemoteAddr {
		t.Errorf("audit entry %+v", e)
	}

	// Again: nothing moves, nothing is audited.
	again, err := d.MarkLeads(ctx, ids[:2], LeadDead, "", operator)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range again {
		if m.Moved || !m.Already {
			t.Errorf("second mark of lead %d: %+v", m.ID, m)
		}
	}
	if n := auditCount(t, d, AuditLeadMarked); n != 3 {
		t.Errorf("a repeated mark was audited: %d entries", n)
	}

	// An operator opens a dead lead again: responded, with the time.
	resp, err := d.MarkLeads(ctx, []int64{ids[0], ids[2]}, LeadResponded, "", operator)
	if err != nil {
		t.Fatal(err)
	}
	if !resp[0].Moved || resp[1].Moved || !strings.Contains(resp[1].Refused, "converted") {
		t.Errorf("mark responded: %+v", resp)
	}
	if l := leadStatus(t, d, ids[0]); l.Status != LeadResponded || l.RespondedAt == nil || !l.RespondedAt.Equal(fixedNow) {
		t.Errorf("lead after mark responded: %s at %v", l.Status, l.RespondedAt)
	}

	// Bounds and the statuses an operator may set.
	if _, err := d.MarkLeads(ctx, ids, LeadConverted, "", operator); err == nil {
		t.Error("marking converted by hand was accepted")
	}
	many := make([]int64, MaxBulk+1)
	for i := range many {
		many[i] = int64(i + 1)
	}
	if _, err := d.MarkLeads(ctx, many, LeadDead, "", operator); err == nil {
		t.Errorf("%d ids were accepted", len(many))
	}
	if _, err := d.MarkLeads(ctx, nil, LeadDead, "", operator); err == nil {
		t.Error("no ids was accepted")
	}
}

// TestMarkLeadsIsOneTransaction fails the audit entry of the second lead:
// the first lead, moved before it, is not moved either.
func TestMarkLeadsIsOneTransaction(t *testing.T) {
	r := newInboundRig(t)
	d, ctx := r.store, r.ctx
	a, _ := r.lead("a@one.example", "one.example", LeadNew)
	b, _ := r.lead("b@two.example", "two.example", LeadNew)
	refuseWrites(t, d, "refuse_audit", "INSERT", "audit_log", fmt.Sprintf("NEW.target = 'lead %d'", b.ID), "refused")
	if _, err := d.MarkLeads(ctx, []int64{a.ID, b.ID}, LeadDead, "", operator); err == nil {
		t.Fatal("the failed audit entry was not an error")
	}
	if l := leadStatus(t, d, a.ID); l.Status != LeadNew || l.SequenceStop != "" {
		t.Errorf("lead a is %s (%q) after a failed mark: the transaction was not undone", l.Status, l.SequenceStop)
	}
	if n := auditCount(t, d, AuditLeadMarked); n != 0 {
		t.Errorf("%d audit entries kept from a failed mark", n)
	}
}

func TestOperatorSuppressions(t *testing.T) {
	r := newInboundRig(t)
	d, ctx := r.store, r.ctx
	l, m := r.lead("gone@away.example", "away.example", LeadNew)
	add := operator
	add.Action = AuditSuppressionAdded
	s, added, err := d.AddOperatorSuppression(ctx, SuppressAddress, "  Gone@Away.example ", add)
	if err != nil || !added || s.Value != "gone@away.example" || s.Reason != SuppressManual || s.Source != SuppressionByOperator {
		t.Fatalf("add: %+v added=%v err=%v", s, added, err)
	}
	again, added, err := d.AddOperatorSuppression(ctx, SuppressAddress, "gone@away.example", add)
	if err != nil || added || again.ID != s.ID {
		t.Fatalf("second add: %+v added=%v err=%v", again, added, err)
	}
	if n := auditCount(t, d, AuditSuppressionAdded); n != 1 {
		t.Errorf("%d audit entries for one suppression added twice", n)
	}
	// At send time the message is suppressed and its lead unsubscribed.
	if claim, err := d.ClaimMessage(ctx, m.ID, EmailCaps{PerHour: 100, PerDay: 100}); err != nil || claim != ClaimSuppressed {
		t.Fatalf("claim after the suppression: %v %v", claim, err)
	}
	rm := operator
	rm.Action = AuditSuppressionRemoved
	gone, err := d.RemoveSuppression(ctx, s.ID, rm)
	if err != nil || gone.Value != s.Value {
		t.Fatalf("remove: %+v %v", gone, err)
	}
	if sup, err := d.IsSuppressed(ctx, s.Value); err != nil || sup {
		t.Errorf("still suppressed after the removal: %v %v", sup, err)
	}
	// Removing sends nothing: the message stays suppressed, the lead
	// unsubscribed, and no message is queued.
	var msg Message
	if err := d.bun.NewSelect().Model(&msg).Where("m.id = ?", m.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if msg.Status != MessageSuppressed {
		t.Errorf("message is %s after the removal, want suppressed", msg.Status)
	}
	if got := leadStatus(t, d, l.ID); got.Status != LeadUnsubscribed {
		t.Errorf("lead is %s after the removal, want unsubscribed", got.Status)
	}
	if n, err := d.PendingOutbox(ctx); err != nil || n != 0 {
		t.Errorf("outbox has %d to send after the removal (%v)", n, err)
	}
	if _, err := d.RemoveSuppression(ctx, s.ID, rm); !errors.Is(err, ErrNotFound) {
		t.Errorf("second removal: %v, want ErrNotFound", err)
	}
	if n := auditCount(t, d, AuditSuppressionRemoved); n != 1 {
		t.Errorf("%d removal entries, want 1", n)
	}
	var e AuditEntry
	if err := d.bun.NewSelect().Model(&e).Where("action = ?", AuditSuppressionRemoved).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Target != "address gone@away.example" || !strings.Contains(e.Detail, "manual") {
		t.Errorf("removal entry %+v", e)
	}
}

func TestListSuppressionsPagesAndSearches(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	mustExec(t, d.bun, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)
		INSERT INTO suppressions (kind, value, reason, created_at)
		SELECT CASE WHEN i % 3 = 0 THEN 'domain' ELSE 'address' END,
		       CASE WHEN i % 3 = 0 THEN 'd' || i || '.example' ELSE 'a' || i || '@x.example' END,
		       'bounced', `+testMinutesAfter2026("i", "0")+` FROM n`)
	first, pg, err := d.ListSuppressions(ctx, ListQuery{PerPage: 25})
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 25 || first[0].Value != "d60.example" || pg.Total != 60 || !pg.HasNext() {
		t.Fatalf("first page: %d rows, first %q, total %d, next %v", len(first), first[0].Value, pg.Total, pg.HasNext())
	}
	second, _, err := d.ListSuppressions(ctx, ListQuery{PerPage: 25, Cursor: pg.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != 25 || second[0].ID != first[24].ID-1 {
		t.Errorf("second page starts at %d, want %d", second[0].ID, first[24].ID-1)
	}
	found, pg, err := d.ListSuppressions(ctx, ListQuery{Search: "A5"})
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, s := range found {
		values = append(values, s.Value)
	}
	if got := strings.Join(values, " "); got != "a59@x.example a58@x.example a56@x.example a55@x.example a53@x.example a52@x.example a50@x.example a5@x.example" || pg.Total != 8 {
		t.Errorf("search a5: %s (total %d)", got, pg.Total)
	}
}

func TestRetryTasksNeverBillsTwice(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	failed, billed := f.failed[0], f.failed[1]
	// A failed task that an invoice line holds (billed before it failed
	// again, say): it must stay as it is.
	mustExec(t, d.bun, `INSERT INTO invoice_lines (invoice_id, task_id, description, amount_cents, created_at) VALUES (?, ?, 'x', 0, ?)`,
		f.invoices[0].ID, billed.ID, fixedNow)
	mustExec(t, d.bun, "UPDATE tasks SET last_error = 'LLM unavailable', attempts = 3 WHERE id = ?", failed.ID)
	var before Task
	if err := d.bun.NewSelect().Model(&before).Where("t.id = ?", failed.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	retry := operator
	retry.Action = AuditTaskRetried
	out, err := d.RetryTasks(ctx, []int64{failed.ID, billed.ID, f.doneUSD[28].ID, f.pending[0].ID, 999999}, retry)
	if err != nil {
		t.Fatal(err)
	}
	wants := []string{"", "billed", "done", "pending", "no such task"}
	for i, w := range wants {
		if out[i].Retried != (w == "") || !strings.Contains(out[i].Refused, w) {
			t.Errorf("task %d: %+v, want refused %q", out[i].ID, out[i], w)
		}
	}
	var after Task
	if err := d.bun.NewSelect().Model(&after).Where("t.id = ?", failed.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if after.Status != TaskPending || after.Attempts != 0 || after.LastError != "" || after.CostCents != before.CostCents {
		t.Errorf("retried task: %s attempts %d error %q cost %d (was %d)", after.Status, after.Attempts, after.LastError, after.CostCents, before.CostCents)
	}
	var b Task
	if err := d.bun.NewSelect().Model(&b).Where("t.id = ?", billed.ID).Scan(ctx); err != nil || b.Status != TaskFailed {
		t.Errorf("billed task is %s (%v)", b.Status, err)
	}
	var e AuditEntry
	if err := d.bun.NewSelect().Model(&e).Where("action = ?", AuditTaskRetried).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Target != fmt.Sprintf("task %d", failed.ID) || !strings.Contains(e.Detail, "3 attempts") || !strings.Contains(e.Detail, "LLM unavailable") {
		t.Errorf("audit entry %+v", e)
	}
	// Again: it is pending now, so nothing happens.
	again, err := d.RetryTasks(ctx, []int64{failed.ID}, retry)
	if err != nil || again[0].Retried {
		t.Errorf("second retry: %+v %v", again, err)
	}
	if n := auditCount(t, d, AuditTaskRetried); n != 1 {
		t.Errorf("%d audit entries, want 1", n)
	}
	// The claim takes it like any pending task.
	claimed, err := d.ClaimTasks(ctx, fixedNow, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	took := false
	for _, c := range claimed {
		took = took || c.ID == failed.ID && c.Attempts == 1
	}
	if !took {
		t.Error("the retried task was not claimed with attempt 1")
	}
}

func TestRetryMessage(t *testing.T) {
	r := newInboundRig(t)
	d, ctx := r.store, r.ctx
	retry := operator
	retry.Action = AuditMessageRetried
	caps := EmailCaps{PerHour: 100, PerDay: 100}

	// Failed for good: the lead was marked failed with it.
	l, m := r.lead("x@fail.example", "fail.example", LeadNew)
	mustExec(t, d.bun, "UPDATE messages SET status = 'failed', attempts = 3, error = 'smtp 451' WHERE id = ?", m.ID)
	setStatus(t, d, "leads", l.ID, LeadFailed)
	out, err := d.RetryMessage(ctx, m.ID, false, retry)
	if err != nil || out.LeadFrom != LeadFailed {
		t.Fatalf("retry: %+v %v", out, err)
	}
	var got Message
	if err := d.bun.NewSelect().Model(&got).Where("m.id = ?", m.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if got.Status != MessageQueued || got.Attempts != 0 || got.Error != "" {
		t.Errorf("retried message: %s attempts %d error %q", got.Status, got.Attempts, got.Error)
	}
	if s := leadStatus(t, d, l.ID).Status; s != LeadNew {
		t.Errorf("lead is %s, want new again", s)
	}
	// Queued again, it goes through the suppression list at send time.
	if err := d.AddSuppression(ctx, "domain", "fail.example", SuppressManual, "test"); err != nil {
		t.Fatal(err)
	}
	if claim, err := d.ClaimMessage(ctx, m.ID, caps); err != nil || claim != ClaimSuppressed {
		t.Errorf("claim of the retried message to a suppressed domain: %v %v", claim, err)
	}
	// A suppressed message is not retried; neither is a message still
	// failing with attempts left, one in flight, nor a sent one.
	refusals := map[string]string{
		"suppressed":            "status = 'suppressed'",
		"retried by itself":     "status = 'failed', attempts = 1",
		"being sent":            "status = 'sending', sending_at = '2025-03-14 11:00:00'",
		"only a failed message": "status = 'sent', sent_at = '2025-03-14 11:00:00'",
		"nobody knows":          "status = 'sending', needs_review = TRUE, sending_at = '2025-03-14 11:00:00'",
	}
	i := 0
	for want, set := range refusals {
		i++
		_, m := r.lead(fmt.Sprintf("r%d@refuse%d.example", i, i), fmt.Sprintf("refuse%d.example", i), LeadNew)
		mustExec(t, d.bun, "UPDATE messages SET "+set+" WHERE id = ?", m.ID)
		_, err := d.RetryMessage(ctx, m.ID, false, retry)
		var refusal *RetryRefusal
		if !errors.As(err, &refusal) || !strings.Contains(refusal.Text, want) {
			t.Errorf("%s: %v", set, err)
		}
	}
	if n := auditCount(t, d, AuditMessageRetried); n != 1 {
		t.Errorf("%d audit entries after one retry and refusals", n)
	}

	// Fate unknown: only with the operator's word that it was not sent.
	l2, m2 := r.lead("y@review.example", "review.example", LeadNew)
	mustExec(t, d.bun, "UPDATE messages SET status = 'sending', needs_review = TRUE, sending_at = ?, error = 'answer lost' WHERE id = ?", fixedNow, m2.ID)
	if _, err := d.RetryMessage(ctx, m2.ID, false, retry); !errors.Is(err, ErrMessageNeedsConfirm) {
		t.Fatalf("retry without confirmation: %v", err)
	}
	if out, err := d.RetryMessage(ctx, m2.ID, true, retry); err != nil || !out.Review {
		t.Fatalf("confirmed retry: %+v %v", out, err)
	}
	if claim, err := d.ClaimMessage(ctx, m2.ID, caps); err != nil || claim != ClaimOK {
		t.Errorf("claim after the confirmed retry: %v %v", claim, err)
	}
	if s := leadStatus(t, d, l2.ID).Status; s != LeadNew {
		t.Errorf("lead is %s", s)
	}
	var e AuditEntry
	if err := d.bun.NewSelect().Model(&e).Where("target = ?", fmt.Sprintf("message %d", m2.ID)).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Detail, "confirmed it was not sent") {
		t.Errorf("audit entry %+v", e)
	}
	// A lead that unsubscribed meanwhile gets nothing.
	l3, m3 := r.lead("z@unsub.example", "unsub.example", LeadNew)
	mustExec(t, d.bun, "UPDATE messages SET status = 'failed', attempts = 3 WHERE id = ?", m3.ID)
	setStatus(t, d, "leads", l3.ID, LeadUnsubscribed)
	if _, err := d.RetryMessage(ctx, m3.ID, false, retry); !errors.Is(err, ErrMessageNotRetryable) {
		t.Errorf("retry to an unsubscribed lead: %v", err)
	}
	if _, err := d.RetryMessage(ctx, 999999, false, retry); !errors.Is(err, ErrNotFound) {
		t.Errorf("no such message: %v", err)
	}
}

func TestEditCustomer(t *testing.T) {
	d := mustOpen(t)
	f := seed(t, d)
	ctx := context.Background()
	c, other := f.customers[3], f.customers[4]
	edit := operator
	edit.Action = AuditCustomerEdited
	before, after, err := d.EditCustomer(ctx, c.ID, CustomerEdit{Company: "Renamed Ltd", ContactName: "Ann Smith", ContactEmail: " Ann@Renamed.example "}, edit)
	if err != nil {
		t.Fatal(err)
	}
	if before.Company != c.Company || after.ContactEmail != "ann@renamed.example" || after.ContactName != "Ann Smith" {
		t.Errorf("before %+v after %+v", before, after)
	}
	var stored Customer
	if err := d.bun.NewSelect().Model(&stored).Where("c.id = ?", c.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if stored.Company != "Renamed Ltd" || stored.ContactEmail != "ann@renamed.example" || stored.ContactName != "Ann Smith" {
		t.Errorf("stored %+v", stored)
	}
	// The search index follows the new name.
	if rows, _, err := d.ListCustomers(ctx, ListQuery{Search: "Renamed"}); err != nil || len(rows) != 1 {
		t.Errorf("search for the new name: %d rows (%v)", len(rows), err)
	}
	// The same again changes nothing and audits nothing.
	if _, _, err := d.EditCustomer(ctx, c.ID, CustomerEdit{Company: "Renamed Ltd", ContactName: "Ann Smith", ContactEmail: "ann@renamed.example"}, edit); err != nil {
		t.Fatal(err)
	}
	if n := auditCount(t, d, AuditCustomerEdited); n != 1 {
		t.Errorf("%d audit entries, want 1", n)
	}
	// Another customer's address is refused, and nothing changes.
	if _, _, err := d.EditCustomer(ctx, c.ID, CustomerEdit{Company: "X", ContactEmail: other.ContactEmail}, edit); !errors.Is(err, ErrEmailTaken) {
		t.Errorf("taken address: %v", err)
	}
	if err := d.bun.NewSelect().Model(&stored).Where("c.id = ?", c.ID).Scan(ctx); err != nil || stored.Company != "Renamed Ltd" {
		t.Errorf("after a refused edit: %+v %v", stored, err)
	}
	if _, _, err := d.EditCustomer(ctx, 999999, CustomerEdit{Company: "X", ContactEmail: "x@y.example"}, edit); !errors.Is(err, ErrNotFound) {
		t.Errorf("no such customer: %v", err)
	}
	// The contact name reaches the task executor.
	mustExec(t, d.bun, "UPDATE tasks SET status = 'failed' WHERE customer_id <> ? AND status = 'pending'", c.ID)
	mustExec(t, d.bun, "INSERT INTO tasks (customer_id, kind, description, status, currency, reward_cents, profit_cents, created_at, updated_at) VALUES (?, 'k', 'd', 'pending', 'usd', 1, 1, ?, ?)", c.ID, fixedNow, fixedNow)
	claimed, err := d.ClaimTasks(ctx, fixedNow, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range claimed {
		if ct.CustomerID == c.ID && ct.ContactName != "Ann Smith" {
			t.Errorf("claimed task's contact name %q", ct.ContactName)
		}
	}
}

// TestFixDataQueryPlans runs every query of the data fixes on a large
// dataset and fails on any step that scans a table instead of seeking into
// an index; the suppression list's pages must read their index in order.
func TestFixDataQueryPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large dataset")
	}
	d := mustOpen(t)
	ctx := context.Background()
	sizes := SeedSizes{Leads: 20000, Customers: 2000, Tasks: 20000, Invoices: 4000, Seed: 1}
	if d.Postgres() {
		// A quarter on PostgreSQL, whose Seed took two minutes for the
		// whole (10 s for this): enough rows that its planner prefers an
		// index to a scan, with statistics and without.
		sizes = SeedSizes{Leads: 5000, Customers: 500, Tasks: 5000, Invoices: 1000, Seed: 1}
	}
	if _, err := d.Seed(ctx, sizes); err != nil {
		t.Fatal(err)
	}
	mustExec(t, d.bun, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
		INSERT INTO suppressions (kind, value, reason, created_at)
		SELECT CASE WHEN i % 3 = 0 THEN 'domain' ELSE 'address' END,
		       CASE WHEN i % 3 = 0 THEN 'd' || i || '.example' ELSE 'a' || i || '@x.example' END,
		       'bounced', `+testMinutesAfter2026("i", "0")+` FROM n`)
	run := map[string]func() error{
		"ListSuppressions": func() error { _, _, err := d.ListSuppressions(ctx, ListQuery{}); return err },
		"ListSuppressions page 9": func() error {
			_, _, err := d.ListSuppressions(ctx, ListQuery{Cursor: Cursor{Page: 9, ID: 15000}})
			return err
		},
		"ListSuppressions back": func() error {
			_, _, err := d.ListSuppressions(ctx, ListQuery{Cursor: Cursor{Page: 3, ID: 15000, Newer: true}})
			return err
		},
		"ListSuppressions search": func() error { _, _, err := d.ListSuppressions(ctx, ListQuery{Search: "a1234"}); return err },
		"MarkLeads":               func() error { _, err := d.MarkLeads(ctx, []int64{5, 6, 7, 19999}, LeadDead, "", operator); return err },
		"RetryTasks":              func() error { _, err := d.RetryTasks(ctx, []int64{5, 6, 7, 19999}, operator); return err },
		"RetryMessage":            func() error { _, err := d.RetryMessage(ctx, 17, true, operator); return err },
		"AddOperatorSuppression": func() error {
			_, _, err := d.AddOperatorSuppression(ctx, "domain", "new.example", operator)
			return err
		},
		"RemoveSuppression": func() error { _, err := d.RemoveSuppression(ctx, 12345, operator); return err },
		"EditCustomer": func() error {
			_, _, err := d.EditCustomer(ctx, 7, CustomerEdit{Company: "Edited", ContactEmail: "edited@x.example"}, operator)
			return err
		},
	}
	uses := map[string]string{
		"ListSuppressions": "suppressions_created", "ListSuppressions page 9": "suppressions_created",
		"ListSuppressions back": "suppressions_created", "ListSuppressions search": "suppressions_value",
	}
	hook := &recordQueries{}
	//lint:ignore SA1019 the store's handle, not a copy, needs the hook
	d.Bun().AddQueryHook(hook)
	check := func(t *testing.T) {
		for name, fn := range run {
			hook.take()
			err := fn()
			queries := hook.take()
			if err != nil && !errors.Is(err, ErrNotFound) && !errors.As(err, new(*RetryRefusal)) {
				t.Fatalf("%s: %v", name, err)
			}
			used := false
			for _, q := range queries {
				if strings.HasPrefix(q, "BEGIN") || strings.HasPrefix(q, "COMMIT") || strings.HasPrefix(q, "ROLLBACK") {
					continue
				}
				if d.Postgres() {
					// EXPLAIN (FORMAT JSON): no Seq Scan on a table of
					// the dataset (kept_totals and settings are small).
					plan := pgPlanOf(t, d, q)
					for _, scan := range plan.seqScans("leads", "messages", "suppressions", "tasks", "invoices", "invoice_lines", "customers", "audit_log") {
						t.Errorf("%s: %s\nplan: %s\nquery: %s", name, scan, plan, q)
					}
					used = used || (uses[name] != "" && plan.uses(uses[name]))
					continue
				}
				var steps []struct {
					ID      int    `bun:"id"`
					Parent  int    `bun:"parent"`
					NotUsed int    `bun:"notused"`
					Detail  string `bun:"detail"`
				}
				if err := d.bun.NewRaw("EXPLAIN QUERY PLAN "+q).Scan(ctx, &steps); err != nil {
					t.Fatalf("%s: EXPLAIN %s: %v", name, q, err)
				}
				for _, s := range steps {
					f := strings.Fields(s.Detail)
					if len(f) >= 2 && f[0] == "SCAN" && !strings.Contains(s.Detail, " USING ") && f[1] != "kept_totals" && f[1] != "settings" && f[1] != "matches" {
						t.Errorf("%s: %q reads a whole table\nquery: %s", name, s.Detail, q)
					}
					if idx := uses[name]; idx != "" && strings.Contains(s.Detail, "INDEX "+idx) {
						used = true
					}
				}
			}
			if idx := uses[name]; idx != "" && !used {
				t.Errorf("%s does not read %s:\n%s", name, idx, strings.Join(queries, "\n"))
			}
		}
	}
	t.Run("without statistics", check)
	mustExec(t, d.bun, "ANALYZE")
	t.Run("with statistics", check)
}
