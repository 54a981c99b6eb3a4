package cluster_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/cluster"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/db/pgtest"
)

// The tests run two or three instances in this process on one PostgreSQL
// database, each with its own store (pool), bus, engine and cluster
// service, as separate processes would have them. Their cycles are trivial
// and count where they ran.

// waitLimit bounds every wait: a regression fails instead of hanging.
const waitLimit = 20 * time.Second

type instance struct {
	id     string
	store  *db.DB
	bus    *agents.Bus
	events *agents.Subscription
	out    *cluster.Outbox
	coord  *agents.Coordinator
	svc    *cluster.Service
	runs   atomic.Int64 // cycles run by this instance's engine
	// recovered counts the takeover recoveries this instance ran.
	recovered atomic.Int64
	// reloads counts the follow-up reloads another instance's edit caused.
	reloads atomic.Int64
	cancel  context.CancelFunc
	done    chan error
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startInstance opens a store on url and runs an instance named id on it.
// Its takeover recovery only counts (TestOnlyTheNewOwnerRecovers runs the
// real one).
func startInstance(t *testing.T, url, id string) *instance {
	return startInstanceWith(t, url, id, false)
}

func startInstanceWith(t *testing.T, url, id string, realRecovery bool) *instance {
	t.Helper()
	ctx := context.Background()
	store, err := db.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	in := &instance{id: id, store: store, bus: agents.NewBus()}
	in.events = in.bus.Subscribe(100000)
	in.out = cluster.NewOutbox(in.bus)
	log := logger(t).With("test_instance", id)
	cycle := agents.CycleFunc(func(ctx context.Context) (agents.Counts, error) {
		in.runs.Add(1)
		return agents.Counts{"ran_on_" + id: 1}, nil
	})
	engine := agents.NewEngine(agents.EngineConfig{Store: store, Events: in.out, Logger: log, Now: time.Now,
		Cycles: map[string]agents.Cycle{agents.LeadSource: cycle, agents.BizDev: cycle}, Partial: true})
	in.coord = agents.NewCoordinator(agents.CoordinatorConfig{Engine: engine, Store: store, Events: in.out,
		Logger: log, Now: time.Now, Enabled: false, Interval: time.Hour})
	engine.Add(in.coord)
	cfg := cluster.Config{Store: store, Instance: id, Engine: engine, Coordinator: in.coord, Outbox: in.out, Logger: log,
		Recover: func(context.Context, time.Time) error { in.recovered.Add(1); return nil },
		Reload: map[string]func(context.Context) error{
			agents.EventSequencesEdited: func(context.Context) error { in.reloads.Add(1); return nil },
		}}
	if realRecovery {
		cfg.Recover = func(ctx context.Context, now time.Time) error {
			in.recovered.Add(1)
			return agents.RecoverAfterCrash(ctx, store, now, log)
		}
	}
	in.svc = cluster.New(cfg)
	runCtx, cancel := context.WithCancel(ctx)
	in.cancel, in.done = cancel, make(chan error, 1)
	go func() { in.done <- in.svc.Run(runCtx) }()
	t.Cleanup(func() { in.stop(t) })
	return in
}

// stop ends the instance as a shutdown does (idempotent).
func (in *instance) stop(t *testing.T) error {
	t.Helper()
	in.cancel()
	select {
	case err := <-in.done:
		in.done <- err // for a second stop
		return err
	case <-time.After(waitLimit):
		t.Errorf("instance %s did not stop", in.id)
		return nil
	}
}

// waitEvent reads in's bus until an event matches, and returns when it
// came; it fails the test after waitLimit.
func (in *instance) waitEvent(t *testing.T, what string, match func(agents.Event) bool) time.Time {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-in.events.C:
			if !ok {
				t.Fatalf("%s: bus closed while waiting for %s", in.id, what)
			}
			if match(e) {
				return time.Now()
			}
		case err := <-in.done:
			in.done <- err
			t.Fatalf("%s: its Run ended (%v) while waiting for %s", in.id, err, what)
		case <-timer.C:
			t.Fatalf("%s: no %s within %s", in.id, what, waitLimit)
		}
	}
}

// waitOwner waits until in knows owner as the agents' owner (and serves
// them, when it is the owner).
func (in *instance) waitOwner(t *testing.T, owner string) time.Time {
	t.Helper()
	if in.svc.Owner() == owner && (owner != in.id || in.svc.Owning()) {
		return time.Now()
	}
	return in.waitEvent(t, "owner "+owner, func(e agents.Event) bool {
		if owner == in.id {
			// The owner's own engine starting: its agents turn idle.
			return in.svc.Owning()
		}
		return in.svc.Owner() == owner
	})
}

// owners are the instances that serve the engine now.
func owners(ins ...*instance) []*instance {
	var out []*instance
	for _, in := range ins {
		if in.svc.Owning() {
			out = append(out, in)
		}
	}
	return out
}

// firstOwner waits until one of ins owns the agents, and returns it.
func firstOwner(t *testing.T, ins ...*instance) *instance {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		// Any event on the first instance's bus is a moment to look: the
		// owner's engine publishes its agents' start on every bus.
		if o := owners(ins...); len(o) == 1 {
			return o[0]
		} else if len(o) > 1 {
			t.Fatalf("%d instances own the agents at once", len(o))
		}
		select {
		case <-ins[0].events.C:
		case <-time.After(time.Until(deadline)):
			t.Fatal("no instance took the agents")
		}
	}
}

func TestOneOwnerAndTakeoverAfterItsSessionDies(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a := startInstance(t, url, "inst-a")
	b := startInstance(t, url, "inst-b")
	c := startInstance(t, url, "inst-c")
	all := []*instance{a, b, c}
	owner := firstOwner(t, all...)
	for _, in := range all {
		in.waitOwner(t, owner.id)
	}
	if o := owners(all...); len(o) != 1 {
		t.Fatalf("%d owners, want 1", len(o))
	}
	holder, ok, err := a.store.LockOwner(context.Background())
	if err != nil || !ok || holder.Instance != owner.id {
		t.Fatalf("LockOwner = %+v, %v, %v; want %s", holder, ok, err, owner.id)
	}

	// The owner's lock session dies (as when PostgreSQL drops the session
	// of an instance whose network was cut): another takes over.
	var rest []*instance
	for _, in := range all {
		if in != owner {
			rest = append(rest, in)
		}
	}
	killed := time.Now()
	if _, err := a.store.Bun().ExecContext(context.Background(), "SELECT pg_terminate_backend(?)", holder.PID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-owner.done:
		owner.done <- err
		if !errors.Is(err, cluster.ErrOwnershipLost) {
			t.Fatalf("the old owner's Run ended with %v, want ErrOwnershipLost", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("the old owner did not notice its loss")
	}
	noticed := time.Since(killed)
	if owner.svc.Owning() {
		t.Fatal("the old owner still serves the engine")
	}
	next := firstOwner(t, rest...)
	took := time.Since(killed)
	if took > 10*time.Second {
		t.Errorf("takeover took %s, want within the 10 s bound", took)
	}
	for _, in := range rest {
		in.waitOwner(t, next.id)
	}
	t.Logf("MEASURED: old owner noticed its lost session in %s; %s took over %s after the kill (bound 10 s, of which %s is the deliberate wait)",
		noticed.Round(time.Millisecond), next.id, took.Round(time.Millisecond), time.Second+1250*time.Millisecond)
	if o := owners(rest...); len(o) != 1 {
		t.Fatalf("%d owners after the takeover, want 1", len(o))
	}
	// Only the owners settled in-flight work, each once when it took over.
	for _, in := range all {
		want := int64(0)
		if in == owner || in == next {
			want = 1
		}
		if got := in.recovered.Load(); got != want {
			t.Errorf("%s ran the takeover recovery %d times, want %d", in.id, got, want)
		}
	}
}

func TestEventsCrossOnceToEveryInstance(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a := startInstance(t, url, "ev-a")
	b := startInstance(t, url, "ev-b")
	c := startInstance(t, url, "ev-c")
	owner := firstOwner(t, a, b, c)
	for _, in := range []*instance{a, b, c} {
		in.waitOwner(t, owner.id)
	}
	sent := time.Now()
	type arrival struct {
		id       string
		payments int
		latency  time.Duration
	}
	arrivals := make(chan arrival, 3)
	for _, in := range []*instance{a, b, c} {
		go func() {
			got := arrival{id: in.id}
			for e := range in.events.C {
				if e.Kind == agents.EventMoneyChanged && e.Subject == "invoice 7" {
					got.payments++
					got.latency = time.Since(sent)
				}
				if e.Subject == "marker" {
					break
				}
			}
			arrivals <- got
		}()
	}
	// A payment through b's webhook: b publishes it through its Outbox.
	b.out.Publish(agents.Event{Kind: agents.EventMoneyChanged, Subject: "invoice 7", At: sent})
	// One marker after it: when the marker arrived, a duplicate of the
	// payment sent before it would have too.
	b.out.Publish(agents.Event{Kind: agents.EventDataChanged, Subject: "marker", At: sent})
	for range 3 {
		select {
		case got := <-arrivals:
			if got.payments != 1 {
				t.Errorf("%s saw the payment %d times, want once", got.id, got.payments)
			}
			t.Logf("MEASURED: event published on ev-b reached %s's bus in %s", got.id, got.latency.Round(time.Microsecond))
		case <-time.After(waitLimit):
			t.Fatal("the marker did not reach every instance")
		}
	}
	// A long message still crosses, clipped to fit a notification.
	long := make([]byte, 20000)
	for i := range long {
		long[i] = 'x'
	}
	b.out.Publish(agents.Event{Kind: agents.EventCycleFinished, Agent: agents.Ops, Message: string(long)})
	a.waitEvent(t, "the long event", func(e agents.Event) bool {
		return e.Kind == agents.EventCycleFinished && e.Agent == agents.Ops && len(e.Message) > 500 && len(e.Message) < 8000
	})
}

func TestAutopilotSwitchOnStandbyReachesTheOwner(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a := startInstance(t, url, "ap-a")
	b := startInstance(t, url, "ap-b")
	owner := firstOwner(t, a, b)
	standby := a
	if owner == a {
		standby = b
	}
	standby.waitOwner(t, owner.id)
	ctx := context.Background()

	switched := time.Now()
	if err := standby.svc.SetAutopilot(ctx, true, 0); err != nil {
		t.Fatal(err)
	}
	// The owner's coordinator applies it at once: an autopilot switched on
	// runs a full cycle at once, whose first stage starts on the owner and
	// shows on every instance's bus.
	for _, in := range []*instance{owner, standby} {
		at := in.waitEvent(t, "the autopilot's first stage", func(e agents.Event) bool {
			return e.Kind == agents.EventCycleStarted && e.Agent == agents.LeadSource && e.Message == db.TriggerAutopilot
		})
		lat := at.Sub(switched)
		if lat > time.Second {
			t.Errorf("%s saw the autopilot's cycle %s after the switch, want within 1 s", in.id, lat)
		}
		on, _, err := in.svc.Autopilot(ctx)
		if err != nil || !on {
			t.Errorf("%s reads the autopilot as %v (%v), want on", in.id, on, err)
		}
		t.Logf("MEASURED: switch on %s → cycle started on the owner, seen on %s after %s", standby.id, in.id, lat.Round(time.Microsecond))
	}
	if standby.runs.Load() != 0 {
		t.Errorf("the standby ran %d cycles", standby.runs.Load())
	}

	// Off from the standby: every instance's bus hears of the change (the
	// control rooms re-render) within 1 s.
	switched = time.Now()
	if err := standby.svc.SetAutopilot(ctx, false, 0); err != nil {
		t.Fatal(err)
	}
	at := owner.waitEvent(t, "the settings change", func(e agents.Event) bool { return e.Kind == cluster.EventSettingsChanged })
	if lat := at.Sub(switched); lat > time.Second {
		t.Errorf("the owner heard of the switch %s after it, want within 1 s", lat)
	} else {
		t.Logf("MEASURED: switch off on %s → owner %s told after %s", standby.id, owner.id, lat.Round(time.Microsecond))
	}
	on, _, err := owner.coord.Autopilot(ctx)
	if err != nil || on {
		t.Errorf("the owner's coordinator reads %v (%v), want off", on, err)
	}
}

func TestCommandsFromAStandbyRunOnTheOwner(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a := startInstance(t, url, "cmd-a")
	b := startInstance(t, url, "cmd-b")
	owner := firstOwner(t, a, b)
	standby := a
	if owner == a {
		standby = b
	}
	standby.waitOwner(t, owner.id)
	ctx := context.Background()

	asked := time.Now()
	res, err := standby.svc.Ask(ctx, agents.LeadSource, db.TriggerManual, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURED: a run asked on the standby answered in %s", time.Since(asked).Round(time.Microsecond))
	if res.Outcome != db.RunOK || res.RunID == 0 || res.Counts["ran_on_"+owner.id] != 1 {
		t.Fatalf("result %+v, want ok, run on %s", res, owner.id)
	}
	if standby.runs.Load() != 0 || owner.runs.Load() != 1 {
		t.Fatalf("runs: standby %d, owner %d; want 0 and 1", standby.runs.Load(), owner.runs.Load())
	}

	// Stop from the standby: the owner's agent stops, the standby's States
	// show it, and a run is refused with the engine's own sentinel.
	// (Events are matched from the action on: the owner's snapshot at its
	// takeover may show an agent stopped before its actor started.)
	acted := time.Now()
	if err := standby.svc.Stop(ctx, agents.BizDev); err != nil {
		t.Fatal(err)
	}
	standby.waitEvent(t, "bizdev stopped", func(e agents.Event) bool {
		return e.Kind == agents.EventAgentState && e.Agent == agents.BizDev && e.State.State == agents.StateStopped && !e.At.Before(acted)
	})
	if st := stateOf(standby.svc.States(), agents.BizDev); st.State != agents.StateStopped {
		t.Errorf("the standby shows bizdev %q, want stopped", st.State)
	}
	if _, err := standby.svc.Ask(ctx, agents.BizDev, db.TriggerManual, time.Second); !errors.Is(err, agents.ErrStopped) {
		t.Errorf("run of a stopped agent from the standby: %v, want ErrStopped", err)
	}
	acted = time.Now()
	if err := standby.svc.Start(ctx, agents.BizDev); err != nil {
		t.Fatal(err)
	}
	standby.waitEvent(t, "bizdev idle", func(e agents.Event) bool {
		return e.Kind == agents.EventAgentState && e.Agent == agents.BizDev && e.State.State == agents.StateIdle && !e.At.Before(acted)
	})
	if st := stateOf(standby.svc.States(), agents.BizDev); st.State != agents.StateIdle {
		t.Errorf("the standby shows bizdev %q, want idle", st.State)
	}
	if _, err := standby.svc.Ask(ctx, "nobody", db.TriggerManual, time.Second); !errors.Is(err, agents.ErrUnknownAgent) {
		t.Errorf("run of an unknown agent: %v, want ErrUnknownAgent", err)
	}

	// A full cycle from the standby runs every stage on the owner.
	results, err := standby.svc.RunFullCycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d stages, want 2: %+v", len(results), results)
	}
	for _, r := range results {
		if r.Err != nil || r.Counts["ran_on_"+owner.id] != 1 {
			t.Errorf("stage %+v, want run on %s", r, owner.id)
		}
	}
	if standby.runs.Load() != 0 {
		t.Errorf("the standby ran %d cycles", standby.runs.Load())
	}
}

func stateOf(states []agents.AgentState, name string) agents.AgentState {
	for _, st := range states {
		if st.Name == name {
			return st
		}
	}
	return agents.AgentState{}
}

// TestShutdownHandsOver: an owner that stops cleanly resigns, and another
// takes over without waiting for a failed ping.
func TestShutdownHandsOver(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a := startInstance(t, url, "sd-a")
	b := startInstance(t, url, "sd-b")
	owner := firstOwner(t, a, b)
	standby := a
	if owner == a {
		standby = b
	}
	standby.waitOwner(t, owner.id)
	stopped := time.Now()
	if err := owner.stop(t); err != nil {
		t.Fatalf("a clean stop ended with %v", err)
	}
	standby.waitOwner(t, standby.id)
	t.Logf("MEASURED: after a clean shutdown %s took over in %s", standby.id, time.Since(stopped).Round(time.Millisecond))
}

// TestOnlyTheNewOwnerRecovers runs the real takeover recovery: a run left
// "running" by the owner stays so while a standby starts (a standby must
// never settle the owner's in-flight work), and is closed as interrupted by
// the instance that takes the agents over after the owner died.
func TestOnlyTheNewOwnerRecovers(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	a := startInstanceWith(t, url, "rec-a", true)
	a.waitOwner(t, a.id)
	// The owner's cycle in flight, as its cycle log shows it.
	inFlight, err := a.store.StartRun(ctx, agents.Ops, db.TriggerAutopilot)
	if err != nil {
		t.Fatal(err)
	}
	b := startInstanceWith(t, url, "rec-b", true)
	b.waitOwner(t, a.id)
	if got := outcomeOf(t, b.store, inFlight.ID); got != db.RunRunning {
		t.Fatalf("after a standby started the owner's run is %q, want still running", got)
	}
	holder, ok, err := b.store.LockOwner(ctx)
	if err != nil || !ok {
		t.Fatalf("LockOwner: %+v %v %v", holder, ok, err)
	}
	if _, err := b.store.Bun().ExecContext(ctx, "SELECT pg_terminate_backend(?)", holder.PID); err != nil {
		t.Fatal(err)
	}
	b.waitOwner(t, b.id)
	if got := outcomeOf(t, b.store, inFlight.ID); got != db.RunInterrupted {
		t.Errorf("after the takeover the dead owner's run is %q, want interrupted", got)
	}
	if a.recovered.Load() != 1 || b.recovered.Load() != 1 {
		t.Errorf("recoveries: %s %d, %s %d; want one each, at its takeover", a.id, a.recovered.Load(), b.id, b.recovered.Load())
	}
}

func outcomeOf(t *testing.T, store *db.DB, id int64) string {
	t.Helper()
	var run db.AgentRun
	if err := store.Bun().NewSelect().Model(&run).Where("id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return run.Outcome
}

// TestAnEditOnOneInstanceReloadsTheOthers: the web layer of b reloaded its
// own copy of the follow-ups and tells the peers; a reloads its copy before
// its bus (and its live pages) hear of it; b hears nothing back.
func TestAnEditOnOneInstanceReloadsTheOthers(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a := startInstance(t, url, "rl-a")
	b := startInstance(t, url, "rl-b")
	firstOwner(t, a, b)
	// The owner read its copies once as it took over; b, a standby since
	// its start, has not reloaded.
	before, bBefore := a.reloads.Load(), b.reloads.Load()
	b.out.PublishToPeers(agents.Event{Kind: agents.EventSequencesEdited, At: time.Now()})
	b.out.Publish(agents.Event{Kind: agents.EventDataChanged, Subject: "marker"})
	a.waitEvent(t, "the edit", func(e agents.Event) bool {
		if e.Kind == agents.EventSequencesEdited && a.reloads.Load() != before+1 {
			t.Errorf("a's bus heard of the edit after %d reloads, want %d before", a.reloads.Load(), before+1)
		}
		return e.Kind == agents.EventSequencesEdited
	})
	b.waitEvent(t, "the marker", func(e agents.Event) bool {
		if e.Kind == agents.EventSequencesEdited {
			t.Error("the instance that published to its peers heard the edit itself")
		}
		return e.Subject == "marker"
	})
	if b.reloads.Load() != bBefore {
		t.Errorf("b reloaded %d times after its own edit, want none (its web layer did)", b.reloads.Load()-bBefore)
	}
}
