package imap

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

// The replies watcher over a real IMAP server (go-imap's memory server):
// new mail during IDLE wakes the Replies agent through the engine, within
// a deadline far below the poll interval; nothing runs while the agent is
// stopped or the autopilot OFF; a server that drops connections is retried
// with a doubling backoff; a server without IDLE is polled; a stop ends
// IDLE and logs out.

// noteLog keeps the watcher's decisions for the test to wait on, in order.
type noteLog struct {
	mu      sync.Mutex
	notes   []agents.WatchNote
	changed chan struct{}
	next    int // the first note not yet consumed by wait
}

func newNoteLog() *noteLog { return &noteLog{changed: make(chan struct{})} }

func (l *noteLog) add(n agents.WatchNote) {
	l.mu.Lock()
	l.notes = append(l.notes, n)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// wait consumes notes up to and including the first one that satisfies
// match, and returns it; it fails the test after timeout.
func (l *noteLog) wait(t *testing.T, timeout time.Duration, what string, match func(agents.WatchNote) bool) agents.WatchNote {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for l.next < len(l.notes) {
			n := l.notes[l.next]
			l.next++
			if match(n) {
				l.mu.Unlock()
				return n
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("watcher: no %s within %s; notes: %+v", what, timeout, l.all())
		}
	}
}

func (l *noteLog) all() []agents.WatchNote {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.notes)
}

func idling(n agents.WatchNote) bool { return n.Idling }

func ran(n agents.WatchNote) bool { return n.Result != nil }

type watchRig struct {
	r      *agentstest.Rig
	engine *agents.Engine
	coord  *agents.Coordinator
	notes  *noteLog
	stop   func() // stops the engine and waits for it
}

// startWatch runs an engine with the Replies agent (its own Mailbox on
// ts) and the watcher (a Mailbox of its own with watchOpts) until stop or
// the test's end. before runs once the engine serves; edit adjusts the
// watcher's config; poll is an hour unless edit says otherwise.
func startWatch(t *testing.T, ts *testServer, watchOpts Options, before func(*agents.Engine), edit func(*agents.RepliesWatchConfig)) *watchRig {
	t.Helper()
	r := agentstest.NewRig(t)
	replies := agents.NewRepliesCycle(r.Store, r.Env(), open(t, ts.options()), agents.RepliesOptions{})
	engine := agents.NewEngine(agents.EngineConfig{Store: r.Store, Logger: agentstest.QuietLogger(), Now: r.Clock.Now,
		Cycles: map[string]agents.Cycle{agents.Replies: replies}, Partial: true})
	coord := agents.NewCoordinator(agents.CoordinatorConfig{Engine: engine, Store: r.Store, Logger: agentstest.QuietLogger(),
		Now: r.Clock.Now, Enabled: true, Interval: time.Hour})
	notes := newNoteLog()
	cfg := agents.RepliesWatchConfig{
		Runner: engine, Logger: agentstest.QuietLogger(),
		Autopilot: func(ctx context.Context) (bool, error) {
			on, _, err := coord.Autopilot(ctx)
			return on, err
		},
		Open:      func() agents.MailWatch { return New(watchOpts) },
		PollEvery: time.Hour, MinGap: 50 * time.Millisecond,
		Observe: notes.add,
	}
	if edit != nil {
		edit(&cfg)
	}
	engine.AddIsolated("watch:replies", agents.NewRepliesWatcher(cfg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- engine.Serve(ctx) }()
	if before != nil {
		// Once the agent answers through its mailbox, the tree runs.
		if err := engine.Ping(ctx, agents.Replies, watchDeadline); err != nil {
			t.Fatal(err)
		}
		before(engine)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("engine: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("the engine did not stop")
		}
	}
	t.Cleanup(stop)
	return &watchRig{r: r, engine: engine, coord: coord, notes: notes, stop: stop}
}

// replyFrom is lead i's reply, matched by its sender.
func (w *watchRig) replyFrom(t *testing.T, i int) []byte {
	t.Helper()
	addr := fmt.Sprintf("dana@acme-%d.com", i)
	w.r.AddLead(fmt.Sprintf("Dana %d", i), addr, fmt.Sprintf("Acme %d", i), "B2B SaaS")
	return crlf(fmt.Sprintf(`From: Dana %[1]d <%[2]s>
To: replies@hossagent.test
Subject: Re: A quick idea for Acme %[1]d
Message-ID: <watch-%[1]d@acme-corp.com>
Date: Mon, 02 Jun 2025 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

Sounds good, let's talk next week.
`, i, addr))
}

func (w *watchRig) runs(t *testing.T) int {
	return w.r.Count("SELECT COUNT(*) FROM agent_runs WHERE agent = ?", agents.Replies)
}

func (w *watchRig) stored(t *testing.T) int {
	return w.r.Count("SELECT COUNT(*) FROM replies")
}

// unhandled is how many messages a fresh client still finds unhandled.
func unhandled(t *testing.T, ts *testServer) int {
	t.Helper()
	m := New(ts.options())
	defer m.Close()
	got, err := m.Fetch(testCtx(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}

const watchDeadline = 10 * time.Second

func TestWatcherRunsRepliesOnNewMailWithoutWaitingForThePoll(t *testing.T) {
	ts := startServer(t, serverOptions{})
	w := startWatch(t, ts, ts.options(), nil, nil) // poll: an hour
	w.notes.wait(t, watchDeadline, "IDLE", idling)
	ts.appendMail(t, w.replyFrom(t, 1))
	n := w.notes.wait(t, watchDeadline, "run on new mail", ran)
	if n.Wake != agents.WakeNewMail || n.Err != nil || n.Result.Counts["stored"] != 1 {
		t.Fatalf("run = %+v", n)
	}
	if got := w.stored(t); got != 1 {
		t.Errorf("replies stored = %d", got)
	}
	var runs []db.AgentRun
	if err := w.r.Store.Bun().NewSelect().Model(&runs).Where("agent = ?", agents.Replies).Scan(w.r.Ctx); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Trigger != db.TriggerAutopilot || runs[0].Outcome != db.RunOK {
		t.Errorf("cycle log = %+v, want one autopilot run, ok", runs)
	}
	if got := unhandled(t, ts); got != 0 {
		t.Errorf("%d messages left unhandled on the server", got)
	}

	// A burst: every message stored, by runs at least MinGap apart.
	for i := 2; i <= 4; i++ {
		ts.appendMail(t, w.replyFrom(t, i))
	}
	total := 1
	for total < 4 {
		n := w.notes.wait(t, watchDeadline, "run for the burst", ran)
		if n.Err != nil {
			t.Fatal(n.Err)
		}
		total += n.Result.Counts["stored"]
	}
	if got := w.stored(t); got != 4 {
		t.Errorf("replies stored = %d, want 4", got)
	}
}

func TestWatcherAsksNoRunWhileTheAgentIsStoppedOrTheAutopilotOff(t *testing.T) {
	ts := startServer(t, serverOptions{})
	w := startWatch(t, ts, ts.options(), func(e *agents.Engine) {
		if err := e.Stop(context.Background(), agents.Replies); err != nil {
			t.Fatal(err)
		}
	}, nil)
	w.notes.wait(t, watchDeadline, "IDLE", idling)
	ts.appendMail(t, w.replyFrom(t, 1))
	n := w.notes.wait(t, watchDeadline, "wake-up", func(n agents.WatchNote) bool { return n.Wake != "" })
	if n.Wake != agents.WakeNewMail || n.Skipped != "agent stopped" || n.Result != nil {
		t.Fatalf("wake-up with the agent stopped = %+v", n)
	}
	if runs, stored := w.runs(t), w.stored(t); runs != 0 || stored != 0 {
		t.Fatalf("with the agent stopped: %d runs, %d replies stored", runs, stored)
	}

	// Started again, but the autopilot is OFF: still nothing.
	if err := w.engine.Start(w.r.Ctx, agents.Replies); err != nil {
		t.Fatal(err)
	}
	if err := w.coord.SetAutopilot(w.r.Ctx, false, 0); err != nil {
		t.Fatal(err)
	}
	// The connection stays selected between IDLEs: the server reports
	// this message whenever it comes.
	ts.appendMail(t, w.replyFrom(t, 2))
	w.notes.wait(t, watchDeadline, "wake-up with the autopilot off", func(n agents.WatchNote) bool { return n.Skipped == "autopilot off" })
	if runs, stored := w.runs(t), w.stored(t); runs != 0 || stored != 0 {
		t.Fatalf("with the autopilot off: %d runs, %d replies stored", runs, stored)
	}
	if got := unhandled(t, ts); got != 2 {
		t.Fatalf("%d messages unhandled on the server, want 2", got)
	}

	// Autopilot ON: the next mail runs the agent, which reads all three.
	if err := w.coord.SetAutopilot(w.r.Ctx, true, 0); err != nil {
		t.Fatal(err)
	}
	ts.appendMail(t, w.replyFrom(t, 3))
	total, results := 0, 0
	for total < 3 {
		n := w.notes.wait(t, watchDeadline, "run with the autopilot on", ran)
		results++
		total += n.Result.Counts["stored"]
	}
	if runs := w.runs(t); runs != results {
		t.Errorf("%d runs in the cycle log, %d asked", runs, results)
	}
	if got := unhandled(t, ts); got != 0 {
		t.Errorf("%d messages unhandled on the server", got)
	}
}

func TestWatcherReconnectsWithBackoffWhenTheServerDropsTheConnection(t *testing.T) {
	ts := startServer(t, serverOptions{})
	proxy := agentstest.StartIMAPProxy(t, ts.addr)
	proxy.Refuse(3) // the first three connections are closed at once
	viaProxy := ts.options()
	viaProxy.Port = proxy.Port
	var mu sync.Mutex
	var delays []time.Duration
	w := startWatch(t, ts, viaProxy, nil, func(c *agents.RepliesWatchConfig) {
		c.Backoff = func(n int) time.Duration {
			mu.Lock()
			delays = append(delays, agents.WatchBackoff(n))
			mu.Unlock()
			return time.Millisecond // the test does not wait the real delay
		}
	})
	// Mail that came while the watcher could not connect is read once it
	// is back, without waiting for the poll.
	ts.appendMail(t, w.replyFrom(t, 1))
	for i := 1; i <= 3; i++ {
		n := w.notes.wait(t, watchDeadline, fmt.Sprintf("connection failure %d", i), func(n agents.WatchNote) bool { return n.Failures > 0 })
		if n.Failures != i || n.Err == nil {
			t.Fatalf("failure note %d = %+v", i, n)
		}
	}
	w.notes.wait(t, watchDeadline, "IDLE after the failures", idling)
	n := w.notes.wait(t, watchDeadline, "run after reconnecting", ran)
	if n.Wake != agents.WakeReconnected || n.Result.Counts["stored"] != 1 {
		t.Fatalf("run after reconnecting = %+v", n)
	}
	mu.Lock()
	got := slices.Clone(delays)
	mu.Unlock()
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
		t.Fatalf("backoff delays = %v, want %v", got, want)
	}

	// The server drops the idling connection: one failure (the count was
	// reset once IDLE ran), a reconnection, and IDLE again.
	proxy.DropAll()
	n = w.notes.wait(t, watchDeadline, "failure after the drop", func(n agents.WatchNote) bool { return n.Failures > 0 })
	if n.Failures != 1 {
		t.Fatalf("failure after the drop = %+v, want the first", n)
	}
	w.notes.wait(t, watchDeadline, "IDLE after the drop", idling)
	ts.appendMail(t, w.replyFrom(t, 2))
	if err := waitStored(t, w, 2); err != nil {
		t.Fatal(err)
	}
	if accepted := proxy.Accepted(); accepted != 5 {
		t.Errorf("connections to the proxy = %d, want 5 (3 refused, 1 dropped, 1 idling)", accepted)
	}
}

// waitStored waits for runs until want replies are stored in all.
func waitStored(t *testing.T, w *watchRig, want int) error {
	t.Helper()
	for w.stored(t) < want {
		n := w.notes.wait(t, watchDeadline, fmt.Sprintf("runs storing %d replies", want), ran)
		if n.Err != nil {
			return n.Err
		}
	}
	return nil
}

func TestWatcherPollsWhenTheServerOffersNoIdle(t *testing.T) {
	ts := startServer(t, serverOptions{})
	polls := make(chan chan time.Time, 8)
	w := startWatch(t, ts, ts.options(), nil, func(c *agents.RepliesWatchConfig) {
		c.Open = func() agents.MailWatch {
			m := New(ts.options())
			m.noIdle = true // as a server without IDLE
			return m
		}
		c.After = func(d time.Duration) (<-chan time.Time, func()) {
			if d == c.PollEvery {
				ch := make(chan time.Time, 1)
				polls <- ch
				return ch, func() {}
			}
			return agents.RealAfter(d)
		}
	})
	w.notes.wait(t, watchDeadline, "poll-only mode", func(n agents.WatchNote) bool { return n.PollOnly })
	ts.appendMail(t, w.replyFrom(t, 1))
	var poll chan time.Time
	select {
	case poll = <-polls:
	case <-time.After(watchDeadline):
		t.Fatal("the watcher set no poll timer")
	}
	if runs := w.runs(t); runs != 0 {
		t.Fatalf("%d runs before the poll", runs)
	}
	poll <- time.Now()
	n := w.notes.wait(t, watchDeadline, "run on the poll", ran)
	if n.Wake != agents.WakePoll || n.Result.Counts["stored"] != 1 {
		t.Fatalf("poll run = %+v", n)
	}
}

func TestWatcherEndsIdleAndLogsOutOnStop(t *testing.T) {
	ts := startServer(t, serverOptions{})
	proxy := agentstest.StartIMAPProxy(t, ts.addr)
	viaProxy := ts.options()
	viaProxy.Port = proxy.Port
	w := startWatch(t, ts, viaProxy, nil, nil)
	w.notes.wait(t, watchDeadline, "IDLE", idling)
	w.stop()
	cmds := proxy.Commands()
	i := slices.Index(cmds, "IDLE")
	if i < 0 || !slices.Equal(cmds[len(cmds)-2:], []string{"DONE", "LOGOUT"}) {
		t.Fatalf("commands = %q, want IDLE … DONE, LOGOUT", cmds)
	}
}
