package agents

import (
	"sync"
	"time"
)

// testEpoch is where the tests' clocks start unless a test needs another
// instant: Monday 2 June 2025, 09:00 UTC.
var testEpoch = time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC)

// newFakeClock is a fake clock stopped at testEpoch.
func newFakeClock() *fakeClock { return &fakeClock{now: testEpoch} }

// fakeClock is the tests' one clock: it moves only when a test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
