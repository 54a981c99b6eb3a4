package agents

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hossagent/hossagent/db"
)

// The replies watcher keeps a connection of its own to the replies mailbox
// in IDLE and, when the server announces new mail, asks the Replies agent to
// run now instead of at the next autopilot tick. It asks through the
// agent's mailbox (Engine.Ask), like a tick or the admin's RUN button, so
// runs stay serialized and recorded in the cycle log; it asks nothing while
// the autopilot is OFF or the agent is stopped or backing off. Wake-ups are
// at least MinGap apart (a burst of mail is one run), a run is asked for
// every PollEvery when nothing else asked (a server without IDLE, or an
// IDLE that stays silent), and a failed connection is opened again after
// an exponential backoff (1 s doubling to 5 min, reset once IDLE runs).

// MailWatch is the watcher's connection to the replies mailbox (agents/imap
// is the adapter: a Mailbox of its own, never the cycle's).
type MailWatch interface {
	// Idle blocks until the server reports new mail (nil), ctx ends (ctx's
	// error), or the connection fails (another error); ErrNoIdle when the
	// server does not offer IDLE. ready, when set, is called once IDLE runs.
	Idle(ctx context.Context, ready func()) error
	// Close logs out and closes the connection.
	Close() error
}

// ErrNoIdle is MailWatch.Idle's answer for a server without IDLE; adapters
// return it or an error that wraps it (errors.Is).
var ErrNoIdle = errors.New("the mailbox server does not offer IDLE")

// RepliesRunner is what the watcher asks runs of: the Engine.
type RepliesRunner interface {
	State(name string) (AgentState, error)
	Ask(ctx context.Context, name, trigger string, timeout time.Duration) (RunResult, error)
}

// Watcher defaults.
const (
	DefaultWatchMinGap    = 2 * time.Second
	DefaultWatchPollEvery = 2 * time.Minute
	// DefaultWatchIdleRefresh ends and restarts IDLE on the same
	// connection, well inside the 29 minutes RFC 2177 allows, so a
	// connection that died silently is noticed.
	DefaultWatchIdleRefresh = 10 * time.Minute
	watchBackoffFirst       = time.Second
	watchBackoffMax         = 5 * time.Minute
)

// Why the watcher asked (or would have asked) for a run.
const (
	WakeNewMail     = "new mail"
	WakePoll        = "poll"
	WakeReconnected = "reconnected" // mail may have come while the connection was down
)

// WatchNote is one decision of the watcher, for its Observe hook (tests)
// and its log.
type WatchNote struct {
	Wake    string // WakeNewMail, WakePoll, WakeReconnected; "" for connection notes
	Skipped string // why no run was asked for ("autopilot off", "agent stopped"...)
	Result  *RunResult
	Err     error
	// Idling is set when IDLE started on the connection; Failures is the
	// consecutive connection failures so far, Backoff the wait before the
	// next attempt (set on connection failure notes).
	Idling   bool
	Failures int
	Backoff  time.Duration
	PollOnly bool // the server offers no IDLE: the watcher only polls
}

// After is a timer: a channel that receives once d has passed, and a stop
// function. Tests replace it.
type After func(d time.Duration) (<-chan time.Time, func())

// RealAfter is time.NewTimer as an After.
func RealAfter(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// WatchBackoff is the default reconnection delay after failures consecutive
// failed connections: 1 s, 2 s, 4 s … at most 5 min.
func WatchBackoff(failures int) time.Duration {
	d := watchBackoffFirst
	for i := 1; i < failures && d < watchBackoffMax; i++ {
		d *= 2
	}
	return min(d, watchBackoffMax)
}

// RepliesWatchConfig builds a RepliesWatcher.
type RepliesWatchConfig struct {
	Runner RepliesRunner
	// Autopilot reports whether the autopilot is ON (the coordinator's
	// persisted switch); nil is always ON.
	Autopilot func(ctx context.Context) (bool, error)
	// Open makes a fresh connection to the mailbox for each Serve (a
	// service suture restarts gets a new one).
	Open   func() MailWatch
	Logger *slog.Logger
	Now    func() time.Time
	After  After
	// Backoff is the delay before reconnecting after n consecutive
	// failures; nil is WatchBackoff.
	Backoff func(n int) time.Duration
	// MinGap, PollEvery, IdleRefresh: 0 takes the defaults.
	MinGap, PollEvery, IdleRefresh time.Duration
	// RunTimeout bounds one Ask (default 15 min, like an autopilot stage).
	RunTimeout time.Duration
	// Observe, when set, is called with every decision (tests).
	Observe func(WatchNote)
}

// RepliesWatcher is the supervised service that wakes the Replies agent on
// new mail. Add it to the engine's tree (Engine.Add).
type RepliesWatcher struct {
	cfg RepliesWatchConfig
}

// NewRepliesWatcher builds the watcher.
func NewRepliesWatcher(c RepliesWatchConfig) *RepliesWatcher {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = RealAfter
	}
	if c.Backoff == nil {
		c.Backoff = WatchBackoff
	}
	if c.MinGap <= 0 {
		c.MinGap = DefaultWatchMinGap
	}
	if c.PollEvery <= 0 {
		c.PollEvery = DefaultWatchPollEvery
	}
	if c.IdleRefresh <= 0 {
		c.IdleRefresh = DefaultWatchIdleRefresh
	}
	if c.RunTimeout <= 0 {
		c.RunTimeout = 15 * time.Minute
	}
	return &RepliesWatcher{cfg: c}
}

// String names the service in suture's events.
func (w *RepliesWatcher) String() string { return "watch:" + Replies }

func (w *RepliesWatcher) note(n WatchNote) {
	if w.cfg.Observe != nil {
		w.cfg.Observe(n)
	}
}

// Serve watches until ctx ends, then ends IDLE and logs out.
func (w *RepliesWatcher) Serve(ctx context.Context) error {
	conn := w.cfg.Open()
	wakes := make(chan string, 1)
	lctx, stopListen := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.listen(lctx, conn, wakes)
	}()
	defer func() {
		stopListen()
		wg.Wait()
		_ = conn.Close() // LOGOUT
	}()

	var last time.Time // when the last run was asked for
	for {
		poll, stopPoll := w.cfg.After(w.cfg.PollEvery)
		var why string
		select {
		case <-ctx.Done():
			stopPoll()
			return ctx.Err()
		case why = <-wakes:
		case <-poll:
			why = WakePoll
		}
		stopPoll()
		// Rate limit: a wake-up within MinGap of the last run waits for
		// the rest of the gap (wake-ups meanwhile are part of this one).
		if !last.IsZero() {
			if wait := w.cfg.MinGap - w.cfg.Now().Sub(last); wait > 0 {
				gap, stopGap := w.cfg.After(wait)
				select {
				case <-ctx.Done():
					stopGap()
					return ctx.Err()
				case <-gap:
				}
			}
		}
		last = w.cfg.Now()
		w.wake(ctx, why)
	}
}

// wake asks the Replies agent for a run, unless the autopilot is OFF or
// the agent cannot take one.
func (w *RepliesWatcher) wake(ctx context.Context, why string) {
	if w.cfg.Autopilot != nil {
		on, err := w.cfg.Autopilot(ctx)
		if err != nil {
			w.note(WatchNote{Wake: why, Skipped: "autopilot switch unreadable", Err: err})
			if ctx.Err() == nil {
				w.cfg.Logger.Warn("replies watcher: reading the autopilot switch", "err", err)
			}
			return
		}
		if !on {
			w.note(WatchNote{Wake: why, Skipped: "autopilot off"})
			return
		}
	}
	st, err := w.cfg.Runner.State(Replies)
	if err != nil {
		w.note(WatchNote{Wake: why, Skipped: "no replies agent", Err: err})
		return
	}
	if why == WakePoll && !st.LastRunAt.IsZero() && w.cfg.Now().Sub(st.LastRunAt) < w.cfg.PollEvery {
		// It ran meanwhile (an autopilot tick): that run was the poll.
		w.note(WatchNote{Wake: why, Skipped: "ran recently"})
		return
	}
	switch st.State {
	case StateStopped:
		w.note(WatchNote{Wake: why, Skipped: "agent stopped"})
		return
	case StateBackoff:
		w.note(WatchNote{Wake: why, Skipped: "agent backing off"})
		return
	}
	res, err := w.cfg.Runner.Ask(ctx, Replies, db.TriggerAutopilot, w.cfg.RunTimeout)
	if res.Outcome == "" && err != nil {
		// Never ran: stopped or backing off meanwhile, busy, or shutting down.
		w.note(WatchNote{Wake: why, Skipped: "not taken", Err: err})
		if ctx.Err() == nil {
			w.cfg.Logger.Warn("replies watcher: the agent did not take the run", "wake", why, "err", err)
		}
		return
	}
	w.note(WatchNote{Wake: why, Result: &res, Err: err})
	if err != nil && ctx.Err() == nil {
		w.cfg.Logger.Warn("replies watcher: run failed", "wake", why, "err", err)
	}
}

// listen keeps the connection in IDLE and sends a wake-up for each report
// of new mail, and one after a connection came back from failing. It ends
// with ctx, or when the server offers no IDLE (the watcher then polls).
func (w *RepliesWatcher) listen(ctx context.Context, conn MailWatch, wakes chan<- string) {
	send := func(why string) {
		select {
		case wakes <- why:
		default: // one is pending: it covers this one
		}
	}
	failures := 0
	for ctx.Err() == nil {
		ictx, cancel := context.WithCancel(ctx)
		refresh, stopRefresh := w.cfg.After(w.cfg.IdleRefresh)
		go func() {
			select {
			case <-refresh:
				cancel() // ends IDLE with DONE; the next Idle starts it again
			case <-ictx.Done():
			}
		}()
		err := conn.Idle(ictx, func() {
			w.note(WatchNote{Idling: true})
			if failures > 0 {
				// Mail may have come while the connection was down.
				send(WakeReconnected)
			}
			failures = 0
		})
		stopRefresh()
		refreshed := ictx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			send(WakeNewMail)
			continue
		case refreshed:
			continue
		case errors.Is(err, ErrNoIdle):
			w.note(WatchNote{PollOnly: true, Err: err})
			w.cfg.Logger.Info("replies watcher: the mailbox server offers no IDLE; polling every "+w.cfg.PollEvery.String(), "err", err)
			_ = conn.Close()
			return
		}
		failures++
		delay := w.cfg.Backoff(failures)
		w.note(WatchNote{Err: err, Failures: failures, Backoff: delay})
		w.cfg.Logger.Warn("replies watcher: mailbox connection failed", "failures", failures, "retry_in", delay.String(), "err", err)
		t, stop := w.cfg.After(delay)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-t:
		}
	}
}
