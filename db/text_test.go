package db

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestTextProblem(t *testing.T) {
	for s, want := range map[string]string{
		"":                "",
		"plain":           "",
		"tab\tline\r\n":   "",
		"Ünïcödé 😀":       "",
		"\uFFFD as text":  "",
		"a\x00b":          "a NUL byte",
		"ab\xffcd":        "bytes that are not UTF-8 text",
		"\xed\xa0\x80":    "bytes that are not UTF-8 text", // a UTF-16 surrogate
		"esc\x1b[31m":     "a control character (U+001B)",
		"del\x7f":         "a control character (U+007F)",
		"c1 \u0085 line":  "a control character (U+0085)",
		"\x00\xff either": "a NUL byte",
	} {
		if got := TextProblem(s); got != want {
			t.Errorf("TextProblem(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestStoreTakesBrokenTextWithoutFailing: text with a NUL byte that gets
// past the edge (a webhook, a caller that does not check) is stored and
// searched like any text — the NUL as U+FFFD, as bun stores bytes that are
// not UTF-8 — instead of failing the query on every retry.
func TestStoreTakesBrokenTextWithoutFailing(t *testing.T) {
	ctx := context.Background()
	d := mustOpen(t)
	l, err := d.CreateLead(ctx, nil, NewLead{Name: "N\x00", Email: "x\x00@nul.example", Company: "Nul\x00Co", Source: "test", DomainKey: "nul.example"})
	if err != nil {
		t.Fatalf("CreateLead with a NUL: %v", err)
	}
	stored, err := d.LeadDetail(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Lead.Company != "Nul\uFFFDCo" || stored.Lead.Name != "N\uFFFD" {
		t.Errorf("stored company %q name %q, want U+FFFD for the NUL", stored.Lead.Company, stored.Lead.Name)
	}
	if _, err := d.CreateLead(ctx, nil, NewLead{Company: "Bad\xffCo", Email: "y@bad.example", Source: "test", DomainKey: "bad.example"}); err != nil {
		t.Fatalf("CreateLead with invalid UTF-8: %v", err)
	}
	for _, term := range []string{"\x00", "l\x00C", "Nul\x00Co", "\xff", "Bad\xffCo", "a\x00b\x00c\x00d"} {
		q := ListQuery{Search: term}
		if _, _, err := d.ListLeads(ctx, q); err != nil {
			t.Errorf("ListLeads(%q): %v", term, err)
		}
		if _, _, err := d.ListCustomers(ctx, q); err != nil {
			t.Errorf("ListCustomers(%q): %v", term, err)
		}
		if _, _, err := d.ListTasks(ctx, q); err != nil {
			t.Errorf("ListTasks(%q): %v", term, err)
		}
		if _, _, err := d.ListInvoices(ctx, q); err != nil {
			t.Errorf("ListInvoices(%q): %v", term, err)
		}
		if _, _, err := d.ListAgentRuns(ctx, q); err != nil {
			t.Errorf("ListAgentRuns(%q): %v", term, err)
		}
		if _, _, err := d.ListAudit(ctx, q); err != nil {
			t.Errorf("ListAudit(%q): %v", term, err)
		}
	}
	rows, _, err := d.ListLeads(ctx, ListQuery{Search: "Nul\x00Co"})
	if err != nil || len(rows) != 1 || rows[0].ID != l.ID {
		t.Errorf("search for the stored text finds %d rows (%v), want the lead", len(rows), err)
	}
	if _, err := d.Authenticate(ctx, "admin\x00@x.example", "pw\x00"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate with a NUL = %v, want ErrBadCredentials", err)
	}
	if _, err := d.UserByEmail(ctx, "a\x00"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByEmail with a NUL = %v, want ErrNotFound", err)
	}
	if _, err := d.CustomerByPortalToken(ctx, "tok\x00en"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CustomerByPortalToken with a NUL = %v, want ErrNotFound", err)
	}
	if err := d.RecordAudit(ctx, AuditEntry{Actor: "a\x00", Action: "test", Target: "t", Detail: strings.Repeat("\x00", 10), CreatedAt: fixedNow}); err != nil {
		t.Errorf("RecordAudit with NULs: %v", err)
	}
}
