package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// seed fills an empty development database that check then accepts; it
// refuses a second time, outside DEVELOPMENT, and on bad flags.
func TestSeedCommand(t *testing.T) {
	dir := t.TempDir()
	env := envOf(map[string]string{"DATA_DIR": dir})
	args := []string{"seed", "--leads", "200", "--customers", "20", "--tasks", "300", "--invoices", "40"}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), args, env, &out, &errOut); code != 0 {
		t.Fatalf("seed exited %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "seeded 200 leads") || !regexp.MustCompile(`(?m)^portal: /portal/[A-Za-z0-9_-]{43}$`).MatchString(out.String()) {
		t.Errorf("seed printed %q", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"check"}, env, &out, &errOut); code != 0 {
		t.Fatalf("check of the seeded database exited %d:\n%s", code, out.String())
	}
	errOut.Reset()
	if code := run(context.Background(), args, env, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already holds data") {
		t.Errorf("second seed: exit %d, %q", code, errOut.String())
	}

	staging := envOf(map[string]string{"DATA_DIR": t.TempDir(), "RELEASE_MODE": "STAGING"})
	errOut.Reset()
	if code := run(context.Background(), args, staging, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "only written in DEVELOPMENT") {
		t.Errorf("seed in STAGING: exit %d, %q", code, errOut.String())
	}
	for _, bad := range [][]string{{"seed", "--leads", "5", "--customers", "6"}, {"seed", "--now", "yesterday"}, {"seed", "extra"}} {
		if code := run(context.Background(), bad, envOf(map[string]string{"DATA_DIR": filepath.Join(t.TempDir(), "x")}), &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
