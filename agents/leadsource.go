package agents

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hossagent/hossagent/db"
	"golang.org/x/net/publicsuffix"
)

// LeadCandidate is a prospect as a provider found it, before it is checked.
type LeadCandidate struct {
	Name, Email, Company, Website, Niche string
}

// LeadProvider finds prospect companies. Candidates returns at most n.
type LeadProvider interface {
	Name() string
	Candidates(ctx context.Context, n int) ([]LeadCandidate, error)
}

// What became of one candidate (the lead source's counts and the CSV
// import's row statuses).
const (
	LeadOutcomeCreated   = "created"
	LeadOutcomeDuplicate = "duplicate"
	LeadOutcomeInvalid   = "invalid"
)

// LeadSourceOptions configure the lead source cycle.
type LeadSourceOptions struct {
	// MaxPerCycle bounds the candidates asked for per cycle
	// (MAX_NEW_LEADS_PER_CYCLE); 0 asks for none.
	MaxPerCycle int
}

// LeadSourceCycle stores the provider's candidates as new leads. Duplicates
// (same e-mail, company domain or website: db.CreateLead) are found by
// probes of the database's unique indexes in the insert's transaction
// (db.AddLead),
// never by scanning rows, so concurrent runs cannot both create one.
type LeadSourceCycle struct {
	store    *db.DB
	env      Env
	provider LeadProvider
	opts     LeadSourceOptions
}

// NewLeadSourceCycle builds the lead source cycle.
func NewLeadSourceCycle(store *db.DB, env Env, provider LeadProvider, opts LeadSourceOptions) *LeadSourceCycle {
	return &LeadSourceCycle{store: store, env: env, provider: provider, opts: opts}
}

// Run asks the provider for up to MaxPerCycle candidates and stores each in
// its own transaction. Counts: created, duplicate, invalid.
func (c *LeadSourceCycle) Run(ctx context.Context) (Counts, error) {
	counts := Counts{LeadOutcomeCreated: 0, LeadOutcomeDuplicate: 0, LeadOutcomeInvalid: 0}
	if c.opts.MaxPerCycle <= 0 {
		return counts, nil
	}
	cands, err := c.provider.Candidates(ctx, c.opts.MaxPerCycle)
	if err != nil {
		return counts, fmt.Errorf("lead source %s: %w", c.provider.Name(), err)
	}
	if len(cands) > c.opts.MaxPerCycle {
		cands = cands[:c.opts.MaxPerCycle]
	}
	defer func() {
		if counts[LeadOutcomeCreated] > 0 {
			publishOutreachChange(c.env, LeadSource, "leads", counts)
		}
	}()
	for _, cand := range cands {
		outcome, _, err := addLead(ctx, c.store, cand, c.provider.Name())
		if err != nil {
			return counts, fmt.Errorf("lead source %s: %w", c.provider.Name(), err)
		}
		counts[outcome]++
	}
	return counts, nil
}

// addLead checks and stores one candidate in its own transaction and says
// what became of it, with the reason when it was not created. The error is
// reserved for a store that failed.
func addLead(ctx context.Context, store *db.DB, cand LeadCandidate, source string) (outcome, reason string, err error) {
	in, err := PrepareLead(cand, source)
	if err != nil {
		return LeadOutcomeInvalid, err.Error(), nil
	}
	_, err = store.AddLead(ctx, in)
	var dup *db.DuplicateLeadError
	switch {
	case err == nil:
		return LeadOutcomeCreated, "", nil
	case errors.As(err, &dup):
		return LeadOutcomeDuplicate, dup.Reason, nil
	case db.IsUniqueViolation(err):
		// The check in AddLead runs in the insert's transaction, which
		// holds the write lock, so the indexes refusing the row is a
		// safety net only.
		return LeadOutcomeDuplicate, "a lead with this e-mail, company domain or website exists", nil
	case db.IsConstraintViolation(err):
		return LeadOutcomeInvalid, "refused by the database", nil
	}
	return "", "", err
}

// MaxLeadField bounds every text field of a lead.
const MaxLeadField = 300

// PrepareLead checks and normalises a candidate into the lead to store: the
// e-mail lower-cased and syntax-checked, the website's host checked, and the
// company domain key computed. The error says, for a person, why the
// candidate is not a lead.
//
// The domain key is the registrable domain (publicsuffix eTLD+1) of the
// e-mail address, or of the website when there is no e-mail or the e-mail is
// at a free-mail provider; a free-mail domain never becomes a key, so two
// gmail.com contacts are not duplicates of each other, and neither does a
// host shared by many businesses (facebook.com/acme). The store compares the
// website too (db.WebsiteKey).
//
// Names, company and niche are cleaned rather than refused (a search API
// cannot be asked to change its data): invalid UTF-8 becomes U+FFFD, control
// characters (NUL among them) go, and any run of white space becomes one
// space. The e-mail and the website are refused when they hold anything
// but their own syntax.
func PrepareLead(c LeadCandidate, source string) (db.NewLead, error) {
	in := db.NewLead{
		Name: CleanText(c.Name), Company: CleanText(c.Company),
		Website: strings.TrimSpace(c.Website), Niche: CleanText(c.Niche), Source: source,
	}
	for _, f := range []string{in.Name, in.Company, in.Website, in.Niche, c.Email} {
		if len(f) > MaxLeadField {
			return in, fmt.Errorf("a field is longer than %d characters", MaxLeadField)
		}
	}
	email, err := normalizeEmail(c.Email)
	if err != nil {
		return in, err
	}
	in.Email = email
	var host string
	if in.Website != "" {
		if host, err = websiteHost(in.Website); err != nil {
			return in, err
		}
	}
	if in.Email == "" && in.Website == "" {
		return in, errors.New("neither e-mail nor website")
	}
	if in.DomainKey, err = domainKey(in.Email, host); err != nil {
		return in, err
	}
	if in.Company == "" {
		in.Company = nonEmptyOr(in.DomainKey, host)
	}
	if in.Company == "" {
		return in, errors.New("no company name")
	}
	return in, nil
}

// CleanText makes a name-like field one line of valid text: invalid UTF-8
// becomes U+FFFD, control characters go, white space runs become one space.
func CleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// normalizeEmail lower-cases and trims an address and checks its syntax: a
// dot-atom local part of ASCII letters, digits and !#$%&'*+/=?^_`{|}~- (no
// quoted forms, no comments, no other script), and a DNS name; "" stays
// "".
func normalizeEmail(raw string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(raw))
	e = strings.TrimPrefix(e, "mailto:")
	if e == "" {
		return "", nil
	}
	bad := fmt.Errorf("e-mail %q is not a valid address", raw)
	at := strings.IndexByte(e, '@')
	if len(e) > 254 || at < 1 || at > 64 || strings.Count(e, "@") != 1 {
		return "", bad
	}
	local, domain := e[:at], e[at+1:]
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") || !isDNSName(domain) {
		return "", bad
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte(".!#$%&'*+/=?^_`{|}~-", c) >= 0) {
			return "", bad
		}
	}
	return e, nil
}

// websiteHost is the lower-case host name of a website given with or
// without its scheme ("acme.com", "https://www.acme.com/about").
func websiteHost(raw string) (string, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	bad := fmt.Errorf("website %q is not a valid address", raw)
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "", bad
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return "", bad
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if net.ParseIP(host) != nil || !isDNSName(host) {
		return "", bad
	}
	return host, nil
}

// isDNSName accepts a dotted DNS name of letters, digits and hyphens whose
// top-level label is not all digits (RFC 3696: no TLD is; "www.00" is no
// host).
func isDNSName(h string) bool {
	if len(h) > 253 || !strings.Contains(h, ".") {
		return false
	}
	if tld := h[strings.LastIndexByte(h, '.')+1:]; strings.Trim(tld, "0123456789") == "" {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// domainKey is the company domain used for dedupe: see PrepareLead.
func domainKey(email, websiteHost string) (string, error) {
	if db.IsSharedWebsiteHost(websiteHost) {
		websiteHost = ""
	}
	for _, host := range []string{addrDomain(email), websiteHost} {
		if host == "" {
			continue
		}
		key, err := publicsuffix.EffectiveTLDPlusOne(host)
		if err != nil {
			return "", fmt.Errorf("%s has no registrable domain", host)
		}
		if !IsFreeMail(key) {
			return key, nil
		}
	}
	return "", nil
}

func addrDomain(email string) string {
	if at := strings.LastIndexByte(email, '@'); at >= 0 {
		return email[at+1:]
	}
	return ""
}

// IsFreeMail reports whether a registrable domain belongs to a free-mail
// provider, whose users are individuals, not one company.
func IsFreeMail(domain string) bool {
	switch domain {
	case "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com",
		"yahoo.com", "yahoo.co.uk", "ymail.com", "rocketmail.com", "icloud.com", "me.com", "mac.com", "aol.com",
		"proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.net", "gmx.de", "web.de", "mail.com",
		"yandex.com", "yandex.ru", "zoho.com", "zohomail.com", "fastmail.com", "hey.com", "tutanota.com",
		"tuta.io", "qq.com", "163.com", "126.com", "mail.ru", "orange.fr", "free.fr", "laposte.net", "libero.it":
		return true
	}
	return false
}

// publishOutreachChange tells live views that an agent changed stored data.
func publishOutreachChange(env Env, agent, subject string, counts Counts) {
	if env.Events == nil {
		return
	}
	e := Event{Kind: EventDataChanged, Agent: agent, Subject: subject, Counts: maps.Clone(counts)}
	if env.Now != nil {
		e.At = env.Now()
	}
	env.Events.Publish(e)
}
