package cluster

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// A snapshot of the agents, one of them with a panic stack, fits the
// notifications it is sent in.
func TestSnapshotWithAStackFitsANotification(t *testing.T) {
	s := New(Config{Outbox: NewOutbox(agents.NewBus()), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Instance: "web-1"})
	now := time.Now()
	var evs []agents.Event
	for i, name := range agents.Pipeline {
		st := agents.AgentState{Name: name, State: "running", Runs: 1000, LastRunAt: now, LastOutcome: "ok", LastError: strings.Repeat("e", 300), LastErrorAt: now}
		if i == 0 {
			st.Stack = strings.Repeat("goroutine 1 [running]:\nmain.f()\n\t/src/x.go:10 +0x1d\n", 90) // ~4.7 KB, a modest panic stack
		}
		evs = append(evs, agents.Event{Kind: agents.EventAgentState, Agent: name, At: now, State: &st})
	}
	payload, _ := s.batch(message{Kind: kindEvents, Events: evs})
	if len(payload) > db.MaxNotifyPayload {
		t.Errorf("the snapshot is %d bytes: Notify refuses it, the standbys never get it", len(payload))
	}
}
