package config

import (
	"strings"
)

// The Python prototype (samuelhollidayv/hossagent-1) read other names for
// some of these settings. An operator who carries its environment over must
// not be ignored in silence (mail would go out from the placeholder
// sender), so every name the prototype read is recognised here.
type legacyKind int

const (
	// legacyRenamed means the same setting: its value is read under the new
	// name, with a warning to rename it.
	legacyRenamed legacyKind = iota
	// legacyReplaced means another setting does the job differently: the
	// start is refused until that one is set (then the old one is only
	// warned about).
	legacyReplaced
	// legacyUnsupported means HossAgent has no such feature: the variable is
	// ignored, with a warning that says so.
	legacyUnsupported
)

// legacyVar is one of the prototype's variables that HossAgent does not read
// under that name.
type legacyVar struct {
	Old  string
	Kind legacyKind
	// New is the current setting (renamed, replaced); empty for
	// unsupported.
	New string
	// Note says what HossAgent does instead.
	Note string
}

// legacyVars lists every variable the prototype read (its os.getenv and
// os.environ calls, over its whole history) whose name HossAgent does not
// read. The prototype's variables that kept their name (EMAIL_MODE,
// SMTP_HOST, STRIPE_API_KEY …) are read as they are; prototypeValues
// explains the values they no longer take.
var legacyVars = []legacyVar{
	{Old: "SMTP_FROM_EMAIL", Kind: legacyRenamed, New: "EMAIL_FROM"},
	{Old: "SENDGRID_FROM_EMAIL", Kind: legacyRenamed, New: "EMAIL_FROM"},
	{Old: "BIZDEV_SENDER_EMAIL", Kind: legacyRenamed, New: "EMAIL_FROM"},
	{Old: "OUTBOUND_FROM", Kind: legacyRenamed, New: "EMAIL_FROM"},
	{Old: "SMTP_FROM_NAME", Kind: legacyRenamed, New: "EMAIL_SENDER_NAME"},
	{Old: "SENDGRID_FROM_NAME", Kind: legacyRenamed, New: "EMAIL_SENDER_NAME"},
	{Old: "BIZDEV_SENDER_NAME", Kind: legacyRenamed, New: "EMAIL_SENDER_NAME"},
	{Old: "OUTBOUND_DISPLAY_NAME", Kind: legacyRenamed, New: "EMAIL_SENDER_NAME"},
	{Old: "OUTBOUND_REPLY_TO", Kind: legacyRenamed, New: "EMAIL_REPLY_TO"},
	{Old: "BIZDEV_OFFER", Kind: legacyRenamed, New: "EMAIL_OFFER"},
	{Old: "INBOUND_EMAIL_SECRET", Kind: legacyRenamed, New: "EMAIL_INBOUND_SECRET"},

	{Old: "DASHBOARD_URL", Kind: legacyReplaced, New: "BASE_URL",
		Note: "links in e-mail and portal links are made from BASE_URL, the app's public root URL (https://host, no path)"},
	{Old: "BIZDEV_NICHE_TEMPLATE", Kind: legacyReplaced, New: "LEAD_NICHE",
		Note: "the template pack follows each lead's niche: set LEAD_NICHE to the niche you target"},
	{Old: "APOLLO_API_KEY", Kind: legacyReplaced, New: "LEAD_SEARCH_API_URL",
		Note: "there is no Apollo client: point LEAD_SEARCH_API_URL (and LEAD_SEARCH_API_KEY) at a lead search API"},
	{Old: "AWS_SES_ACCESS_KEY", Kind: legacyReplaced, New: "SMTP_HOST", Note: sesNote},
	{Old: "AWS_SES_SECRET_KEY", Kind: legacyReplaced, New: "SMTP_HOST", Note: sesNote},
	{Old: "AWS_SES_REGION", Kind: legacyReplaced, New: "SMTP_HOST", Note: sesNote},

	{Old: "SESSION_SECRET", Kind: legacyUnsupported, Note: "sessions are random tokens kept in the database"},
	{Old: "REPLIT_DEV_DOMAIN", Kind: legacyUnsupported, Note: "set BASE_URL to the public https:// URL"},
	{Old: "HOSSAGENT_WEBSITE_URL", Kind: legacyUnsupported, Note: "outreach links point at BASE_URL; put a website in EMAIL_SIGNATURE if you want one"},
	{Old: "AUTO_REPLY_LEVEL", Kind: legacyUnsupported, Note: "replies are never answered automatically; they are stored for you"},
	{Old: "SIGNAL_MODE", Kind: legacyUnsupported, Note: noSignals},
	{Old: "SIGNAL_DRY_RUN", Kind: legacyUnsupported, Note: noSignals},
	{Old: "NEWS_API_KEY", Kind: legacyUnsupported, Note: noSignals},
	{Old: "OPENWEATHER_API_KEY", Kind: legacyUnsupported, Note: noSignals},
	{Old: "CRAIGSLIST_DRY_RUN", Kind: legacyUnsupported, Note: noScraping},
	{Old: "CRAIGSLIST_RATE_LIMIT", Kind: legacyUnsupported, Note: noScraping},
	{Old: "CRAIGSLIST_TIMEOUT", Kind: legacyUnsupported, Note: noScraping},
	{Old: "DOMAIN_DISCOVERY_DELAY_MIN", Kind: legacyUnsupported, Note: noScraping},
	{Old: "DOMAIN_DISCOVERY_DELAY_MAX", Kind: legacyUnsupported, Note: noScraping},
	{Old: "DOMAIN_DISCOVERY_TIMEOUT", Kind: legacyUnsupported, Note: noScraping},
	{Old: "EMAIL_DISCOVERY_ENABLED", Kind: legacyUnsupported, Note: noScraping},
	{Old: "EMAIL_DISCOVERY_DRY_RUN", Kind: legacyUnsupported, Note: noScraping},
	{Old: "EMAIL_DISCOVERY_DELAY_MIN", Kind: legacyUnsupported, Note: noScraping},
	{Old: "EMAIL_DISCOVERY_DELAY_MAX", Kind: legacyUnsupported, Note: noScraping},
	{Old: "EMAIL_DISCOVERY_MAX_PAGES", Kind: legacyUnsupported, Note: noScraping},
	{Old: "EMAIL_DISCOVERY_TIMEOUT", Kind: legacyUnsupported, Note: noScraping},
	{Old: "EMAILSTORM_TIMEOUT", Kind: legacyUnsupported, Note: noScraping},
	{Old: "NAMESTORM_TIMEOUT", Kind: legacyUnsupported, Note: noScraping},
	{Old: "ENABLE_SMTP_VALIDATION", Kind: legacyUnsupported, Note: noScraping},
	{Old: "PHONE_EXTRACTION_DELAY_MIN", Kind: legacyUnsupported, Note: noScraping},
	{Old: "PHONE_EXTRACTION_DELAY_MAX", Kind: legacyUnsupported, Note: noScraping},
	{Old: "PHONE_EXTRACTION_MAX_PAGES", Kind: legacyUnsupported, Note: noScraping},
	{Old: "PHONE_EXTRACTION_TIMEOUT", Kind: legacyUnsupported, Note: noScraping},
	{Old: "HUNTER_API_KEY", Kind: legacyUnsupported, Note: noEnrichment},
	{Old: "CLEARBIT_API_KEY", Kind: legacyUnsupported, Note: noEnrichment},
	{Old: "ENRICHMENT_DRY_RUN", Kind: legacyUnsupported, Note: noEnrichment},
	{Old: "MAX_ENRICHMENT_PER_CYCLE", Kind: legacyUnsupported, Note: noEnrichment},
	{Old: "STALE_LEAD_AGE_DAYS", Kind: legacyUnsupported, Note: "leads are never archived by age"},
	{Old: "GA_MEASUREMENT_ID", Kind: legacyUnsupported, Note: "pages carry no third-party analytics"},
	{Old: "STRIPE_PRODUCT_ID", Kind: legacyUnsupported, Note: noSubscriptions},
	{Old: "STRIPE_PRICE_ID", Kind: legacyUnsupported, Note: noSubscriptions},
	{Old: "STRIPE_PRICE_ID_PRO", Kind: legacyUnsupported, Note: noSubscriptions},
	{Old: "SNOWFLAKE_ACCOUNT", Kind: legacyUnsupported, Note: noClinic},
	{Old: "SNOWFLAKE_USER", Kind: legacyUnsupported, Note: noClinic},
	{Old: "SNOWFLAKE_ROLE", Kind: legacyUnsupported, Note: noClinic},
	{Old: "SNOWFLAKE_WAREHOUSE", Kind: legacyUnsupported, Note: noClinic},
	{Old: "SNOWFLAKE_DATABASE", Kind: legacyUnsupported, Note: noClinic},
	{Old: "SNOWFLAKE_SCHEMA", Kind: legacyUnsupported, Note: noClinic},
	{Old: "HOSS_SOURCE", Kind: legacyUnsupported, Note: noClinic},
}

const (
	sesNote         = "there is no SES client: send through SES's SMTP interface with EMAIL_MODE=SMTP, SMTP_HOST=email-smtp.REGION.amazonaws.com and SES SMTP credentials in SMTP_USERNAME and SMTP_PASSWORD"
	noSignals       = "there is no signals engine"
	noScraping      = "leads come from LEAD_SOURCE; nothing is scraped or guessed"
	noEnrichment    = "there is no enrichment: leads come with their contact from LEAD_SOURCE"
	noSubscriptions = "invoices are billed one by one with payment links HossAgent creates"
	noClinic        = "the prototype's clinic analysis scripts are not part of HossAgent"
)

// legacyEnv is what the prototype's names contribute: values to read under
// the current names, and the warnings to give.
type legacyEnv struct {
	values   map[string]string // current name → value
	alias    map[string]string // current name → prototype name
	warnings []string
}

// getenv reads a current name, falling back to the prototype's value.
func (l legacyEnv) getenv(getenv func(string) string) func(string) string {
	if len(l.values) == 0 {
		return getenv
	}
	return func(name string) string {
		if v, ok := l.values[name]; ok {
			return v
		}
		return getenv(name)
	}
}

// readLegacy looks at every prototype name. A renamed variable's value is
// validated (and shown, or not) as the current name's; no other prototype
// variable's value is ever shown: several are secrets, or URLs with
// credentials.
func readLegacy(getenv func(string) string) (legacyEnv, error) {
	l := legacyEnv{values: map[string]string{}, alias: map[string]string{}}
	set := func(name string) (string, bool) {
		v := strings.TrimSpace(getenv(name))
		return v, v != ""
	}
	// Renamed variables, grouped by their current name in table order.
	var order []string
	olds := map[string][]string{}
	for _, lv := range legacyVars {
		if lv.Kind != legacyRenamed {
			continue
		}
		if _, seen := olds[lv.New]; !seen {
			order = append(order, lv.New)
		}
		olds[lv.New] = append(olds[lv.New], lv.Old)
	}
	for _, name := range order {
		var given []string
		for _, old := range olds[name] {
			if _, ok := set(old); ok {
				given = append(given, old)
			}
		}
		if len(given) == 0 {
			continue
		}
		if cur, ok := set(name); ok {
			for _, old := range given {
				if v, _ := set(old); v != cur {
					return l, &Error{Var: old, NoValue: true, Alias: name, Problem: "conflicts with " + name,
						Want: "both are set, to different values: remove " + old + " (or give both the same value)"}
				}
				l.warnings = append(l.warnings, old+" is the prototype's name for "+name+", which is also set, to the same value: remove "+old)
			}
			continue
		}
		first, _ := set(given[0])
		for _, old := range given[1:] {
			if v, _ := set(old); v != first {
				return l, &Error{Var: old, NoValue: true, Alias: name, Problem: "conflicts with " + given[0],
					Want: "both are the prototype's names for " + name + " and are set to different values: set " + name + " and remove them"}
			}
		}
		l.values[name], l.alias[name] = first, given[0]
		l.warnings = append(l.warnings, strings.Join(given, " and ")+" read as "+name+" (the prototype's name): rename it to "+name)
	}
	for _, lv := range legacyVars {
		if _, ok := set(lv.Old); !ok {
			continue
		}
		switch lv.Kind {
		case legacyReplaced:
			if _, ok := set(lv.New); !ok {
				return l, &Error{Var: lv.Old, NoValue: true, Problem: "is the prototype's setting and is not read",
					Want: "set " + lv.New + " instead: " + lv.Note}
			}
			l.warnings = append(l.warnings, lv.Old+" is the prototype's setting and is not read ("+lv.New+" is set and used): remove it")
		case legacyUnsupported:
			l.warnings = append(l.warnings, lv.Old+" is the prototype's setting and is ignored: "+lv.Note)
		}
	}
	return l, nil
}
