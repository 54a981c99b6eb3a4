package db

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db/pgtest"
	"github.com/uptrace/bun"
)

func mustOpenPostgres(tb testing.TB) *DB {
	tb.Helper()
	url := pgtest.Start(tb).NewDatabase(tb)
	d, err := OpenPostgres(context.Background(), url, WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		tb.Fatalf("OpenPostgres: %v", err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d
}

func TestOpenPostgresRefusesBadURLsWithoutEchoingThePassword(t *testing.T) {
	for _, raw := range []string{"mysql://u:hunter2@x/db", "postgres://u:hunter2@127.0.0.1:1/db?sslmode=bogus",
		"postgres://u@127.0.0.1:1/db?password=hunter2&connect_timeout=2", "postgres://u@127.0.0.1:1/db?sslpassword=hunter2&sslmode=bogus"} {
		_, err := OpenPostgres(context.Background(), raw)
		if err == nil {
			t.Fatalf("OpenPostgres(%q) = nil error", raw)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("OpenPostgres(%q) error shows the password: %v", raw, err)
		}
	}
}

// Two transactions that each read a counter and write it back conflict
// under SERIALIZABLE; RunInTx runs the loser again, so no increment is lost.
func TestPostgresRunInTxRetriesSerializationFailures(t *testing.T) {
	ctx := context.Background()
	d, err := OpenPostgresWritable(ctx, pgtest.Start(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.bun.ExecContext(ctx, "CREATE TABLE tally (id INT PRIMARY KEY, n INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.bun.ExecContext(ctx, "INSERT INTO tally VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				errs <- d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
					var n int
					if err := tx.NewRaw("SELECT n FROM tally WHERE id = 1").Scan(ctx, &n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, "UPDATE tally SET n = ? WHERE id = 1", n+1)
					return err
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("RunInTx: %v", err)
		}
	}
	var n int
	if err := d.bun.NewRaw("SELECT n FROM tally WHERE id = 1").Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	if n != workers*each {
		t.Fatalf("tally = %d after %d increments: the read-then-write transactions lost updates", n, workers*each)
	}
}

func TestRedactURLHidesEveryPassword(t *testing.T) {
	for _, raw := range []string{"postgres://u:hunter2@db/x", "postgres://u@db/x?password=hunter2", "postgres://u@db/x?sslmode=require&sslpassword=hunter2"} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := RedactURL(u); strings.Contains(got, "hunter2") || !strings.Contains(got, "db/x") {
			t.Errorf("RedactURL(%s) = %s", raw, got)
		}
		if u.String() != raw {
			t.Errorf("RedactURL changed its argument: %s", u)
		}
	}
}
