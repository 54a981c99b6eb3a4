// Package agentstest is for tests only: it is the one test rig the vendor
// adapter packages (agents/smtp, agents/sendgrid, agents/stripe,
// agents/openai, agents/searchapi) share, so that none keeps its own copy.
// It opens a real SQLite store on a file in t.TempDir with a hand-moved
// clock, gives seeded concurrency-safe randomness, records events and checks
// the store's invariants when a test ends. Production code must not import
// it. Package agents' own internal tests keep their helpers in their
// _test.go files, because they cannot import a package that imports agents.
package agentstest

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/db"
)

// Epoch is the time every rig and world starts at (package agents'
// testEpoch).
var Epoch = time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC)

// Seed seeds the random stream of every World.
var Seed = [32]byte{'h', 'o', 's', 's'}

// QuietLogger is a logger that writes nowhere.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Rand makes a seeded math/rand/v2 source safe for concurrent tests; it
// serves as both the RandSource and the io.Reader of an agents.Env.
type Rand struct {
	mu  sync.Mutex
	r   *rand.Rand
	src *rand.ChaCha8
}

// NewRand is a Rand seeded with seed.
func NewRand(seed uint64) *Rand {
	var key [32]byte
	key[0] = byte(seed)
	return &Rand{r: rand.New(rand.NewPCG(seed, seed+1)), src: rand.NewChaCha8(key)}
}

// IntN returns a number in [0, n).
func (l *Rand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// Float64 returns a number in [0, 1).
func (l *Rand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// Read fills p with random bytes.
func (l *Rand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.src.Read(p)
}

// Stream is one seeded ChaCha8 stream, safe to share between goroutines,
// serving as both the RandSource and the io.Reader of an agents.Env.
type Stream struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

// NewStream is a Stream seeded with seed.
func NewStream(seed [32]byte) *Stream { return &Stream{r: rand.NewChaCha8(seed)} }

// Read fills p with random bytes.
func (l *Stream) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// IntN returns a number in [0, n).
func (l *Stream) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return rand.New(l.r).IntN(n)
}

// Float64 returns a number in [0, 1).
func (l *Stream) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return rand.New(l.r).Float64()
}

// Events is a Publisher that keeps every event.
type Events struct {
	mu     sync.Mutex
	events []agents.Event
}

// Publish keeps e.
func (r *Events) Publish(e agents.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Count is how many events of kind were published.
func (r *Events) Count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// Kinds counts the events by kind.
func (r *Events) Kinds() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, e := range r.events {
		out[e.Kind]++
	}
	return out
}

// Sleeps is a Sleep option that records the pauses and never sleeps.
type Sleeps struct {
	mu    sync.Mutex
	slept []time.Duration
}

// Sleep records d and returns ctx's error.
func (s *Sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slept = append(s.slept, d)
	return ctx.Err()
}

// Slept is a copy of the pauses recorded so far, in order.
func (s *Sleeps) Slept() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.slept...)
}

// Open opens the SQLite store at path with clock now, and closes it when the
// test ends.
func Open(t testing.TB, ctx context.Context, path string, now func() time.Time) *db.DB {
	t.Helper()
	s, err := db.Open(ctx, path, db.WithClock(now))
	if err != nil {
		t.Fatalf("db.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Count runs a COUNT query on store.
func Count(t testing.TB, ctx context.Context, store *db.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := store.Bun().NewRaw(query, args...).Scan(ctx, &n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// Run runs a cycle and fails the test on error.
func Run(t testing.TB, ctx context.Context, c agents.Cycle) agents.Counts {
	t.Helper()
	counts, err := c.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v (counts %v)", err, counts)
	}
	return counts
}

// WantCounts checks the named counts and nothing else.
func WantCounts(t testing.TB, got, want agents.Counts) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("count %q = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// RequireInvariants fails the test unless every invariant of store holds at
// now.
func RequireInvariants(t testing.TB, ctx context.Context, store *db.DB, now time.Time) {
	t.Helper()
	results, err := store.CheckInvariants(ctx, now)
	if err != nil {
		t.Fatalf("CheckInvariants: %v", err)
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("invariant %d (%s) broken: %q", r.Number, r.Name, r.Violations)
		}
	}
}

// Rig is package agents' outreach rig: a store on a fresh SQLite file with a
// settable clock, and the Env that goes with it.
type Rig struct {
	T      *testing.T
	Ctx    context.Context
	Store  *db.DB
	Path   string
	Clock  *clocktest.Clock
	Rand   *Rand
	Events *Events
}

// NewRig is a Rig at Epoch with randomness seeded 7.
func NewRig(t *testing.T) *Rig {
	t.Helper()
	r := &Rig{
		T: t, Ctx: context.Background(), Path: filepath.Join(t.TempDir(), db.FileName),
		Clock: clocktest.New(Epoch), Rand: NewRand(7), Events: &Events{},
	}
	r.Store = r.Open()
	return r
}

// Open opens (again, after a "restart") the rig's database file.
func (r *Rig) Open() *db.DB {
	r.T.Helper()
	return Open(r.T, r.Ctx, r.Path, r.Clock.Now)
}

// Env is the agents' environment over the rig's clock, randomness and events.
func (r *Rig) Env() agents.Env {
	return agents.Env{Now: r.Clock.Now, Random: r.Rand, Rand: r.Rand, Events: r.Events}
}

// AddLead stores a lead as a lead source would, with the clock advanced a
// second first so that creation order is unambiguous.
func (r *Rig) AddLead(name, email, company, niche string) *db.Lead {
	r.T.Helper()
	r.Clock.Advance(time.Second)
	in, err := agents.PrepareLead(agents.LeadCandidate{Name: name, Email: email, Company: company, Niche: niche}, "test")
	if err != nil {
		r.T.Fatalf("PrepareLead(%s): %v", email, err)
	}
	l, err := r.Store.CreateLead(r.Ctx, nil, in)
	if err != nil {
		r.T.Fatalf("CreateLead(%s): %v", email, err)
	}
	return l
}

// Messages are the stored messages of a lead, in order.
func (r *Rig) Messages(leadID int64) []db.Message {
	r.T.Helper()
	var ms []db.Message
	if err := r.Store.Bun().NewSelect().Model(&ms).Where("m.lead_id = ?", leadID).OrderExpr("m.id").Scan(r.Ctx); err != nil {
		r.T.Fatalf("read messages of lead %d: %v", leadID, err)
	}
	return ms
}

// Count runs a COUNT query.
func (r *Rig) Count(query string, args ...any) int {
	r.T.Helper()
	return Count(r.T, r.Ctx, r.Store, query, args...)
}

// Run runs a cycle and fails the test on error.
func (r *Rig) Run(c agents.Cycle) agents.Counts {
	r.T.Helper()
	return Run(r.T, r.Ctx, c)
}

// World is package agents' fulfilment world: a real SQLite store on a
// temporary file and the Env the cycles run with, sharing one clock. All
// nine invariants must hold when the test ends.
type World struct {
	T      *testing.T
	Ctx    context.Context
	Store  *db.DB
	Clock  *clocktest.Clock
	Env    agents.Env
	Events *Events
}

// NewWorld is a World at Epoch with randomness from Seed.
func NewWorld(t *testing.T) *World {
	t.Helper()
	clock := clocktest.New(Epoch)
	ctx := context.Background()
	w := &World{T: t, Ctx: ctx, Clock: clock, Events: &Events{}}
	w.Store = Open(t, ctx, filepath.Join(t.TempDir(), db.FileName), clock.Now)
	random := NewStream(Seed)
	w.Env = agents.Env{Now: clock.Now, Random: random, Rand: random, Events: w.Events}
	t.Cleanup(w.RequireInvariants) // runs before the store's close
	return w
}

// RequireInvariants fails the test unless all nine invariants hold now.
func (w *World) RequireInvariants() {
	w.T.Helper()
	results, err := w.Store.CheckInvariants(w.Ctx, w.Clock.Now())
	if err != nil {
		w.T.Fatalf("CheckInvariants: %v", err)
	}
	if len(results) != 9 {
		w.T.Fatalf("CheckInvariants returned %d results, want 9", len(results))
	}
	RequireInvariants(w.T, w.Ctx, w.Store, w.Clock.Now())
}

// LoadTask reads a task as stored.
func (w *World) LoadTask(id int64) *db.Task {
	w.T.Helper()
	t := new(db.Task)
	if err := w.Store.Bun().NewSelect().Model(t).Where("t.id = ?", id).Scan(w.Ctx); err != nil {
		w.T.Fatalf("load task %d: %v", id, err)
	}
	return t
}

// Run runs a cycle and fails the test on error.
func (w *World) Run(c agents.Cycle) agents.Counts {
	w.T.Helper()
	return Run(w.T, w.Ctx, c)
}

// BizDevOptions are generous caps, a 1–3 s gap between sends and s as the
// sleep.
func BizDevOptions(s *Sleeps) agents.BizDevOptions {
	return agents.BizDevOptions{
		MaxPerCycle: 10, MaxPerHour: 50, MaxPerDay: 200,
		SendDelayMin: time.Second, SendDelayMax: 3 * time.Second, Sleep: s.Sleep,
		From: "outreach@hossagent.example", SenderName: "Hoss Research", Offer: "research briefs in days.",
		Signature: "Sam from Hoss Research", PostalAddress: "1 Test Street, Springfield", BaseURL: "https://hoss.example/",
	}
}

// BizDev is the BizDev cycle over the rig, sending through m.
func (r *Rig) BizDev(m agents.Mailer, opts agents.BizDevOptions) *agents.BizDevCycle {
	return agents.NewBizDevCycle(r.Store, r.Env(), m, opts)
}

// Lead reads lead id as stored.
func (r *Rig) Lead(id int64) db.Lead {
	r.T.Helper()
	var l db.Lead
	if err := r.Store.Bun().NewSelect().Model(&l).Where("l.id = ?", id).Scan(r.Ctx); err != nil {
		r.T.Fatalf("lead %d: %v", id, err)
	}
	return l
}
