package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// On an empty data directory the server listens while the first admin is
// created; the printed password signs in, and a sign-in sent at once waits
// for the admin rather than failing.
func TestFirstStartServesWhileAdminIsCreated(t *testing.T) {
	dir := t.TempDir()
	env := envOf(map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logR, logW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, env, outW, logW)
		logW.Close()
		outW.Close()
	}()
	base := waitForURL(t, logR)
	go func() { _, _ = io.Copy(io.Discard, logR) }()

	passwords := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "password: "); ok {
				passwords <- strings.TrimSpace(p)
			}
		}
		close(passwords)
	}()
	var password string
	select {
	case password = <-passwords:
	case <-time.After(30 * time.Second):
		t.Fatal("no password printed")
	}
	if code := signInStatus(t, base, "admin@hossagent.local", password); code != http.StatusSeeOther {
		t.Errorf("sign-in with the printed password = %d, want 303", code)
	}
	stopServe(t, cancel, done)
	if extra, ok := <-passwords; ok {
		t.Errorf("a second password was printed: %q", extra)
	}
}

// A first admin that cannot be created still stops the start: exit 1,
// with the same log message as before the bootstrap ran in the background.
func TestFailedBootstrapStopsTheServer(t *testing.T) {
	dir := t.TempDir()
	store, err := db.Open(context.Background(), filepath.Join(dir, db.FileName))
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Bun().ExecContext(context.Background(),
		`CREATE TRIGGER no_users BEFORE INSERT ON users BEGIN SELECT RAISE(ABORT, 'users are read-only here'); END`)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	env := envOf(map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false"})
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), []string{"serve"}, env, io.Discard, &logs) }()
	select {
	case code := <-done:
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after the bootstrap failed")
	}
	if !strings.Contains(logs.String(), `msg="cannot create the first admin"`) || !strings.Contains(logs.String(), "users are read-only here") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// A sign-in sent the moment the server listens, while the password from
// the environment is still being hashed, waits for the admin and succeeds.
func TestSignInRightAfterTheStartWaitsForTheAdmin(t *testing.T) {
	env := envOf(map[string]string{"DATA_DIR": t.TempDir(), "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false",
		"ADMIN_EMAIL": "ops@example.com", "ADMIN_PASSWORD": "chosen by the operator"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logR, logW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, env, io.Discard, logW)
		logW.Close()
	}()
	base := waitForURL(t, logR)
	go func() { _, _ = io.Copy(io.Discard, logR) }()
	if code := signInStatus(t, base, "ops@example.com", "chosen by the operator"); code != http.StatusSeeOther {
		t.Errorf("immediate sign-in = %d, want 303", code)
	}
	stopServe(t, cancel, done)
}

// signInStatus posts the sign-in form and returns the status, without
// following the redirect.
func signInStatus(t *testing.T, base, email, password string) int {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stopServe cancels a running serve and waits for it to exit 0.
func stopServe(t *testing.T, cancel context.CancelFunc, done <-chan int) {
	t.Helper()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}
