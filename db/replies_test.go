package db

import (
	"context"
	"errors"
	"testing"
)

func TestRecordReply(t *testing.T) {
	ctx := context.Background()
	d, _ := outboxStore(t)
	l := outboxLead(t, d, "a@a.example", "a.example")
	m := outboxQueue(t, d, l.ID)
	sim := NewReply{LeadID: l.ID, FromAddr: "a@a.example", Subject: "Re: x", Body: "[SIMULATED REPLY] yes", Simulated: true}
	if ok, err := d.RecordReply(ctx, sim); err != nil || ok {
		t.Fatalf("simulated reply to a new lead = %v, %v", ok, err)
	}
	outboxClaim(t, d, m.ID, outboxRoomy)
	if err := d.MarkSent(ctx, m.ID, "dry-run-1", true); err != nil {
		t.Fatal(err)
	}
	if s, _ := d.LastSubject(ctx, l.ID); s != "Hello Co a@a.example" {
		t.Fatalf("LastSubject = %q", s)
	}
	if leads, _ := d.ContactedWithoutReply(ctx, fixedNow, 0, 10); len(leads) != 1 {
		t.Fatalf("ContactedWithoutReply = %v", leads)
	}
	if ok, err := d.RecordReply(ctx, sim); err != nil || !ok {
		t.Fatalf("simulated reply = %v, %v", ok, err)
	}
	if ok, _ := d.RecordReply(ctx, sim); ok {
		t.Fatal("second simulated reply stored")
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'responded' AND responded_at IS NOT NULL", l.ID); n != 1 {
		t.Fatal("lead not responded")
	}
	if leads, _ := d.ContactedWithoutReply(ctx, fixedNow, 0, 10); len(leads) != 0 {
		t.Fatalf("answered lead still offered: %v", leads)
	}
	// A real reply is always kept, and never moves a lead back.
	if _, err := d.Bun().ExecContext(ctx, "UPDATE leads SET status = 'converted' WHERE id = ?", l.ID); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.RecordReply(ctx, NewReply{LeadID: l.ID, FromAddr: "a@a.example", Body: "thanks"}); err != nil || !ok {
		t.Fatalf("real reply = %v, %v", ok, err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM leads WHERE id = ? AND status = 'converted'", l.ID); n != 1 {
		t.Fatal("real reply moved a converted lead")
	}
	if _, err := d.RecordReply(ctx, NewReply{LeadID: 999}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reply to a missing lead: %v", err)
	}
}

func TestRecordInboundReply(t *testing.T) {
	r := newInboundRig(t)
	contacted, _ := r.lead("jane@acme.example", "acme.example", LeadContacted)
	converted, _ := r.lead("c@client.example", "client.example", LeadConverted)

	res, err := r.store.RecordInboundReply(r.ctx, InboundReply{FromAddr: "Jane@ACME.example", Subject: "Re: hello", Body: "Tell me more"})
	if err != nil || res.LeadID != contacted.ID || !res.Responded {
		t.Fatalf("reply = %+v, %v", res, err)
	}
	var l Lead
	if err := r.store.Bun().NewSelect().Model(&l).Where("l.id = ?", contacted.ID).Scan(r.ctx); err != nil {
		t.Fatal(err)
	}
	if l.Status != LeadResponded || l.RespondedAt == nil || !l.RespondedAt.Equal(fixedNow) {
		t.Errorf("lead = %s responded at %v", l.Status, l.RespondedAt)
	}
	var replies []Reply
	if err := r.store.Bun().NewSelect().Model(&replies).OrderExpr("id").Scan(r.ctx); err != nil {
		t.Fatal(err)
	}
	if len(replies) != 1 || replies[0].FromAddr != "jane@acme.example" || replies[0].Simulated || replies[0].Body != "Tell me more" || replies[0].Subject != "Re: hello" {
		t.Fatalf("replies = %+v", replies)
	}

	// A second reply is stored; the lead is already responded.
	if res, err := r.store.RecordInboundReply(r.ctx, InboundReply{FromAddr: "jane@acme.example", Body: "Again"}); err != nil || res.Responded || res.LeadID != contacted.ID {
		t.Errorf("second reply = %+v, %v", res, err)
	}
	// A customer's reply is stored and the customer stays converted.
	if res, err := r.store.RecordInboundReply(r.ctx, InboundReply{FromAddr: "c@client.example", Body: "Thanks"}); err != nil || res.Responded {
		t.Errorf("customer reply = %+v, %v", res, err)
	}
	if got := r.status(converted.ID); got != LeadConverted {
		t.Errorf("customer lead became %s", got)
	}
	// A stranger is stored nowhere.
	if res, err := r.store.RecordInboundReply(r.ctx, InboundReply{FromAddr: "who@else.example", Body: "Hi"}); err != nil || res.LeadID != 0 {
		t.Errorf("stranger = %+v, %v", res, err)
	}
	var n int
	if err := r.store.Bun().NewRaw("SELECT COUNT(*) FROM replies").Scan(r.ctx, &n); err != nil || n != 3 {
		t.Errorf("replies = %d, %v; want 3", n, err)
	}
	if err := r.store.Bun().NewRaw("SELECT COUNT(*) FROM leads").Scan(r.ctx, &n); err != nil || n != 2 {
		t.Errorf("leads = %d, %v; a reply created a lead", n, err)
	}
}
