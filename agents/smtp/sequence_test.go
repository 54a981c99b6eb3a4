package smtp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

// A sequence over real SMTP at injected times: each step reaches the
// server once, at its business day (3 after the first e-mail, 5 after the
// second), threaded under the steps before it by their Message-IDs with a
// "Re:" subject; a lead who answers after the second step gets no third.
func TestSequenceStepsThreadedOnceAndNoneAfterAReply(t *testing.T) {
	r := agentstest.NewRig(t) // the clock starts on Monday 2 June 2025, 09:00 UTC
	sink := agentstest.StartMailSink(t, 0)
	mailer, err := New(Options{Host: sink.Host, Port: sink.Port, TLS: NoTLS, From: "outreach@hoss.example", FromName: "Hoss Research", Now: r.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	quiet := r.AddLead("Pat Quiet", "pat@quiet.example", "Quiet Co", "B2B SaaS")
	answers := r.AddLead("Sam Answer", "sam@answer.example", "Answer Co", "B2B SaaS")
	opts := agentstest.BizDevOptions(&agentstest.Sleeps{})
	opts.From = "outreach@hoss.example"
	start := r.Clock.Now()
	type arrival struct {
		to   string
		day  int
		mail agentstest.ReceivedMail
	}
	var got []arrival
	replied := false
	for hour := 0; hour <= 21*24; hour++ {
		before := len(sink.Mails())
		r.Run(r.BizDev(mailer, opts))
		for _, m := range sink.Mails()[before:] {
			got = append(got, arrival{m.To[0], int(r.Clock.Now().Sub(start) / (24 * time.Hour)), m})
		}
		// Sam answers the moment the second step arrives.
		toSam := 0
		for _, a := range got {
			if a.to == answers.EmailAddr() {
				toSam++
			}
		}
		if !replied && toSam == 2 {
			replied = true
			if _, err := r.Store.ApplyReply(r.Ctx, db.SortedReply{LeadID: answers.ID, FromAddr: answers.EmailAddr(), Subject: "Re: hello",
				Body: "Sounds good, let's talk next week", InboundID: "reply-1@answer.example", Class: db.ReplyInterested, Reason: "test", By: "rules"}); err != nil {
				t.Fatal(err)
			}
		}
		r.Clock.Advance(time.Hour)
	}
	var days []string
	for _, a := range got {
		days = append(days, fmt.Sprintf("%s@%d", strings.SplitN(a.to, "@", 2)[0], a.day))
	}
	// Monday day 0; +3 business days is Thursday (3); +5 more is the next
	// Thursday (10).
	t.Logf("arrivals %s", strings.Join(days, " "))
	if want := "pat@0 sam@0 pat@3 sam@3 pat@10"; strings.Join(days, " ") != want {
		t.Fatalf("arrivals %s, want %s", strings.Join(days, " "), want)
	}

	var pat []agentstest.ReceivedMail
	for _, a := range got {
		if a.to == quiet.EmailAddr() {
			pat = append(pat, a.mail)
		}
	}
	ids := make([]string, len(pat))
	for i, m := range pat {
		ids[i] = m.Header.Get("Message-Id")
		if ids[i] == "" {
			t.Fatalf("step %d has no Message-ID", i+1)
		}
	}
	if pat[0].Header.Get("In-Reply-To") != "" || pat[0].Header.Get("References") != "" {
		t.Errorf("the first e-mail threads under something: %v", pat[0].Header)
	}
	for i := 1; i < len(pat); i++ {
		if got := pat[i].Header.Get("In-Reply-To"); got != ids[i-1] {
			t.Errorf("step %d In-Reply-To = %q, want %q", i+1, got, ids[i-1])
		}
		if got, want := pat[i].Header.Get("References"), strings.Join(ids[:i], " "); got != want {
			t.Errorf("step %d References = %q, want %q", i+1, got, want)
		}
		if want := "Re: " + pat[0].Subject; pat[i].Subject != want {
			t.Errorf("step %d subject = %q, want %q", i+1, pat[i].Subject, want)
		}
		if !strings.Contains(pat[i].Text, "/unsubscribe/") {
			t.Errorf("step %d has no unsubscribe link", i+1)
		}
	}
	if id := agents.MessageFromReference(ids[0]); id == 0 {
		t.Errorf("the first Message-ID %q names no outbox message", ids[0])
	}
	l := r.Lead(quiet.ID)
	if l.SequenceStep != 3 || l.NextStepAt != nil || l.Status != db.LeadContacted {
		t.Errorf("quiet lead after the sequence: step %d next %v status %s", l.SequenceStep, l.NextStepAt, l.Status)
	}
	if l := r.Lead(answers.ID); l.Status != db.LeadResponded || l.NextStepAt != nil || l.SequenceStop != "replied: interested" {
		t.Errorf("answering lead: %+v", l)
	}
}
