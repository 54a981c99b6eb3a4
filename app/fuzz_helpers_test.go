package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// fuzzServer is the real router over a fresh SQLite file, built once per
// fuzz target (and per fuzzing worker process), with an admin session and
// the live hub. Requests go straight to the handler: no sockets, so a
// worker runs thousands of them a second.
type fuzzServer struct {
	handler http.Handler
	store   *db.DB
	clock   *testClock
	session string // an admin's session token
	log     *syncBuffer
}

func newFuzzServer(tb testing.TB) *fuzzServer {
	tb.Helper()
	cfg, _, err := config.Load(func(string) string { return "" })
	if err != nil {
		tb.Fatal(err)
	}
	clock := clocktest.New(testNow)
	store, err := db.Open(context.Background(), filepath.Join(tb.TempDir(), "fuzz.db"), db.WithClock(clock.Now))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	bus := agents.NewBus()
	tb.Cleanup(bus.Close)
	log := &syncBuffer{}
	s := New(Deps{Config: cfg, Store: store, Logger: slog.New(slog.NewTextHandler(log, nil)), Now: clock.Now, Live: NewHub(bus), PasswordCost: bcrypt.MinCost})
	fs := &fuzzServer{handler: s.Handler(), store: store, clock: clock, log: log}
	ctx := context.Background()
	admin, err := store.CreateUser(ctx, db.NewUser{Email: "admin@hossagent.test", Password: testPassword, Role: db.RoleAdmin, PasswordCost: bcrypt.MinCost})
	if err != nil {
		tb.Fatal(err)
	}
	// A second account (id 2) for the account actions: the admin's own
	// reset would end the suite's session.
	if _, err := store.CreateUser(ctx, db.NewUser{Email: "viewer@hossagent.test", Password: testPassword, Role: db.RoleViewer, PasswordCost: bcrypt.MinCost}); err != nil {
		tb.Fatal(err)
	}
	token, hash, err := db.NewToken(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	if err := store.CreateSession(ctx, admin.ID, hash, testNow.Add(100*365*24*time.Hour)); err != nil {
		tb.Fatal(err)
	}
	fs.session = token
	return fs
}

// serve sends req (as the admin when admin) and returns the answer. A
// stream is cut once its header is written. A panic that gets past
// recoverPanics fails the caller through the fuzz engine. The deadline is
// generous: a fuzzing worker on a loaded machine is slow, and a request cut
// by it would look like a server error.
func (fs *fuzzServer) serve(req *http.Request, admin bool) *httptest.ResponseRecorder {
	if admin {
		req.AddCookie(&http.Cookie{Name: sessionCookieName, Value: fs.session})
	}
	ctx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
	defer cancel()
	rec := &streamCutter{ResponseRecorder: httptest.NewRecorder(), cancel: cancel}
	fs.handler.ServeHTTP(rec, req.WithContext(ctx))
	return rec.ResponseRecorder
}

// uploadRequest is the import form posting content as the file "file".
func uploadRequest(content []byte) *http.Request {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("file", "fuzz.csv")
	_, _ = w.Write(content)
	_ = mw.Close()
	req := httptest.NewRequest(http.MethodPost, "/admin/import/leads", io.NopCloser(&body))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("HX-Request", "true")
	return req
}
