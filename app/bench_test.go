package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/stripe/stripe-go/v76"
	"golang.org/x/crypto/bcrypt"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// Benchmarks of the read path on seeded datasets (db.Seed), run with
//
//	go test ./app -run '^$' -bench . -benchmem
//
// Each size is seeded once per process into the system temp folder
// (hossagent-bench-<leads>.db) and reused by later runs.

// benchSizes are the datasets: leads, with a tenth as many customers, as
// many tasks and a fifth as many invoices (the 10k and 100k sets).
var benchSizes = []int{1_000, 10_000, 100_000}

var benchSeeds sync.Map // leads → *sync.Once-guarded path

type benchSeed struct {
	once sync.Once
	path string
	err  error
}

// benchDatabase returns the path of a seeded database with leads leads.
func benchDatabase(b *testing.B, leads int) string {
	b.Helper()
	v, _ := benchSeeds.LoadOrStore(leads, &benchSeed{})
	s := v.(*benchSeed)
	s.once.Do(func() {
		s.path = filepath.Join(os.TempDir(), fmt.Sprintf("hossagent-bench-%d.db", leads))
		if _, err := os.Stat(s.path); err == nil {
			return
		}
		tmp := s.path + ".tmp"
		_ = os.Remove(tmp)
		store, err := db.Open(context.Background(), tmp)
		if err != nil {
			s.err = err
			return
		}
		_, s.err = store.Seed(context.Background(), db.SeedSizes{Leads: leads, Customers: leads / 10, Tasks: leads, Invoices: leads / 5, Seed: 1})
		store.Close()
		if s.err == nil {
			s.err = os.Rename(tmp, s.path)
		}
	})
	if s.err != nil {
		b.Fatalf("seed %d: %v", leads, s.err)
	}
	return s.path
}

// benchServer serves a copy-free view of a seeded database (the read
// benchmarks change nothing but sessions) with a signed-in admin.
type benchServer struct {
	srv     *Server
	handler http.Handler
	store   *db.DB
	cookie  *http.Cookie
	hub     *Hub
	bus     *agents.Bus
}

func newBenchServer(b *testing.B, leads int) *benchServer {
	b.Helper()
	store, err := db.Open(context.Background(), benchDatabase(b, leads))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	cfg, _, err := config.Load(func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	bus := agents.NewBus()
	b.Cleanup(bus.Close)
	hub := NewHub(bus)
	s := New(Deps{Config: cfg, Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Live: hub, Events: bus})
	email := fmt.Sprintf("bench-%d@hossagent.test", time.Now().UnixNano())
	u, err := store.CreateUser(context.Background(), db.NewUser{Email: email, Password: "bench-password-123", Role: db.RoleAdmin, PasswordCost: bcrypt.MinCost})
	if err != nil {
		b.Fatal(err)
	}
	token, hash, err := db.NewToken(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	if err := store.CreateSession(context.Background(), u.ID, hash, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	return &benchServer{srv: s, handler: s.Handler(), store: store, cookie: &http.Cookie{Name: sessionCookieName, Value: token}, hub: hub, bus: bus}
}

func (s *benchServer) get(b *testing.B, path string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(s.cookie)
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s = %d", path, rec.Code)
	}
	return rec.Body.Len()
}

// benchPage measures one page view; with changed, every view follows a
// change (an engine event), so nothing rendered before may be reused.
func benchPage(b *testing.B, path string, changed bool) {
	for _, leads := range benchSizes {
		b.Run(fmt.Sprintf("rows=%s", shortCount(leads)), func(b *testing.B) {
			s := newBenchServer(b, leads)
			s.get(b, path) // warm the page cache of SQLite
			b.ReportAllocs()
			b.ResetTimer()
			var size int
			for range b.N {
				if changed {
					s.hub.markAll()
				}
				size = s.get(b, path)
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}

func shortCount(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// BenchmarkDashboardPage is GET / as a signed-in admin, between changes.
func BenchmarkDashboardPage(b *testing.B) { benchPage(b, "/", false) }

// BenchmarkDashboardPageChanged is GET / right after a change every time.
func BenchmarkDashboardPageChanged(b *testing.B) { benchPage(b, "/", true) }

// BenchmarkAdminPage is GET /admin, between changes.
func BenchmarkAdminPage(b *testing.B) { benchPage(b, "/admin", false) }

// BenchmarkAdminPageChanged is GET /admin right after a change every time.
func BenchmarkAdminPageChanged(b *testing.B) { benchPage(b, "/admin", true) }

// BenchmarkFanout publishes one event to N open streams of the control
// room and waits until every stream has the update: one render, N
// deliveries.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1_000, 5_000} {
		b.Run(fmt.Sprintf("streams=%s", shortCount(n)), func(b *testing.B) {
			s := newBenchServer(b, 10_000)
			// Every event changes one region (an update counter), as a
			// change the control room shows would; the others stay as
			// they were, so each update carries one region.
			var tick atomic.Int64
			counter := templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
				_, err := fmt.Fprintf(w, `<p id="bench-tick">%d</p>`, tick.Load())
				return err
			})
			render := func(ctx context.Context) ([]fragment, error) {
				frags, err := s.srv.adminFragments(ctx, s.srv.meta("Control room"), adminParams{})
				return append(frags, fragment{"bench-tick", counter}), err
			}
			streams := make([]*stream, n)
			for i := range streams {
				var err error
				if streams[i], _, err = s.hub.subscribe("bench", render, reader{anonymous: true}, ""); err != nil {
					b.Fatal(err)
				}
			}
			drain := func() {
				for _, st := range streams {
					select {
					case <-st.out:
					case <-time.After(10 * time.Second):
						b.Fatal("a stream got no update")
					}
				}
			}
			drain() // the first render
			before := s.hub.Renders()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				// The hub spaces renders of a view by renderGap; waiting
				// it out (off the clock) measures one event's cost alone.
				b.StopTimer()
				time.Sleep(renderGap)
				tick.Add(1)
				b.StartTimer()
				s.bus.Publish(agents.Event{Kind: agents.EventDataChanged})
				drain()
			}
			b.StopTimer()
			b.ReportMetric(float64(s.hub.Renders()-before)/float64(b.N), "renders/event")
			for _, st := range streams {
				s.hub.unsubscribe("bench", st)
			}
		})
	}
}

// BenchmarkStripeWebhook is one signed Stripe delivery through the router:
// the size limit, the signature and tolerance check, and the event recorded
// once in its own transaction (a refund for a payment not seen yet, which
// the ledger keeps until the payment lands).
func BenchmarkStripeWebhook(b *testing.B) {
	store, err := db.Open(context.Background(), filepath.Join(b.TempDir(), "webhook.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	cfg, _, err := config.Load(func(k string) string {
		return map[string]string{"STRIPE_WEBHOOK_SECRET": stripeTestSecret}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	h := New(Deps{Config: cfg, Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		id := fmt.Sprintf("evt_bench_%d", i)
		payload, err := json.Marshal(map[string]any{
			"id": id, "object": "event", "api_version": stripe.APIVersion, "type": "charge.refunded", "created": time.Now().Unix(),
			"livemode": false, "pending_webhooks": 1,
			"data": map[string]any{"object": stripeRefundedCharge(fmt.Sprintf("pi_bench_%d", i), true, true)},
		})
		if err != nil {
			b.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/stripe/webhook", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", stripeSignature(payload, stripeTestSecret, time.Now()))
		rec := httptest.NewRecorder()
		b.StartTimer()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("webhook = %d %s", rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkPortalPage is GET /portal as a client with a portal session:
// the customer with the most invoices of the seed, read and rendered on
// every view (the portal is per client, never cached).
func BenchmarkPortalPage(b *testing.B) {
	for _, leads := range benchSizes {
		b.Run(fmt.Sprintf("rows=%s", shortCount(leads)), func(b *testing.B) {
			s := newBenchServer(b, leads)
			ctx := context.Background()
			var customerID int64
			if err := s.store.Bun().NewRaw(`SELECT customer_id FROM invoices GROUP BY customer_id ORDER BY COUNT(*) DESC, customer_id LIMIT 1`).Scan(ctx, &customerID); err != nil {
				b.Fatal(err)
			}
			token, err := s.store.RotatePortalToken(ctx, customerID, rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			session, err := s.store.OpenPortalToken(ctx, token, rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			s.cookie = &http.Cookie{Name: portalCookieName, Value: session.Token}
			s.srv.portalVisits = newAttemptLimiter(time.Nanosecond, 1<<30, time.Now) // the benchmark is one client address
			s.get(b, "/portal")
			b.ReportAllocs()
			b.ResetTimer()
			var size int
			for range b.N {
				size = s.get(b, "/portal")
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
