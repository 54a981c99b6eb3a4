package db

import (
	"context"
	"testing"
)

func TestRecordAudit(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	err := d.RecordAudit(ctx, AuditEntry{Actor: "ops@example.com", Action: "login", RemoteAddr: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	entries, page, err := d.ListAudit(ctx, ListQuery{})
	if err != nil || page.Total != 1 {
		t.Fatalf("ListAudit = %v, %+v, %v", entries, page, err)
	}
	if e := entries[0]; e.Actor != "ops@example.com" || e.Action != "login" || e.RemoteAddr != "192.0.2.1" || !e.CreatedAt.Equal(fixedNow) {
		t.Errorf("entry = %+v", e)
	}
}
