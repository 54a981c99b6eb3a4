package agents

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// The registry is the one list of agents: unique names, each with a title,
// and Pipeline is its names in order.
func TestRegistryIsTheListOfAgents(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range Registry {
		if a.Name == "" || a.Title == "" || seen[a.Name] {
			t.Errorf("registry entry %+v: want a unique name and a title", a)
		}
		seen[a.Name] = true
		if got, ok := Lookup(a.Name); !ok || got != a {
			t.Errorf("Lookup(%q) = %+v, %v", a.Name, got, ok)
		}
	}
	if want := []string{LeadSource, BizDev, Replies, Onboarding, Ops, Billing, Collections}; !slices.Equal(Pipeline, want) {
		t.Errorf("Pipeline = %v, want %v", Pipeline, want)
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup found an agent outside the registry")
	}
}

// An engine that must run the whole registry refuses an agent without a
// cycle, and any engine refuses a cycle for a name outside the registry:
// nothing is skipped silently, and Serve fails at once with the reason.
func TestEngineRefusesAMissingOrUnknownCycle(t *testing.T) {
	missing := allAgents(func(string) Cycle { return okCycle(nil) })
	delete(missing, Ops)
	unknown := allAgents(func(string) Cycle { return okCycle(nil) })
	unknown["marketing"] = okCycle(nil)
	nilCycle := allAgents(func(string) Cycle { return okCycle(nil) })
	nilCycle[Billing] = nil
	for _, c := range []struct {
		name       string
		cycles     map[string]Cycle
		requireAll bool
		is         error
		says       string
	}{
		{"missing", missing, true, ErrNoCycle, `no cycle for the agent "ops" (Ops)`},
		{"unknown", unknown, true, ErrUnknownAgent, `unknown agent "marketing"`},
		{"unknown in a partial engine", map[string]Cycle{Ops: okCycle(nil), "marketing": okCycle(nil)}, false, ErrUnknownAgent, `"marketing"`},
		{"nil", nilCycle, true, ErrNoCycle, `"billing": its cycle is nil`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := NewEngine(EngineConfig{Store: openStore(t), Logger: quietLogger(), Now: time.Now, Cycles: c.cycles, Partial: !c.requireAll})
			err := e.Err()
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("Err() = %v, want %v saying %s", err, c.is, c.says)
			}
			if len(e.Names()) != 0 {
				t.Errorf("a refused engine runs %v", e.Names())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if serr := e.Serve(ctx); !errors.Is(serr, c.is) {
				t.Errorf("Serve = %v, want the refusal at once", serr)
			}
			if e.Ready(ctx) == nil {
				t.Error("a refused engine reports ready")
			}
		})
	}
}

// With every cycle the engine runs the whole registry, in its order.
func TestEngineRunsTheRegistryInOrder(t *testing.T) {
	e := NewEngine(EngineConfig{Store: openStore(t), Logger: quietLogger(), Now: time.Now,
		Cycles: allAgents(func(string) Cycle { return okCycle(nil) })})
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if got := e.Names(); !slices.Equal(got, Pipeline) {
		t.Errorf("Names() = %v, want %v", got, Pipeline)
	}
}
