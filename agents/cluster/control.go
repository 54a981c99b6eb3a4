package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hossagent/hossagent/agents"
)

// The web layer's AgentControl and AutopilotControl (app/server.go), on
// every instance: the owner's calls go to its engine and coordinator, a
// standby's to the owner.

// answerMargin is added to a forwarded run's timeout: the owner answers
// after its own Ask gave up, and the answer has to travel.
const answerMargin = 2 * time.Second

// Ready is nil on a standby (it serves HTTP; the owner runs the agents) and
// the engine's readiness on the owner.
func (s *Service) Ready(ctx context.Context) error {
	if s.owning.Load() {
		return s.cfg.Engine.Ready(ctx)
	}
	return nil
}

// States are the agents' states on the owner: its engine's, or on a
// standby the last it heard from the owner, in pipeline order (none while
// it knows no owner).
func (s *Service) States() []agents.AgentState {
	if s.owning.Load() {
		return s.cfg.Engine.States()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]agents.AgentState, 0, len(s.states))
	for _, name := range agents.Pipeline {
		if st, ok := s.states[name]; ok {
			out = append(out, st)
		}
	}
	return out
}

// Ask runs one cycle of the agent on the owner and returns its result; a
// standby waits for the owner's answer up to timeout (plus its travel).
func (s *Service) Ask(ctx context.Context, name, trigger string, timeout time.Duration) (agents.RunResult, error) {
	if s.owning.Load() {
		return s.cfg.Engine.Ask(ctx, name, trigger, timeout)
	}
	a, err := s.forward(ctx, command{Op: opRun, Agent: name, Trigger: trigger, TimeoutMS: timeout.Milliseconds()}, timeout+answerMargin)
	if len(a.Results) == 1 {
		// The owner's Ask returned (result, error) as the engine's does: a
		// refusal (stopped, unknown) has no result error of its own.
		res := a.Results[0].decode()
		if err == nil {
			err = res.Err
		}
		return res, err
	}
	if errors.Is(err, errNoAnswer) {
		// The command went to the owner, which may be running the cycle
		// still: as the engine's own ErrNoAnswer says.
		err = fmt.Errorf("agent %s: %w: %v", name, agents.ErrNoAnswer, err)
	}
	return agents.RunResult{Agent: name}, err
}

// Restart replaces the agent's actor on the owner.
func (s *Service) Restart(ctx context.Context, name string) error {
	return s.act(ctx, opRestart, name, s.cfg.Engine.Restart)
}

// Stop stops the agent on the owner.
func (s *Service) Stop(ctx context.Context, name string) error {
	return s.act(ctx, opStop, name, s.cfg.Engine.Stop)
}

// Start starts the stopped agent on the owner.
func (s *Service) Start(ctx context.Context, name string) error {
	return s.act(ctx, opStart, name, s.cfg.Engine.Start)
}

// InjectPanic crashes the agent on the owner (development only, as the
// owner's engine decides).
func (s *Service) InjectPanic(ctx context.Context, name string) error {
	return s.act(ctx, opCrash, name, s.cfg.Engine.InjectPanic)
}

func (s *Service) act(ctx context.Context, op, name string, local func(context.Context, string) error) error {
	if s.owning.Load() {
		return local(ctx, name)
	}
	_, err := s.forward(ctx, command{Op: op, Agent: name}, s.cfg.CommandTimeout)
	return err
}

// Autopilot reads the persisted switch and interval: the store is the
// truth on every instance.
func (s *Service) Autopilot(ctx context.Context) (bool, time.Duration, error) {
	return s.cfg.Coordinator.Autopilot(ctx)
}

// SetAutopilot stores the switch (and interval) from any instance and tells
// every other, so that the owner's coordinator applies it at once and every
// control room re-renders.
func (s *Service) SetAutopilot(ctx context.Context, enabled bool, interval time.Duration) error {
	// The local coordinator stores it (and, on the owner, applies it).
	if err := s.cfg.Coordinator.SetAutopilot(ctx, enabled, interval); err != nil {
		return err
	}
	if err := s.notify(ctx, message{Kind: kindSettings}); err != nil {
		return fmt.Errorf("cluster: the autopilot setting is saved but the owner was not told (it applies it at its next change or restart): %w", err)
	}
	return nil
}

// RunFullCycle runs every stage now on the owner and returns their results;
// a standby waits for them up to FullCycleTimeout.
func (s *Service) RunFullCycle(ctx context.Context) ([]agents.RunResult, error) {
	if s.owning.Load() {
		return s.cfg.Coordinator.RunFullCycle(ctx)
	}
	a, err := s.forward(ctx, command{Op: opFullCycle}, s.cfg.FullCycleTimeout)
	if err != nil {
		return nil, err
	}
	out := make([]agents.RunResult, len(a.Results))
	for i, r := range a.Results {
		out[i] = r.decode()
	}
	return out, nil
}

// Running reports whether a full cycle runs. A standby does not know (the
// coordinator announces no cycle): false, and the owner's coordinator
// refuses a second cycle itself (ErrCycleRunning).
func (s *Service) Running() bool {
	if s.owning.Load() {
		return s.cfg.Coordinator.Running()
	}
	return false
}
