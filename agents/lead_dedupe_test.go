package agents

import (
	"strings"
	"testing"
)

// A lead is a duplicate when its e-mail matches an existing lead's, or its
// company domain or website matches an existing lead's company domain or
// website, an e-mail present or not. A free-mail domain is no company's,
// and a website on a host shared by many businesses is no company's own.
func TestLeadDedupeComparesWebsitesWhenAnEmailIsPresent(t *testing.T) {
	r := newOutreachRig(t)
	for i, tc := range []struct {
		cand    LeadCandidate
		outcome string
		reason  string
	}{
		{LeadCandidate{Email: "jane@acme.io", Website: "https://www.acme.com/about", Company: "Acme"}, LeadOutcomeCreated, ""},
		// Another address, the same website however it is written.
		{LeadCandidate{Email: "bob@acme-mail.com", Website: "acme.com", Company: "Acme"}, LeadOutcomeDuplicate, "a lead with this website exists"},
		{LeadCandidate{Email: "ops@acmehq.example", Website: "HTTP://user@WWW.Acme.COM.:8080/x?y#z", Company: "Acme"}, LeadOutcomeDuplicate, "a lead with this website exists"},
		// No website, but the e-mail's company domain is that website.
		{LeadCandidate{Email: "ceo@acme.com", Company: "Acme"}, LeadOutcomeDuplicate, "a lead with this website exists"},
		{LeadCandidate{Email: "sales@mail.acme.com", Company: "Acme"}, LeadOutcomeDuplicate, "a lead with this website exists"},
		// A free-mail address with the known website.
		{LeadCandidate{Email: "dee@gmail.com", Website: "https://acme.com", Company: "Dee"}, LeadOutcomeDuplicate, "a lead with this website exists"},
		// The same e-mail stays the sharpest reason.
		{LeadCandidate{Email: "Jane@Acme.io", Website: "https://other.example", Company: "Acme"}, LeadOutcomeDuplicate, "a lead with this e-mail exists"},
		// The company domain of the e-mail, as before.
		{LeadCandidate{Email: "joe@acme.io", Company: "Acme"}, LeadOutcomeDuplicate, "a lead from this company domain exists"},
		// Free mail is no website: gmail users are not duplicates of each other.
		{LeadCandidate{Email: "solo@gmail.com", Company: "Solo"}, LeadOutcomeCreated, ""},
		{LeadCandidate{Email: "duo@gmail.com", Company: "Duo"}, LeadOutcomeCreated, ""},
		// Pages on a shared host belong to many businesses.
		{LeadCandidate{Email: "shop@gmail.com", Website: "https://www.facebook.com/acmeshop", Company: "Acme Shop"}, LeadOutcomeCreated, ""},
		{LeadCandidate{Email: "deli@gmail.com", Website: "https://m.facebook.com/deli", Company: "Deli"}, LeadOutcomeCreated, ""},
		// A website under a known company domain is that company's.
		{LeadCandidate{Email: "sales@beta.com", Company: "Beta"}, LeadOutcomeCreated, ""},
		{LeadCandidate{Email: "ann@beta.io", Website: "https://shop.beta.com", Company: "Beta"}, LeadOutcomeDuplicate, "a lead from this company domain exists"},
		// A website only (its domain is its company domain), then an e-mail
		// at another domain with that website.
		{LeadCandidate{Website: "gamma.example", Company: "Gamma"}, LeadOutcomeCreated, ""},
		{LeadCandidate{Email: "g@gamma-mail.example", Website: "https://gamma.example/", Company: "Gamma"}, LeadOutcomeDuplicate, "a lead from this company domain exists"},
	} {
		outcome, reason, err := addLead(r.ctx, r.store, tc.cand, "test")
		if err != nil {
			t.Fatalf("%d: addLead(%+v): %v", i, tc.cand, err)
		}
		if outcome != tc.outcome || reason != tc.reason {
			t.Errorf("%d: %+v is %s (%q), want %s (%q)", i, tc.cand, outcome, reason, tc.outcome, tc.reason)
		}
	}
	if n := r.count("SELECT COUNT(*) FROM leads"); n != 7 {
		t.Errorf("%d leads stored, want 7", n)
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE website_key = 'acme.com' AND domain_key = 'acme.io'"); n != 1 {
		t.Errorf("the first lead has no website key")
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE website LIKE '%facebook.com%' AND website_key IS NULL AND domain_key IS NULL"); n != 2 {
		t.Errorf("leads on a shared host got a company key")
	}
}

// The search API source and CSV import store through the same dedupe.
func TestSearchAPIAndCSVDedupeByWebsite(t *testing.T) {
	r := newOutreachRig(t)
	if outcome, _, err := addLead(r.ctx, r.store, LeadCandidate{Email: "jane@acme.io", Website: "acme.com", Company: "Acme"}, "test"); err != nil || outcome != LeadOutcomeCreated {
		t.Fatalf("first lead: %s, %v", outcome, err)
	}
	p := &staticLeads{cands: []LeadCandidate{{Email: "bob@acme-corp.example", Website: "https://www.acme.com", Company: "Acme"}}}
	wantOutreachCounts(t, r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 5})), Counts{"created": 0, "duplicate": 1, "invalid": 0})
	rep, err := ImportLeadsCSV(r.ctx, r.store, strings.NewReader("email,website,company\nann@acme-group.example,http://acme.com/contact,Acme\n"), "", outreachStart)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Duplicate != 1 || len(rep.Rows) != 1 || rep.Rows[0].Reason != "a lead with this website exists" {
		t.Fatalf("CSV report = %+v", rep)
	}
}
