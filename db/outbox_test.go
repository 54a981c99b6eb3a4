package db

import (
	"context"
	"errors"
	"testing"
	"time"
)

// outboxStore is a store whose clock a test moves with *now.
func outboxStore(t *testing.T) (*DB, *time.Time) {
	t.Helper()
	now := fixedNow
	d := openTestStore(t, WithClock(func() time.Time { return now }))
	return d, &now
}

func outboxLead(t *testing.T, d *DB, email, domainKey string) *Lead {
	t.Helper()
	l, err := d.CreateLead(context.Background(), nil, NewLead{Email: email, DomainKey: domainKey, Company: "Co " + email, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func outboxQueue(t *testing.T, d *DB, leadID int64) *Message {
	t.Helper()
	m, err := d.QueueMessage(context.Background(), leadID, func(l *Lead, id int64) (OutboxDraft, error) {
		return OutboxDraft{Template: "general/1", Subject: "Hello " + l.Company, Body: "message body"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var outboxRoomy = EmailCaps{PerCycle: 10, PerHour: 10, PerDay: 10}

func outboxClaim(t *testing.T, d *DB, id int64, caps EmailCaps) Claim {
	t.Helper()
	c, err := d.ClaimMessage(context.Background(), id, caps)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQueueMessageOnlyForNewLeadsWithoutALiveMessage(t *testing.T) {
	ctx := context.Background()
	d, _ := outboxStore(t)
	l := outboxLead(t, d, "a@a.example", "a.example")
	m := outboxQueue(t, d, l.ID)
	if m == nil || m.Status != MessageQueued || m.ToAddr != "a@a.example" || m.Subject != "Hello Co a@a.example" || m.ID == 0 {
		t.Fatalf("queued %+v", m)
	}
	if again := outboxQueue(t, d, l.ID); again != nil {
		t.Fatalf("second message queued for one lead: %+v", again)
	}
	if leads, _ := d.NewLeadsToContact(ctx, 10); len(leads) != 0 {
		t.Fatalf("lead with a queued message offered again: %v", leads)
	}
	// A dry-run message does not block the real one after a requeue.
	if outboxClaim(t, d, m.ID, outboxRoomy) != ClaimOK {
		t.Fatal("claim refused")
	}
	if err := d.MarkSent(ctx, m.ID, "dry-run-1", true); err != nil {
		t.Fatal(err)
	}
	if n, err := d.RequeueDryRunLeads(ctx); err != nil || n != 1 {
		t.Fatalf("RequeueDryRunLeads = %d, %v", n, err)
	}
	if leads, _ := d.NewLeadsToContact(ctx, 10); len(leads) != 1 {
		t.Fatalf("requeued lead not offered: %v", leads)
	}
	if outboxQueue(t, d, l.ID) == nil {
		t.Fatal("requeued lead got no message")
	}
	// A compose error rolls the message back.
	l2 := outboxLead(t, d, "b@b.example", "b.example")
	_, err := d.QueueMessage(ctx, l2.ID, func(*Lead, int64) (OutboxDraft, error) { return OutboxDraft{}, errors.New("render") })
	if err == nil || countRows(t, d, "SELECT COUNT(*) FROM messages WHERE lead_id = ?", l2.ID) != 0 {
		t.Fatalf("compose error: %v", err)
	}
}

func TestClaimMessageAppliesCapsSuppressionsAndClaimsOnce(t *testing.T) {
	ctx := context.Background()
	d, now := outboxStore(t)
	a := outboxQueue(t, d, outboxLead(t, d, "a@a.example", "a.example").ID)
	b := outboxQueue(t, d, outboxLead(t, d, "b@b.example", "b.example").ID)
	if outboxClaim(t, d, a.ID, EmailCaps{PerHour: 1, PerDay: 5}) != ClaimOK {
		t.Fatal("first claim refused")
	}
	if outboxClaim(t, d, a.ID, outboxRoomy) != ClaimGone {
		t.Fatal("a sending message was claimed twice")
	}
	// The in-flight message already counts against the hour.
	if c := outboxClaim(t, d, b.ID, EmailCaps{PerHour: 1, PerDay: 5}); c != ClaimCapped {
		t.Fatalf("claim over the hourly cap = %s", c)
	}
	if err := d.MarkSent(ctx, a.ID, "p-1", false); err != nil {
		t.Fatal(err)
	}
	if hour, _, _ := sendsInWindows(ctx, d.bun, *now); hour != 1 {
		t.Fatalf("sent in the hour = %d", hour)
	}
	*now = now.Add(time.Hour + time.Second)
	if c := outboxClaim(t, d, b.ID, EmailCaps{PerHour: 1, PerDay: 1}); c != ClaimCapped {
		t.Fatalf("claim over the daily cap = %s", c)
	}
	if c := outboxClaim(t, d, b.ID, EmailCaps{PerHour: 1, PerDay: 2}); c != ClaimOK {
		t.Fatalf("claim in a fresh hour = %s", c)
	}
	if err := d.MarkSent(ctx, a.ID, "p-1", false); err == nil {
		t.Fatal("a sent message was marked sent again")
	}

	// Suppressed by a parent domain: the message and the lead say so.
	c := outboxLead(t, d, "c@mail.c.example", "c.example")
	cm := outboxQueue(t, d, c.ID)
	if err := d.AddSuppression(ctx, "domain", "C.example", "bounced", "test"); err != nil {
		t.Fatal(err)
	}
	if err := d.AddSuppression(ctx, "domain", "c.example", "bounced", "again"); err != nil {
		t.Fatalf("adding a suppression twice: %v", err)
	}
	if got := outboxClaim(t, d, cm.ID, outboxRoomy); got != ClaimSuppressed {
		t.Fatalf("claim of a suppressed address = %s", got)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM messages WHERE id = ? AND status = 'suppressed' AND error LIKE '%bounced%'", cm.ID); n != 1 {
		t.Fatal("suppressed message not marked")
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'unsubscribed'", c.ID); n != 1 {
		t.Fatal("suppressed lead not unsubscribed")
	}
	for addr, want := range map[string]bool{"x@c.example": true, "x@deep.mail.c.example": true, "x@notc.example": false, "c@other.example": false} {
		if got, err := d.IsSuppressed(ctx, addr); err != nil || got != want {
			t.Errorf("IsSuppressed(%s) = %v, %v; want %v", addr, got, err, want)
		}
	}
}

func TestMarkFailedCountsAttemptsAndFailsTheLeadAtTheLast(t *testing.T) {
	ctx := context.Background()
	d, _ := outboxStore(t)
	l := outboxLead(t, d, "a@a.example", "a.example")
	m := outboxQueue(t, d, l.ID)
	for attempt := 1; attempt <= MaxSendAttempts; attempt++ {
		if outboxClaim(t, d, m.ID, outboxRoomy) != ClaimOK {
			t.Fatalf("attempt %d: claim refused", attempt)
		}
		leadFailed, err := d.MarkFailed(ctx, m.ID, "550 no")
		if err != nil || leadFailed != (attempt == MaxSendAttempts) {
			t.Fatalf("attempt %d: MarkFailed = %v, %v", attempt, leadFailed, err)
		}
	}
	if outboxClaim(t, d, m.ID, outboxRoomy) != ClaimGone {
		t.Fatal("message claimed after its last attempt")
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'failed'", l.ID); n != 1 {
		t.Fatal("lead not failed")
	}
	if msgs, _ := d.SendableMessages(ctx, 10); len(msgs) != 0 {
		t.Fatalf("sendable after the last attempt: %v", msgs)
	}
	if _, err := d.MarkFailed(ctx, m.ID, "again"); err == nil {
		t.Fatal("a failed message was marked failed again")
	}
}

func TestFlagStaleSending(t *testing.T) {
	ctx := context.Background()
	d, now := outboxStore(t)
	m := outboxQueue(t, d, outboxLead(t, d, "a@a.example", "a.example").ID)
	outboxClaim(t, d, m.ID, outboxRoomy)
	if n, _ := d.FlagStaleSending(ctx, 15*time.Minute); n != 0 {
		t.Fatalf("flagged a fresh send: %d", n)
	}
	*now = now.Add(20 * time.Minute)
	if n, _ := d.FlagStaleSending(ctx, 15*time.Minute); n != 1 {
		t.Fatalf("flagged %d, want 1", n)
	}
	if n, _ := d.FlagStaleSending(ctx, 15*time.Minute); n != 0 {
		t.Fatalf("flagged again: %d", n)
	}
	if n, _ := d.PendingOutbox(ctx); n != 0 {
		t.Fatalf("a stuck message counts as pending: %d", n)
	}
}
