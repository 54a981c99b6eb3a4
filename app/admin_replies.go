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
	old, err := s.store.ReclassifyReply(context.WithoutCancel(r.Context()), id, class, userFrom(r.Context()).Email)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, auditReplyClass, "lead "+strconv.FormatInt(old.LeadID, 10), "reply "+strconv.FormatInt(id, 10)+": "+old.Class+" → "+class)
	s.refreshLive()
	s.answerAction(w, r, actionDone("Sorted as "+strings.ReplaceAll(class, "_", " ")+"; the lead was acted on."))
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
