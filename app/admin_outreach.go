package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hossagent/hossagent/views"
)

// Outreach's circuit breaker in the control room: EMAIL_PAUSE_AFTER_ERRORS
// consecutive provider errors pause outreach (BizDev queues and sends
// nothing), and only an admin resumes it, once the cause is fixed.

// outreachPanelData adds the pause state to the e-mail health panel.
func (s *Server) outreachPanelData(ctx context.Context, p *views.EmailPanel) error {
	pause, err := s.store.OutreachPause(ctx)
	if err != nil {
		return err
	}
	p.Pause = outreachPauseView(pause)
	p.Review = s.cfg.Email.Review
	p.DraftsWaiting, err = s.store.WaitingDraftCount(ctx)
	return err
}

// resumeOutreach lifts a pause and zeroes the error count; BizDev sends
// again on its next cycle.
func (s *Server) resumeOutreach(w http.ResponseWriter, r *http.Request) {
	if !s.readControlForm(w, r) {
		return
	}
	was, err := s.store.ResumeOutreach(context.WithoutCancel(r.Context()))
	if err != nil {
		s.log.Error("outreach not resumed", "err", err)
		s.answerAction(w, r, actionRefused(http.StatusInternalServerError, "Outreach could not be resumed; the error is in the server log."))
		return
	}
	out := actionDone("Outreach was not paused: nothing to resume.")
	detail := "not paused"
	if was.Paused {
		detail = fmt.Sprintf("paused after %d errors since %s", was.PausedAfter, was.PausedAt.UTC().Format("2006-01-02 15:04 UTC"))
		out = actionDone(fmt.Sprintf("Outreach resumed after %d consecutive %s; BizDev sends again on its next cycle.",
			was.PausedAfter, pluralOf(was.PausedAfter, "error", "errors")))
	}
	s.audit(r, "outreach.resume", "outreach", detail)
	s.refreshLive()
	s.answerAction(w, r, out)
}
