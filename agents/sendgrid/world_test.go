package sendgrid

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/db"
)

// The small part of package agents' outreach test rig the SendGrid tests
// need (package agents' tests cannot import this package): a store on a
// fresh SQLite file with a fake clock, seeded randomness, and the BizDev
// cycle over them.

// testEpoch is the time every rig starts at (package agents' testEpoch).
var testEpoch = time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC)

// testMail is one outreach message as BizDev hands it to a mailer.
func testMail(to string, id int64) agents.OutgoingMail {
	return agents.OutgoingMail{
		To: to, From: "outreach@hossagent.example", FromName: "Hoss Research", Subject: "A note for Delta",
		Body: "Hi Dana,\n\nHello there.\n", OutboxID: id,
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://hoss.example/unsubscribe/tok" + fmt.Sprint(id) + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
}

// outreachRand makes a seeded math/rand/v2 source safe for concurrent use;
// it serves as both RandSource and the io.Reader of Env.Random.
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

// outreachRig is a store on a fresh SQLite file with a settable clock, and
// the Env that goes with it.
type outreachRig struct {
	t      *testing.T
	ctx    context.Context
	store  *db.DB
	clock  *clocktest.Clock
	rnd    *outreachRand
	events *outreachEvents
}

func newOutreachRig(t *testing.T) *outreachRig {
	t.Helper()
	r := &outreachRig{t: t, ctx: context.Background(), clock: clocktest.New(testEpoch), rnd: newOutreachRand(7), events: &outreachEvents{}}
	s, err := db.Open(r.ctx, filepath.Join(t.TempDir(), db.FileName), db.WithClock(r.clock.Now))
	if err != nil {
		t.Fatalf("db.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	r.store = s
	return r
}

func (r *outreachRig) env() agents.Env {
	return agents.Env{Now: r.clock.Now, Random: r.rnd, Rand: r.rnd, Events: r.events}
}

// addLead stores a lead as a lead source would, with the clock advanced a
// second.
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

func bizdevOpts(s *outreachSleeps) agents.BizDevOptions {
	return agents.BizDevOptions{
		MaxPerCycle: 10, MaxPerHour: 50, MaxPerDay: 200,
		SendDelayMin: time.Second, SendDelayMax: 3 * time.Second, Sleep: s.Sleep,
		From: "outreach@hossagent.example", SenderName: "Hoss Research", Offer: "research briefs in days.",
		Signature: "Sam from Hoss Research", PostalAddress: "1 Test Street, Springfield", BaseURL: "https://hoss.example/",
	}
}

// outreachSleeps records the pauses between sends instead of sleeping.
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

func wantOutreachCounts(t *testing.T, got agents.Counts, want agents.Counts) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("count %q = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
