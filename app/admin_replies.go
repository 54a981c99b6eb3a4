package app

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hossagent/hossagent/views"
)

// Audit actions of the replies' controls.
const (
	auditReplyClass    = "reply class changed"
	auditSequenceStop  = "sequence stopped"
	maxReplyClassInput = 32
)

// changeReplyClass is an operator's decision on how a reply is sorted: its
// lead is acted on for the new class (interested: onboarding converts it;
// unsubscribe or bounce: suppressed; not interested: closed).
func (s *Server) changeReplyClass(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.readControlForm(w, r) {
		return
	}
	class := r.PostForm.Get("class")
	if len(class) > maxReplyClassInput || !slices.Contains(views.ReplyClasses, class) {
		s.answerAction(w, r, actionRefused(http.StatusBadRequest, "Pick one of the classes offered; nothing changed."))
		return
	}
	old, out, err := s.store.ReclassifyReply(context.WithoutCancel(r.Context()), id, class, userFrom(r.Context()).Email)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, auditReplyClass, "lead "+strconv.FormatInt(old.LeadID, 10), "reply "+strconv.FormatInt(id, 10)+": "+old.Class+" → "+class+", lead "+leadMovedText(out.LeadMoved))
	s.refreshLive()
	msg := "Sorted as " + strings.ReplaceAll(class, "_", " ") + "; the lead's status is unchanged."
	if out.LeadMoved != "" {
		msg = "Sorted as " + strings.ReplaceAll(class, "_", " ") + "; the lead is now " + out.LeadMoved + "."
	}
	s.answerAction(w, r, actionDone(msg))
}

// stopSequence ends a lead's sequence at an operator's word: no further
// follow-up, and the queued ones are not sent.
func (s *Server) stopSequence(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.readControlForm(w, r) {
		return
	}
	if err := s.store.StopSequence(context.WithoutCancel(r.Context()), id, "stopped by "+userFrom(r.Context()).Email); err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, auditSequenceStop, "lead "+strconv.FormatInt(id, 10), "")
	s.refreshLive()
	s.answerAction(w, r, actionDone("Sequence stopped: no further follow-up goes to this lead."))
}

func leadMovedText(s string) string {
	if s == "" {
		return "unchanged"
	}
	return "now " + s
}
