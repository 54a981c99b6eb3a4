package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// Outreach's circuit breaker in the control room: EMAIL_PAUSE_AFTER_ERRORS
// consecutive provider errors, a bounce rate over EMAIL_BOUNCE_PAUSE_RATE or
// a complaint pause outreach (BizDev queues and sends nothing), the panel
// says which and why, and only an admin resumes it, once the cause is
// fixed. The panel also shows the bounce rate watched and the warm-up ramp.

// outreachPanelData adds the pause state, the bounce window and the warm-up
// ramp (against the panel's daily cap) to the e-mail health panel.
func (s *Server) outreachPanelData(ctx context.Context, p *views.EmailPanel) error {
	pause, err := s.store.OutreachPause(ctx)
	if err != nil {
		return err
	}
	p.Pause = outreachPauseView(pause)
	bounces, err := s.store.BounceWindow(ctx)
	if err != nil {
		return err
	}
	p.Bounces = bounceWindowText(bounces)
	warmup, err := s.store.Warmup(ctx, p.Caps.PerDay)
	if err != nil {
		return err
	}
	if warmup.On {
		p.Warmup = &views.Warmup{Text: warmup.String(), CapDay: warmup.Cap}
	}
	p.Review = s.cfg.Email.Review
	p.DraftsWaiting, err = s.store.WaitingDraftCount(ctx)
	return err
}

// bounceWindowText is the bounce window for the panel: "2 of the last 40
// sends bounced (5%); pauses above 5% of the last 50, from 20 sends".
func bounceWindowText(w db.BounceWindow) string {
	if w.RateBasisPoints <= 0 || w.Window <= 0 {
		return "not watched (EMAIL_BOUNCE_PAUSE_RATE=0)"
	}
	rule := fmt.Sprintf("pauses above %s of the last %d, from %d %s", db.PercentText(w.RateBasisPoints), w.Window, w.MinSends, pluralOf(w.MinSends, "send", "sends"))
	if w.Sends == 0 {
		return "no send counted yet; " + rule
	}
	return fmt.Sprintf("%d of the last %d %s bounced (%s); %s", w.Bounced, w.Sends, pluralOf(w.Sends, "recipient", "recipients"), db.PercentText(w.RateBasisPointsSeen()), rule)
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
		detail = fmt.Sprintf("paused since %s (%s): %s", was.PausedAt.UTC().Format("2006-01-02 15:04 UTC"), was.Reason, was.Why())
		next := "BizDev sends again on its next cycle."
		if was.Reason == db.PauseBounceRate {
			next = "BizDev sends again on its next cycle; the bounce rate counts only the messages sent from now on."
		}
		out = actionDone(fmt.Sprintf("Outreach resumed (paused for %s); %s", was.Why(), next))
	}
	s.audit(r, "outreach.resume", "outreach", detail)
	s.refreshLive()
	s.answerAction(w, r, out)
}

// DeliverabilityGuard is the store's guard for the configured EMAIL_BOUNCE_*
// and EMAIL_WARMUP_* settings.
func DeliverabilityGuard(c config.Email) db.Guard {
	g := c.Guard
	return db.Guard{BounceRateBasisPoints: g.BouncePauseRate, BounceWindow: g.BounceWindow, BounceMinSends: g.BounceMinSends,
		WarmupStart: g.WarmupStart, WarmupDays: g.WarmupDays}
}
