package agents

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// The two rules that hold outreach back without touching the caps: the
// circuit breaker that pauses it after consecutive provider errors, a bounce
// rate over its threshold or a complaint (its state lives in the store, see
// db.OutreachPause and db.Guard, so a pause survives a restart), and the
// daily send window.

// BizDev counts of the sending rules. They appear only when the rule held
// BizDev back, so a normal cycle reports the usual seven counts.
const (
	// bizdevPaused is 1 when outreach is paused: nothing was queued or sent.
	bizdevPaused = "paused"
	// bizdevPausedFor prefixes the pause's reason, a second count of 1
	// beside paused: paused_provider_errors, paused_bounce_rate or
	// paused_complaint, so the cycle log says why.
	bizdevPausedFor = "paused_"
	// bizdevOutsideWindow counts the messages left queued because the send
	// window is closed.
	bizdevOutsideWindow = "outside_window"
)

// SendWindow is a daily span of local time in which outreach may send. The
// zero value is always open.
type SendWindow struct {
	set      bool
	from, to int // minutes after midnight; to < from spans midnight
	loc      *time.Location
}

// ParseSendWindow reads a window "HH:MM-HH:MM" in loc (nil: UTC). The start
// is inclusive and the end exclusive; a window whose end is earlier than its
// start runs past midnight (22:00-06:00). An empty string is no window.
func ParseSendWindow(s string, loc *time.Location) (SendWindow, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return SendWindow{}, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	fromText, toText, ok := strings.Cut(s, "-")
	from, err1 := minuteOfDay(fromText)
	to, err2 := minuteOfDay(toText)
	if !ok || err1 != nil || err2 != nil || from == to {
		return SendWindow{}, fmt.Errorf("send window %q: want HH:MM-HH:MM with two different times, such as 09:00-17:00", s)
	}
	return SendWindow{set: true, from: from, to: to, loc: loc}, nil
}

func minuteOfDay(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Contains reports whether the window is open at t.
func (w SendWindow) Contains(t time.Time) bool {
	if !w.set {
		return true
	}
	local := t.In(w.loc)
	m := local.Hour()*60 + local.Minute()
	if w.from < w.to {
		return m >= w.from && m < w.to
	}
	return m >= w.from || m < w.to
}

// String is the window as configured, with its zone, or "always".
func (w SendWindow) String() string {
	if !w.set {
		return "always"
	}
	return fmt.Sprintf("%02d:%02d-%02d:%02d %s", w.from/60, w.from%60, w.to/60, w.to%60, w.loc)
}

// paused reports whether outreach is paused, and says so in counts.
func (c *BizDevCycle) paused(ctx context.Context, counts Counts) (bool, error) {
	p, err := c.store.OutreachPause(ctx)
	if err != nil {
		return false, err
	}
	if p.Paused {
		countPause(p, counts)
	}
	return p.Paused, nil
}

// countPause records pause p in counts: paused=1 and paused_<reason>=1.
func countPause(p db.OutreachPause, counts Counts) {
	counts[bizdevPaused] = 1
	if p.Reason != "" {
		counts[bizdevPausedFor+p.Reason] = 1
	}
}

// pausedMidRun records in counts a pause another transaction tripped while
// this run was sending (a provider error, a bounce, a complaint).
func (c *BizDevCycle) pausedMidRun(ctx context.Context, counts Counts) error {
	p, err := c.store.OutreachPause(ctx)
	if err != nil {
		return err
	}
	countPause(p, counts)
	return nil
}

// windowClosed reports whether the send window is closed now; when it is,
// the remaining messages of the batch are counted as held back.
func (c *BizDevCycle) windowClosed(remaining int, counts Counts) bool {
	if c.window.Contains(c.env.Now()) {
		return false
	}
	counts[bizdevOutsideWindow] += remaining
	return true
}

// changesData reports whether counts record a change to the outbox or the
// leads; the rule counts (paused, outside_window) record none.
func changesData(counts Counts) bool {
	for k, n := range counts {
		if n > 0 && k != bizdevPaused && k != bizdevOutsideWindow && !strings.HasPrefix(k, bizdevPausedFor) {
			return true
		}
	}
	return false
}
