package db

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"
)

// backfillSQL is migration 0009's backfill statement, between its markers.
func backfillSQL(t *testing.T, postgres bool) string {
	t.Helper()
	files, name := migrationFiles, "migrations/0009_lead_website_key.tx.up.sql"
	if postgres {
		files, name = postgresMigrationFiles, "migrations/postgres/0009_lead_website_key.tx.up.sql"
	}
	b, err := files.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "-- backfill:begin\n")
	stmt, _, ok2 := strings.Cut(rest, "-- backfill:end")
	if !ok || !ok2 {
		t.Fatal("migration 0009 has no backfill markers")
	}
	return stmt
}

// websiteInputs are websites as leads stored before 0009 may hold them.
var websiteInputs = []string{
	"acme.com", "https://www.acme.com/about", "HTTP://WWW.Acme.COM:8080", "http://user:pw@shop.acme.com./x?y#z",
	"www.beta.co.uk", "beta.co.uk?ref=1", "beta.co.uk#top", "  gamma.example  ", "https://gamma.example:443",
	"www.www.delta.example", "www.com", "www.00", "https://www.facebook.com/acme", "m.facebook.com/deli", "sites.google.com/view/acme",
	"facebook.com.evil.example", "notfacebook.com", "x.com", "box.com", "localhost", "http://10.0.0.1/", "not a url",
	"ftp://files.example", "https://", "://", "www.", ".acme.com", "acme..com", "acme.com..", "é.example", "xn--e1a.example",
	"a_b.example", "https://ACME.com/Path/With/UPPER", "\tacme.tab.example", "http://[::1]:80/", "@@@.example",
	"https://a@b@c.example", "acme.com:", "acme.com/", "?", "#", "/", " ", "https://www.linkedin.com/company/acme",
}

// websiteTokens are the pieces randomWebsite joins: host words and every
// character the key's steps treat apart.
var websiteTokens = []string{
	"acme", "ACME", "b2", "x9", "-", ".", ".", ".com", ".co.uk", ".example", "www.", "WWW.", "http://", "https://",
	"://", "@", ":", ":8080", "/", "/path", "?q=1", "#top", " ", "\t", "é", "_", "%2e", "..", "facebook.com", "m.",
}

// randomWebsite joins one to eight tokens.
func randomWebsite(r *mrand.Rand) string {
	var b strings.Builder
	for range 1 + r.IntN(8) {
		b.WriteString(websiteTokens[r.IntN(len(websiteTokens))])
	}
	return b.String()
}

// The migration's SQL steps give every stored website the key WebsiteKey
// gives it, and the oldest of several leads with one key keeps it.
func TestWebsiteKeyBackfillAgreesWithWebsiteKey(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	r := mrand.New(mrand.NewPCG(9, 9))
	websites := slices.Clone(websiteInputs)
	for len(websites) < 2000 {
		if w := randomWebsite(r); w != "" { // a lead needs an e-mail or a website
			websites = append(websites, w)
		}
	}
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		for i, w := range websites {
			if _, err := tx.ExecContext(ctx, `INSERT INTO leads (company, website, source, created_at, updated_at) VALUES (?, ?, 'test', ?, ?)`,
				fmt.Sprintf("C%d", i), w, fixedNow, fixedNow); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, d.Bun(), backfillSQL(t, d.Postgres()))
	var rows []Lead
	if err := d.Bun().NewSelect().Model(&rows).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	owner := map[string]int64{}
	keyed := 0
	for _, l := range rows {
		want := WebsiteKey(l.Website)
		if want != "" && owner[want] == 0 {
			owner[want] = l.ID // the oldest lead with the key keeps it
		}
		got := ""
		if l.WebsiteKey != nil {
			got = *l.WebsiteKey
			keyed++
		}
		if want != "" && owner[want] != l.ID {
			want = ""
		}
		if got != want {
			t.Errorf("website %q: migration key %q, WebsiteKey %q", l.Website, got, want)
		}
	}
	if keyed < 50 { // distinct keys: most random websites share one or have none
		t.Fatalf("only %d websites got a key: the inputs test nothing", keyed)
	}
	for in, want := range map[string]string{
		"https://www.acme.com/about": "acme.com", "HTTP://WWW.Acme.COM:8080": "acme.com", "http://user:pw@shop.acme.com./x?y#z": "shop.acme.com",
		"  gamma.example  ": "gamma.example", "www.www.delta.example": "www.delta.example", "www.com": "www.com", "https://WWW.00/": "www.00", "https://www.facebook.com/acme": "",
		"m.facebook.com/deli": "", "sites.google.com/view/acme": "", "facebook.com.evil.example": "facebook.com.evil.example",
		"notfacebook.com": "notfacebook.com", "x.com": "", "localhost": "", "not a url": "", "é.example": "", "": "", ".acme.com": "",
	} {
		if got := WebsiteKey(in); got != want {
			t.Errorf("WebsiteKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// The migration's shared hosts are WebsiteKey's, in both dialects' sets.
func TestWebsiteKeySharedHostsMatchTheMigration(t *testing.T) {
	for _, postgres := range []bool{false, true} {
		values := regexp.MustCompile(`(?s)shared \(host\) AS \(VALUES(.*?\))\),\n`).FindStringSubmatch(backfillSQL(t, postgres))
		if values == nil {
			t.Fatalf("no shared hosts in the backfill (postgres %v)", postgres)
		}
		var hosts []string
		for _, m := range regexp.MustCompile(`\('([^']+)'\)`).FindAllStringSubmatch(values[1], -1) {
			hosts = append(hosts, m[1])
		}
		if !slices.Equal(hosts, sharedWebsiteHosts) {
			t.Fatalf("migration (postgres %v) shares %v\nWebsiteKey shares %v", postgres, hosts, sharedWebsiteHosts)
		}
	}
}

// A file that predates 0009 is upgraded: its leads get their website keys,
// the oldest of those sharing a website keeps the key (the others were
// stored before the rule and stay), and new leads are then compared with
// them.
func TestMigration0009UpgradesStoredLeads(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	// Back to the file as it was before 0009.
	mustExec(t, d.Bun(), "DROP INDEX leads_website_key")
	mustExec(t, d.Bun(), "ALTER TABLE leads DROP COLUMN website_key")
	mustExec(t, d.Bun(), "DELETE FROM bun_migrations WHERE name = '0009'")
	for i, l := range []struct{ email, domain, website string }{
		{"jane@acme.io", "acme.io", "https://www.acme.com/about"},
		{"bob@acme-mail.com", "acme-mail.com", "acme.com"}, // stored twice before the rule
		{"x@gmail.com", "", "https://facebook.com/x"},
		{"", "beta.example", "beta.example"},
	} {
		var email, domain any
		if l.email != "" {
			email = l.email
		}
		if l.domain != "" {
			domain = l.domain
		}
		mustExec(t, d.Bun(), `INSERT INTO leads (email, domain_key, company, website, source, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'test', ?, ?)`, email, domain, fmt.Sprintf("C%d", i), l.website, fixedNow, fixedNow)
	}
	if err := d.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	var got []string
	if err := d.Bun().NewRaw("SELECT COALESCE(website_key, 'NULL') FROM leads ORDER BY id").Scan(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[acme.com NULL NULL beta.example]" {
		t.Fatalf("website keys after the upgrade = %v", got)
	}
	_, err := d.CreateLead(ctx, nil, NewLead{Email: "ceo@acme-group.example", DomainKey: "acme-group.example", Website: "http://acme.com", Company: "Acme", Source: "test"})
	var dup *DuplicateLeadError
	if !errors.As(err, &dup) || dup.ExistingID != 1 || dup.Reason != DuplicateWebsite {
		t.Fatalf("a new lead with an upgraded lead's website: %v", err)
	}
	// The index refuses a duplicate website key written around the check.
	_, err = d.Bun().ExecContext(ctx, `INSERT INTO leads (company, website, website_key, source, created_at, updated_at)
		VALUES ('Raw', 'acme.com', 'acme.com', 'test', ?, ?)`, fixedNow, fixedNow)
	if !IsUniqueViolation(err) {
		t.Fatalf("raw duplicate website key: %v", err)
	}
	requireAllInvariants(t, d, fixedNow)
}
