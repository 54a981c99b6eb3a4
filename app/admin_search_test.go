package app

import (
	"strings"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// TestAdminSearchSaysHowItSearched: a search of three characters or more
// goes through the full-text index and says so; a shorter one says it reads
// every row, and still finds what it matches.
func TestAdminSearchSaysHowItSearched(t *testing.T) {
	f := newFixture(t, nil)
	f.seed(t)
	f.signInAs(t, db.RoleAdmin)
	_, doc, _ := f.get(t, "/admin?q=northwind")
	if got := text(doc.Find("#admin-search-how")); !strings.Contains(got, "full-text index") {
		t.Errorf("q=northwind says %q", got)
	}
	if n := doc.Find("#admin-leads tbody tr").Length(); n != 1 {
		t.Errorf("q=northwind: %d lead rows, want 1", n)
	}
	_, doc, _ = f.get(t, "/admin?q=nw")
	if got := text(doc.Find("#admin-search-how")); !strings.Contains(got, "every row is read") {
		t.Errorf("q=nw says %q", got)
	}
	_, doc, _ = f.get(t, "/admin")
	if doc.Find("#admin-search-how").Length() != 0 {
		t.Error("no search, yet the page explains one")
	}
}
