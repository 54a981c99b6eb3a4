package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// The review queue (/admin/outreach/drafts): with OUTREACH_REVIEW on,
// BizDev drafts each outreach step and an admin approves it (it joins the
// outbox in the same transaction), edits it (a new revision) or rejects it
// (the lead's sequence ends). "Approve all shown" approves the drafts the
// page listed, each at the revision it showed, and nothing that arrived or
// changed since. Every decision is audited. With htmx an action answers
// the queue in place with its result; a plain form POST gets the whole
// page back.

const (
	// draftsShown bounds the drafts a page lists (and "Approve all shown"
	// approves).
	draftsShown = 50
	// maxDraftForm bounds an edit: a body of db.MaxDraftBodyChars at 6
	// bytes a character (accented text, percent-encoded), the subject, and
	// room for the rest.
	maxDraftForm = db.MaxDraftBodyChars*6 + db.MaxDraftSubjectChars*6 + 4<<10
	// maxDraftRef bounds one "id:revision" of the approve-all form.
	maxDraftRef = 32
)

// Audit actions of the review queue.
const (
	auditDraftApproved = "outreach draft approved"
	auditDraftEdited   = "outreach draft edited"
	auditDraftRejected = "outreach draft rejected"
	auditDraftRefused  = "outreach draft not approved"
)

// drafts shows the review queue.
func (s *Server) drafts(w http.ResponseWriter, r *http.Request) {
	p, err := s.draftsPage(r.Context(), s.metaFor(r, "Outreach drafts"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.OutreachDrafts(p))
}

// draftsPage reads the oldest waiting drafts.
func (s *Server) draftsPage(ctx context.Context, meta views.Meta) (views.DraftsPage, error) {
	p := views.DraftsPage{Meta: meta, Review: s.cfg.Email.Review, MaxSubjectChars: db.MaxDraftSubjectChars, MaxBodyChars: db.MaxDraftBodyChars}
	n, err := s.store.WaitingDraftCount(ctx)
	if err != nil {
		return p, err
	}
	drafts, err := s.store.WaitingDrafts(ctx, draftsShown)
	if err != nil {
		return p, err
	}
	p.Waiting = max(n, len(drafts))
	for _, d := range drafts {
		p.Drafts = append(p.Drafts, views.Draft{ID: d.ID, LeadID: d.LeadID, LeadName: d.LeadName, LeadCompany: d.LeadCompany, ToAddr: d.ToAddr,
			Step: d.Step, Template: d.Template, Subject: d.Subject, Body: d.Body, InReplyTo: d.InReplyTo, Revision: d.Revision, CreatedAt: d.CreatedAt})
	}
	return p, nil
}

// draftAnswer answers an action on the queue: the queue with the result
// for htmx, the whole page otherwise.
func (s *Server) draftAnswer(w http.ResponseWriter, r *http.Request, status int, class, result string) {
	p, err := s.draftsPage(r.Context(), s.metaFor(r, "Outreach drafts"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Result, p.ResultClass = result, class
	if isHXRequest(r) {
		s.render(w, r, status, views.DraftsPanel(p))
		return
	}
	s.render(w, r, status, views.OutreachDrafts(p))
}

// draftAction reads a per-draft action's id and revision; false means it
// answered.
func (s *Server) draftAction(w http.ResponseWriter, r *http.Request, limit int64) (int64, int, bool) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return 0, 0, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseForm(); err != nil {
		s.draftAnswer(w, r, http.StatusRequestEntityTooLarge, "bad", "The form could not be read: it is too large or malformed. Nothing was changed.")
		return 0, 0, false
	}
	rev, err := strconv.Atoi(r.PostForm.Get("revision"))
	if err != nil || rev < 1 {
		s.draftAnswer(w, r, http.StatusBadRequest, "bad", "The form does not say which revision of the draft was shown. Nothing was changed.")
		return 0, 0, false
	}
	return id, rev, true
}

// approveDraft approves one draft at the revision shown.
func (s *Server) approveDraft(w http.ResponseWriter, r *http.Request) {
	id, rev, ok := s.draftAction(w, r, maxActionForm)
	if !ok {
		return
	}
	out, err := s.approveOne(r, id, rev, "")
	switch {
	case errors.Is(err, db.ErrNotFound):
		s.draftAnswer(w, r, http.StatusNotFound, "bad", fmt.Sprintf("There is no draft %d.", id))
		return
	case err != nil:
		s.fail(w, r, err)
		return
	case !out.Done:
		s.draftAnswer(w, r, http.StatusConflict, "bad", sentence("Not approved: "+out.Refused))
		return
	}
	s.refreshLive()
	s.draftAnswer(w, r, http.StatusOK, "ok", fmt.Sprintf("Draft %d approved: it is in the outbox, and %s.", id, s.whenSent(r, "it")))
}

// whenSent says when BizDev sends what was just approved: on its next cycle
// within the caps, or after a Resume while outreach is paused.
func (s *Server) whenSent(r *http.Request, what string) string {
	p, err := s.store.OutreachPause(r.Context())
	if err == nil && p.Paused {
		return "BizDev sends " + what + " once outreach is resumed (paused: " + p.Why() + ")"
	}
	return "BizDev sends " + what + " on its next cycle within the caps"
}

// approveOne approves draft id at rev for the signed-in admin and audits
// the decision (how says how it was asked: "" or "all shown").
func (s *Server) approveOne(r *http.Request, id int64, rev int, how string) (db.DraftOutcome, error) {
	ctx := context.WithoutCancel(r.Context())
	tokens, err := s.unsubscribeTokens(ctx)
	if err != nil {
		return db.DraftOutcome{}, err
	}
	out, err := agents.ApproveDraft(ctx, s.store, tokens, s.outreachFooter(), id, rev, userFrom(r.Context()).Email)
	if err != nil {
		return out, err
	}
	detail := draftDetail(out.Draft)
	if how != "" {
		detail += " (" + how + ")"
	}
	if out.Done {
		s.audit(r, auditDraftApproved, leadTarget(out.Draft.LeadID), detail+fmt.Sprintf(", message %d", out.MessageID))
	} else {
		s.audit(r, auditDraftRefused, leadTarget(out.Draft.LeadID), detail+": "+out.Refused)
	}
	return out, nil
}

// outreachFooter is the footer BizDev's e-mails end with, from the same
// settings main gives BizDev (adapters.go).
func (s *Server) outreachFooter() agents.OutreachFooter {
	f := agents.OutreachFooter{SenderName: s.cfg.Email.SenderName, PostalAddress: s.cfg.Email.PostalAddress}
	if s.cfg.BaseURL != nil {
		f.BaseURL = s.cfg.BaseURL.String()
	}
	return f
}

// approveShown approves the drafts the page listed ("id:revision" each),
// one transaction each: a draft withdrawn or edited since is left as it is
// and named in the answer; no other draft is touched.
func (s *Server) approveShown(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxActionForm)
	if err := r.ParseForm(); err != nil {
		s.draftAnswer(w, r, http.StatusRequestEntityTooLarge, "bad", "The form could not be read: it is too large or malformed. Nothing was approved.")
		return
	}
	refs := r.PostForm["draft"]
	if len(refs) == 0 || len(refs) > draftsShown {
		s.draftAnswer(w, r, http.StatusBadRequest, "bad", fmt.Sprintf("The form must list from 1 to %d drafts shown. Nothing was approved.", draftsShown))
		return
	}
	type ref struct {
		id  int64
		rev int
	}
	var shown []ref
	seen := map[int64]bool{}
	for _, v := range refs {
		id, rev, ok := parseDraftRef(v)
		if !ok {
			s.draftAnswer(w, r, http.StatusBadRequest, "bad", fmt.Sprintf("%q names no draft and revision. Nothing was approved.", clipEcho(v, maxDraftRef)))
			return
		}
		if !seen[id] {
			seen[id] = true
			shown = append(shown, ref{id, rev})
		}
	}
	approved := 0
	var refused []string
	for _, d := range shown {
		out, err := s.approveOne(r, d.id, d.rev, "all shown")
		switch {
		case errors.Is(err, db.ErrNotFound):
			refused = append(refused, fmt.Sprintf("there is no draft %d", d.id))
		case err != nil:
			s.log.Error("draft not approved", "draft", d.id, "err", err)
			refused = append(refused, fmt.Sprintf("draft %d failed; the error is in the server log", d.id))
		case out.Done:
			approved++
		default:
			refused = append(refused, out.Refused)
		}
	}
	if approved > 0 {
		s.refreshLive()
	}
	msg := fmt.Sprintf("Approved %d of the %d %s shown; %s.", approved, len(shown), pluralOf(len(shown), "draft", "drafts"), s.whenSent(r, "them"))
	class := "ok"
	if len(refused) > 0 {
		msg += " Not approved: " + sentence(strings.Join(refused, "; "))
		class = "warn"
	}
	s.draftAnswer(w, r, http.StatusOK, class, msg)
}

// parseDraftRef reads "id:revision".
func parseDraftRef(v string) (int64, int, bool) {
	if len(v) > maxDraftRef {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(v, ":")
	if !ok {
		return 0, 0, false
	}
	id, err1 := strconv.ParseInt(a, 10, 64)
	rev, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || id < 1 || rev < 1 {
		return 0, 0, false
	}
	return id, rev, true
}

// editDraft replaces a draft's subject and body (a new revision).
func (s *Server) editDraft(w http.ResponseWriter, r *http.Request) {
	id, rev, ok := s.draftAction(w, r, maxDraftForm)
	if !ok {
		return
	}
	subject := strings.TrimSpace(r.PostForm.Get("subject"))
	body := strings.TrimSpace(strings.ReplaceAll(r.PostForm.Get("body"), "\r\n", "\n"))
	if err := db.CheckDraftText(subject, body); err != nil {
		s.draftAnswer(w, r, http.StatusUnprocessableEntity, "bad", sentence(fmt.Sprintf("Draft %d not saved: %s", id, strings.TrimPrefix(err.Error(), db.ErrBadDraft.Error()+": "))))
		return
	}
	out, err := s.store.EditDraft(context.WithoutCancel(r.Context()), id, rev, subject, body)
	switch {
	case errors.Is(err, db.ErrNotFound):
		s.draftAnswer(w, r, http.StatusNotFound, "bad", fmt.Sprintf("There is no draft %d.", id))
		return
	case err != nil:
		s.fail(w, r, err)
		return
	case !out.Done:
		s.draftAnswer(w, r, http.StatusConflict, "bad", sentence("Not saved: "+out.Refused))
		return
	}
	s.audit(r, auditDraftEdited, leadTarget(out.Draft.LeadID), draftDetail(out.Draft))
	s.draftAnswer(w, r, http.StatusOK, "ok", fmt.Sprintf("Draft %d saved as revision %d; it still waits for approval.", id, out.Draft.Revision))
}

// rejectDraft rejects a draft: it is not sent, and its lead's sequence ends.
func (s *Server) rejectDraft(w http.ResponseWriter, r *http.Request) {
	id, rev, ok := s.draftAction(w, r, maxActionForm)
	if !ok {
		return
	}
	out, err := s.store.RejectDraft(context.WithoutCancel(r.Context()), id, rev, userFrom(r.Context()).Email)
	switch {
	case errors.Is(err, db.ErrNotFound):
		s.draftAnswer(w, r, http.StatusNotFound, "bad", fmt.Sprintf("There is no draft %d.", id))
		return
	case err != nil:
		s.fail(w, r, err)
		return
	case !out.Done:
		s.draftAnswer(w, r, http.StatusConflict, "bad", sentence("Not rejected: "+out.Refused))
		return
	}
	s.audit(r, auditDraftRejected, leadTarget(out.Draft.LeadID), draftDetail(out.Draft))
	s.refreshLive()
	s.draftAnswer(w, r, http.StatusOK, "ok", fmt.Sprintf("Draft %d rejected: it is not sent, and the lead's sequence ended (%s).", id, db.DraftRejectedStop))
}

// draftDetail is a draft in an audit entry.
func draftDetail(d db.OutreachDraft) string {
	return fmt.Sprintf("draft %d, step %d, revision %d, to %s, subject %q", d.ID, d.Step, d.Revision, d.ToAddr, d.Subject)
}

func leadTarget(id int64) string { return "lead " + strconv.FormatInt(id, 10) }

// sentence ends s with a full stop.
func sentence(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// markDraftSteps sets DraftStep on each of leads with a draft waiting for
// review, so that its sequence reads "draft waiting for review", not
// "finished".
func (s *Server) markDraftSteps(ctx context.Context, leads []views.Lead) error {
	if len(leads) == 0 {
		return nil
	}
	ids := make([]int64, len(leads))
	for i, l := range leads {
		ids[i] = l.ID
	}
	steps, err := s.store.WaitingDraftSteps(ctx, ids)
	if err != nil {
		return err
	}
	for i := range leads {
		leads[i].DraftStep = steps[leads[i].ID]
	}
	return nil
}
