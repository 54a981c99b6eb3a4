package agents

import "testing"

// Outreach messages and client e-mails get Message-IDs of their own kinds;
// only an outreach one names an outreach message when a reply quotes it.
func TestOutboxMessageIDKinds(t *testing.T) {
	for _, c := range []struct {
		id   int64
		want string
		ref  int64
	}{
		{7, "hossagent.outbox.7@hoss.example", 7},
		{-7, "hossagent.client.7@hoss.example", 0}, // client outbox message 7
	} {
		got := OutboxMessageID(c.id, "Billing@Hoss.Example")
		if got != c.want {
			t.Errorf("OutboxMessageID(%d) = %q, want %q", c.id, got, c.want)
		}
		if ref := MessageFromReference("<" + got + ">"); ref != c.ref {
			t.Errorf("MessageFromReference(%q) = %d, want %d", got, ref, c.ref)
		}
	}
}
