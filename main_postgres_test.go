package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/db/pgtest"
)

// The operator's commands on PostgreSQL: seed, check and backup read
// DATABASE_URL instead of DATA_DIR.
func TestCommandsOnPostgres(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	env := envOf(map[string]string{"DATABASE_URL": url, "DATA_DIR": t.TempDir()})
	ctx := context.Background()
	runCmd := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, args, env, &out, &errOut)
		return code, out.String(), errOut.String()
	}

	if code, out, errOut := runCmd("seed", "--leads", "60", "--customers", "10", "--tasks", "40", "--invoices", "12"); code != 0 {
		t.Fatalf("seed: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runCmd("check")
	if code != 0 || !strings.Contains(out, "invariants hold") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "checking postgres://") {
		t.Errorf("check names %q, want the PostgreSQL URL", firstLine(out))
	}

	dump := filepath.Join(t.TempDir(), "hossagent.dump")
	if code, out, errOut := runCmd("backup", dump); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	list, err := exec.Command("pg_restore", "--list", dump).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_restore --list %s: %v\n%s", dump, err, list)
	}
	for _, table := range []string{"TABLE public invoices", "TABLE public kept_totals", "TRIGGER public invoices invoices_paid_is_final"} {
		if !strings.Contains(string(list), table) {
			t.Errorf("the dump lists no %q", table)
		}
	}
	if code, _, errOut := runCmd("backup", dump); code != 2 || !strings.Contains(errOut, "already exists") {
		t.Errorf("backup over an existing file: exit %d, %q; want 2 and a refusal", code, errOut)
	}
}

func TestUnreachablePostgresIsAClearErrorWithoutThePassword(t *testing.T) {
	env := envOf(map[string]string{"DATABASE_URL": "postgres://hoss:hunter2hunter2@127.0.0.1:1/hossagent?connect_timeout=2"})
	for _, cmd := range [][]string{{"check"}, {"user", "list"}} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), cmd, env, &out, &errOut)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", cmd, code)
		}
		if strings.Contains(out.String()+errOut.String(), "hunter2") {
			t.Errorf("%v shows the password: %s%s", cmd, out.String(), errOut.String())
		}
		if !strings.Contains(errOut.String(), "127.0.0.1:1") {
			t.Errorf("%v: %q does not say which server it could not reach", cmd, errOut.String())
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
