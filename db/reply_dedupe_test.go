package db

import (
	"context"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/uptrace/bun/migrate"
)

// TestRecordInboundReplyStoresARepeatOnce: the same message delivered again
// (its Message-ID, or without one its sender, subject and text) is stored
// once and changes nothing the second time; another message is stored.
func TestRecordInboundReplyStoresARepeatOnce(t *testing.T) {
	r := newInboundRig(t)
	jane, _ := r.lead("jane@acme.example", "acme.example", LeadContacted)
	bob, _ := r.lead("bob@bob.example", "bob.example", LeadNew)
	count := func() int {
		t.Helper()
		var n int
		if err := r.store.Bun().NewRaw("SELECT COUNT(*) FROM replies").Scan(r.ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := InboundReply{FromAddr: "jane@acme.example", Subject: "Re: hello", Body: "Yes", MessageID: "<m1@acme.example>"}
	res, err := r.store.RecordInboundReply(r.ctx, first)
	if err != nil || res.Duplicate || !res.Responded || res.LeadID != jane.ID {
		t.Fatalf("first = %+v, %v", res, err)
	}
	r.setStatus(jane.ID, LeadContacted) // were it moved back, a repeat must still not move it
	for name, in := range map[string]InboundReply{
		"same":             first,
		"bare Message-ID":  {FromAddr: "Jane@ACME.example", Subject: "Re: hello", Body: "Yes", MessageID: " m1@acme.example "},
		"re-encoded text":  {FromAddr: "jane@acme.example", Subject: "Re: hello", Body: "Yes\r\n", MessageID: "<m1@acme.example>"},
		"without a reason": {FromAddr: "jane@acme.example", MessageID: "<m1@acme.example>"},
	} {
		res, err := r.store.RecordInboundReply(r.ctx, in)
		if err != nil || !res.Duplicate || res.Responded || res.LeadID != jane.ID {
			t.Errorf("%s: %+v, %v; want a duplicate that changes nothing", name, res, err)
		}
	}
	if got := r.status(jane.ID); got != LeadContacted {
		t.Errorf("a repeat moved the lead to %s", got)
	}
	if n := count(); n != 1 {
		t.Fatalf("replies = %d, want 1", n)
	}

	// Another Message-ID is another message, even with the same words; the
	// same Message-ID from another lead is that lead's own.
	for _, in := range []InboundReply{
		{FromAddr: "jane@acme.example", Subject: "Re: hello", Body: "Yes", MessageID: "<m2@acme.example>"},
		{FromAddr: "bob@bob.example", Subject: "Re: hello", Body: "Yes", MessageID: "<m1@acme.example>"},
	} {
		if res, err := r.store.RecordInboundReply(r.ctx, in); err != nil || res.Duplicate {
			t.Errorf("%+v: %+v, %v; want stored", in, res, err)
		}
	}
	// Without a Message-ID: sender, subject and text decide.
	bare := InboundReply{FromAddr: "bob@bob.example", Subject: "Re: hi", Body: "Call me"}
	for i, want := range []bool{false, true, true} {
		if res, err := r.store.RecordInboundReply(r.ctx, bare); err != nil || res.Duplicate != want || res.LeadID != bob.ID {
			t.Errorf("bare delivery %d: %+v, %v; want duplicate %v", i+1, res, err, want)
		}
	}
	for _, in := range []InboundReply{
		{FromAddr: "bob@bob.example", Subject: "Re: hi", Body: "Call me later"},
		{FromAddr: "bob@bob.example", Subject: "Re: hi!", Body: "Call me"},
		{FromAddr: "bob@bob.example", Subject: "Re: hiCall", Body: " me"}, // the same bytes, cut elsewhere
	} {
		if res, err := r.store.RecordInboundReply(r.ctx, in); err != nil || res.Duplicate {
			t.Errorf("%+v: %+v, %v; want stored", in, res, err)
		}
	}
	if n := count(); n != 7 {
		t.Errorf("replies = %d, want 7", n)
	}
	// The simulator's replies carry no key and never collide.
	for range 2 {
		if _, err := r.store.Bun().NewInsert().Model(&Reply{LeadID: bob.ID, FromAddr: "bob@bob.example", Body: "sim", Simulated: true, ReceivedAt: fixedNow}).Exec(r.ctx); err != nil {
			t.Fatalf("simulated reply: %v", err)
		}
	}
}

// TestReplyDedupeMigratesADatabaseWithDuplicates: a database that already
// holds the same reply twice (stored before 0007) migrates; its rows stay,
// and new deliveries are deduplicated from then on.
func TestReplyDedupeMigratesADatabaseWithDuplicates(t *testing.T) {
	sqliteOnly(t, "an upgrade of a SQLite file from before 0007; the PostgreSQL migrations start empty, and TestPostgresInboundReplyStoredOnceAcrossInstances races the dedupe there")
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), FileName)
	// Every migration before 0007, as an older binary had them.
	older := fstest.MapFS{}
	err := fs.WalkDir(migrationFiles, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || path.Base(p) >= "0007" {
			return err
		}
		b, err := migrationFiles.ReadFile(p)
		older[path.Base(p)] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	old, err := openFile(file, WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(older); err != nil {
		t.Fatal(err)
	}
	m := migrate.NewMigrator(old.Bun(), ms, migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Written as the older binary did: raw rows of that schema (today's
	// CreateLead writes columns later migrations add).
	res, err := old.Bun().ExecContext(ctx, "INSERT INTO leads (email, domain_key, company, source, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		"jane@acme.example", "acme.example", "Acme", "test", LeadResponded, fixedNow, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	leadID, _ := res.LastInsertId()
	for range 2 {
		if _, err := old.Bun().ExecContext(ctx, "INSERT INTO replies (lead_id, from_addr, subject, body, received_at) VALUES (?, ?, ?, ?, ?)",
			leadID, "jane@acme.example", "Re: hello", "Yes", fixedNow); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	d, err := Open(ctx, file, WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatalf("migrating a database with duplicate replies: %v", err)
	}
	defer d.Close()
	var n int
	if err := d.Bun().NewRaw("SELECT COUNT(*) FROM replies WHERE dedupe_key IS NULL").Scan(ctx, &n); err != nil || n != 2 {
		t.Errorf("old rows = %d, %v; want both kept, without a key", n, err)
	}
	in := InboundReply{FromAddr: "jane@acme.example", Subject: "Re: hello", Body: "Yes"}
	for i, want := range []bool{false, true} {
		if res, err := d.RecordInboundReply(ctx, in); err != nil || res.Duplicate != want {
			t.Errorf("delivery %d after the migration: %+v, %v; want duplicate %v", i+1, res, err, want)
		}
	}
	rows, err := d.Bun().QueryContext(ctx, "EXPLAIN QUERY PLAN SELECT 1 FROM replies WHERE lead_id = ? AND dedupe_key = ?", leadID, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var details []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		details = append(details, detail)
	}
	if got := strings.Join(details, "; "); !strings.Contains(got, "replies_dedupe") {
		t.Errorf("a key lookup does not use replies_dedupe: %s", got)
	}
}
