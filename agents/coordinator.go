package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hossagent/hossagent/db"
)

// Settings keys the coordinator persists, so the autopilot switch and its
// interval survive restarts.
const (
	SettingAutopilotEnabled  = "autopilot.enabled"
	SettingAutopilotInterval = "autopilot.interval"
)

// Coordinator name in the cycle log.
const CoordinatorName = "coordinator"

// ErrCycleRunning is returned when a full cycle is asked for while one runs.
var ErrCycleRunning = errors.New("a full cycle is already running")

// Ticker makes the autopilot's clock; tests replace it with a channel they
// drive by hand.
type Ticker func(d time.Duration) (c <-chan time.Time, stop func())

// RealTicker is time.NewTicker as a Ticker.
func RealTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// CoordinatorConfig builds a Coordinator.
type CoordinatorConfig struct {
	Engine *Engine
	Store  *db.DB
	Events Publisher
	Logger *slog.Logger
	Now    func() time.Time
	Ticker Ticker
	// Defaults for the persisted settings (from AUTOPILOT_ENABLED and
	// AUTOPILOT_INTERVAL) used until an admin changes them.
	Enabled  bool
	Interval time.Duration
	// StageTimeout bounds each stage's Ask (default 15 min).
	StageTimeout time.Duration
}

// Coordinator is the actor that owns the autopilot: a ticker, a first tick
// at start when enabled, the stages in Registry order, never two full cycles at
// once (an overlapping tick is skipped and logged), and a failed stage never
// stopping the stages after it.
type Coordinator struct {
	cfg     CoordinatorConfig
	running atomic.Bool
	wake    chan struct{} // settings changed: re-read them
	wg      sync.WaitGroup
}

// NewCoordinator builds the coordinator; add it to the engine's tree.
func NewCoordinator(c CoordinatorConfig) *Coordinator {
	if c.Ticker == nil {
		c.Ticker = RealTicker
	}
	if c.StageTimeout == 0 {
		c.StageTimeout = 15 * time.Minute
	}
	return &Coordinator{cfg: c, wake: make(chan struct{}, 1)}
}

// String names the service in suture's events.
func (c *Coordinator) String() string { return CoordinatorName }

// Autopilot reads the persisted switch and interval.
func (c *Coordinator) Autopilot(ctx context.Context) (enabled bool, interval time.Duration, err error) {
	s := c.cfg.Store
	on, err := s.Setting(ctx, SettingAutopilotEnabled, strconv.FormatBool(c.cfg.Enabled))
	if err != nil {
		return false, 0, err
	}
	iv, err := s.Setting(ctx, SettingAutopilotInterval, c.cfg.Interval.String())
	if err != nil {
		return false, 0, err
	}
	enabled, _ = strconv.ParseBool(on)
	interval, perr := time.ParseDuration(iv)
	if perr != nil || interval < time.Second {
		interval = c.cfg.Interval
	}
	return enabled, interval, nil
}

// SetAutopilot persists the switch and, when interval > 0, the interval, and
// makes the running coordinator pick them up.
func (c *Coordinator) SetAutopilot(ctx context.Context, enabled bool, interval time.Duration) error {
	if interval != 0 && (interval < time.Second || interval > 24*time.Hour) {
		return fmt.Errorf("autopilot interval %s is out of range: want 1s to 24h", interval)
	}
	if err := c.cfg.Store.SetSetting(ctx, SettingAutopilotEnabled, strconv.FormatBool(enabled)); err != nil {
		return err
	}
	if interval != 0 {
		if err := c.cfg.Store.SetSetting(ctx, SettingAutopilotInterval, interval.String()); err != nil {
			return err
		}
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// Serve runs the autopilot loop until ctx ends.
func (c *Coordinator) Serve(ctx context.Context) error {
	defer c.wg.Wait() // a full cycle in flight finishes before the service ends
	for {
		enabled, interval, err := c.Autopilot(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("coordinator: reading autopilot settings: %w", err)
		}
		if !enabled {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.wake:
				continue
			}
		}
		if err := c.autopilot(ctx, interval); err != nil {
			return err
		}
	}
}

// autopilot ticks at interval, with a first tick at once, until the context
// ends (error) or the settings change (nil).
func (c *Coordinator) autopilot(ctx context.Context, interval time.Duration) error {
	ticks, stop := c.cfg.Ticker(interval)
	defer stop()
	c.tick(ctx, db.TriggerAutopilot)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.wake:
			return nil
		case <-ticks:
			// The stored settings are read again at every tick: with
			// several instances the switch may be turned off elsewhere and
			// the wake-up lost (agents/cluster); a tick never runs against
			// a switch that is off.
			enabled, now, err := c.Autopilot(ctx)
			if err != nil || !enabled || now != interval {
				return nil // Serve reads them again (and reports an error)
			}
			c.tick(ctx, db.TriggerAutopilot)
		}
	}
}

// tick starts a full cycle in the background unless one is running; a tick
// that would overlap is skipped and logged.
func (c *Coordinator) tick(ctx context.Context, trigger string) {
	if !c.running.CompareAndSwap(false, true) {
		c.logSkip(ctx)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.running.Store(false)
		c.runStages(ctx, trigger)
	}()
}

// RunFullCycle runs every stage now and waits for them. It refuses to
// start while another full cycle runs.
func (c *Coordinator) RunFullCycle(ctx context.Context) ([]RunResult, error) {
	if !c.running.CompareAndSwap(false, true) {
		return nil, ErrCycleRunning
	}
	defer c.running.Store(false)
	return c.runStages(ctx, db.TriggerManual), nil
}

// Running reports whether a full cycle is in progress.
func (c *Coordinator) Running() bool { return c.running.Load() }

// runStages asks each agent in pipeline order to run one cycle. A failed,
// stopped or crashed stage is recorded and the next stage still runs.
func (c *Coordinator) runStages(ctx context.Context, trigger string) []RunResult {
	names := c.cfg.Engine.Names() // the Registry's order
	results := make([]RunResult, 0, len(names))
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		res, err := c.cfg.Engine.Ask(ctx, name, trigger, c.cfg.StageTimeout)
		res.Agent = name
		if err != nil {
			res.Err = err
			if res.Outcome == "" {
				// The agent never ran the cycle (stopped, backing off, busy):
				// the skip is logged so the cycle log shows every stage.
				res.Outcome = db.RunSkipped
				c.logStage(ctx, name, trigger, err)
			}
			c.cfg.Logger.Warn("autopilot stage failed", "agent", name, "err", err)
		}
		results = append(results, res)
	}
	return results
}

func (c *Coordinator) logStage(ctx context.Context, agent, trigger string, cause error) {
	run, err := c.cfg.Store.StartRun(ctx, agent, trigger)
	if err == nil {
		err = c.cfg.Store.FinishRun(ctx, run, db.RunSkipped, "stage skipped: "+cause.Error(), nil)
	}
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Error("recording skipped stage", "agent", agent, "err", err)
	}
}

func (c *Coordinator) logSkip(ctx context.Context) {
	c.cfg.Logger.Warn("autopilot tick skipped: the previous full cycle is still running")
	c.logStage(ctx, CoordinatorName, db.TriggerAutopilot, errors.New("the previous full cycle is still running"))
	if c.cfg.Events != nil {
		c.cfg.Events.Publish(Event{Kind: EventTickSkipped, Agent: CoordinatorName, At: c.cfg.Now().UTC(),
			Message: "tick skipped: the previous full cycle is still running"})
	}
}
