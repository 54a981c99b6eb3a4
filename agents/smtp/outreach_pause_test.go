package smtp

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
)

// The outreach pause as BizDev meets it over a real SMTP server: the
// server's temporary refusals are the consecutive errors.

// tryLater is the SMTP server's temporary refusal.
var tryLater = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

func TestOutreachPausesAfterConsecutiveErrorsUntilResumed(t *testing.T) {
	r := agentstest.NewRig(t)
	var failing atomic.Bool
	failing.Store(true)
	sink, _ := startSMTPSink(t, sinkOptions{RcptErr: func(string, int) error {
		if failing.Load() {
			return tryLater
		}
		return nil
	}})
	for i := range 5 {
		r.AddLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	opts := agentstest.BizDevOptions(&agentstest.Sleeps{})
	opts.PauseAfterErrors = 3
	mailer := sink.mailer(t, Options{Now: r.Clock.Now})

	// The third consecutive error pauses outreach: the rest of the batch
	// stays queued.
	agentstest.WantCounts(t, r.Run(r.BizDev(mailer, opts)), agents.Counts{"queued": 5, "failed": 3, "sent": 0, "paused": 1})
	p, err := r.Store.OutreachPause(r.Ctx)
	if err != nil || !p.Paused || p.PausedAfter != 3 || p.Errors != 3 || !p.PausedAt.Equal(r.Clock.Now()) {
		t.Fatalf("OutreachPause = %+v, %v; want paused after 3 errors at %s", p, err, r.Clock.Now())
	}
	if n := r.Count("SELECT COUNT(*) FROM messages WHERE status = 'queued'"); n != 2 {
		t.Fatalf("queued messages = %d, want 2", n)
	}

	// While paused nothing new is queued and nothing is sent, across a
	// restart too; the cycle says why, and announces no data change.
	r.AddLead("", "late@co9.example", "Co 9", "")
	events := r.Events.Count(agents.EventDataChanged)
	failing.Store(false)
	r.Clock.Advance(2 * time.Hour)
	agentstest.WantCounts(t, r.Run(r.BizDev(mailer, opts)), agents.Counts{"queued": 0, "failed": 0, "sent": 0, "paused": 1})
	r.Store = r.Open()
	got := r.Run(r.BizDev(mailer, opts))
	agentstest.WantCounts(t, got, agents.Counts{"queued": 0, "sent": 0, "paused": 1})
	if len(sink.messages()) != 0 || sink.rcptCount() != 3 {
		t.Fatalf("while paused the server saw %d RCPT and accepted %d messages", sink.rcptCount(), len(sink.messages()))
	}
	if n := r.Events.Count(agents.EventDataChanged); n != events {
		t.Errorf("paused cycles published %d data changes", n-events)
	}

	was, err := r.Store.ResumeOutreach(r.Ctx)
	if err != nil || !was.Paused || was.PausedAfter != 3 {
		t.Fatalf("ResumeOutreach = %+v, %v", was, err)
	}
	got = r.Run(r.BizDev(mailer, opts))
	agentstest.WantCounts(t, got, agents.Counts{"queued": 1, "sent": 6, "failed": 0})
	if _, ok := got["paused"]; ok {
		t.Errorf("a running cycle reports paused: %v", got)
	}
	if p, _ := r.Store.OutreachPause(r.Ctx); p.Paused || p.Errors != 0 {
		t.Fatalf("after resuming and sending: %+v", p)
	}
	if got := sink.byRecipient(); len(got) != 6 {
		t.Fatalf("received %v, want 6 recipients once each", got)
	}
	if was, err := r.Store.ResumeOutreach(r.Ctx); err != nil || was.Paused {
		t.Fatalf("a second resume found %+v, %v", was, err)
	}
}

func TestOutreachErrorCountResetsOnSuccess(t *testing.T) {
	r := agentstest.NewRig(t)
	sink, _ := startSMTPSink(t, sinkOptions{RcptErr: func(rcpt string, _ int) error {
		if strings.HasPrefix(rcpt, "bad") {
			return tryLater
		}
		return nil
	}})
	for _, local := range []string{"bad1", "bad2", "good", "bad3", "bad4"} {
		r.AddLead("", local+"@"+local+".example", local, "")
	}
	opts := agentstest.BizDevOptions(&agentstest.Sleeps{})
	opts.PauseAfterErrors = 3
	agentstest.WantCounts(t, r.Run(r.BizDev(sink.mailer(t, Options{}), opts)), agents.Counts{"failed": 4, "sent": 1})
	if p, _ := r.Store.OutreachPause(r.Ctx); p.Paused || p.Errors != 2 {
		t.Fatalf("OutreachPause = %+v, want running with 2 consecutive errors", p)
	}

	// PauseAfterErrors 0 never pauses.
	opts.PauseAfterErrors = 0
	agentstest.WantCounts(t, r.Run(r.BizDev(sink.mailer(t, Options{}), opts)), agents.Counts{"failed": 4, "sent": 0})
	if p, _ := r.Store.OutreachPause(r.Ctx); p.Paused || p.Errors != 6 {
		t.Fatalf("OutreachPause = %+v, want running with 6 consecutive errors", p)
	}
}
