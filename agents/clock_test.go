package agents

import (
	"time"

	"github.com/hossagent/hossagent/agents/clocktest"
)

// testEpoch is where the tests' clocks start unless a test needs another
// instant: Monday 2 June 2025, 09:00 UTC.
var testEpoch = time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC)

// fakeClock is the tests' one clock (agents/clocktest, shared with the
// adapters and the app): it moves only when a test advances it.
type fakeClock = clocktest.Clock

// newFakeClock is a fake clock stopped at testEpoch.
func newFakeClock() *fakeClock { return clocktest.New(testEpoch) }
