package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db/pgtest"
)

// An autopilot switch whose NOTIFY the owner misses (its LISTEN session
// was reconnecting) still stops the owner's autopilot: the owner re-reads
// the settings when its listener is back, and at every tick.
func TestSwitchMissedDuringAListenGapStillReachesTheOwner(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a := startInstance(t, url, "a")
	deadline := time.Now().Add(waitLimit)
	for !a.svc.Owning() {
		if time.Now().After(deadline) {
			t.Fatal("a never owned")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := startInstance(t, url, "b")
	for b.svc.Owner() != "a" {
		if time.Now().After(deadline) {
			t.Fatal("b never saw a")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx := context.Background()
	if err := b.svc.SetAutopilot(ctx, true, time.Second); err != nil {
		t.Fatal(err)
	}
	for a.runs.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("a's autopilot never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// End a's LISTEN session (not its lock session).
	var n int
	if err := a.store.Bun().NewRaw(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'hossagent a' AND query ILIKE 'listen%'`).Scan(ctx, &n); err != nil || n != 1 {
		t.Fatalf("terminate listener: n=%d err=%v", n, err)
	}
	for {
		var left int
		_ = a.store.Bun().NewRaw(`SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'hossagent a' AND query ILIKE 'listen%'`).Scan(ctx, &left)
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.svc.SetAutopilot(ctx, false, 0); err != nil {
		t.Fatal(err)
	}
	// a's listener comes back (a new LISTEN session of "hossagent a").
	for {
		var back int
		_ = a.store.Bun().NewRaw(`SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'hossagent a' AND query ILIKE 'listen%'`).Scan(ctx, &back)
		if back > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a's listener never reconnected")
		}
		time.Sleep(20 * time.Millisecond) // a bounded poll of the server
	}
	// A cycle that had begun may finish; none may begin for three of the
	// autopilot's 1 s intervals (a property over time: a window is the
	// only way to see "never").
	time.Sleep(1500 * time.Millisecond)
	before := a.runs.Load()
	time.Sleep(3 * time.Second)
	after := a.runs.Load()
	onA, _, _ := a.svc.Autopilot(ctx)
	if onA {
		t.Errorf("a reads the autopilot as on after it was switched off")
	}
	if after > before {
		t.Errorf("owner kept running the autopilot after it was switched OFF (runs %d → %d)", before, after)
	}
}
