//go:build unix

package main

import (
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db/pgtest"
)

// Several instances as separate processes on one PostgreSQL database: one
// owns the agents, the other stands by; SIGKILL the owner and the other's
// /readyz says it owns them within TAKEOVER_TIMEOUT (10 s). Twice, with a
// fresh standby started after the first kill, as a platform restarts a
// dead machine.
func TestKilledOwnerIsReplacedWithinTheBound(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	bin := testBinary(t)
	start := func(id string) (*child, string) {
		vars := map[string]string{"DATABASE_URL": url, "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false",
			"INSTANCE_ID": id, "DATA_DIR": t.TempDir()}
		c := startChild(t, bin, "serve", vars, nil)
		return c, c.serving(t)
	}
	a, aURL := start("proc-a")
	readyzSays(t, a, aURL, "ready: owner\n", 20*time.Second)
	b, bURL := start("proc-b")
	readyzSays(t, b, bURL, "ready: standby, owner proc-a\n", 10*time.Second)

	owner, standby, standbyURL := a, b, bURL
	for round, next := range []string{"proc-c", ""} {
		if err := owner.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		took := readyzSays(t, standby, standbyURL, "ready: owner\n", 10*time.Second)
		t.Logf("MEASURED: round %d: SIGKILL of the owner → the standby's /readyz says owner after %s (bound 10 s)", round+1, took.Sub(killed).Round(time.Millisecond))
		if code := owner.wait(t); code != -1 {
			t.Errorf("the killed owner exited %d", code)
		}
		if next == "" {
			break
		}
		c, cURL := start(next)
		readyzSays(t, c, cURL, "ready: standby, owner proc-b\n", 10*time.Second)
		owner, standby, standbyURL = standby, c, cURL
	}
}

// readyzSays polls the instance's /readyz until it answers 200 with want
// (there is no event to wait on across processes), and returns when.
func readyzSays(t *testing.T, c *child, base, want string, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if resp.StatusCode == http.StatusOK && last == want {
				return time.Now()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz of %s said %q, not %q, within %s; its log:\n%s", base, last, want, within, c.stderr.String())
		}
		select {
		case code := <-c.done:
			c.done <- code
			t.Fatalf("the instance at %s exited %d; its log:\n%s", base, code, c.stderr.String())
		case <-tick.C:
		}
	}
}
