package db

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db/pgtest"
)

// The owner lock and NOTIFY at the store's level; agents/cluster tests the
// behaviour built on them with several instances.

func openClusterStore(t *testing.T) *DB {
	t.Helper()
	d, err := OpenPostgres(context.Background(), pgtest.Start(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOwnerLockIsExclusiveAndNamesItsHolder(t *testing.T) {
	d := openClusterStore(t)
	ctx := context.Background()
	if _, ok, err := d.LockOwner(ctx); err != nil || ok {
		t.Fatalf("LockOwner before anyone holds it: %v %v, want none", ok, err)
	}
	a, err := d.NewOwnerLock(ClusterConn{Instance: "host-a.1", DeadAfter: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := d.NewOwnerLock(ClusterConn{Instance: "host-b.2", DeadAfter: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if ok, err := a.Try(ctx); err != nil || !ok {
		t.Fatalf("a.Try = %v, %v; want the free lock", ok, err)
	}
	if ok, err := b.Try(ctx); err != nil || ok {
		t.Fatalf("b.Try = %v, %v; want refused while a holds it", ok, err)
	}
	h, ok, err := d.LockOwner(ctx)
	if err != nil || !ok || h.Instance != "host-a.1" || h.PID != int(a.PID()) {
		t.Fatalf("LockOwner = %+v %v %v, want host-a.1 (pid %d)", h, ok, err, a.PID())
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// The session's keepalive settings are the ones asked for: 5 s is
	// idle 1 + 4 probes 1 s apart.
	var idle, interval, count, user string
	if err := a.conn.QueryRow(ctx, "SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'), current_setting('tcp_keepalives_count'), current_setting('tcp_user_timeout')").Scan(&idle, &interval, &count, &user); err != nil {
		t.Fatal(err)
	}
	if idle != "1" || interval != "1" || count != "4" || user != "5000" {
		t.Errorf("keepalives idle=%s interval=%s count=%s user_timeout=%s, want 1 1 4 5000 (ms)", idle, interval, count, user)
	}

	// a's session dies: its Ping fails and b takes the lock.
	// With a timeout pg_terminate_backend waits until the backend is gone
	// (and its locks with it), not only until it was signalled.
	var gone bool
	if err := d.Bun().NewRaw("SELECT pg_terminate_backend(?, 10000)", h.PID).Scan(ctx, &gone); err != nil || !gone {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v; want it gone within 10 s", h.PID, gone, err)
	}
	if err := a.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded on a terminated session")
	}
	if ok, err := b.Try(ctx); err != nil || !ok {
		t.Fatalf("b.Try after a died = %v, %v; want the lock", ok, err)
	}
	if h, _, _ := d.LockOwner(ctx); h.Instance != "host-b.2" {
		t.Errorf("LockOwner = %+v, want host-b.2", h)
	}
	// Closing releases it.
	b.Close()
	if _, ok, err := d.LockOwner(ctx); err != nil || ok {
		t.Errorf("LockOwner after b closed: %v %v, want none", ok, err)
	}
}

func TestNotifyReachesListeners(t *testing.T) {
	d := openClusterStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 10)
	connected := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- d.Listen(ctx, Listener{Conn: ClusterConn{Instance: "listener-1", DeadAfter: 5 * time.Second},
			Handle: func(p string) { got <- p }, Connected: func() { connected <- struct{}{} }})
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not connect")
	}
	if err := d.Notify(ctx, `{"hello":1}`); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != `{"hello":1}` {
			t.Errorf("got %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	if err := d.Notify(ctx, strings.Repeat("x", MaxNotifyPayload+1)); err == nil {
		t.Error("an oversized payload was sent")
	}
	cancel()
	<-done
}

func TestClusterRefusesSQLiteAndBadInstanceIDs(t *testing.T) {
	d, err := Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.NewOwnerLock(ClusterConn{Instance: "a"}); err != ErrNotPostgres {
		t.Errorf("NewOwnerLock on SQLite: %v", err)
	}
	for _, id := range []string{"", "has space", "é", strings.Repeat("a", 51), "-lead"} {
		if ValidInstanceID(id) {
			t.Errorf("ValidInstanceID(%q) = true", id)
		}
	}
	for _, id := range []string{"a", "host-1234", "d8dd3e1a.fly", "web:2"} {
		if !ValidInstanceID(id) {
			t.Errorf("ValidInstanceID(%q) = false", id)
		}
	}
}
