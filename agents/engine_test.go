package agents

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t *testing.T) *db.DB {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "engine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testTree is an engine with stand-in cycles, running until the test ends.
type testTree struct {
	engine *Engine
	bus    *Bus
	store  *db.DB
	events *Subscription
}

func startTree(t *testing.T, cycles map[string]Cycle, spec Supervision) *testTree {
	t.Helper()
	store := openStore(t)
	bus := NewBus()
	events := bus.Subscribe(10000)
	e := NewEngine(EngineConfig{Store: store, Events: bus, Logger: quietLogger(), Now: time.Now,
		Spec: spec, Cycles: cycles, Partial: true, AllowCrashInjection: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("engine did not stop")
		}
	})
	tt := &testTree{engine: e, bus: bus, store: store, events: events}
	waiting := len(cycles)
	for waiting > 0 {
		select {
		case ev := <-events.C:
			if ev.Kind == EventAgentState && ev.State.State == StateIdle {
				waiting--
			}
		case <-time.After(10 * time.Second):
			t.Fatal("agents did not start")
		}
	}
	return tt
}

// waitState reads the bus until agent's next change to state, and returns
// every state the agent went through on the way. It reads events, not the
// current state, so that a quick crashed → idle is seen in full.
// waitFor polls cond until it holds and fails the test after 10 s, so a
// regression fails with a message instead of hanging until go test's
// timeout. It is for conditions no event announces (a mailbox's length, a
// flag cleared as a goroutine returns); wait on the event where there is one.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// receive is the next value from ch, or a failed test after 10 s.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing within 10 s", what)
	}
	var zero T
	return zero
}

func (tt *testTree) waitState(t *testing.T, agent, state string) []string {
	t.Helper()
	var seen []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-tt.events.C:
			if ev.Kind != EventAgentState || ev.Agent != agent {
				continue
			}
			seen = append(seen, ev.State.State)
			if ev.State.State == state {
				return seen
			}
		case <-deadline:
			st, _ := tt.engine.State(agent)
			t.Fatalf("agent %s never reached %s (now %s, saw %v)", agent, state, st.State, seen)
		}
	}
}

func okCycle(counter *atomic.Int64) Cycle {
	return CycleFunc(func(context.Context) (Counts, error) {
		if counter != nil {
			counter.Add(1)
		}
		return Counts{"done": 1}, nil
	})
}

func allAgents(c func(name string) Cycle) map[string]Cycle {
	m := map[string]Cycle{}
	for _, n := range Pipeline {
		m[n] = c(n)
	}
	return m
}

func TestAskRunsTheCycleAndLogsIt(t *testing.T) {
	var n atomic.Int64
	tt := startTree(t, map[string]Cycle{Ops: okCycle(&n)}, Supervision{})
	res, err := tt.engine.Ask(context.Background(), Ops, db.TriggerManual, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != db.RunOK || res.Counts["done"] != 1 || n.Load() != 1 {
		t.Fatalf("result %+v, runs %d", res, n.Load())
	}
	runs, _, err := tt.store.ListAgentRuns(context.Background(), db.ListQuery{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs = %v, %v", runs, err)
	}
	if r := runs[0]; r.Agent != Ops || r.Trigger != db.TriggerManual || r.Outcome != db.RunOK || r.FinishedAt == nil || r.Message != "done=1" {
		t.Errorf("logged run = %+v", r)
	}
	st, _ := tt.engine.State(Ops)
	if st.Runs != 1 || st.State != StateIdle {
		t.Errorf("state = %+v", st)
	}
	if _, err := tt.engine.Ask(context.Background(), "nope", db.TriggerManual, time.Second); !errors.Is(err, ErrUnknownAgent) {
		t.Errorf("unknown agent: %v", err)
	}
}

func TestFailedCycleIsRecordedNotFatal(t *testing.T) {
	tt := startTree(t, map[string]Cycle{Billing: CycleFunc(func(context.Context) (Counts, error) {
		return Counts{"invoiced": 0}, errors.New("stripe unreachable")
	})}, Supervision{})
	res, err := tt.engine.Ask(context.Background(), Billing, db.TriggerManual, 5*time.Second)
	if err == nil || res.Outcome != db.RunFailed {
		t.Fatalf("res %+v err %v", res, err)
	}
	st, _ := tt.engine.State(Billing)
	if st.State != StateIdle || st.Failures != 1 || st.LastError != "stripe unreachable" || st.Restarts != 0 {
		t.Errorf("state = %+v", st)
	}
}

// A busy agent makes Ask time out with a clear error instead of blocking.
func TestAskOnBusyAgentTimesOut(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	tt := startTree(t, map[string]Cycle{Ops: CycleFunc(func(ctx context.Context) (Counts, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})}, Supervision{})
	go func() { _, _ = tt.engine.Ask(context.Background(), Ops, db.TriggerManual, 10*time.Second) }()
	receive(t, started, "the first run to start")
	_, err := tt.engine.Ask(context.Background(), Ops, db.TriggerManual, 50*time.Millisecond)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	close(release)
}

// Stop, Start and Restart go through the supervisor; a stopped agent is
// refused at once, and queued messages survive a restart.
func TestStopStartRestart(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	tt := startTree(t, map[string]Cycle{Ops: CycleFunc(func(ctx context.Context) (Counts, error) {
		if calls.Add(1) == 1 {
			select { // the first run blocks until the restart cancels it
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return Counts{"n": int(calls.Load())}, nil
	}), Billing: okCycle(nil)}, Supervision{})
	ctx := context.Background()

	if err := tt.engine.Stop(ctx, Billing); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := tt.engine.Ask(ctx, Billing, db.TriggerManual, 5*time.Second); !errors.Is(err, ErrStopped) || time.Since(start) > time.Second {
		t.Fatalf("ask on a stopped agent: %v after %s", err, time.Since(start))
	}
	if err := tt.engine.Start(ctx, Billing); err != nil {
		t.Fatal(err)
	}
	tt.waitState(t, Billing, StateIdle)
	if _, err := tt.engine.Ask(ctx, Billing, db.TriggerManual, 5*time.Second); err != nil {
		t.Fatalf("ask after start: %v", err)
	}

	first := make(chan error, 1)
	second := make(chan RunResult, 1)
	go func() { _, err := tt.engine.Ask(ctx, Ops, db.TriggerManual, 10*time.Second); first <- err }()
	tt.waitState(t, Ops, StateRunning)
	go func() { r, _ := tt.engine.Ask(ctx, Ops, db.TriggerManual, 10*time.Second); second <- r }()
	waitFor(t, "the second message in the mailbox", func() bool { st, _ := tt.engine.State(Ops); return st.Mailbox > 0 })
	if err := tt.engine.Restart(ctx, Ops); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, first, "the answer to the cancelled run"); err == nil {
		t.Error("the cancelled run reported success")
	}
	r := receive(t, second, "the answer to the queued message")
	if r.Outcome != db.RunOK || r.Counts["n"] != 2 {
		t.Errorf("queued message after restart: %+v", r)
	}
	st, _ := tt.engine.State(Ops)
	if st.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st.Restarts)
	}
	runs, _, _ := tt.store.ListAgentRuns(ctx, db.ListQuery{Status: db.RunOK, Search: "restarted"})
	if len(runs) != 1 || runs[0].Trigger != db.TriggerRestart {
		t.Errorf("restart not in the cycle log: %+v", runs)
	}
}

// A panic in each agent's cycle restarts that agent: crashed, then idle,
// the stack recorded, siblings answering, and the message not retried.
func TestPanicRestartsOnlyThatAgent(t *testing.T) {
	for _, victim := range Pipeline {
		t.Run(victim, func(t *testing.T) {
			var panics atomic.Int64
			cycles := allAgents(func(name string) Cycle {
				if name != victim {
					return okCycle(nil)
				}
				return CycleFunc(func(context.Context) (Counts, error) {
					if panics.Add(1) == 1 {
						panic("boom in " + name)
					}
					return Counts{"ok": 1}, nil
				})
			})
			tt := startTree(t, cycles, Supervision{FailureBackoff: time.Second})
			ctx := context.Background()
			res, err := tt.engine.Ask(ctx, victim, db.TriggerManual, 5*time.Second)
			if !errors.Is(err, ErrPanicked) || res.Outcome != db.RunPanicked {
				t.Fatalf("ask: %+v %v", res, err)
			}
			seen := tt.waitState(t, victim, StateIdle)
			if len(seen) < 2 || seen[len(seen)-2] != StateCrashed {
				t.Errorf("states seen %v, want crashed then idle", seen)
			}
			st, _ := tt.engine.State(victim)
			if st.Restarts != 1 || st.Failures != 1 || st.Stack == "" || st.LastError != "panic: boom in "+victim {
				t.Errorf("state after restart = %+v", st)
			}
			for _, sib := range Pipeline {
				if err := tt.engine.Ping(ctx, sib, 5*time.Second); err != nil {
					t.Errorf("%s does not answer: %v", sib, err)
				}
			}
			res, err = tt.engine.Ask(ctx, victim, db.TriggerManual, 5*time.Second)
			if err != nil || res.Counts["ok"] != 1 || panics.Load() != 2 {
				t.Errorf("after restart: %+v %v (cycle ran %d times)", res, err, panics.Load())
			}
			runs, _, _ := tt.store.ListAgentRuns(ctx, db.ListQuery{Status: db.RunPanicked})
			if len(runs) != 1 || runs[0].Agent != victim {
				t.Errorf("panicked runs = %+v", runs)
			}
		})
	}
}

// An agent that keeps crashing backs off; its siblings keep answering, Ask
// refuses it at once, and it comes back idle after the backoff.
func TestBackoffDoesNotStallSiblings(t *testing.T) {
	tt := startTree(t, map[string]Cycle{Ops: okCycle(nil), Billing: okCycle(nil)},
		Supervision{FailureThreshold: 1, FailureDecay: 60, FailureBackoff: 300 * time.Millisecond})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := tt.engine.InjectPanic(ctx, Ops); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			tt.waitState(t, Ops, StateIdle)
		}
	}
	tt.waitState(t, Ops, StateBackoff)
	if _, err := tt.engine.Ask(ctx, Ops, db.TriggerManual, 5*time.Second); !errors.Is(err, ErrBackoff) {
		t.Errorf("ask during backoff: %v", err)
	}
	if _, err := tt.engine.Ask(ctx, Billing, db.TriggerManual, 5*time.Second); err != nil {
		t.Errorf("sibling during backoff: %v", err)
	}
	tt.waitState(t, Ops, StateIdle)
	if err := tt.engine.Ping(ctx, Ops, 5*time.Second); err != nil {
		t.Errorf("after backoff: %v", err)
	}
}

func TestBusDropsSlowSubscribers(t *testing.T) {
	b := NewBus()
	slow := b.Subscribe(1)
	fast := b.Subscribe(10)
	var wg sync.WaitGroup
	wg.Add(1)
	got := 0
	go func() {
		defer wg.Done()
		for range fast.C {
			got++
		}
	}()
	for i := 0; i < 5; i++ {
		b.Publish(Event{Kind: EventDataChanged})
	}
	if _, ok := <-slow.C; !ok {
		t.Fatal("slow subscriber got nothing")
	}
	if _, ok := <-slow.C; ok || !slow.Dropped() {
		t.Error("slow subscriber was not dropped")
	}
	if b.Subscribers() != 1 {
		t.Errorf("subscribers = %d", b.Subscribers())
	}
	b.Close()
	wg.Wait()
	if got != 5 {
		t.Errorf("fast subscriber got %d of 5", got)
	}
}
