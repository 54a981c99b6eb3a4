package agents

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// outreachStart is the time every outreach test starts at: the clock's
// testEpoch.
var outreachStart = testEpoch

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
	events []Event
}

func (r *outreachEvents) Publish(e Event) {
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
	clock  *fakeClock
	rnd    *outreachRand
	events *outreachEvents
}

func newOutreachRig(t *testing.T) *outreachRig {
	t.Helper()
	r := &outreachRig{
		t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), db.FileName),
		clock: newFakeClock(), rnd: newOutreachRand(7), events: &outreachEvents{},
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

func (r *outreachRig) env() Env {
	return Env{Now: r.clock.Now, Random: r.rnd, Rand: r.rnd, Events: r.events}
}

// addLead stores a lead as a lead source would, with the clock advanced a
// second first so that creation order is unambiguous.
func (r *outreachRig) addLead(name, email, company, niche string) *db.Lead {
	r.t.Helper()
	r.clock.Advance(time.Second)
	in, err := PrepareLead(LeadCandidate{Name: name, Email: email, Company: company, Niche: niche}, "test")
	if err != nil {
		r.t.Fatalf("PrepareLead(%s): %v", email, err)
	}
	l, err := r.store.CreateLead(r.ctx, nil, in)
	if err != nil {
		r.t.Fatalf("CreateLead(%s): %v", email, err)
	}
	return l
}

func (r *outreachRig) lead(id int64) db.Lead {
	r.t.Helper()
	var l db.Lead
	if err := r.store.Bun().NewSelect().Model(&l).Where("l.id = ?", id).Scan(r.ctx); err != nil {
		r.t.Fatalf("read lead %d: %v", id, err)
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

// outreachMailer records every Send and fails the ones fail says to.
type outreachMailer struct {
	mu    sync.Mutex
	mode  string
	sent  []OutgoingMail
	fail  func(call int, m OutgoingMail) error
	calls int
}

func (f *outreachMailer) Mode() string { return f.mode }

func (f *outreachMailer) Send(_ context.Context, m OutgoingMail) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		if err := f.fail(f.calls, m); err != nil {
			return "", err
		}
	}
	f.sent = append(f.sent, m)
	return "prov-" + m.To, nil
}

func (f *outreachMailer) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *outreachMailer) sentTo() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, m := range f.sent {
		out[m.To]++
	}
	return out
}

var errOutreachProvider = errors.New("provider said no")

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

func wantOutreachCounts(t *testing.T, got Counts, want Counts) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("count %q = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
