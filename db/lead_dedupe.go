package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// A lead is a duplicate of an existing one when they share an e-mail, a
// company domain (domain_key: the registrable domain of a business e-mail,
// or of the website when there is none) or a website (website_key: the
// website's host), or when one's company domain is the other's website:
// jane@acme.io with the website acme.com is the company of an earlier lead
// at acme.com, whatever the address says. Each of the three columns has a
// UNIQUE index, so the check is three index probes whatever the number of
// leads; CreateLead makes it in the caller's transaction, which takes the
// write lock when it begins (_txlock=immediate), so two concurrent imports
// cannot both pass it.

// Why a lead is a duplicate, as DuplicateLeadError.Reason says it.
const (
	DuplicateEmail   = "a lead with this e-mail exists"
	DuplicateDomain  = "a lead from this company domain exists"
	DuplicateWebsite = "a lead with this website exists"
)

// DuplicateLeadError refuses a lead that is a duplicate of lead ExistingID.
type DuplicateLeadError struct {
	ExistingID int64
	Reason     string // DuplicateEmail, DuplicateDomain or DuplicateWebsite
}

func (e *DuplicateLeadError) Error() string {
	return fmt.Sprintf("store: duplicate of lead %d: %s", e.ExistingID, e.Reason)
}

// sharedWebsiteHosts host the pages of many businesses, told apart by their
// path (facebook.com/acme, sites.google.com/view/acme): a website there is
// no company's own, so it gives no website key and no company domain. A
// host is shared when it is one of these or under one.
var sharedWebsiteHosts = []string{
	"facebook.com", "fb.com", "instagram.com", "linkedin.com", "twitter.com", "x.com", "youtube.com",
	"tiktok.com", "pinterest.com", "linktr.ee", "google.com", "goo.gl", "g.page", "yelp.com",
	"tripadvisor.com", "medium.com", "github.com", "gitlab.com", "wordpress.com", "wix.com",
	"squarespace.com", "weebly.com", "etsy.com", "amazon.com", "ebay.com", "t.me", "wa.me", "bit.ly",
	"about.me", "notion.so",
}

// IsSharedWebsiteHost reports whether host (lower-case) is, or is under, a
// host shared by many businesses.
func IsSharedWebsiteHost(host string) bool {
	for _, s := range sharedWebsiteHosts {
		if host == s || strings.HasSuffix(host, "."+s) {
			return true
		}
	}
	return false
}

// WebsiteKey is the dedupe key of a website: its host, lower-case, without
// scheme, user, port, path, query, fragment, trailing dot or leading "www."
// ("HTTPS://www.Acme.com:443/about" is "acme.com"; "www.com" keeps its
// "www." as no dot would be left), or "" when that is no
// dotted host name of letters, digits and hyphens, or is a shared host.
//
// It is made of plain string steps, not a URL parser, because migration
// 0009 fills the column for the leads stored before it with the same steps
// in SQL (lead_dedupe_test.go proves the two agree); for a website a lead
// source accepted (agents.PrepareLead) it is the parsed URL's host.
func WebsiteKey(website string) string {
	s := asciiLower(strings.Trim(website, " "))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimRight(s, ".")
	if rest, ok := strings.CutPrefix(s, "www."); ok && strings.Contains(rest, ".") {
		s = rest // www.acme.com is acme.com; www.com stays www.com
	}
	if !strings.Contains(s, ".") || strings.HasPrefix(s, ".") || IsSharedWebsiteHost(s) {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return ""
		}
	}
	return s
}

// asciiLower lower-cases ASCII letters only, as SQLite's lower() does.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// duplicateLeadQuery finds the lead that a new lead with e-mail email and
// the domain keys keys (its company domain and website key) duplicates, the
// sharpest reason first: one probe of each UNIQUE index per key.
func duplicateLeadQuery(idb bun.IDB, email string, keys []string) *bun.RawQuery {
	return idb.NewRaw(`SELECT id, CASE WHEN email = ?0 THEN 1 WHEN domain_key IN (?1) THEN 2 ELSE 3 END AS why
		FROM leads WHERE email = ?0 OR domain_key IN (?1) OR website_key IN (?1)
		ORDER BY why, id LIMIT 1`, email, bun.List(keys))
}

// duplicateLead returns the error refusing a new lead as a duplicate, or nil.
func duplicateLead(ctx context.Context, idb bun.IDB, email string, keys []string) error {
	if len(keys) == 0 {
		keys = []string{""} // matches no key: domain_key and website_key are never ''
	}
	var found []struct {
		ID  int64 `bun:"id"`
		Why int   `bun:"why"`
	}
	if err := duplicateLeadQuery(idb, email, keys).Scan(ctx, &found); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: unable to check for a duplicate lead: %w", err)
	}
	if len(found) == 0 {
		return nil
	}
	reason := map[int]string{1: DuplicateEmail, 2: DuplicateDomain, 3: DuplicateWebsite}[found[0].Why]
	return &DuplicateLeadError{ExistingID: found[0].ID, Reason: reason}
}
