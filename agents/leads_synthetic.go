package agents

import (
	"context"
	"fmt"
	"strings"
)

// SyntheticLeads invents plausible, fictitious agencies and contacts for
// development and demos. Every address and website is on a reserved
// top-level domain (.example or .test, RFC 2606), so nothing it produces can
// ever reach a real mailbox. Each company name carries a random suffix in
// its domain, so repeated calls give mostly fresh companies; the rare repeat
// is refused as a duplicate like any other.
type SyntheticLeads struct {
	rand RandSource
}

// NewSyntheticLeads returns the synthetic provider drawing from rnd (the
// cycle Env's Rand).
func NewSyntheticLeads(rnd RandSource) *SyntheticLeads { return &SyntheticLeads{rand: rnd} }

// Name is "synthetic", the lead source recorded on its leads.
func (s *SyntheticLeads) Name() string { return "synthetic" }

// maxSyntheticBatch bounds one call, whatever is asked.
const maxSyntheticBatch = 1000

var (
	syntheticFirstNames = []string{
		"Ada", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kemi", "Liam",
		"Maya", "Nikhil", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wes", "Yuki", "Zoe",
	}
	syntheticLastNames = []string{
		"Abbott", "Brennan", "Castillo", "Dubois", "Eriksen", "Fischer", "Gallagher", "Haddad", "Ito", "Jensen",
		"Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Schmidt",
		"Tanaka", "Varga", "Walsh", "Yilmaz", "Zimmerman",
	}
	syntheticPrefixes = []string{
		"Summit", "Harbor", "Northwind", "Bright", "Copper", "Granite", "Lantern", "Meridian", "Oakline", "Pinecrest",
		"Riverside", "Signal", "Slate", "Tidal", "Vantage", "Willow", "Atlas", "Beacon", "Cedar", "Clearwater",
		"Ember", "Fernhill", "Foundry", "Keystone", "Lighthouse", "Maple", "Orbit", "Quarry", "Redwood", "Sterling",
	}
	// syntheticSuffixes are company-name endings that suit each pack.
	syntheticSuffixes = map[string][]string{
		PackAgency:     {"Digital", "Creative", "Media", "Studio", "Brand Works"},
		PackSaaS:       {"Labs", "Software", "Cloud", "Systems", "Data"},
		PackConsulting: {"Advisory", "Partners", "Consulting", "Strategy Group"},
		PackRevOps:     {"Revenue", "Growth", "Pipeline Co", "Demand"},
		PackGeneral:    {"Services", "Group", "& Co", "Associates"},
	}
	syntheticTLDs = []string{".example", ".test"}
)

// Candidates returns n invented candidates (at most 1,000 per call).
func (s *SyntheticLeads) Candidates(ctx context.Context, n int) ([]LeadCandidate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n = min(max(n, 0), maxSyntheticBatch)
	packs := PackNames()
	out := make([]LeadCandidate, 0, n)
	for range n {
		pack := packs[s.rand.IntN(len(packs))]
		out = append(out, s.candidate(pack))
	}
	return out, nil
}

func (s *SyntheticLeads) candidate(pack string) LeadCandidate {
	niches := PackNiches(pack)
	niche := niches[s.rand.IntN(len(niches))]
	company := syntheticPick(s.rand, syntheticPrefixes) + " " + syntheticPick(s.rand, syntheticSuffixes[pack])
	domain := fmt.Sprintf("%s-%04x%s", syntheticSlug(company), s.rand.IntN(1<<16), syntheticPick(s.rand, syntheticTLDs))
	first, last := syntheticPick(s.rand, syntheticFirstNames), syntheticPick(s.rand, syntheticLastNames)
	local := strings.ToLower(first)
	if s.rand.IntN(2) == 0 {
		local += "." + strings.ToLower(last)
	}
	return LeadCandidate{
		Name:    first + " " + last,
		Email:   local + "@" + domain,
		Company: company,
		Website: "https://www." + domain,
		Niche:   niche,
	}
}

func syntheticPick(rnd RandSource, words []string) string { return words[rnd.IntN(len(words))] }

// syntheticSlug turns a company name into a host label: "Brand Works" → "brand-works".
func syntheticSlug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
