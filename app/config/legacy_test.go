package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// prototypeNames is every variable the prototype (samuelhollidayv/hossagent-1)
// read through os.getenv or os.environ, over its whole history.
var prototypeNames = strings.Fields(`
	ADMIN_PASSWORD APOLLO_API_KEY AUTO_REPLY_LEVEL AWS_SES_ACCESS_KEY AWS_SES_REGION AWS_SES_SECRET_KEY
	BIZDEV_NICHE_TEMPLATE BIZDEV_OFFER BIZDEV_SENDER_EMAIL BIZDEV_SENDER_NAME CLEARBIT_API_KEY CRAIGSLIST_DRY_RUN
	CRAIGSLIST_RATE_LIMIT CRAIGSLIST_TIMEOUT DASHBOARD_URL DATABASE_URL DOMAIN_DISCOVERY_DELAY_MAX
	DOMAIN_DISCOVERY_DELAY_MIN DOMAIN_DISCOVERY_TIMEOUT EMAILSTORM_TIMEOUT EMAIL_DISCOVERY_DELAY_MAX
	EMAIL_DISCOVERY_DELAY_MIN EMAIL_DISCOVERY_DRY_RUN EMAIL_DISCOVERY_ENABLED EMAIL_DISCOVERY_MAX_PAGES
	EMAIL_DISCOVERY_TIMEOUT EMAIL_MODE EMAIL_SEND_DELAY_MAX EMAIL_SEND_DELAY_MIN ENABLE_SMTP_VALIDATION
	ENABLE_STRIPE ENRICHMENT_DRY_RUN GA_MEASUREMENT_ID HOSSAGENT_WEBSITE_URL HOSS_SOURCE HUNTER_API_KEY
	INBOUND_EMAIL_SECRET LEAD_GEOGRAPHY LEAD_MAX_COMPANY_SIZE LEAD_MIN_COMPANY_SIZE LEAD_NICHE
	LEAD_SEARCH_API_KEY LEAD_SEARCH_API_URL MAX_EMAILS_PER_CYCLE MAX_EMAILS_PER_HOUR MAX_ENRICHMENT_PER_CYCLE
	MAX_NEW_LEADS_PER_CYCLE NAMESTORM_TIMEOUT NEWS_API_KEY OPENAI_API_KEY OPENWEATHER_API_KEY
	OUTBOUND_DISPLAY_NAME OUTBOUND_FROM OUTBOUND_REPLY_TO PHONE_EXTRACTION_DELAY_MAX PHONE_EXTRACTION_DELAY_MIN
	PHONE_EXTRACTION_MAX_PAGES PHONE_EXTRACTION_TIMEOUT RELEASE_MODE REPLIT_DEV_DOMAIN SENDGRID_API_KEY
	SENDGRID_FROM_EMAIL SENDGRID_FROM_NAME SESSION_SECRET SIGNAL_DRY_RUN SIGNAL_MODE SMTP_FROM_EMAIL
	SMTP_FROM_NAME SMTP_HOST SMTP_PASSWORD SMTP_PORT SMTP_USERNAME SNOWFLAKE_ACCOUNT SNOWFLAKE_DATABASE
	SNOWFLAKE_ROLE SNOWFLAKE_SCHEMA SNOWFLAKE_USER SNOWFLAKE_WAREHOUSE STALE_LEAD_AGE_DAYS STRIPE_API_KEY
	STRIPE_DEFAULT_CURRENCY STRIPE_MAX_AMOUNT_CENTS STRIPE_MIN_AMOUNT_CENTS STRIPE_PRICE_ID STRIPE_PRICE_ID_PRO
	STRIPE_PRODUCT_ID STRIPE_WEBHOOK_SECRET`)

// field reads a Config field by its path ("Email.From"); the zero Value
// when there is no such field.
func field(c Config, path string) reflect.Value {
	v := reflect.ValueOf(c)
	for _, p := range strings.Split(path, ".") {
		if v = v.FieldByName(p); !v.IsValid() {
			return v
		}
	}
	return v
}

// Every prototype variable is recognised: read under its new name with a
// warning, refused with the name to use, or ignored with a warning; none is
// ignored in silence. The names the prototype shares with HossAgent are read
// as they are.
func TestPrototypeNamesAreRecognised(t *testing.T) {
	type outcome int
	const (
		current  outcome = iota // the same name and meaning: read
		renamed                 // read as the new name, with a warning
		refused                 // the start is refused, naming the variable to use
		warnedOf                // ignored, with a warning
	)
	expect := map[string]struct {
		outcome
		value, field string // renamed: the value given, the Config field it lands in
		use          string // refused: the variable the message says to set
	}{
		"SMTP_FROM_EMAIL":       {outcome: renamed, value: "sales@acme-corp.com", field: "Email.From"},
		"SENDGRID_FROM_EMAIL":   {outcome: renamed, value: "sales@acme-corp.com", field: "Email.From"},
		"BIZDEV_SENDER_EMAIL":   {outcome: renamed, value: "sales@acme-corp.com", field: "Email.From"},
		"OUTBOUND_FROM":         {outcome: renamed, value: "sales@acme-corp.com", field: "Email.From"},
		"SMTP_FROM_NAME":        {outcome: renamed, value: "Acme Sales", field: "Email.SenderName"},
		"SENDGRID_FROM_NAME":    {outcome: renamed, value: "Acme Sales", field: "Email.SenderName"},
		"BIZDEV_SENDER_NAME":    {outcome: renamed, value: "Acme Sales", field: "Email.SenderName"},
		"OUTBOUND_DISPLAY_NAME": {outcome: renamed, value: "Acme Sales", field: "Email.SenderName"},
		"OUTBOUND_REPLY_TO":     {outcome: renamed, value: "replies@acme-corp.com", field: "Email.ReplyTo"},
		"BIZDEV_OFFER":          {outcome: renamed, value: "audits in a week", field: "Email.Offer"},
		"INBOUND_EMAIL_SECRET":  {outcome: renamed, value: "s3cr3t-0123456789-0123456789-abcdef", field: "Email.InboundSecret"},
		"DASHBOARD_URL":         {outcome: refused, use: "BASE_URL"},
		"BIZDEV_NICHE_TEMPLATE": {outcome: refused, use: "LEAD_NICHE"},
		"APOLLO_API_KEY":        {outcome: refused, use: "LEAD_SEARCH_API_URL"},
		"AWS_SES_ACCESS_KEY":    {outcome: refused, use: "SMTP_HOST"},
		"AWS_SES_SECRET_KEY":    {outcome: refused, use: "SMTP_HOST"},
		"AWS_SES_REGION":        {outcome: refused, use: "SMTP_HOST"},
	}
	for _, name := range strings.Fields(`SESSION_SECRET REPLIT_DEV_DOMAIN HOSSAGENT_WEBSITE_URL AUTO_REPLY_LEVEL
		SIGNAL_MODE SIGNAL_DRY_RUN NEWS_API_KEY OPENWEATHER_API_KEY CRAIGSLIST_DRY_RUN CRAIGSLIST_RATE_LIMIT CRAIGSLIST_TIMEOUT
		DOMAIN_DISCOVERY_DELAY_MIN DOMAIN_DISCOVERY_DELAY_MAX DOMAIN_DISCOVERY_TIMEOUT EMAIL_DISCOVERY_ENABLED EMAIL_DISCOVERY_DRY_RUN
		EMAIL_DISCOVERY_DELAY_MIN EMAIL_DISCOVERY_DELAY_MAX EMAIL_DISCOVERY_MAX_PAGES EMAIL_DISCOVERY_TIMEOUT EMAILSTORM_TIMEOUT
		NAMESTORM_TIMEOUT ENABLE_SMTP_VALIDATION PHONE_EXTRACTION_DELAY_MIN PHONE_EXTRACTION_DELAY_MAX PHONE_EXTRACTION_MAX_PAGES
		PHONE_EXTRACTION_TIMEOUT HUNTER_API_KEY CLEARBIT_API_KEY ENRICHMENT_DRY_RUN MAX_ENRICHMENT_PER_CYCLE STALE_LEAD_AGE_DAYS
		GA_MEASUREMENT_ID STRIPE_PRODUCT_ID STRIPE_PRICE_ID STRIPE_PRICE_ID_PRO SNOWFLAKE_ACCOUNT SNOWFLAKE_USER SNOWFLAKE_ROLE
		SNOWFLAKE_WAREHOUSE SNOWFLAKE_DATABASE SNOWFLAKE_SCHEMA HOSS_SOURCE`) {
		expect[name] = struct {
			outcome
			value, field string
			use          string
		}{outcome: warnedOf}
	}
	read := readVariables(t)
	for _, name := range prototypeNames {
		t.Run(name, func(t *testing.T) {
			e, ok := expect[name]
			if !ok {
				e.outcome = current
			}
			value := e.value
			if value == "" {
				value = "prototype-value-0123456789"
			}
			switch e.outcome {
			case current:
				if !slices.Contains(read, name) {
					t.Fatalf("%s is neither read nor recognised", name)
				}
			case renamed:
				c, warnings, err := Load(envOf(map[string]string{name: value}))
				if err != nil {
					t.Fatal(err)
				}
				if f := field(c, e.field); !f.IsValid() || f.String() != value {
					t.Errorf("%s = %v, want %q read from %s", e.field, f, value, name)
				}
				if w := strings.Join(warnings, "\n"); !strings.Contains(w, name) || !strings.Contains(w, "rename it") {
					t.Errorf("warnings %q do not ask to rename %s", warnings, name)
				}
			case refused:
				cerr := loadErr(t, map[string]string{name: value})
				if cerr.Var != name || !strings.Contains(cerr.Error(), "set "+e.use) || strings.Contains(cerr.Error(), value) {
					t.Errorf("error %q: want it to name %s, say to set %s, and not show the value", cerr, name, e.use)
				}
				// Once the setting to use is set, the old one is only warned about.
				with := map[string]string{name: value, e.use: map[string]string{"BASE_URL": "https://hoss.acme-corp.com",
					"LEAD_SEARCH_API_URL": "https://leads.acme-corp.com/api"}[e.use]}
				if with[e.use] == "" {
					with[e.use] = "smtp.acme-corp.com"
				}
				_, warnings, err := Load(envOf(with))
				if err != nil {
					t.Fatalf("with %s set: %v", e.use, err)
				}
				if w := strings.Join(warnings, "\n"); !strings.Contains(w, name) || !strings.Contains(w, "not read") {
					t.Errorf("warnings %q do not say %s is not read", warnings, name)
				}
			case warnedOf:
				_, warnings, err := Load(envOf(map[string]string{name: value}))
				if err != nil {
					t.Fatal(err)
				}
				if w := strings.Join(warnings, "\n"); !strings.Contains(w, name+" is the prototype's setting and is ignored") || strings.Contains(w, value) {
					t.Errorf("warnings %q do not say %s is ignored (or show its value)", warnings, name)
				}
			}
		})
	}
	// Every recognised name is one of the prototype's.
	for _, lv := range legacyVars {
		if !slices.Contains(prototypeNames, lv.Old) {
			t.Errorf("%s is not a prototype name", lv.Old)
		}
	}
}

// An old name beside its new one, or two old names for one setting, must
// agree; a bad value is named by the variable the operator set.
func TestPrototypeNamesBesideNewOnes(t *testing.T) {
	// Both set and equal: the new one is read, the old one warned about.
	c, warnings, err := Load(envOf(map[string]string{"EMAIL_FROM": "a@acme-corp.com", "SMTP_FROM_EMAIL": "a@acme-corp.com"}))
	if err != nil || c.Email.From != "a@acme-corp.com" || !strings.Contains(strings.Join(warnings, "\n"), "remove SMTP_FROM_EMAIL") {
		t.Errorf("equal: %q, %q, %v", c.Email.From, warnings, err)
	}
	// Both set and different: refused, naming both, showing neither.
	cerr := loadErr(t, map[string]string{"EMAIL_INBOUND_SECRET": "new-secret-0123456789", "INBOUND_EMAIL_SECRET": "old-secret-0123456789"})
	if msg := cerr.Error(); cerr.Var != "INBOUND_EMAIL_SECRET" || !strings.Contains(msg, "EMAIL_INBOUND_SECRET") || strings.Contains(msg, "secret-0123") {
		t.Errorf("different: %q", msg)
	}
	// Two old names for one setting.
	c, warnings, err = Load(envOf(map[string]string{"SMTP_FROM_EMAIL": "a@acme-corp.com", "OUTBOUND_FROM": "a@acme-corp.com"}))
	if err != nil || c.Email.From != "a@acme-corp.com" || !strings.Contains(strings.Join(warnings, "\n"), "SMTP_FROM_EMAIL and OUTBOUND_FROM read as EMAIL_FROM") {
		t.Errorf("two equal old names: %q, %q, %v", c.Email.From, warnings, err)
	}
	cerr = loadErr(t, map[string]string{"SMTP_FROM_EMAIL": "a@acme-corp.com", "OUTBOUND_FROM": "b@acme-corp.com"})
	if msg := cerr.Error(); cerr.Var != "OUTBOUND_FROM" || !strings.Contains(msg, "SMTP_FROM_EMAIL") || !strings.Contains(msg, "set EMAIL_FROM") {
		t.Errorf("two different old names: %q", msg)
	}
	// A bad value read through an old name names the old name.
	cerr = loadErr(t, map[string]string{"SENDGRID_FROM_EMAIL": "not-an-address"})
	if msg := cerr.Error(); cerr.Var != "SENDGRID_FROM_EMAIL" || cerr.Alias != "EMAIL_FROM" || !strings.Contains(msg, `SENDGRID_FROM_EMAIL="not-an-address" (the prototype's name for EMAIL_FROM)`) {
		t.Errorf("bad old value: %q", msg)
	}
	// PRODUCTION's rules apply to a value read through an old name, and a
	// secret stays hidden.
	cerr = loadErr(t, prodSMTP(map[string]string{"INBOUND_EMAIL_SECRET": "abc"}))
	if msg := cerr.Error(); cerr.Var != "INBOUND_EMAIL_SECRET" || !strings.Contains(msg, "at least 32") || strings.Contains(msg, `"abc"`) {
		t.Errorf("short old secret: %q", msg)
	}
	cerr = loadErr(t, prodSMTP(map[string]string{"EMAIL_FROM": "", "SMTP_FROM_EMAIL": "outreach@hossagent.example"}))
	if cerr.Var != "SMTP_FROM_EMAIL" || !strings.Contains(cerr.Error(), "reserved") {
		t.Errorf("placeholder through an old name: %q", cerr)
	}
}

// The prototype's values of the names that were kept are explained.
func TestPrototypeValuesAreExplained(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"RELEASE_MODE", "SANDBOX", "STAGING"},
		{"RELEASE_MODE", "true", "PRODUCTION here"},
		{"EMAIL_MODE", "ses", "EMAIL_MODE=SMTP"},
	} {
		cerr := loadErr(t, map[string]string{tc.name: tc.value})
		if cerr.Var != tc.name || !strings.Contains(cerr.Error(), tc.want) {
			t.Errorf("%s=%s: %q", tc.name, tc.value, cerr)
		}
	}
}

// README documents every variable Load reads: a row of the configuration
// table for each current one, a mention (or its NAME_* family) for each of
// the prototype's.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	legacy := map[string]bool{}
	for _, lv := range legacyVars {
		legacy[lv.Old] = true
	}
	for _, name := range readVariables(t) {
		if !legacy[name] {
			if !strings.Contains(readme, "| `"+name+"` |") {
				t.Errorf("README's configuration table has no row for %s", name)
			}
			continue
		}
		mentioned := strings.Contains(readme, "`"+name+"`")
		for i := range len(name) {
			if name[i] == '_' && strings.Contains(readme, "`"+name[:i]+"_*`") {
				mentioned = true
			}
		}
		if !mentioned {
			t.Errorf("README does not mention the prototype's %s", name)
		}
	}
}
