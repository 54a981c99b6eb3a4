package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// The control room's health panels: e-mail, lead source and Stripe. They are
// live regions, re-read from the database on every engine event, so every
// figure comes from an aggregate query and none of them writes.

// healthListLen is how many failed messages and flagged invoices the panels
// list.
const healthListLen = 5

// LeadSourceStatus is what the search API lead provider reports about
// itself for the lead source health panel.
type LeadSourceStatus struct {
	Query       string
	LastError   string
	LastErrorAt time.Time // zero when it never failed
	LastSuccess time.Time // zero when it never answered usefully
}

// SearchAPIReporter is the part of *searchapi.Leads the health panel
// reads.
type SearchAPIReporter interface {
	Query() string
	LastError() (string, time.Time)
	LastSuccess() time.Time
}

// SearchAPIHealth turns the search API provider into Deps.LeadSourceHealth.
// Call it only when LEAD_SOURCE=search_api: a nil *searchapi.Leads in
// the interface is not a nil interface and would panic when read.
func SearchAPIHealth(p SearchAPIReporter) func() LeadSourceStatus {
	if p == nil {
		return nil
	}
	return func() LeadSourceStatus {
		msg, at := p.LastError()
		return LeadSourceStatus{Query: p.Query(), LastError: msg, LastErrorAt: at, LastSuccess: p.LastSuccess()}
	}
}

// emailCapDefaults are the configured caps, in effect until an admin stores
// others (the mailer seeds the table with them on its first cycle).
func emailCapDefaults(c config.Email) db.EmailCaps {
	return db.EmailCaps{PerCycle: c.MaxPerCycle, PerHour: c.MaxPerHour, PerDay: c.MaxPerDay}
}

// healthData fills the three health panels of p.
func (s *Server) healthData(ctx context.Context, p *views.AdminPage) error {
	now := s.now().UTC()
	email := views.EmailPanel{Mode: s.cfg.Email.Mode}
	caps, err := s.store.EmailCapsInEffect(ctx, emailCapDefaults(s.cfg.Email))
	if err != nil {
		return err
	}
	email.Caps = emailCapsView(caps)
	health, err := s.store.EmailHealth(ctx, now, healthListLen)
	if err != nil {
		return err
	}
	email.EmailHealth = emailHealthView(health)
	if err = s.outreachPanelData(ctx, &email); err != nil {
		return err
	}
	p.EmailHealth = email

	leads := views.LeadSourcePanel{Source: s.cfg.Leads.Source, Niche: s.cfg.Leads.Niche, Geography: s.cfg.Leads.Geography}
	if leads.CreatedLastDay, err = s.store.LeadsCreatedSince(ctx, now.Add(-24*time.Hour)); err != nil {
		return err
	}
	if s.leadSourceHealth != nil {
		st := s.leadSourceHealth()
		leads.SearchAPI = &views.LeadSourceStatus{Query: st.Query, LastError: st.LastError, LastErrorAt: st.LastErrorAt, LastSuccess: st.LastSuccess}
	}
	p.LeadHealth = leads

	stripe := views.StripePanel{Enabled: s.cfg.Stripe.Enabled, WebhookSecretSet: s.cfg.Stripe.WebhookSecret != ""}
	stripeHealth, err := s.store.StripeHealth(ctx, healthListLen)
	if err != nil {
		return err
	}
	stripe.StripeHealth = stripeHealthView(stripeHealth, p.Now)
	p.StripeHealth = stripe
	return nil
}

// requeueDryRun puts the leads contacted only in DRY_RUN back to new, so
// that BizDev writes to them for real.
func (s *Server) requeueDryRun(w http.ResponseWriter, r *http.Request) {
	if !s.readControlForm(w, r) {
		return
	}
	n, err := agents.RequeueDryRun(context.WithoutCancel(r.Context()), s.store)
	if err != nil {
		s.log.Error("re-queue of dry-run leads failed", "err", err)
		s.answerAction(w, r, actionRefused(http.StatusInternalServerError, "The leads could not be re-queued; the error is in the server log."))
		return
	}
	s.audit(r, "outreach.requeue_dry_run", "leads", fmt.Sprintf("%d leads", n))
	s.refreshLive()
	out := actionDone(fmt.Sprintf("Re-queued %d dry-run %s; BizDev writes to them on its next cycle.", n, pluralOf(n, "lead", "leads")))
	switch {
	case n == 0:
		out = actionDone("No lead was contacted in DRY_RUN: nothing to re-queue.")
	case s.cfg.Email.Mode == agents.MailModeDryRun:
		out.kind = "warn"
		out.text += " Outbound is still DRY_RUN, so they will be dry-run again."
	}
	s.answerAction(w, r, out)
}

// saveEmailCaps stores the three e-mail caps, each a whole number from 0
// (pause) to maxEmailCap. Nothing is stored unless all three are valid.
func (s *Server) saveEmailCaps(w http.ResponseWriter, r *http.Request) {
	if !s.readControlForm(w, r) {
		return
	}
	var caps db.EmailCaps
	var problems []string
	for _, f := range []struct {
		name, label string
		dst         *int
	}{
		{"per_cycle", "Per cycle", &caps.PerCycle},
		{"per_hour", "Per hour", &caps.PerHour},
		{"per_day", "Per 24 h", &caps.PerDay},
	} {
		v := strings.TrimSpace(r.PostForm.Get(f.name))
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxEmailCap {
			problems = append(problems, fmt.Sprintf("%s must be a whole number from 0 to %d (got %q)", f.label, maxEmailCap, clipEcho(v, 12)))
			continue
		}
		*f.dst = n
	}
	if len(problems) > 0 {
		s.answerAction(w, r, actionRefused(http.StatusUnprocessableEntity, strings.Join(problems, "; ")+". Nothing was saved."))
		return
	}
	if err := s.store.SetEmailCaps(context.WithoutCancel(r.Context()), caps); err != nil {
		s.log.Error("e-mail caps not saved", "err", err)
		s.answerAction(w, r, actionRefused(http.StatusInternalServerError, "The caps could not be saved; the error is in the server log."))
		return
	}
	text := fmt.Sprintf("per cycle %d, per hour %d, per 24 h %d", caps.PerCycle, caps.PerHour, caps.PerDay)
	s.audit(r, "outreach.caps", "e-mail caps", text)
	s.refreshLive()
	out := actionDone("Caps saved: " + text + ".")
	if caps.PerCycle == 0 || caps.PerHour == 0 || caps.PerDay == 0 {
		out.kind, out.text = "warn", out.text+" A cap of 0 pauses outreach."
	}
	s.answerAction(w, r, out)
}

func pluralOf(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
