package db

import (
	"context"
	"errors"
	"testing"
)

func TestAddLeadStoresOnceAndNamesTheDuplicate(t *testing.T) {
	d, _ := outboxStore(t)
	ctx := context.Background()
	in := NewLead{Email: "Ann@Acme.example", DomainKey: "acme.example", Company: "Acme", Source: "test"}
	l, err := d.AddLead(ctx, in)
	if err != nil || l.ID == 0 || l.Email == nil || *l.Email != "ann@acme.example" || l.Status != LeadNew {
		t.Fatalf("AddLead = %+v, %v; want a new lead with the lower-cased e-mail", l, err)
	}
	again := NewLead{Email: "bob@acme.example", DomainKey: "acme.example", Company: "Acme 2", Source: "test"}
	l2, err := d.AddLead(ctx, again)
	var dup *DuplicateLeadError
	if l2 != nil || !errors.As(err, &dup) || !IsUniqueViolation(err) {
		t.Fatalf("AddLead of the same company domain = %+v, %v; want a *DuplicateLeadError", l2, err)
	}
	var n int
	if err := d.bun.NewRaw("SELECT COUNT(*) FROM leads").Scan(ctx, &n); err != nil || n != 1 {
		t.Fatalf("leads = %d, %v; want 1", n, err)
	}
}
