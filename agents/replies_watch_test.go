package agents

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/db"
)

func TestWatchBackoffDoublesFromOneSecondToFiveMinutes(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if got := WatchBackoff(i + 1); got != w {
			t.Errorf("WatchBackoff(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := WatchBackoff(1000); got != 5*time.Minute {
		t.Errorf("WatchBackoff(1000) = %s", got)
	}
}

// fakeWatch is a mailbox connection whose server reports new mail when the
// test sends on mail.
type fakeWatch struct {
	mail   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (f *fakeWatch) Idle(ctx context.Context, ready func()) error {
	ready()
	select {
	case <-f.mail:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeWatch) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// fakeRunner answers State and records each Ask.
type fakeRunner struct {
	mu    sync.Mutex
	state AgentState
	asks  chan string
}

func (r *fakeRunner) State(string) (AgentState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, nil
}

func (r *fakeRunner) Ask(_ context.Context, name, trigger string, _ time.Duration) (RunResult, error) {
	r.asks <- trigger
	return RunResult{Agent: name, Outcome: db.RunOK}, nil
}

// timers is an After whose timers fire only when the test fires them; each
// request is announced on requests.
type timers struct{ requests chan timerRequest }

type timerRequest struct {
	d    time.Duration
	fire chan time.Time
}

func (ts *timers) after(d time.Duration) (<-chan time.Time, func()) {
	ch := make(chan time.Time, 1)
	ts.requests <- timerRequest{d: d, fire: ch}
	return ch, func() {}
}

// next returns the next timer request for d (others are left unfired).
func (ts *timers) next(t *testing.T, d time.Duration) timerRequest {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-ts.requests:
			if r.d == d {
				return r
			}
		case <-deadline:
			t.Fatalf("no %s timer was set", d)
		}
	}
}

func expectAsk(t *testing.T, asks chan string) {
	t.Helper()
	select {
	case trigger := <-asks:
		if trigger != db.TriggerAutopilot {
			t.Errorf("trigger = %q", trigger)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no run was asked for")
	}
}

func noAsk(t *testing.T, asks chan string) {
	t.Helper()
	select {
	case <-asks:
		t.Fatal("a run was asked for")
	default:
	}
}

// Wake-ups within MinGap of the last run wait for the rest of the gap, on
// the injected clock and timers; the poll asks for a run when nothing else
// did, unless the agent ran meanwhile; a stop closes the connection.
func TestWatcherRateLimitsWakeUpsAndPolls(t *testing.T) {
	clock := clocktest.New(time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC))
	watch := &fakeWatch{mail: make(chan struct{}), closed: make(chan struct{})}
	runner := &fakeRunner{state: AgentState{Name: Replies, State: StateIdle}, asks: make(chan string, 16)}
	tm := &timers{requests: make(chan timerRequest, 64)}
	const gap, poll = 2 * time.Second, 2 * time.Minute
	w := NewRepliesWatcher(RepliesWatchConfig{Runner: runner, Open: func() MailWatch { return watch },
		Now: clock.Now, After: tm.after, MinGap: gap, PollEvery: poll})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()

	tm.next(t, poll) // the watcher waits
	watch.mail <- struct{}{}
	expectAsk(t, runner.asks) // the first wake-up runs at once

	tm.next(t, poll)
	watch.mail <- struct{}{} // at the same instant: within the gap
	g := tm.next(t, gap)
	noAsk(t, runner.asks)
	clock.Advance(gap)
	g.fire <- clock.Now()
	expectAsk(t, runner.asks)

	// Half a gap later: it waits for the other half.
	tm.next(t, poll)
	clock.Advance(gap / 2)
	watch.mail <- struct{}{}
	g = tm.next(t, gap/2)
	noAsk(t, runner.asks)
	clock.Advance(gap / 2)
	g.fire <- clock.Now()
	expectAsk(t, runner.asks)

	// After the gap: at once.
	tm.next(t, poll)
	clock.Advance(time.Minute)
	watch.mail <- struct{}{}
	expectAsk(t, runner.asks)

	// The poll, when the agent last ran long ago, asks for a run …
	p := tm.next(t, poll)
	runner.mu.Lock()
	runner.state.LastRunAt = clock.Now().Add(-time.Hour)
	runner.mu.Unlock()
	clock.Advance(poll)
	p.fire <- clock.Now()
	expectAsk(t, runner.asks)
	// … but not when a tick ran it meanwhile.
	p = tm.next(t, poll)
	clock.Advance(poll)
	runner.mu.Lock()
	runner.state.LastRunAt = clock.Now().Add(-time.Second)
	runner.mu.Unlock()
	p.fire <- clock.Now()
	tm.next(t, poll) // the next round started: the poll was decided
	noAsk(t, runner.asks)

	// Stopped agent: a wake-up asks nothing.
	runner.mu.Lock()
	runner.state.State = StateStopped
	runner.mu.Unlock()
	clock.Advance(time.Minute)
	watch.mail <- struct{}{}
	tm.next(t, poll)
	noAsk(t, runner.asks)

	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not end")
	}
	select {
	case <-watch.closed:
	default:
		t.Error("the connection was not closed")
	}
}
