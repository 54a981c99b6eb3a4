package smtp

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

// The pieces of package agents' outreach rig that the tests running BizDev
// over a real SMTP server need (agents' own test helpers are out of reach
// here): a store on a fresh SQLite file, the shared fake clock, a seeded
// random source and an event recorder.

// testEpoch is the time every rig starts at.
var testEpoch = time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// outreachRand makes a seeded math/rand/v2 source safe for the concurrent
// tests; it serves as both RandSource and the io.Reader of Env.Random.
type outreachRand struct {
	mu  sync.Mutex
	r   *rand.Rand
	src *rand.ChaCha8
}

func newOutreachRand(seed uint64) *outreachRand {
	var key [32]byte
	key[0] = byte(seed)
	return &outreachRand{r: rand.New(rand.NewPCG(seed, seed+1)), src: rand.NewChaCha8(key)}
}

func (l *outreachRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

func (l *outreachRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

func (l *outreachRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.src.Read(p)
}

// outreachEvents is a Publisher that keeps every event.
type outreachEvents struct {
	mu     sync.Mutex
	events []agents.Event
}

func (r *outreachEvents) Publish(e agents.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *outreachEvents) count(kind string) int {
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

// outreachRig is a store on a fresh SQLite file with a settable clock, and
// the Env that goes with it.
type outreachRig struct {
	t      *testing.T
	ctx    context.Context
	store  *db.DB
	path   string
	clock  *clocktest.Clock
	rnd    *outreachRand
	events *outreachEvents
}

func newOutreachRig(t *testing.T) *outreachRig {
	t.Helper()
	r := &outreachRig{
		t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), db.FileName),
		clock: clocktest.New(testEpoch), rnd: newOutreachRand(7), events: &outreachEvents{},
	}
	r.store = r.open()
	return r
}

// open opens (again, after a "restart") the rig's database file.
func (r *outreachRig) open() *db.DB {
	r.t.Helper()
	s, err := db.Open(r.ctx, r.path, db.WithClock(r.clock.Now))
	if err != nil {
		r.t.Fatalf("db.Open: %v", err)
	}
	r.t.Cleanup(func() { _ = s.Close() })
	return s
}

func (r *outreachRig) env() agents.Env {
	return agents.Env{Now: r.clock.Now, Random: r.rnd, Rand: r.rnd, Events: r.events}
}

// addLead stores a lead as a lead source would, with the clock advanced a
// second first so that creation order is unambiguous.
func (r *outreachRig) addLead(name, email, company, niche string) *db.Lead {
	r.t.Helper()
	r.clock.Advance(time.Second)
	in, err := agents.PrepareLead(agents.LeadCandidate{Name: name, Email: email, Company: company, Niche: niche}, "test")
	if err != nil {
		r.t.Fatalf("PrepareLead(%s): %v", email, err)
	}
	l, err := r.store.CreateLead(r.ctx, nil, in)
	if err != nil {
		r.t.Fatalf("CreateLead(%s): %v", email, err)
	}
	return l
}

func (r *outreachRig) messages(leadID int64) []db.Message {
	r.t.Helper()
	var ms []db.Message
	if err := r.store.Bun().NewSelect().Model(&ms).Where("m.lead_id = ?", leadID).OrderExpr("m.id").Scan(r.ctx); err != nil {
		r.t.Fatalf("read messages of lead %d: %v", leadID, err)
	}
	return ms
}

func (r *outreachRig) count(query string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.store.Bun().NewRaw(query, args...).Scan(r.ctx, &n); err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// outreachSleeps is an opts.Sleep that records and never sleeps.
type outreachSleeps struct {
	mu    sync.Mutex
	slept []time.Duration
}

func (s *outreachSleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slept = append(s.slept, d)
	return ctx.Err()
}

// bizdevOpts are generous caps, a 1–3 s gap and a sleep recorder.
func bizdevOpts(s *outreachSleeps) agents.BizDevOptions {
	return agents.BizDevOptions{
		MaxPerCycle: 10, MaxPerHour: 50, MaxPerDay: 200,
		SendDelayMin: time.Second, SendDelayMax: 3 * time.Second, Sleep: s.Sleep,
		From: "outreach@hossagent.example", SenderName: "Hoss Research", Offer: "research briefs in days.",
		Signature: "Sam from Hoss Research", PostalAddress: "1 Test Street, Springfield", BaseURL: "https://hoss.example/",
	}
}

func (r *outreachRig) bizdev(m agents.Mailer, opts agents.BizDevOptions) *agents.BizDevCycle {
	return agents.NewBizDevCycle(r.store, r.env(), m, opts)
}

func (r *outreachRig) run(c agents.Cycle) agents.Counts {
	r.t.Helper()
	counts, err := c.Run(r.ctx)
	if err != nil {
		r.t.Fatalf("Run: %v", err)
	}
	return counts
}

func wantOutreachCounts(t *testing.T, got agents.Counts, want agents.Counts) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("count %q = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
