package agents

import "time"

// Agent states as the control room shows them.
const (
	StateIdle    = "idle"
	StateRunning = "running"
	StateBackoff = "backoff"
	StateCrashed = "crashed"
	StateStopped = "stopped"
)

// AgentState is a snapshot of one agent's life under its supervisor.
type AgentState struct {
	Name        string
	State       string
	Runs        int64 // cycles started
	Failures    int64 // cycles that failed or panicked
	Restarts    int64 // times the service was started again after the first
	LastError   string
	LastErrorAt time.Time // when LastError happened
	Stack       string    // of the last panic
	LastRunAt   time.Time
	LastOutcome string
	Mailbox     int // messages waiting
}
