package agents

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// manualTicker is a Ticker the test drives by hand.
type manualTicker struct {
	c        chan time.Time
	interval chan time.Duration
}

func newManualTicker() *manualTicker {
	return &manualTicker{c: make(chan time.Time), interval: make(chan time.Duration, 10)}
}

func (m *manualTicker) ticker(d time.Duration) (<-chan time.Time, func()) {
	m.interval <- d
	return m.c, func() {}
}

// orderRecorder is a set of cycles that log their names in the order run.
type orderRecorder struct {
	mu    sync.Mutex
	order []string
}

func (o *orderRecorder) cycle(name string, gate <-chan struct{}, fail bool) Cycle {
	return CycleFunc(func(ctx context.Context) (Counts, error) {
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		o.mu.Lock()
		o.order = append(o.order, name)
		o.mu.Unlock()
		if fail {
			return nil, errors.New(name + " failed")
		}
		return Counts{}, nil
	})
}

func (o *orderRecorder) got() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.order...)
}

func startCoordinator(t *testing.T, tt *testTree, ticker *manualTicker, enabled bool) *Coordinator {
	t.Helper()
	c := NewCoordinator(CoordinatorConfig{Engine: tt.engine, Store: tt.store, Events: tt.bus, Logger: quietLogger(),
		Now: time.Now, Ticker: ticker.ticker, Enabled: enabled, Interval: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func (tt *testTree) waitEvent(t *testing.T, kind, agent string) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-tt.events.C:
			if ev.Kind == kind && (agent == "" || ev.Agent == agent) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for %q", kind, agent)
		}
	}
}

// The first tick comes at start; the five stages run in order; a failed
// stage does not stop the later ones; a tick during a cycle is skipped and
// logged; every stage is in the cycle log with the autopilot trigger.
func TestAutopilotOrderFailuresAndOverlap(t *testing.T) {
	rec := &orderRecorder{}
	gate := make(chan struct{})
	cycles := allAgents(func(name string) Cycle {
		switch name {
		case LeadSource:
			return rec.cycle(name, gate, false)
		case Onboarding:
			return rec.cycle(name, nil, true)
		}
		return rec.cycle(name, nil, false)
	})
	tt := startTree(t, cycles, Supervision{})
	ticker := newManualTicker()
	c := startCoordinator(t, tt, ticker, true)
	if d := receive(t, ticker.interval, "the ticker's interval"); d != time.Minute {
		t.Fatalf("interval %s", d)
	}
	// The first tick is running (held at the gate). A second tick overlaps.
	tt.waitEvent(t, EventCycleStarted, LeadSource)
	ticker.c <- time.Now()
	tt.waitEvent(t, EventTickSkipped, CoordinatorName)
	if _, err := c.RunFullCycle(context.Background()); !errors.Is(err, ErrCycleRunning) {
		t.Errorf("manual full cycle during a tick: %v", err)
	}
	close(gate)
	tt.waitEvent(t, EventCycleFinished, Collections)
	want := []string{LeadSource, BizDev, Replies, Onboarding, Ops, Billing, Collections}
	if got := rec.got(); !slices.Equal(got, want) {
		t.Fatalf("stages ran %v, want %v", got, want)
	}
	ctx := context.Background()
	runs, _, _ := tt.store.ListAgentRuns(ctx, db.ListQuery{PerPage: 50})
	outcomes := map[string]string{}
	for _, r := range runs {
		outcomes[r.Agent] = r.Outcome
		if r.Trigger != db.TriggerAutopilot {
			t.Errorf("run %s trigger %s", r.Agent, r.Trigger)
		}
	}
	if outcomes[Onboarding] != db.RunFailed || outcomes[Billing] != db.RunOK || outcomes[CoordinatorName] != db.RunSkipped {
		t.Errorf("cycle log outcomes %v", outcomes)
	}
	// A manual full cycle runs the same stages once more, in order.
	waitFor(t, "the autopilot's full cycle to return", func() bool { return !c.Running() })
	results, err := c.RunFullCycle(ctx)
	if err != nil || len(results) != len(want) || results[slices.Index(want, Onboarding)].Outcome != db.RunFailed || results[slices.Index(want, Billing)].Outcome != db.RunOK {
		t.Fatalf("manual cycle: %+v %v", results, err)
	}
	if got := rec.got(); !slices.Equal(got[len(want):], want) {
		t.Errorf("manual stages %v", got[len(want):])
	}
}

// A stopped agent's stage is skipped and logged; the later stages run.
func TestStoppedStageIsSkipped(t *testing.T) {
	rec := &orderRecorder{}
	tt := startTree(t, allAgents(func(name string) Cycle { return rec.cycle(name, nil, false) }), Supervision{})
	ctx := context.Background()
	if err := tt.engine.Stop(ctx, BizDev); err != nil {
		t.Fatal(err)
	}
	c := NewCoordinator(CoordinatorConfig{Engine: tt.engine, Store: tt.store, Logger: quietLogger(), Now: time.Now, Interval: time.Minute})
	results, err := c.RunFullCycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if results[1].Outcome != db.RunSkipped || !errors.Is(results[1].Err, ErrStopped) {
		t.Errorf("stopped stage result %+v", results[1])
	}
	if got := rec.got(); !slices.Equal(got, []string{LeadSource, Replies, Onboarding, Ops, Billing, Collections}) {
		t.Errorf("stages ran %v", got)
	}
}

// The switch and the interval are persisted and picked up at once.
func TestAutopilotSettingsPersist(t *testing.T) {
	rec := &orderRecorder{}
	tt := startTree(t, allAgents(func(name string) Cycle { return rec.cycle(name, nil, false) }), Supervision{})
	ticker := newManualTicker()
	c := startCoordinator(t, tt, ticker, false)
	ctx := context.Background()
	if on, iv, _ := c.Autopilot(ctx); on || iv != time.Minute {
		t.Fatalf("defaults: %v %s", on, iv)
	}
	if err := c.SetAutopilot(ctx, true, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := receive(t, ticker.interval, "the ticker's interval"); d != 10*time.Second {
		t.Errorf("ticker interval %s", d)
	}
	tt.waitEvent(t, EventCycleFinished, Billing) // the first tick after switching on
	other := NewCoordinator(CoordinatorConfig{Engine: tt.engine, Store: tt.store, Logger: quietLogger(), Now: time.Now, Interval: time.Minute})
	if on, iv, _ := other.Autopilot(ctx); !on || iv != 10*time.Second {
		t.Errorf("persisted: %v %s", on, iv)
	}
	if err := c.SetAutopilot(ctx, true, time.Millisecond); err == nil {
		t.Error("an interval below 1s was accepted")
	}
}
