package searchapi

import (
	"bytes"
	"net/mail"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"golang.org/x/net/publicsuffix"
)

// searchResponseSeeds are answers a search API may give: real-looking ones,
// empty and huge ones, NUL bytes, invalid UTF-8 and wrong types.
func searchResponseSeeds() [][]byte {
	// Large answers in the shapes that cost the parser most: many leads,
	// many empty items, one enormous field. They stay at a few KiB: the
	// fuzzer minimises each new input it keeps, and a mutated answer of
	// hundreds of KiB holds it for a minute. TestSearchBodiesAtTheSizeLimit
	// checks the same property on answers of the full 1 MiB.
	many := `[` + strings.Repeat(`{"company_name":"Acme","email":"a@acme.example","website":"acme.example"},`, 40) + `{}]`
	empties := `[` + strings.Repeat(`{},`, 1000) + `{}]`
	field := `[{"company":"` + strings.Repeat("Acme ", 1000) + `","email":"a@acme.example"}]`
	return [][]byte{
		[]byte(`[{"company_name":"Acme","contact_name":"Jane Roe","email":"jane@acme.example","website":"https://acme.example","niche":"branding"},
			{"company":"Beta","contact":"Bo","url":"beta.example","industry":"SaaS","email":42}, 7, null]`),
		[]byte(`{"results":[{"company":"A","email":"a@a.example"},{"company":"B","email":"b@b.example","website":"https://www.b.example/about?x=1#y"}]}`),
		[]byte(`{"results":[{"company_name":"Northwind Traders","contact_name":"Ann","email":"ann@northwind.co.uk","website":"http://northwind.co.uk:8080/","industry":"Logistics & Supply Chain"}],"next":null}`),
		[]byte(``), []byte(`   `), []byte(`[]`), []byte(`{}`), []byte(`{"results":[]}`), []byte(`null`), []byte(`"x"`), []byte(`42`),
		[]byte(many), []byte(empties), []byte(field),
		[]byte(`[{"company":"` + strings.Repeat("x", 2000) + `","email":"` + strings.Repeat("y", 400) + `@z.example"}]`),
		[]byte("[{\"company\":\"Ac\x00me\",\"email\":\"ja\x00ne@acme.example\"}]"),
		[]byte(`[{"company":"Ac\u0000me","contact_name":"Jane\u0000Roe","email":"jane\u0000@acme.example","website":"acme\u0000.example","niche":"\u0000"}]`),
		[]byte("[{\"company\":\"\xff\xfeAcme\",\"email\":\"j\xffane@acme.example\",\"website\":\"https://acme.example/\xff\"}]"),
		[]byte("\xff\xfe[{}]"), []byte("[\x00]"), []byte(`[{"company":"\ud800\udc00 \ud800","email":"\u00e9@acme.example"}]`),
		[]byte(`{"results":5}`), []byte(`{"results":{"company":"A"}}`), []byte(`{"results":"x"}`), []byte(`[1,"x",null,true,[],{}]`),
		[]byte(`[{"company":5,"email":true,"website":{"x":1},"niche":["a"],"contact_name":null}]`),
		[]byte(`[{"company":"A","company":"B","email":"a@a.example","email":"b@b.example"}]`),
		[]byte(`[` + strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000) + `]`),
		[]byte(`[{"company":"Evil","email":"\"quoted\"@evil.example","website":"javascript:alert(1)"},
			{"company":"Ftp","email":"a@[10.0.0.1]","website":"ftp://files.example"},
			{"company":"IP","email":"a@localhost","website":"http://[::1]:80/"},
			{"company":"Space","email":"a b@c.example","website":"https://acme.example/a b"},
			{"company":"Line","email":"a@b.example\r\nBcc: x@y.example","website":"https://acme.example\r\nX: y"},
			{"company":"Unicode","email":"jané@acme.example","website":"https://bücher.example"},
			{"company":"Tabs\tand\nnewlines\u2028here","email":"MAILTO:Tab@Acme.Example","website":"WWW.ACME.EXAMPLE"},
			{"company":"Shared","email":"x@gmail.com","website":"https://www.facebook.com/acme"}]`),
		[]byte(`{"results":[{"company":"A","email":"a@a.example"}],"results":"late"}`),
		[]byte(`[{"company":"A"}] trailing`), []byte(`[{"company":"A"`), []byte(`{"results":[{"company":"A"}]`),
	}
}

// FuzzLeadSearchResponse feeds bodies to the search API's parser and the
// lead check after it. Whatever the body, nothing panics, and either the
// parse fails with a short, printable error, or every candidate's fields
// are valid text of bounded length and every one the check accepts is a
// valid lead: valid UTF-8, no control character, at most agents.MaxLeadField
// bytes, an e-mail net/mail parses to itself, a website that is an http(s)
// URL, a registrable company domain, and a website key that is the URL's
// host.
func FuzzLeadSearchResponse(f *testing.F) {
	for _, s := range searchResponseSeeds() {
		f.Add(s)
	}
	f.Fuzz(checkSearchBody)
}

// checkSearchBody is FuzzLeadSearchResponse's property for one body.
func checkSearchBody(t *testing.T, body []byte) {
	cands, err := parseSearchResults(body, 0)
	if err != nil {
		checkMessage(t, "parse error", err.Error(), 400)
		return
	}
	if len(cands) > len(bytes.TrimSpace(body))/2 {
		t.Fatalf("%d candidates from %d bytes", len(cands), len(body))
	}
	for _, c := range cands {
		for name, v := range map[string]string{"name": c.Name, "company": c.Company, "niche": c.Niche} {
			checkText(t, name, v, maxSearchField+len("…"))
		}
		for name, v := range map[string]string{"email": c.Email, "website": c.Website} {
			if len(v) > maxSearchField+len("…") || v != strings.TrimSpace(v) {
				t.Fatalf("%s %q: not trimmed or too long", name, v)
			}
		}
		in, err := agents.PrepareLead(c, "search_api")
		if err != nil {
			checkMessage(t, "lead check error", err.Error(), 2*agents.MaxLeadField)
			continue
		}
		checkPreparedLead(t, c, in)
	}
}

// Answers of the full 1 MiB the search API may send hold the property too.
func TestSearchBodiesAtTheSizeLimit(t *testing.T) {
	fill := func(prefix, item, suffix string) []byte {
		n := (searchAPIMaxBody - len(prefix) - len(suffix)) / len(item)
		return []byte(prefix + strings.Repeat(item, n) + suffix)
	}
	for name, body := range map[string][]byte{
		"many leads":    fill(`[`, `{"company_name":"Ac\u0000me","email":"a@acme.example","website":"acme.example"},`, `{}]`),
		"empty items":   fill(`{"results":[`, `{},`, `{}]}`),
		"one big field": fill(`[{"email":"a@acme.example","company":"`, `Acme\t`, `"}]`),
	} {
		t.Run(name, func(t *testing.T) {
			if len(body) > searchAPIMaxBody || len(body) < searchAPIMaxBody-100 {
				t.Fatalf("body of %d bytes", len(body))
			}
			checkSearchBody(t, body)
			if cands, err := parseSearchResults(body, 0); err != nil || len(cands) == 0 {
				t.Fatalf("parse = %d candidates, %v", len(cands), err)
			}
		})
	}
}

// checkText fails unless s is one trimmed line of valid text without a
// control character, at most n bytes.
func checkText(t *testing.T, what, s string, n int) {
	t.Helper()
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) || len(s) > n || s != strings.TrimSpace(s) {
		t.Fatalf("%s %q: not one line of valid text of at most %d bytes", what, s, n)
	}
}

// checkMessage fails unless an error message can be logged and shown as it
// is: valid UTF-8, no control character, bounded, no secret.
func checkMessage(t *testing.T, what, msg string, n int) {
	t.Helper()
	if !utf8.ValidString(msg) || strings.ContainsFunc(msg, unicode.IsControl) || len(msg) > n || msg == "" {
		t.Fatalf("%s %q: not printable, empty or over %d bytes", what, msg, n)
	}
}

func checkPreparedLead(t *testing.T, c agents.LeadCandidate, in db.NewLead) {
	t.Helper()
	for what, v := range map[string]string{"name": in.Name, "company": in.Company, "niche": in.Niche, "email": in.Email, "website": in.Website, "domain key": in.DomainKey} {
		checkText(t, what, v, agents.MaxLeadField)
	}
	if in.Company == "" || (in.Email == "" && in.Website == "") {
		t.Fatalf("lead %+v from %+v: no company, or neither e-mail nor website", in, c)
	}
	if in.Email != "" {
		a, err := mail.ParseAddress(in.Email)
		if err != nil || a.Address != in.Email || in.Email != strings.ToLower(in.Email) || strings.ContainsAny(in.Email, " <>\"\r\n") {
			t.Fatalf("e-mail %q (from %q) does not parse to itself: %v, %+v", in.Email, c.Email, err, a)
		}
	}
	if in.Website != "" {
		raw := in.Website
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || strings.ContainsFunc(in.Website, unicode.IsSpace) {
			t.Fatalf("website %q is not an http(s) URL: %v", in.Website, err)
		}
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		want := host
		if rest, ok := strings.CutPrefix(host, "www."); ok && strings.Contains(rest, ".") {
			want = rest
		}
		if db.IsSharedWebsiteHost(want) {
			want = ""
		}
		if got := db.WebsiteKey(in.Website); got != want {
			t.Fatalf("website %q: key %q, its host says %q", in.Website, got, want)
		}
	}
	if in.DomainKey != "" {
		if reg, err := publicsuffix.EffectiveTLDPlusOne(in.DomainKey); err != nil || reg != in.DomainKey || agents.IsFreeMail(in.DomainKey) {
			t.Fatalf("domain key %q is not a registrable company domain (%q, %v)", in.DomainKey, reg, err)
		}
	}
}

// TestSearchResponseSeedsExercise proves the seed corpus reaches both
// outcomes: answers refused, and leads accepted and refused by the check.
func TestSearchResponseSeedsExercise(t *testing.T) {
	var refused, leads, invalid int
	for _, s := range searchResponseSeeds() {
		cands, err := parseSearchResults(s, 0)
		if err != nil {
			refused++
			continue
		}
		for _, c := range cands {
			if _, err := agents.PrepareLead(c, "search_api"); err != nil {
				invalid++
			} else {
				leads++
			}
		}
	}
	if refused < 5 || leads < 5 || invalid < 5 {
		t.Fatalf("seeds: %d answers refused, %d leads, %d invalid candidates", refused, leads, invalid)
	}
}
