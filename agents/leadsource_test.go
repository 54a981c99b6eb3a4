package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// staticLeads is a provider that returns fixed candidates.
type staticLeads struct {
	cands []LeadCandidate
	err   error
	asked []int
}

func (s *staticLeads) Name() string { return "static" }

func (s *staticLeads) Candidates(_ context.Context, n int) ([]LeadCandidate, error) {
	s.asked = append(s.asked, n)
	return s.cands, s.err
}

func TestLeadSourceWithNothingToDo(t *testing.T) {
	r := newOutreachRig(t)
	p := &staticLeads{}
	wantOutreachCounts(t, r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 10})),
		Counts{"created": 0, "duplicate": 0, "invalid": 0})
	if r.events.count(EventDataChanged) != 0 {
		t.Errorf("published data_changed with nothing created")
	}
	r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 0}))
	if len(p.asked) != 1 || p.asked[0] != 10 {
		t.Errorf("provider asked for %v, want [10] (a cap of 0 asks for nothing)", p.asked)
	}
}

func TestLeadSourceDedupesInTheDatabase(t *testing.T) {
	r := newOutreachRig(t)
	p := &staticLeads{cands: []LeadCandidate{
		{Name: "Jane", Email: " Jane@Acme.com ", Company: "Acme"},
		{Name: "Jane again", Email: "jane@acme.com", Company: "Acme Inc"},        // same e-mail
		{Name: "Bob", Email: "bob@mail.acme.com", Company: "Acme"},               // same domain key
		{Name: "Ann", Email: "ann@gmail.com", Company: "Ann's Studio"},           // free mail
		{Name: "Cid", Email: "cid@gmail.com", Company: "Cid & Co"},               // free mail too: not a duplicate
		{Name: "Dee", Email: "dee@gmail.com", Website: "https://www.acme.com/x"}, // free mail, known company website
		{Website: "https://bakery.co.uk/about", Company: "Bakery"},               // website only
		{Name: "Nobody", Company: "Ghost"},                                       // neither e-mail nor website
		{Email: "not-an-address", Company: "Broken"},
		{Email: "eve@example", Company: "No dot"},
	}}
	counts := r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 20}))
	wantOutreachCounts(t, counts, Counts{"created": 4, "duplicate": 3, "invalid": 3})
	if r.events.count(EventDataChanged) != 1 {
		t.Errorf("data_changed events = %d, want 1", r.events.count(EventDataChanged))
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE email LIKE '%@gmail.com' AND domain_key IS NULL"); n != 2 {
		t.Errorf("gmail leads without domain key = %d, want 2", n)
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE domain_key = 'bakery.co.uk' AND email IS NULL AND source = 'static'"); n != 1 {
		t.Errorf("website-only lead missing")
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE email = 'jane@acme.com' AND domain_key = 'acme.com'"); n != 1 {
		t.Errorf("normalised e-mail lead missing")
	}
	// Run again: everything is now a duplicate or still invalid.
	wantOutreachCounts(t, r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 20})),
		Counts{"created": 0, "duplicate": 7, "invalid": 3})
}

func TestLeadSourceTakesAtMostMaxPerCycleAndReportsProviderErrors(t *testing.T) {
	r := newOutreachRig(t)
	var cands []LeadCandidate
	for i := range 5 {
		cands = append(cands, LeadCandidate{Email: fmt.Sprintf("x@c%d.example", i), Company: "C"})
	}
	p := &staticLeads{cands: cands}
	wantOutreachCounts(t, r.run(NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 3})), Counts{"created": 3})

	p.err = errors.New("quota exceeded")
	if _, err := NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 3}).Run(r.ctx); err == nil || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("Run with a failing provider: %v", err)
	}
}

func TestPrepareLead(t *testing.T) {
	for _, tc := range []struct {
		in             LeadCandidate
		email, key, co string
		bad            string
	}{
		{in: LeadCandidate{Email: "MAILTO:A.B@Sub.Acme.CO.UK", Company: "Acme"}, email: "a.b@sub.acme.co.uk", key: "acme.co.uk", co: "Acme"},
		{in: LeadCandidate{Email: "a@yahoo.co.uk", Company: "A"}, email: "a@yahoo.co.uk", key: "", co: "A"},
		{in: LeadCandidate{Website: "www.Shop.example"}, key: "shop.example", co: "shop.example"},
		{in: LeadCandidate{Email: "x@proton.me"}, bad: "no company"},
		{in: LeadCandidate{Company: "X"}, bad: "neither"},
		{in: LeadCandidate{Email: "a..b@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "a@b@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "a@co.uk", Company: "X"}, bad: "no registrable domain"},
		{in: LeadCandidate{Website: "http://10.0.0.1/", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Website: "ftp://files.example", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Email: "a@x.com", Company: strings.Repeat("x", 400)}, bad: "longer"},
		// Names are cleaned; addresses with anything but their syntax are refused.
		{in: LeadCandidate{Email: "a@x.com", Company: " Ac\x00me\tCorp\n\u2028Ltd \xff"}, email: "a@x.com", key: "x.com", co: "Acme Corp Ltd \uFFFD"},
		{in: LeadCandidate{Email: "ja\x00ne@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "jané@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "a@x.com\r\nBcc: b@y.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Email: "\"a b\"@x.com", Company: "X"}, bad: "not a valid address"},
		{in: LeadCandidate{Website: "https://acme.example/a b", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Website: "https://acme.example/\x00", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Website: "https://acme.example/\xff", Company: "X"}, bad: "website"},
		{in: LeadCandidate{Website: "www.00", Company: "X"}, bad: "website"}, // found by FuzzLeadSearchResponse
		{in: LeadCandidate{Email: "a@b.123", Company: "X"}, bad: "not a valid address"},
		// A page on a shared host gives no company domain.
		{in: LeadCandidate{Email: "a@gmail.com", Website: "https://facebook.com/acme", Company: "Acme"}, email: "a@gmail.com", key: "", co: "Acme"},
	} {
		got, err := PrepareLead(tc.in, "t")
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("PrepareLead(%+v) error = %v, want %q", tc.in, err, tc.bad)
			}
			continue
		}
		if err != nil || got.Email != tc.email || got.DomainKey != tc.key || got.Company != tc.co {
			t.Errorf("PrepareLead(%+v) = %+v, %v; want email %q key %q company %q", tc.in, got, err, tc.email, tc.key, tc.co)
		}
	}
}

func TestSyntheticLeadsAreFictitiousAndMostlyFresh(t *testing.T) {
	r := newOutreachRig(t)
	p := NewSyntheticLeads(r.rnd)
	cands, err := p.Candidates(r.ctx, 200)
	if err != nil || len(cands) != 200 {
		t.Fatalf("Candidates = %d, %v", len(cands), err)
	}
	niches := map[string]bool{}
	for _, pack := range PackNames() {
		for _, n := range PackNiches(pack) {
			niches[n] = true
		}
	}
	for _, c := range cands {
		in, err := PrepareLead(c, p.Name())
		if err != nil {
			t.Fatalf("candidate %+v is invalid: %v", c, err)
		}
		if !strings.HasSuffix(in.DomainKey, ".example") && !strings.HasSuffix(in.DomainKey, ".test") {
			t.Fatalf("candidate %+v is not on a reserved domain", c)
		}
		if !strings.HasSuffix(c.Website, in.DomainKey) || c.Name == "" || c.Company == "" || !niches[c.Niche] {
			t.Fatalf("implausible candidate %+v", c)
		}
	}
	lc := NewLeadSourceCycle(r.store, r.env(), p, LeadSourceOptions{MaxPerCycle: 50})
	first, second := r.run(lc), r.run(lc)
	if first["created"] < 48 || second["created"] < 48 || first["invalid"]+second["invalid"] != 0 {
		t.Fatalf("two synthetic cycles: %v then %v; want mostly fresh leads", first, second)
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE source = 'synthetic'"); n != first["created"]+second["created"] {
		t.Fatalf("stored %d synthetic leads", n)
	}
	if got, _ := p.Candidates(r.ctx, -1); len(got) != 0 {
		t.Errorf("Candidates(-1) = %d", len(got))
	}
}

func TestImportLeadsCSV(t *testing.T) {
	r := newOutreachRig(t)
	r.addLead("", "known@old.example", "Old", "")
	file := "\uFEFFWebsite, EMAIL ,Company,name,Niche,phone\n" +
		"https://one.example,ann@one.example,One,Ann,agency,555\n" +
		",known@old.example,Old again,,,\n" + // duplicate e-mail
		",,Nothing,,,\n" + // neither
		"two.example,,Two,,saas\n" + // website only, short row
		"\"three.example\",bad address,Three,,,\n" +
		"https://www.one.example,other@one.example,One Again,,,\n" // duplicate domain
	rep, err := ImportLeadsCSV(r.ctx, r.store, strings.NewReader(file), "", outreachStart)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 2 || rep.Duplicate != 2 || rep.Invalid != 2 || len(rep.Rows) != 6 || !rep.At.Equal(outreachStart) {
		t.Fatalf("report = %+v", rep)
	}
	wantRows := []CSVRow{
		{2, "created", ""}, {3, "duplicate", "a lead with this e-mail exists"}, {4, "invalid", "neither e-mail nor website"},
		{5, "created", ""}, {6, "invalid", ""}, {7, "duplicate", "a lead from this company domain exists"},
	}
	for i, w := range wantRows {
		got := rep.Rows[i]
		if got.Row != w.Row || got.Status != w.Status || (w.Reason != "" && got.Reason != w.Reason) || (got.Status != "created" && got.Reason == "") {
			t.Errorf("row %d = %+v, want %+v", i, got, w)
		}
	}
	if n := r.count("SELECT COUNT(*) FROM leads WHERE source = 'csv' AND ((email = 'ann@one.example' AND niche = 'agency' AND name = 'Ann') OR (website = 'two.example' AND niche = 'saas'))"); n != 2 {
		t.Errorf("imported leads with their columns: %d, want 2", n)
	}
}

func TestImportLeadsCSVRefusesBadFilesWhole(t *testing.T) {
	big := "email\n" + strings.Repeat("x@y.example\n", MaxCSVRows+1)
	huge := "email,company\n" + strings.Repeat(strings.Repeat("a", 1000)+",b\n", 1100)
	for name, file := range map[string]string{
		"empty":           "",
		"no header":       "ann@one.example,One\n",
		"duplicate email": "email,Email\na@b.example,c@d.example\n",
		"too many rows":   big,
		"too large":       huge,
	} {
		t.Run(name, func(t *testing.T) {
			r := newOutreachRig(t)
			_, err := ImportLeadsCSV(r.ctx, r.store, strings.NewReader(file), "csv", outreachStart)
			if !errors.Is(err, ErrInvalidCSV) {
				t.Fatalf("error = %v, want ErrInvalidCSV", err)
			}
			if n := r.count("SELECT COUNT(*) FROM leads"); n != 0 {
				t.Fatalf("%d leads stored from a refused file", n)
			}
		})
	}
	// Exactly at the row limit is fine.
	r := newOutreachRig(t)
	var b strings.Builder
	b.WriteString("email\n")
	for i := range MaxCSVRows {
		fmt.Fprintf(&b, "p%d@c%d.example\n", i, i)
	}
	rep, err := ImportLeadsCSV(r.ctx, r.store, strings.NewReader(b.String()), "csv", outreachStart)
	if err != nil || rep.Created != MaxCSVRows {
		t.Fatalf("import at the limit = %d created, %v", rep.Created, err)
	}
}
