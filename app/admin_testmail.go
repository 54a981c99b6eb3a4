package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/agents"
)

// The control room's test e-mail: one message through the configured
// mailer, to prove the transport works end to end. It goes to the signed-in
// admin's own address and nowhere else — the form carries no address, and
// none would be read — so the action can never relay mail to a stranger.

const (
	// testMailEvery is how often one admin may send a test e-mail.
	testMailEvery = time.Minute
	// testMailTimeout bounds the provider call.
	testMailTimeout = 30 * time.Second
)

// sendTestMail sends the test e-mail and says in place what the provider
// answered: its message id, or its error.
func (s *Server) sendTestMail(w http.ResponseWriter, r *http.Request) {
	if !s.readControlForm(w, r) {
		return
	}
	u := userFrom(r.Context())
	if u == nil || u.Email == "" {
		s.answerAction(w, r, actionRefused(http.StatusForbidden, "Your account has no e-mail address to send a test to."))
		return
	}
	out := s.testMailResult(r, u.ID, u.Email)
	s.audit(r, "outreach.test_mail", u.Email, out.text)
	s.answerAction(w, r, out)
}

// testMailResult sends, unless no mailer is configured or the admin sent
// one less than a minute ago.
func (s *Server) testMailResult(r *http.Request, userID int64, to string) actionResult {
	mailer := s.mail.mailer
	if mailer == nil {
		return actionRefused(http.StatusServiceUnavailable, "No mailer is configured in this process: no test e-mail was sent.")
	}
	if !s.mail.testMails.allow(strconv.FormatInt(userID, 10)) {
		return actionRefused(http.StatusTooManyRequests, "One test e-mail a minute: try again shortly.")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), testMailTimeout)
	defer cancel()
	id, err := mailer.Send(ctx, s.testMail(to))
	if err != nil {
		s.log.Warn("test e-mail not sent", "mode", mailer.Mode(), "err", err)
		return actionRefused(http.StatusBadGateway, fmt.Sprintf("%s: the test e-mail to %s was not sent: %s", mailer.Mode(), to, clipEcho(err.Error(), 300)))
	}
	if mailer.Mode() == agents.MailModeDryRun {
		return actionResult{http.StatusOK, "warn", fmt.Sprintf("DRY_RUN: the test e-mail to %s was accepted and not sent (%s). Set EMAIL_MODE to SMTP or SENDGRID to send for real.", to, id)}
	}
	return actionDone(fmt.Sprintf("%s accepted the test e-mail to %s (provider id %s).", mailer.Mode(), to, orNone(id)))
}

// testMail is the message: who asked, when, through which transport, and
// the postal footer every outgoing mail carries.
func (s *Server) testMail(to string) agents.OutgoingMail {
	e := s.cfg.Email
	var b strings.Builder
	fmt.Fprintf(&b, "This is a test e-mail from HossAgent, sent through EMAIL_MODE=%s at %s at the request of %s.\n\n",
		s.mail.mailer.Mode(), s.now().UTC().Format("2006-01-02 15:04:05 MST"), to)
	b.WriteString("If you can read it, outreach mail leaves this machine and arrives.\n")
	if a := strings.TrimSpace(e.PostalAddress); a != "" {
		b.WriteString("\n--\n" + a + "\n")
	}
	return agents.OutgoingMail{To: to, From: e.From, FromName: e.SenderName, Subject: "HossAgent test e-mail", Body: b.String()}
}

func orNone(s string) string {
	if s == "" {
		return "none given"
	}
	return s
}
