package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The background bootstrap creates the admin and prints the password once.
func TestStartBootstrapAdmin(t *testing.T) {
	ctx := context.Background()
	store := openTestStore(t)
	var out bytes.Buffer
	b := StartBootstrapAdmin(ctx, store, "", "", rand.Reader, &out)
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Wait(wait); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if b.Err() != nil || strings.Count(out.String(), "password:") != 1 {
		t.Fatalf("err %v, printed %q", b.Err(), out.String())
	}
	if n, _ := store.CountUsers(ctx); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
	if err := (*AdminBootstrap)(nil).Wait(ctx); err != nil {
		t.Errorf("a nil bootstrap is done: %v", err)
	}
}

// A sign-in waits for the bootstrap, as long as its request lasts; other
// requests do not wait; a failed bootstrap answers 503.
func TestHoldSignIns(t *testing.T) {
	reached := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ })
	b := &AdminBootstrap{done: make(chan struct{})}
	h := b.HoldSignIns(next)

	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/login", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/admin/cycle", nil))
	if reached != 2 {
		t.Fatalf("requests other than a sign-in were held: %d of 2 reached the app", reached)
	}

	// Pending: a sign-in whose client gives up never reaches the app.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/login", nil).WithContext(ctx))
	if reached != 2 || b.Err() != nil {
		t.Fatalf("a sign-in went through before the bootstrap was done")
	}

	// A sign-in waiting when the bootstrap ends goes on.
	served := make(chan struct{})
	go func() {
		defer close(served)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/login", nil))
	}()
	close(b.done)
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the held sign-in was not released")
	}
	if reached != 3 {
		t.Errorf("the held sign-in did not reach the app")
	}

	failed := &AdminBootstrap{done: make(chan struct{}), err: errors.New("disk full")}
	close(failed.done)
	rec := httptest.NewRecorder()
	failed.HoldSignIns(next).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/login", nil))
	if rec.Code != http.StatusServiceUnavailable || reached != 3 {
		t.Errorf("after a failed bootstrap: %d, reached %d", rec.Code, reached)
	}
}
