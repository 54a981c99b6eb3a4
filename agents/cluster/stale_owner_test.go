package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db/pgtest"
)

// An owner announcement of the previous owner that arrives during the new
// owner's takeover wait (its snapshot ticker, in the second before its ping
// fails) does not leave the new owner naming the old one.
func TestLateAnnouncementOfThePredecessorDoesNotNameItOwner(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a := startInstance(t, url, "a")
	deadline := time.Now().Add(waitLimit)
	for !a.svc.Owning() {
		if time.Now().After(deadline) {
			t.Fatal("a never owned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b := startInstance(t, url, "b")
	for b.svc.Owner() != "a" {
		if time.Now().After(deadline) {
			t.Fatal("b never saw a")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx := context.Background()
	h, ok, err := b.store.LockOwner(ctx)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := b.store.Bun().ExecContext(ctx, "SELECT pg_terminate_backend(?)", h.PID); err != nil {
		t.Fatal(err)
	}
	for {
		h, ok, _ := b.store.LockOwner(ctx)
		if ok && h.Instance == "b" && !b.svc.Owning() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// What a's snapshot ticker would send in the second before its ping fails.
	if err := b.store.Notify(ctx, `{"from":"a","kind":"owner"}`); err != nil {
		t.Fatal(err)
	}
	for !b.svc.Owning() {
		if time.Now().After(deadline) {
			t.Fatal("b never owned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The late announcement may be handled after the takeover too: give the
	// listener a moment (a window, as "never" needs).
	time.Sleep(time.Second)
	if b.svc.Owner() != "b" {
		t.Errorf("the owner names %q as the owner", b.svc.Owner())
	}
}
