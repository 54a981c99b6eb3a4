package agents

import (
	"strings"
	"unicode"
)

// NicheBusinesses is the plural noun phrase that names the businesses of a
// niche, as the outreach templates use it ("Most {niches} …", "We help
// {niches} with …"): a niche is given in many shapes, by the packs, by a
// CSV file or by a search API, and "companies in developer platform" is
// what a template that took it as it is wrote.
//
//   - a pack's own niche has its phrase written out ("developer platform":
//     "companies building developer platforms");
//   - a niche that names a kind of business or of person in the singular
//     takes its plural ("law firm": "law firms", "dentist": "dentists");
//   - one already in the plural stays as it is ("marketing agencies");
//   - any other niche is a field, and names its companies ("fintech":
//     "fintech companies", "IT services": "IT services companies").
//
// An empty niche is "companies like yours".
func NicheBusinesses(niche string) string {
	n := strings.TrimRight(headerLine(niche), ".,;:!?")
	if n == "" {
		return "companies like yours"
	}
	lower := strings.ToLower(n)
	for _, p := range outreachPacks {
		for _, pn := range p.niches {
			if lower == strings.ToLower(pn.name) {
				return pn.businesses
			}
		}
	}
	head, last := "", n
	if i := strings.LastIndexByte(n, ' '); i >= 0 {
		head, last = n[:i+1], n[i+1:]
	}
	word := strings.ToLower(last)
	// A niche in capitals has more than four letters, all capitals ("LAW
	// FIRM"); "API" or "B2B" alone is an acronym.
	letters := 0
	for _, r := range n {
		if unicode.IsLetter(r) {
			letters++
		}
	}
	upper := letters > 4 && n == strings.ToUpper(n)
	switch {
	case productNouns[word]:
		return "companies building " + head + pluralOf(last, upper)
	case isPluralOf(word, func(w string) bool { return productNouns[w] }):
		return "companies building " + n
	case isBusinessNoun(word):
		return head + pluralOf(last, upper)
	case isPluralOf(word, isBusinessNoun):
		return n
	default:
		return n + " companies"
	}
}

// businessNouns name a kind of organisation; a niche ending in one names
// the businesses themselves.
var businessNouns = map[string]bool{
	"agency": true, "firm": true, "company": true, "studio": true, "practice": true, "consultancy": true,
	"business": true, "startup": true, "start-up": true, "shop": true, "store": true, "brand": true,
	"clinic": true, "school": true, "house": true, "lab": true, "team": true, "group": true,
	"partnership": true, "cooperative": true, "nonprofit": true, "non-profit": true, "charity": true,
	"hospital": true, "hotel": true, "bakery": true, "cafe": true, "café": true, "gym": true, "salon": true,
	"spa": true, "garage": true, "dealership": true, "bureau": true, "office": true, "outfit": true,
	"boutique": true, "collective": true, "club": true, "academy": true,
	"publisher": true, "distributor": true, "wholesaler": true, "brewery": true, "winery": true,
	"pharmacy": true, "surgery": true, "laboratory": true, "institute": true, "foundation": true,
}

// notPersonNouns end like a person's noun ("-er", "-or", "-ist", "-ant",
// "-ian") but name a thing or a field.
var notPersonNouns = map[string]bool{
	"paper": true, "water": true, "power": true, "rubber": true, "leather": true, "timber": true,
	"poker": true, "soccer": true, "cancer": true, "fiber": true, "fibre": true, "sector": true,
	"floor": true, "door": true, "interior": true, "motor": true, "color": true, "colour": true,
	"silver": true, "copper": true, "lumber": true, "weather": true, "summer": true, "winter": true,
	"computer": true, "semiconductor": true, "transistor": true, "elevator": true,
	"plant": true, "list": true, "mist": true, "twist": true, "server": true, "printer": true,
	"trailer": true, "container": true, "waste": true, "wear": true, "beer": true, "cider": true,
	"tobacco": true, "hardware": true, "freight": true,
}

// productNouns name what a business builds; a niche ending in one is named
// by the companies that build it ("developer platform": "companies
// building developer platforms").
var productNouns = map[string]bool{
	"platform": true, "app": true, "tool": true, "product": true, "marketplace": true, "website": true,
	"plugin": true, "extension": true, "api": true, "device": true, "game": true,
}

// isBusinessNoun reports whether a singular word names a kind of business
// or of person ("firm", "dentist", "retailer", "consultant", "electrician").
func isBusinessNoun(w string) bool {
	if businessNouns[w] {
		return true
	}
	if notPersonNouns[w] || len(w) < 5 {
		return false
	}
	for _, suffix := range []string{"er", "or", "ist", "ant", "ian", "eer"} {
		if strings.HasSuffix(w, suffix) {
			return true
		}
	}
	return false
}

// isPluralOf reports whether a word is the plural of a noun of a kind
// ("agencies", "firms", "dentists" of business nouns), as opposed to a
// field that ends in s ("services", "operations", "logistics", "SaaS").
func isPluralOf(w string, kind func(string) bool) bool {
	for _, singular := range singularsOf(w) {
		if kind(singular) {
			return true
		}
	}
	return false
}

// singularsOf are the words w may be the plural of.
func singularsOf(w string) []string {
	var out []string
	if s, ok := strings.CutSuffix(w, "ies"); ok && s != "" {
		out = append(out, s+"y")
	}
	if s, ok := strings.CutSuffix(w, "es"); ok && s != "" {
		out = append(out, s, s+"e")
	}
	if s, ok := strings.CutSuffix(w, "s"); ok && s != "" && !strings.HasSuffix(s, "s") {
		out = append(out, s)
	}
	return out
}

// pluralOf is the plural of a singular English noun ("agency": "agencies",
// "business": "businesses"). upper gives a capital suffix, for a niche
// written in capitals ("LAW FIRM": "LAW FIRMS"); an acronym in a niche that
// is not takes a small one ("payments API": "APIs").
func pluralOf(w string, upper bool) string {
	suffix := func(s string) string {
		if upper {
			return strings.ToUpper(s)
		}
		return s
	}
	lower := strings.ToLower(w)
	switch {
	case strings.HasSuffix(lower, "y") && len(lower) > 1 && !strings.ContainsRune("aeiou", rune(lower[len(lower)-2])):
		return w[:len(w)-1] + suffix("ies")
	case strings.HasSuffix(lower, "s"), strings.HasSuffix(lower, "sh"), strings.HasSuffix(lower, "ch"),
		strings.HasSuffix(lower, "x"), strings.HasSuffix(lower, "z"):
		return w + suffix("es")
	}
	return w + suffix("s")
}
