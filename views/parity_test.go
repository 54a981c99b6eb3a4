package views_test

import (
	"slices"
	"testing"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// The views keep their own copies of the store's statuses, so that they
// link neither bun nor SQLite (money is one shared type, db/money). These
// tests keep the copies equal to the originals. (A test may import db: test files do not
// count in `go list -deps ./views`.)

func TestStatusesMatchTheStore(t *testing.T) {
	pairs := map[string][2]string{
		"LeadNew": {views.LeadNew, db.LeadNew}, "LeadContacted": {views.LeadContacted, db.LeadContacted},
		"LeadResponded": {views.LeadResponded, db.LeadResponded}, "LeadConverted": {views.LeadConverted, db.LeadConverted},
		"LeadBounced": {views.LeadBounced, db.LeadBounced}, "LeadUnsubscribed": {views.LeadUnsubscribed, db.LeadUnsubscribed},
		"LeadFailed": {views.LeadFailed, db.LeadFailed}, "LeadDead": {views.LeadDead, db.LeadDead},
		"TaskPending": {views.TaskPending, db.TaskPending}, "TaskRunning": {views.TaskRunning, db.TaskRunning},
		"TaskDone": {views.TaskDone, db.TaskDone}, "TaskFailed": {views.TaskFailed, db.TaskFailed},
		"InvoiceDraft": {views.InvoiceDraft, db.InvoiceDraft}, "InvoiceOpen": {views.InvoiceOpen, db.InvoiceOpen},
		"InvoicePaid": {views.InvoicePaid, db.InvoicePaid}, "InvoiceVoid": {views.InvoiceVoid, db.InvoiceVoid},
		"InvoiceRefunded": {views.InvoiceRefunded, db.InvoiceRefunded},
		"CustomerActive":  {views.CustomerActive, db.CustomerActive}, "CustomerPaused": {views.CustomerPaused, db.CustomerPaused},
		"CustomerClosed": {views.CustomerClosed, db.CustomerClosed},
		"MessageQueued":  {views.MessageQueued, db.MessageQueued}, "MessageSending": {views.MessageSending, db.MessageSending},
		"MessageSent": {views.MessageSent, db.MessageSent}, "MessageDryRun": {views.MessageDryRun, db.MessageDryRun},
		"MessageFailed": {views.MessageFailed, db.MessageFailed}, "MessageSuppressed": {views.MessageSuppressed, db.MessageSuppressed},
		"RunOK": {views.RunOK, db.RunOK}, "RunInterrupted": {views.RunInterrupted, db.RunInterrupted},
		"AuditPortalRevoked": {views.AuditPortalRevoked, db.AuditPortalRevoked},
	}
	for name, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("views.%s = %q, db.%s = %q", name, p[0], name, p[1])
		}
	}
	if !slices.Equal(views.LeadStatuses, db.LeadStatuses) {
		t.Errorf("views.LeadStatuses = %q, db's = %q", views.LeadStatuses, db.LeadStatuses)
	}
	if !slices.Equal(views.MessageStatuses, db.MessageStatuses) {
		t.Errorf("views.MessageStatuses = %q, db's = %q", views.MessageStatuses, db.MessageStatuses)
	}
	if views.SearchCountCap != db.SearchCountCap {
		t.Errorf("views.SearchCountCap = %d, db's = %d", views.SearchCountCap, db.SearchCountCap)
	}
}

// The classes an operator picks from are the store's, in the agents'
// order.
func TestReplyClassesMatchTheAgents(t *testing.T) {
	want := []string{db.ReplyInterested, db.ReplyNotNow, db.ReplyNotInterested, db.ReplyOutOfOffice, db.ReplyUnsubscribe, db.ReplyBounce, db.ReplyOther}
	if !slices.Equal(views.ReplyClasses, want) || !slices.Equal(agents.ReplyClasses, want) {
		t.Errorf("views %v, agents %v, want %v", views.ReplyClasses, agents.ReplyClasses, want)
	}
}
