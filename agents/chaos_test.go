package agents

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/db"
)

// chaos wraps a cycle so that it panics, at random, before it runs or after
// its work is committed: a crash at either edge of a cycle.
type chaos struct {
	mu    sync.Mutex
	rnd   *rand.Rand
	share float64
	inner Cycle
	name  string
	count *int
}

func (c *chaos) Run(ctx context.Context) (Counts, error) {
	c.mu.Lock()
	before, after := c.rnd.Float64() < c.share, c.rnd.Float64() < c.share
	if before || after {
		*c.count++
	}
	c.mu.Unlock()
	if before {
		panic("chaos: " + c.name + " crashed before its cycle")
	}
	counts, err := c.inner.Run(ctx)
	if after {
		panic("chaos: " + c.name + " crashed after its cycle")
	}
	return counts, err
}

// 200 autopilot ticks of the real pipeline, with crashes injected at random
// into every agent, leave a database that passes every invariant, and the
// business still moved: leads became customers, work was done and billed.
func TestInvariantsHoldAfterRandomTicksAndCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("long-running: 200 ticks")
	}
	clock := clocktest.New(time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "chaos.db"), db.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rnd := rand.New(rand.NewPCG(42, 7))
	bus := NewBus()
	env := Env{Now: clock.Now, Random: chachaReader(rnd), Rand: NewLockedRand(rand.New(rand.NewPCG(1, 2))), Events: bus}
	noSleep := func(context.Context, time.Duration) error { return nil }

	catalogue := DefaultCatalogue("usd")
	cycles := map[string]Cycle{
		LeadSource: NewLeadSourceCycle(store, env, NewSyntheticLeads(env.Rand), LeadSourceOptions{MaxPerCycle: 4}),
		BizDev: NewBizDevCycle(store, env, NewDryRunMailer(), BizDevOptions{MaxPerCycle: 5, MaxPerHour: 50, MaxPerDay: 200,
			Sleep: noSleep, From: "out@hossagent.example", SenderName: "Hoss", BaseURL: "http://localhost:8080"}),
		Onboarding: Sequence(NewProspectSimulator(store, env, SimulatorOptions{MinDelay: time.Minute, ReplyShare: 0.5}),
			NewOnboardingCycle(store, env, catalogue, OnboardingOptions{})),
		Ops:     NewOpsCycle(store, env, &BuiltinExecutor{CostCents: 37}, OpsOptions{LeaseTimeout: 5 * time.Minute}),
		Billing: NewBillingCycle(store, env, DisabledPayments{}, BillingOptions{Currency: "usd", BaseURL: "http://localhost:8080"}),
	}
	crashes := 0
	for name, c := range cycles {
		cycles[name] = &chaos{rnd: rand.New(rand.NewPCG(uint64(len(name)), 99)), share: 0.08, inner: c, name: name, count: &crashes}
	}
	engine := NewEngine(EngineConfig{Store: store, Events: bus, Logger: quietLogger(), Now: clock.Now,
		Spec: Supervision{FailureThreshold: 1e6}, Cycles: cycles, Partial: true})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- engine.Serve(runCtx) }()
	defer func() { cancel(); <-done }()
	coord := NewCoordinator(CoordinatorConfig{Engine: engine, Store: store, Logger: quietLogger(), Now: clock.Now,
		Interval: time.Minute, StageTimeout: 30 * time.Second})

	for tick := 0; tick < 200; tick++ {
		results, err := coord.RunFullCycle(ctx)
		if err != nil {
			t.Fatalf("tick %d: %v", tick, err)
		}
		for _, r := range results {
			if r.Outcome == db.RunSkipped {
				t.Fatalf("tick %d: stage %s skipped: %v", tick, r.Agent, r.Err)
			}
		}
		clock.Advance(time.Minute)
		if tick%50 == 49 {
			assertInvariants(t, store, clock.Now(), fmt.Sprintf("after tick %d", tick+1))
		}
	}
	// A last clean pass bills everything still unbilled, then prove the
	// invariants and that the business really moved.
	for name := range cycles {
		cycles[name].(*chaos).share = 0
	}
	for i := 0; i < 3; i++ {
		clock.Advance(10 * time.Minute)
		if _, err := coord.RunFullCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	assertInvariants(t, store, clock.Now(), "at the end")
	stats, err := store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if crashes < 20 {
		t.Errorf("only %d crashes were injected", crashes)
	}
	if stats.Customers == 0 || stats.TasksByStatus[db.TaskDone] == 0 || stats.Invoices == 0 || len(stats.Unbilled) != 0 {
		t.Errorf("pipeline did not move: customers %d, done tasks %d, invoices %d, unbilled %v",
			stats.Customers, stats.TasksByStatus[db.TaskDone], stats.Invoices, stats.Unbilled)
	}
	t.Logf("%d crashes; %d leads, %d customers, %d done tasks, %d invoices, profit %s",
		crashes, stats.Leads, stats.Customers, stats.TasksByStatus[db.TaskDone], stats.Invoices, stats.Profit.Format("usd"))
}

func assertInvariants(t *testing.T, store *db.DB, now time.Time, when string) {
	t.Helper()
	results, err := store.CheckInvariants(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("%s: invariant %d (%s) violated: %v", when, r.Number, r.Name, r.Violations)
		}
	}
}

// chachaReader is a deterministic byte source for tokens in tests.
func chachaReader(r *rand.Rand) *rand.ChaCha8 {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(r.IntN(256))
	}
	return rand.NewChaCha8(seed)
}
