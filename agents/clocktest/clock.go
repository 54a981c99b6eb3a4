// Package clocktest is the tests' one hand-moved clock, shared by the
// agents, their adapters and the app, so that no test package keeps its own.
// Code under test takes a func() time.Time (or an Env.Now); a test passes
// Clock.Now and moves time with Advance or Set, never by sleeping.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a clock that moves only when a test moves it. It is safe for
// concurrent use: actors read it while the test advances it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New is a clock stopped at start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t, forward or back.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
