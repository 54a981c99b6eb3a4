package agents

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Template packs: BizDev writes to each lead with the pack for its niche.
const (
	PackGeneral    = "general"
	PackAgency     = "agency"
	PackSaaS       = "saas"
	PackConsulting = "consulting"
	PackRevOps     = "revops"
)

// OutreachData personalises an outreach e-mail.
type OutreachData struct {
	FirstName, Company, Niche    string // the lead's
	SenderName, Offer, Signature string // the sender's, from configuration
}

// OutreachEmail is a rendered outreach e-mail.
type OutreachEmail struct {
	Template string // pack and variant, such as "agency/2"
	Subject  string
	Body     string // plain text, without the unsubscribe footer
}

type emailVariant struct{ subject, body string }

// packNiche is a niche a pack is written for, with the plural noun phrase
// the templates use for the businesses in it ("companies building developer
// platforms"): a niche is named in many grammatical shapes ("developer
// platform", "IT services", "revenue operations"), and only a phrase that
// names the businesses reads well in every sentence.
type packNiche struct{ name, businesses string }

type templatePack struct {
	name     string
	niches   []packNiche // the niches it is written for; the synthetic source draws from them
	keywords []string    // niche words that select it (PackFor)
	variants []emailVariant
}

// outreachPacks are the five packs, in the order PackFor tries them. The
// placeholders are {first_name}, {company}, {company's} (its possessive),
// {niches} (the businesses of the
// lead's niche, a plural noun phrase: NicheBusinesses), {sender}, {offer}
// and {signature}; {Company} and {Sender} are the same at the start of a
// sentence, where a neutral stand-in for a missing value is capitalised.
// {niches} never starts a sentence (a niche such as "iOS apps" cannot be
// capitalised safely). Read-only.
var outreachPacks = []templatePack{
	{
		name: PackAgency,
		niches: []packNiche{
			{"digital marketing agency", "digital marketing agencies"}, {"branding studio", "branding studios"},
			{"performance marketing agency", "performance marketing agencies"}, {"creative agency", "creative agencies"},
		},
		keywords: []string{"agency", "marketing", "branding", "digital", "creative", "advertising"},
		variants: []emailVariant{
			{
				subject: "More hands for {company's} client work",
				body: `Hi {first_name},

Most {niches} hit the same wall, and {company} is probably no exception: the client work is sold, but the research and the first drafts eat the week.

{Sender} takes that layer off your desk: {offer}. You brief us like a freelancer, we deliver under your brand, and your people keep the client relationship.

Would a short call next week be useful to see whether it fits how {company} works?

{signature}`,
			},
			{
				subject: "A research bench for {company's} accounts",
				body: `Hello {first_name},

I came across {company} while looking at {niches}, and wanted to ask one question: who does the background research before a pitch or a campaign?

If the answer is "whoever has time", we can help. {Sender} offers {offer}, priced per piece, so you only pay for what a client is paying you for.

Happy to send a sample brief on one of your sectors if you reply to this note.

{signature}`,
			},
		},
	},
	{
		name: PackSaaS,
		niches: []packNiche{
			{"B2B SaaS", "B2B SaaS companies"}, {"vertical software", "vertical software companies"},
			{"developer platform", "companies building developer platforms"}, {"analytics software", "analytics software companies"},
		},
		keywords: []string{"saas", "software", "platform"},
		variants: []emailVariant{
			{
				subject: "Market research for {company}, without hiring",
				body: `Hi {first_name},

Many {niches} know their product better than their market: competitor moves, pricing changes and new segments tend to land on a product manager's evening.

{Sender} does that work for you: {offer}. Each piece is a clear written deliverable your team can act on.

Is this a gap at {company} at the moment? A one-line reply is enough.

{signature}`,
			},
			{
				subject: "Competitive review for {company}?",
				body: `Hello {first_name},

When did {company} last write down how its competitors position themselves?

We help {niches} with {offer}. Most teams start with one competitive landscape review and decide from there.

If that would help your next planning round, reply and I will send what we would need from you.

{signature}`,
			},
		},
	},
	{
		name: PackConsulting,
		niches: []packNiche{
			{"management consulting", "management consulting firms"}, {"strategy advisory", "strategy advisory firms"},
			{"IT consulting", "IT consulting firms"}, {"operations consultancy", "operations consultancies"},
		},
		keywords: []string{"consulting", "consultancy", "consultant", "advisory", "advisors", "strategy"},
		variants: []emailVariant{
			{
				subject: "Background work for {company's} engagements",
				body: `Hi {first_name},

Most {niches} bill for judgement, yet a large share of each engagement goes into gathering the facts first.

{Sender} prepares that groundwork for firms like {company}: {offer}. You get a structured brief to review instead of a blank page.

Would it be worth a quick call to see if this could support one of your current engagements?

{signature}`,
			},
			{
				subject: "A second pair of hands at {company}",
				body: `Hello {first_name},

A short note from {sender}. We work behind {niches}, delivering {offer}.

For a firm like {company}, that usually means faster proposals and better-prepared first meetings, without adding headcount.

If you have an engagement starting soon, reply and we can scope a first piece together.

{signature}`,
			},
		},
	},
	{
		name: PackRevOps,
		niches: []packNiche{
			{"revenue operations", "revenue operations teams"}, {"lead generation", "lead generation agencies"},
			{"sales operations", "sales operations teams"}, {"demand generation", "demand generation teams"},
		},
		keywords: []string{"revops", "revenue", "sales ops", "sales operations", "lead gen", "demand gen"},
		variants: []emailVariant{
			{
				subject: "Cleaner pipeline inputs for {company}",
				body: `Hi {first_name},

Most {niches} live and die by the quality of what goes into the pipeline: the lists, the research, the first message.

{Sender} supplies those inputs: {offer}. You keep the process at {company}; we do the legwork.

Would you be open to trying one lead list enrichment on a segment you are working this quarter?

{signature}`,
			},
			{
				subject: "Outreach copy and research for {company}",
				body: `Hello {first_name},

I will keep this short. {Sender} helps {niches} with {offer}.

If {company} has a segment it has not had time to research properly, we can turn it into an enriched list and a set of outreach drafts within days.

Reply with the segment and I will tell you what we can deliver.

{signature}`,
			},
		},
	},
	{
		name: PackGeneral,
		niches: []packNiche{
			{"accounting practice", "accounting practices"}, {"architecture firm", "architecture firms"},
			{"recruitment firm", "recruitment firms"}, {"logistics company", "logistics companies"}, {"IT services", "IT services firms"},
		},
		variants: []emailVariant{
			{
				subject: "Research and writing help for {company}",
				body: `Hi {first_name},

I am writing on behalf of {sender}. We help small teams with {offer}.

Many {niches} tell us the same thing: the work that would grow them — research, outreach, written material — is the work nobody has time for.

Would it be useful for {company} to hand some of that off? A short reply is all it takes to start.

{signature}`,
			},
			{
				subject: "Quick question for {company}",
				body: `Hello {first_name},

Is there a piece of research or writing that {company} has been putting off for a while?

That is what {sender} is for: {offer}. You describe the need and we deliver a finished document, as we do for other {niches}.

If something comes to mind, reply to this e-mail and I will come back with a scope and a price.

{signature}`,
			},
		},
	},
}

func findPack(name string) (*templatePack, bool) {
	for i := range outreachPacks {
		if outreachPacks[i].name == name {
			return &outreachPacks[i], true
		}
	}
	return nil, false
}

// PackNames lists the template packs.
func PackNames() []string {
	names := make([]string, len(outreachPacks))
	for i, p := range outreachPacks {
		names[i] = p.name
	}
	return names
}

// PackNiches lists the niches a pack is written for.
func PackNiches(pack string) []string {
	p, ok := findPack(pack)
	if !ok {
		return nil
	}
	names := make([]string, len(p.niches))
	for i, n := range p.niches {
		names[i] = n.name
	}
	return names
}

// PackVariants is how many subject/body variants a pack has (0 for an
// unknown pack).
func PackVariants(pack string) int {
	p, ok := findPack(pack)
	if !ok {
		return 0
	}
	return len(p.variants)
}

// PackFor maps a niche to its template pack by keywords, trying agency,
// saas, consulting and revops in that order, and general otherwise.
func PackFor(niche string) string {
	n := strings.ToLower(niche)
	for _, p := range outreachPacks {
		for _, k := range p.keywords {
			if strings.Contains(n, k) {
				return p.name
			}
		}
	}
	return PackGeneral
}

// RenderOutreach renders variant (0-based) of pack for d. Empty personal
// fields fall back to neutral words ("Hi there"), so no placeholder ever
// reaches a prospect.
func RenderOutreach(pack string, variant int, d OutreachData) (OutreachEmail, error) {
	p, ok := findPack(pack)
	if !ok {
		return OutreachEmail{}, fmt.Errorf("templates: unknown pack %q", pack)
	}
	if variant < 0 || variant >= len(p.variants) {
		return OutreachEmail{}, fmt.Errorf("templates: pack %s has no variant %d", pack, variant)
	}
	r := outreachReplacer(d)
	v := p.variants[variant]
	return OutreachEmail{
		Template: fmt.Sprintf("%s/%d", p.name, variant+1),
		Subject:  headerLine(r.Replace(v.subject)),
		Body:     r.Replace(v.body),
	}, nil
}

// RenderFollowUp fills a follow-up's body with d, as RenderOutreach fills a
// first e-mail.
func RenderFollowUp(body string, d OutreachData) string { return outreachReplacer(d).Replace(body) }

// outreachReplacer fills the placeholders of outreach templates with d.
func outreachReplacer(d OutreachData) *strings.Replacer {
	// Every value but the signature is one line of text: a newline or a run
	// of spaces in the data never breaks a sentence.
	company, sender := headerLine(d.Company), headerLine(d.SenderName)
	return strings.NewReplacer(
		"{first_name}", nonEmptyOr(headerLine(d.FirstName), "there"),
		"{company}", nonEmptyOr(company, "your company"),
		"{company's}", possessive(nonEmptyOr(company, "your company")),
		"{Company}", nonEmptyOr(company, "Your company"),
		"{niches}", NicheBusinesses(d.Niche),
		"{sender}", nonEmptyOr(sender, "our team"),
		"{Sender}", nonEmptyOr(sender, "Our team"),
		"{offer}", nonEmptyOr(strings.TrimRight(headerLine(d.Offer), ". "), "research and writing on demand"),
		"{signature}", nonEmptyOr(d.Signature, nonEmptyOr(sender, "The team")),
	)
}

// FirstName is the first word of a contact's name, capitalised, or "" when
// the name does not look like a person's (empty, or an address).
func FirstName(name string) string {
	f := strings.Fields(name)
	if len(f) == 0 || strings.ContainsAny(f[0], "@0123456789") {
		return ""
	}
	first := strings.Trim(f[0], ",.;:")
	r, size := utf8.DecodeRuneInString(first)
	if r == utf8.RuneError || !unicode.IsLetter(r) {
		return ""
	}
	return string(unicode.ToUpper(r)) + first[size:]
}

func nonEmptyOr(s, def string) string {
	if s = strings.TrimSpace(s); s == "" {
		return def
	}
	return s
}

// possessive is "name's", or "name'" for a name that ends in s ("Zephyr
// Works'").
func possessive(name string) string {
	if strings.HasSuffix(name, "s") || strings.HasSuffix(name, "S") {
		return name + "'"
	}
	return name + "'s"
}

// headerLine keeps a header value on one line whatever the data held.
func headerLine(s string) string { return strings.Join(strings.Fields(s), " ") }
