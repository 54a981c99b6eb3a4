package agents

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// templateNiches are the niches every template is rendered for: every
// pack's own, then niches as a CSV file or a search API gives them, each
// with the phrase that must name its businesses in the copy.
var templateNiches = []struct{ niche, phrase string }{
	{"digital marketing agency", "digital marketing agencies"},
	{"branding studio", "branding studios"},
	{"performance marketing agency", "performance marketing agencies"},
	{"creative agency", "creative agencies"},
	{"B2B SaaS", "B2B SaaS companies"},
	{"vertical software", "vertical software companies"},
	{"developer platform", "companies building developer platforms"},
	{"analytics software", "analytics software companies"},
	{"management consulting", "management consulting firms"},
	{"strategy advisory", "strategy advisory firms"},
	{"IT consulting", "IT consulting firms"},
	{"operations consultancy", "operations consultancies"},
	{"revenue operations", "revenue operations teams"},
	{"lead generation", "lead generation agencies"},
	{"sales operations", "sales operations teams"},
	{"demand generation", "demand generation teams"},
	{"accounting practice", "accounting practices"},
	{"architecture firm", "architecture firms"},
	{"recruitment firm", "recruitment firms"},
	{"logistics company", "logistics companies"},
	{"IT services", "IT services firms"},
	// As imported or found.
	{"Developer Platform", "companies building developer platforms"},
	{"dentists", "dentists"},
	{"dentist", "dentists"},
	{"law firm", "law firms"},
	{"LAW FIRM", "LAW FIRMS"},
	{"fintech", "fintech companies"},
	{"e-commerce", "e-commerce companies"},
	{"marketing agencies", "marketing agencies"},
	{"Data platform", "companies building Data platforms"},
	{"iOS apps", "companies building iOS apps"},
	{"  payments\tAPI. ", "companies building payments APIs"},
	{"software house", "software houses"},
	{"Lead Gen shop", "Lead Gen shops"},
	{"bakery", "bakeries"},
	{"logistics", "logistics companies"},
	{"Hospital & Health Care", "Hospital & Health Care companies"},
	{"widget making", "widget making companies"},
	{"electricians", "electricians"},
	{"", "companies like yours"},
}

var (
	// "a" before a vowel, "an" before a consonant (the few words whose
	// sound differs are allowed below).
	articleA  = regexp.MustCompile(`\b[Aa] ([AEIOUaeiou][\w-]*)`)
	articleAn = regexp.MustCompile(`\b[Aa]n ([^AEIOUaeiou\s][\w-]*)`)
	// A space before punctuation, or punctuation doubled.
	badSpacing = regexp.MustCompile(` [,.;:?!]|[,;:]{2}|\.\.|  | \n|\n `)
)

var articleExceptions = map[string]bool{"one": true, "one-line": true, "unique": true, "user": true, "usual": true, "hour": true, "honest": true}

// proseProblems lists what keeps rendered copy from reading as English.
func proseProblems(e OutreachEmail, phrase, niche string) []string {
	var out []string
	all := e.Subject + "\n" + e.Body
	if !utf8.ValidString(all) || strings.ContainsAny(all, "{}\x00") {
		out = append(out, "a placeholder, brace, NUL or invalid UTF-8 is left")
	}
	if !strings.Contains(e.Body, phrase) {
		out = append(out, fmt.Sprintf("the niche's businesses %q are not named", phrase))
	}
	if n := strings.TrimSpace(niche); n != "" && strings.Contains(strings.ToLower(all), " in "+strings.ToLower(n)+" ") {
		out = append(out, fmt.Sprintf("%q reads as a field", "in "+n))
	}
	for _, m := range articleA.FindAllStringSubmatch(all, -1) {
		if !articleExceptions[strings.ToLower(m[1])] {
			out = append(out, fmt.Sprintf("%q: \"a\" before a vowel", m[0]))
		}
	}
	for _, m := range articleAn.FindAllStringSubmatch(all, -1) {
		if !articleExceptions[strings.ToLower(m[1])] {
			out = append(out, fmt.Sprintf("%q: \"an\" before a consonant", m[0]))
		}
	}
	if strings.Contains(all, "s's ") {
		out = append(out, "a possessive of a name ending in s reads s's")
	}
	if m := badSpacing.FindString(all); m != "" {
		out = append(out, fmt.Sprintf("bad spacing or punctuation %q", m))
	}
	words := strings.Fields(all)
	for i := 1; i < len(words); i++ {
		if strings.EqualFold(words[i], words[i-1]) {
			out = append(out, fmt.Sprintf("word doubled: %q", words[i]))
		}
	}
	if strings.Contains(e.Subject, "\n") || !startsUpper(e.Subject) {
		out = append(out, "the subject is not one line starting with a capital")
	}
	paras := strings.Split(e.Body, "\n\n")
	if len(paras) < 4 || !(strings.HasPrefix(paras[0], "Hi ") || strings.HasPrefix(paras[0], "Hello ")) || !strings.HasSuffix(paras[0], ",") {
		out = append(out, "no greeting line, or too few paragraphs")
	}
	for _, p := range paras[1:] {
		if !startsUpper(p) {
			out = append(out, fmt.Sprintf("paragraph starts in lower case: %.40q", p))
		}
	}
	for _, p := range paras[1 : len(paras)-1] { // the last is the signature
		if !strings.ContainsAny(p[len(p)-1:], ".?!") {
			out = append(out, fmt.Sprintf("paragraph does not end a sentence: %.40q", p))
		}
		for _, sep := range []string{". ", "? ", "! "} {
			for _, rest := range strings.Split(p, sep)[1:] {
				if !startsUpper(rest) {
					out = append(out, fmt.Sprintf("sentence starts in lower case: %.40q", rest))
				}
			}
		}
	}
	return out
}

func startsUpper(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) {
			return unicode.IsUpper(r)
		}
		if r != '"' && r != '\'' {
			return false
		}
	}
	return false
}

// Every (pack, niche, variant) reads as English, with a lead's data and
// with none: each names the niche's businesses, no placeholder is left, no
// "companies in developer platform", no "a"/"an" before the wrong sound, no
// doubled space or word, every sentence starts with a capital.
func TestOutreachReadsAsEnglishForEveryPackNicheAndVariant(t *testing.T) {
	rendered := 0
	for _, pack := range PackNames() {
		for v := range PackVariants(pack) {
			for _, n := range templateNiches {
				for _, d := range []OutreachData{
					{FirstName: "Ana", Company: "Zephyr Works", Niche: n.niche, SenderName: "Hoss Research",
						Offer: "market research and outreach copy, delivered in days.", Signature: "Sam\nHoss Research"},
					{Niche: n.niche}, // nothing known: neutral stand-ins
					{FirstName: " ana\n", Company: "Acme\n  Widgets ", Niche: n.niche, SenderName: "  Hoss \n Research ", Offer: "briefs . "},
					{FirstName: "Bo", Company: "Northwind Labs", Niche: n.niche, SenderName: "Hoss", Offer: "research"},
				} {
					e, err := RenderOutreach(pack, v, d)
					if err != nil {
						t.Fatal(err)
					}
					rendered++
					if problems := proseProblems(e, n.phrase, n.niche); len(problems) > 0 {
						t.Errorf("%s for niche %q, data %+v:\n  %s\n---\n%s\n%s", e.Template, n.niche, d, strings.Join(problems, "\n  "), e.Subject, e.Body)
					}
				}
			}
		}
	}
	if rendered < 5*2*len(templateNiches)*4 {
		t.Fatalf("rendered %d e-mails", rendered)
	}
	// Every pack's own niche is in the table above.
	for _, pack := range PackNames() {
		for _, niche := range PackNiches(pack) {
			found := false
			for _, n := range templateNiches {
				found = found || n.niche == niche
			}
			if !found {
				t.Errorf("pack %s's niche %q is not rendered by this test", pack, niche)
			}
		}
	}
}
