package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// syncBuffer is a bytes.Buffer safe to write from the server goroutine and
// read from the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestInvalidConfigStopsTheStart(t *testing.T) {
	var out, errOut bytes.Buffer
	dir := t.TempDir()
	code := run(context.Background(), nil, envOf(map[string]string{"DATA_DIR": dir, "MAX_EMAILS_PER_HOUR": "abc"}), &out, &errOut)
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	want := `config: MAX_EMAILS_PER_HOUR="abc" is invalid: want a whole number from 0 to 1000000000` + "\n"
	if errOut.String() != want {
		t.Errorf("stderr = %q, want %q", errOut.String(), want)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*")); len(matches) != 0 {
		t.Errorf("a refused start created files: %v", matches)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, envOf(nil), &out, &errOut); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Errorf("stderr = %q", errOut.String())
	}
}

// The app starts on an empty data directory, serves its pages, passes its
// own check, and stops cleanly on cancellation (what SIGTERM does in main).
func TestServeCheckAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	env := envOf(map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, env, io.Discard, io.MultiWriter(pw, &logs))
		pw.Close()
	}()

	base := waitForURL(t, pr)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	for _, path := range []string{"/healthz", "/readyz", "/", "/admin"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"check"}, env, &out, &errOut); code != 0 {
		t.Fatalf("check on the live database exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "all 9 invariants hold") {
		t.Errorf("check output:\n%s", out.String())
	}

	// A live backup is a database check accepts; a second one to the same
	// path is refused.
	backupPath := filepath.Join(t.TempDir(), "backup.db")
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"backup", backupPath}, env, &out, &errOut); code != 0 {
		t.Fatalf("backup exited %d: %s", code, errOut.String())
	}
	if code := run(context.Background(), []string{"check", "--db", backupPath}, env, &out, &errOut); code != 0 {
		t.Fatalf("check of the backup exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	if code := run(context.Background(), []string{"backup", backupPath}, env, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already exists") {
		t.Errorf("second backup to the same path: exit %d, %q", code, errOut.String())
	}

	// A kept total that drifted (here: edited by hand) fails the check;
	// --repair-totals rebuilds it from the rows and says what it changed.
	damageKeptTotals(t, backupPath)
	out.Reset()
	if code := run(context.Background(), []string{"check", "--db", backupPath}, env, &out, &errOut); code != 1 ||
		!strings.Contains(out.String(), "9. every kept total equals the sum over all rows") || !strings.Contains(out.String(), "VIOLATED") {
		t.Errorf("check of drifted totals exited %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"check", "--repair-totals", "--db", backupPath}, env, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "kept totals: repaired 1") || !strings.Contains(out.String(), "all 9 invariants hold") {
		t.Errorf("check --repair-totals exited %d:\n%s%s", code, out.String(), errOut.String())
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d; logs:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10 s of the signal")
	}
	if !strings.Contains(logs.String(), "stopped cleanly") {
		t.Errorf("logs do not report a clean stop:\n%s", logs.String())
	}
}

var servingRE = regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)`)

// waitForURL reads the server's log until it announces its address.
func waitForURL(t *testing.T, r io.Reader) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				return
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatal("server exited before serving")
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("server did not announce its address")
	}
	return ""
}

// damageKeptTotals adds a phantom lead to the kept totals of the file.
func damageKeptTotals(t *testing.T, path string) {
	t.Helper()
	store, err := db.OpenExistingWritable(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_, err = store.Bun().ExecContext(context.Background(),
		"INSERT INTO kept_totals (metric, label, n) VALUES ('leads', 'dead', 1) ON CONFLICT (metric, label, currency) DO UPDATE SET n = n + 1")
	if err != nil {
		t.Fatal(err)
	}
}

// serving runs serve in this process until the test ends, and returns its
// address once it listens.
func serving(t *testing.T, env func(string) string) (base string, logs *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs = &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, env, io.Discard, io.MultiWriter(pw, logs))
		pw.Close()
	}()
	base = waitForURL(t, pr)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	waitForBootstrap(t, base)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			stopServe(t, cancel, done)
		}
	}
	t.Cleanup(stop)
	return base, logs, stop
}

// waitForBootstrap returns once the server at base has its first admin: a
// sign-in waits for the bootstrap, so that a stop right after it is not a
// stop during the password hashing (slow under -race), which fails the start.
func waitForBootstrap(t *testing.T, base string) {
	t.Helper()
	if code := signInStatus(t, base, "nobody@example.com", "not the password"); code != http.StatusUnauthorized && code != http.StatusOK {
		t.Fatalf("sign-in while waiting for the bootstrap = %d", code)
	}
}

// Cycle-log runs that a killed process left "running" are closed as
// interrupted at the next start, before any agent runs.
func TestServeClosesRunsCutOffByACrash(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(dir, db.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, agent := range []string{"bizdev", "ops"} {
		if _, err := store.StartRun(ctx, agent, db.TriggerAutopilot); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	_, logs, stop := serving(t, envOf(map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false"}))
	stop()
	if !strings.Contains(logs.String(), "closed as interrupted") || !strings.Contains(logs.String(), "runs=2") {
		t.Errorf("the start did not report the interrupted runs:\n%s", logs.String())
	}
	store, err = db.OpenExisting(ctx, filepath.Join(dir, db.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	runs, _, err := store.ListAgentRuns(ctx, db.ListQuery{PerPage: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	for _, r := range runs {
		if r.Outcome != db.RunInterrupted || r.FinishedAt == nil {
			t.Errorf("run %s after the restart = %s (finished %v), want interrupted", r.Agent, r.Outcome, r.FinishedAt)
		}
	}
}
