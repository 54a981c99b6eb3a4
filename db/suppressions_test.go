package db

import (
	"context"
	"errors"
	"testing"
	"time"
)

// inboundRig is a store with leads and one queued message per lead.
type inboundRig struct {
	t     *testing.T
	ctx   context.Context
	store *DB
}

func newInboundRig(t *testing.T) *inboundRig {
	t.Helper()
	d := openTestStore(t, WithClock(func() time.Time { return fixedNow }))
	return &inboundRig{t: t, ctx: context.Background(), store: d}
}

// lead stores a lead with status and returns it with a queued message.
func (r *inboundRig) lead(email, domainKey, status string) (*Lead, *Message) {
	r.t.Helper()
	l, err := r.store.CreateLead(r.ctx, nil, NewLead{Email: email, DomainKey: domainKey, Company: "Co " + email, Source: "test"})
	if err != nil {
		r.t.Fatal(err)
	}
	m, err := r.store.QueueMessage(r.ctx, l.ID, func(*Lead, int64) (OutboxDraft, error) {
		return OutboxDraft{Template: "general/1", Subject: "Hello", Body: "body"}, nil
	})
	if err != nil || m == nil {
		r.t.Fatalf("queue: %v", err)
	}
	r.setStatus(l.ID, status)
	return l, m
}

func (r *inboundRig) setStatus(id int64, status string) {
	r.t.Helper()
	if _, err := r.store.Bun().NewUpdate().Model((*Lead)(nil)).Set("status = ?", status).Where("id = ?", id).Exec(r.ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *inboundRig) status(id int64) string {
	r.t.Helper()
	var l Lead
	if err := r.store.Bun().NewSelect().Model(&l).Where("l.id = ?", id).Scan(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	return l.Status
}

func (r *inboundRig) suppressions() []Suppression {
	r.t.Helper()
	var s []Suppression
	if err := r.store.Bun().NewSelect().Model(&s).OrderExpr("id").Scan(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	return s
}

func TestUnsubscribeMessageIsOneIdempotentChange(t *testing.T) {
	r := newInboundRig(t)
	l, m := r.lead("jane@acme.example", "acme.example", LeadContacted)

	target, err := r.store.UnsubscribeTarget(r.ctx, m.ID)
	if err != nil || target.Address != "jane@acme.example" || target.LeadID != l.ID || target.Suppressed {
		t.Fatalf("target = %+v, %v", target, err)
	}
	if len(r.suppressions()) != 0 || r.status(l.ID) != LeadContacted {
		t.Fatal("reading the target changed something")
	}

	c, err := r.store.UnsubscribeMessage(r.ctx, m.ID, "one-click")
	if err != nil || !c.Suppressed || !c.LeadMoved || c.Address != "jane@acme.example" || c.LeadID != l.ID {
		t.Fatalf("first unsubscribe = %+v, %v", c, err)
	}
	s := r.suppressions()
	if len(s) != 1 || s[0].Kind != SuppressAddress || s[0].Value != "jane@acme.example" || s[0].Reason != SuppressUnsubscribed || s[0].Source != "one-click" {
		t.Fatalf("suppressions = %+v", s)
	}
	if got := r.status(l.ID); got != LeadUnsubscribed {
		t.Errorf("lead status = %s", got)
	}

	c, err = r.store.UnsubscribeMessage(r.ctx, m.ID, "page")
	if err != nil || c.Changed() {
		t.Fatalf("second unsubscribe = %+v, %v", c, err)
	}
	if s := r.suppressions(); len(s) != 1 || s[0].Source != "one-click" {
		t.Errorf("second unsubscribe changed the suppressions: %+v", s)
	}
	if target, _ := r.store.UnsubscribeTarget(r.ctx, m.ID); !target.Suppressed {
		t.Error("target not shown as suppressed")
	}

	if _, err := r.store.UnsubscribeMessage(r.ctx, 999, "page"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown message: err = %v", err)
	}
	if _, err := r.store.UnsubscribeTarget(r.ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown target: err = %v", err)
	}
}

func TestUnsubscribeKeepsAConvertedLead(t *testing.T) {
	r := newInboundRig(t)
	l, m := r.lead("c@client.example", "client.example", LeadConverted)
	c, err := r.store.UnsubscribeMessage(r.ctx, m.ID, "page")
	if err != nil || !c.Suppressed || c.LeadMoved {
		t.Fatalf("unsubscribe = %+v, %v", c, err)
	}
	if got := r.status(l.ID); got != LeadConverted {
		t.Errorf("converted lead became %s", got)
	}
}

func TestApplyMailEvent(t *testing.T) {
	r := newInboundRig(t)
	bounced, _ := r.lead("b@bounce.example", "bounce.example", LeadContacted)
	complained, _ := r.lead("c@complain.example", "complain.example", LeadContacted)
	responded, _ := r.lead("r@reply.example", "reply.example", LeadResponded)

	for _, c := range []struct {
		addr, reason string
		lead         int64
		status       string
	}{
		{"B@Bounce.example", SuppressBounced, bounced.ID, LeadBounced},
		{"c@complain.example", SuppressComplaint, complained.ID, LeadUnsubscribed},
		{"r@reply.example", SuppressBounced, responded.ID, LeadResponded}, // a lead that answered keeps its status
		{"stranger@else.example", SuppressBounced, 0, ""},
	} {
		ch, err := r.store.ApplyMailEvent(r.ctx, c.addr, c.reason, "sendgrid:test")
		if err != nil || !ch.Suppressed || ch.LeadID != c.lead {
			t.Fatalf("%s: %+v, %v", c.addr, ch, err)
		}
		if c.lead != 0 {
			if got := r.status(c.lead); got != c.status {
				t.Errorf("%s: lead status = %s, want %s", c.addr, got, c.status)
			}
		}
		again, err := r.store.ApplyMailEvent(r.ctx, c.addr, c.reason, "sendgrid:test")
		if err != nil || again.Changed() {
			t.Errorf("%s replayed: %+v, %v", c.addr, again, err)
		}
	}
	s := r.suppressions()
	if len(s) != 4 || s[0].Value != "b@bounce.example" || s[0].Reason != SuppressBounced || s[1].Reason != SuppressComplaint {
		t.Errorf("suppressions = %+v", s)
	}
	if ok, _ := r.store.IsSuppressed(r.ctx, "b@bounce.example"); !ok {
		t.Error("bounced address not suppressed")
	}
	if _, err := r.store.ApplyMailEvent(r.ctx, " ", SuppressBounced, "x"); err == nil {
		t.Error("an empty address was accepted")
	}
}
