package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// The sequence editor (/admin/sequences): each template pack's first
// e-mail (its variants, read-only) and its follow-ups, which the owner
// sets per pack. A save is validated (a clear message in the pack's panel,
// 422, and the rows as typed), audited, and reloads the process's
// follow-ups (Deps.Sequences), which BizDev reads. With htmx a save answers
// the pack's panel in place; a plain form POST gets the whole page back.

// maxSequenceForm bounds a pack's form: MaxFollowUps bodies of
// db.MaxStepBodyChars characters, at 6 bytes a character (accented text,
// percent-encoded), and room for the delays.
const maxSequenceForm = agents.MaxFollowUps*db.MaxStepBodyChars*6 + 4<<10

// maxEchoRows bounds the rows a refused form shows again.
const maxEchoRows = 2 * agents.MaxFollowUps

// sequences shows the editor.
func (s *Server) sequences(w http.ResponseWriter, r *http.Request) {
	p, err := s.sequencesPage(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.Sequences(p))
}

// sequencesPage reads the stored follow-ups into the editor.
func (s *Server) sequencesPage(r *http.Request) (views.SequencesPage, error) {
	steps, err := s.store.ListSequenceSteps(r.Context())
	if err != nil {
		return views.SequencesPage{}, err
	}
	p := views.SequencesPage{Meta: s.metaFor(r, "Outreach sequences"), Placeholders: agents.FollowUpPlaceholders(),
		MaxFollowUps: agents.MaxFollowUps, MinDelay: db.MinStepDelayDays, MaxDelay: db.MaxStepDelayDays, MaxBodyChars: db.MaxStepBodyChars}
	for _, pack := range agents.PackNames() {
		p.Packs = append(p.Packs, s.sequencePack(pack, steps))
	}
	return p, nil
}

// sequencePack is pack's panel with its stored follow-ups (steps holds any
// packs').
func (s *Server) sequencePack(pack string, steps []db.SequenceStep) views.SequencePack {
	p := views.SequencePack{Name: pack, Niches: agents.PackNiches(pack),
		MaxFollowUps: agents.MaxFollowUps, MinDelay: db.MinStepDelayDays, MaxDelay: db.MaxStepDelayDays, MaxBodyChars: db.MaxStepBodyChars}
	example := agents.OutreachData{FirstName: "Ana", Company: "Example Co", SenderName: s.cfg.Email.SenderName,
		Offer: s.cfg.Email.Offer, Signature: s.cfg.Email.Signature}
	if niches := agents.PackNiches(pack); len(niches) > 0 {
		example.Niche = niches[0]
	}
	for v := range agents.PackVariants(pack) {
		if e, err := agents.RenderOutreach(pack, v, example); err == nil {
			p.Variants = append(p.Variants, views.SequenceVariant{Template: e.Template, Subject: e.Subject, Body: e.Body})
		}
	}
	for _, st := range steps {
		if st.Pack == pack {
			p.FollowUps = append(p.FollowUps, views.FollowUpRow{Delay: strconv.Itoa(st.DelayDays), Body: st.Body})
		}
	}
	return p
}

// sequenceForm is a pack's form as read: the follow-ups, and the rows to
// show again.
type sequenceForm struct {
	followUps []agents.FollowUp
	rows      []views.FollowUpRow
}

// readSequenceForm reads the delay and body fields, row by row; empty rows
// are dropped and the rest numbered 2, 3, …. problems lists what is wrong
// (none: the follow-ups are valid).
func readSequenceForm(r *http.Request, pack string) (sequenceForm, []string) {
	delays, bodies := r.PostForm["delay"], r.PostForm["body"]
	var f sequenceForm
	var problems []string
	n := max(len(delays), len(bodies))
	at := func(vs []string, i int) string {
		if i < len(vs) {
			return vs[i]
		}
		return ""
	}
	for i := range n {
		delay := strings.TrimSpace(at(delays, i))
		body := strings.TrimSpace(strings.ReplaceAll(at(bodies, i), "\r\n", "\n"))
		if delay == "" && body == "" {
			continue
		}
		step := db.MinSequenceStep + len(f.followUps)
		if len(f.rows) < maxEchoRows {
			f.rows = append(f.rows, views.FollowUpRow{Delay: clipEcho(delay, 10), Body: clipEcho(body, db.MaxStepBodyChars+1)})
		}
		days, err := strconv.Atoi(delay)
		switch {
		case delay == "":
			problems = append(problems, fmt.Sprintf("step %d has no delay", step))
		case err != nil || days < db.MinStepDelayDays || days > db.MaxStepDelayDays:
			problems = append(problems, fmt.Sprintf("step %d's delay %q is not a whole number of business days from %d to %d",
				step, clipEcho(delay, 10), db.MinStepDelayDays, db.MaxStepDelayDays))
		}
		if err := agents.CheckFollowUpBody(body); err != nil {
			problems = append(problems, fmt.Sprintf("step %d: %s", step, err))
		}
		f.followUps = append(f.followUps, agents.FollowUp{Step: step, DelayDays: days, Body: body})
	}
	if len(f.followUps) > agents.MaxFollowUps {
		problems = append(problems, fmt.Sprintf("%d follow-ups were given; a pack takes at most %d", len(f.followUps), agents.MaxFollowUps))
	}
	if len(problems) == 0 {
		if err := agents.CheckFollowUps(pack, f.followUps); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return f, problems
}

// saveSequence sets a pack's follow-ups.
func (s *Server) saveSequence(w http.ResponseWriter, r *http.Request) {
	pack := chi.URLParam(r, "pack")
	if !slices.Contains(agents.PackNames(), pack) {
		s.notFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSequenceForm)
	if err := r.ParseForm(); err != nil {
		s.sequenceAnswer(w, r, pack, http.StatusRequestEntityTooLarge, "bad",
			"The form could not be read: it is too large or malformed. Nothing was changed.", nil)
		return
	}
	f, problems := readSequenceForm(r, pack)
	if len(problems) > 0 {
		s.sequenceAnswer(w, r, pack, http.StatusUnprocessableEntity, "bad",
			fmt.Sprintf("Follow-ups of %s not saved: %s.", pack, strings.Join(problems, "; ")), f.rows)
		return
	}
	before, err := s.store.ReplaceSequenceSteps(context.WithoutCancel(r.Context()), pack, agents.FollowUpSteps(pack, f.followUps))
	switch {
	case errors.Is(err, db.ErrBadSequence):
		s.sequenceAnswer(w, r, pack, http.StatusUnprocessableEntity, "bad", fmt.Sprintf("Follow-ups of %s not saved: %s.", pack, err), f.rows)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.audit(r, db.AuditSequenceEdited, "sequence "+pack, sequenceChanges(before, f.followUps))
	if s.followUps != nil {
		if err := s.followUps.Reload(context.WithoutCancel(r.Context())); err != nil {
			s.log.Error("sequences not reloaded after an edit", "err", err)
		}
	}
	s.tellPeers(agents.EventSequencesEdited)
	s.refreshLive()
	msg := fmt.Sprintf("Follow-ups of %s saved: %d, for the follow-ups sent from now on.", pack, len(f.followUps))
	if len(f.followUps) == 0 {
		msg = fmt.Sprintf("Follow-ups of %s removed: its leads get the first e-mail only.", pack)
	}
	s.sequenceAnswer(w, r, pack, http.StatusOK, "ok", msg, nil)
}

// sequenceAnswer answers a save: the pack's panel with the result for
// htmx, the whole page otherwise. rows, when not nil, are shown in the
// pack's form in place of the stored follow-ups.
func (s *Server) sequenceAnswer(w http.ResponseWriter, r *http.Request, pack string, status int, class, result string, rows []views.FollowUpRow) {
	p, err := s.sequencesPage(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i := range p.Packs {
		if p.Packs[i].Name != pack {
			continue
		}
		p.Packs[i].Result, p.Packs[i].ResultClass = result, class
		if rows != nil {
			p.Packs[i].FollowUps = rows
		}
		if isHXRequest(r) {
			s.render(w, r, status, views.SequencePackPanel(p.Packs[i]))
			return
		}
	}
	s.render(w, r, status, views.Sequences(p))
}

// sequenceChanges is the audit detail of an edit: the steps before and
// after, with their delays, and which bodies changed.
func sequenceChanges(before []db.SequenceStep, after []agents.FollowUp) string {
	was := make([]string, len(before))
	for i, st := range before {
		was[i] = fmt.Sprintf("%d (%dd)", st.Step, st.DelayDays)
	}
	is := make([]string, len(after))
	var changed []string
	for i, f := range after {
		is[i] = fmt.Sprintf("%d (%dd)", f.Step, f.DelayDays)
		if i >= len(before) || before[i].Body != f.Body {
			changed = append(changed, strconv.Itoa(f.Step))
		}
	}
	list := func(xs []string) string {
		if len(xs) == 0 {
			return "none"
		}
		return strings.Join(xs, ", ")
	}
	return fmt.Sprintf("steps %s → %s; bodies changed: %s", list(was), list(is), list(changed))
}
