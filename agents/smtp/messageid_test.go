package smtp

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents"
)

// A mail from no outbox message (the test e-mail) gets a Message-ID of its
// own, drawn from the injected random source; an outbox message keeps the
// one derived from its id on every retry. A source that fails sends nothing.
func TestSMTPMessageIDs(t *testing.T) {
	sink, _ := startSMTPSink(t, sinkOptions{})
	random := bytes.NewReader(append(bytes.Repeat([]byte{0xab}, 16), bytes.Repeat([]byte{0x01}, 16)...))
	m := sink.mailer(t, Options{Random: random})
	ctx := context.Background()
	var ids []string
	for _, out := range []agents.OutgoingMail{testMail("a@x.example", 0), testMail("a@x.example", 0), testMail("b@x.example", 7), testMail("b@x.example", 7)} {
		id, err := m.Send(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	want := []string{
		"hossagent." + strings.Repeat("ab", 16) + "@hossagent.example",
		"hossagent." + strings.Repeat("01", 16) + "@hossagent.example",
		"hossagent.outbox.7@hossagent.example",
		"hossagent.outbox.7@hossagent.example",
	}
	for i, msg := range sink.messages() {
		if got := strings.Trim(parseSinkMail(t, msg).Header.Get("Message-Id"), "<>"); got != want[i] || ids[i] != want[i] {
			t.Errorf("message %d: Message-ID %q, Send returned %q; want %q", i, got, ids[i], want[i])
		}
	}

	if _, err := m.Send(ctx, testMail("c@x.example", 0)); err == nil {
		t.Error("a drained random source still sent a mail")
	}
	if n := len(sink.messages()); n != 4 {
		t.Errorf("%d messages received, want 4", n)
	}
}
