package agents

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hossagent/hossagent/db"
)

func TestMailEventClientFlag(t *testing.T) {
	for _, c := range []struct {
		ev   MailEvent
		want string
	}{
		{MailEvent{Kind: "bounce", Suppress: db.SuppressBounced, Reason: "550 5.1.1\r\n  no such\tuser"}, "hard bounce: 550 5.1.1 no such user"},
		{MailEvent{Kind: "bounce", Suppress: db.SuppressBounced}, "hard bounce: bounce"},
		{MailEvent{Suppress: db.SuppressBounced}, "hard bounce"},
		{MailEvent{Kind: "spamreport", Suppress: db.SuppressComplaint, Reason: "ignored"}, "complaint"},
		{MailEvent{Kind: "unsubscribe", Suppress: db.SuppressUnsubscribed}, ""},
		{MailEvent{Kind: "bounce", Reason: "452 mailbox full"}, ""},
	} {
		if got := c.ev.ClientFlag(); got != c.want {
			t.Errorf("%+v: flag %q, want %q", c.ev, got, c.want)
		}
	}
	long := MailEvent{Kind: "bounce", Suppress: db.SuppressBounced, Reason: strings.Repeat("é", 500)}.ClientFlag()
	if n := utf8.RuneCountInString(strings.TrimPrefix(long, "hard bounce: ")); n != maxFlagReason || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Errorf("a long reason kept %d runes: %q", n, long)
	}
}
