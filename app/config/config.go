// Package config reads HossAgent's configuration from the environment once,
// into a typed struct, and validates it. An invalid value stops the start
// with one line naming the variable, the rule and what is accepted; the
// value is shown too, except the value of a secret (passwords, API keys,
// webhook and inbound secrets), which is never shown, and a URL's user
// info, which is replaced by "…".
package config

import (
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hossagent/hossagent/agents/mailmode"
)

// Release modes.
const (
	Development = "DEVELOPMENT"
	Staging     = "STAGING"
	Production  = "PRODUCTION"
)

// Lead sources and task executors.
const (
	LeadSynthetic  = "synthetic"
	LeadSearchAPI  = "search_api"
	ExecBuiltin    = "builtin"
	ExecOpenAI     = "openai"
	LogText        = "text"
	LogJSON        = "json"
	defaultBaseURL = "http://localhost:8080"
	// DefaultFrom is the placeholder sender: a reserved example domain that
	// PRODUCTION refuses for real mail.
	DefaultFrom = "outreach@hossagent.example"
	// MinInboundSecretLen is the shortest EMAIL_INBOUND_SECRET PRODUCTION
	// accepts: the secret is the only credential of the inbound-mail URL,
	// and 32 random URL-safe characters hold about 190 bits.
	MinInboundSecretLen = 32
)

// secretVars are the variables whose value is a credential: no error or
// warning ever shows it.
var secretVars = map[string]bool{
	"ADMIN_PASSWORD": true, "SMTP_PASSWORD": true, "SENDGRID_API_KEY": true, "EMAIL_INBOUND_SECRET": true,
	"LEAD_SEARCH_API_KEY": true, "STRIPE_API_KEY": true, "STRIPE_WEBHOOK_SECRET": true, "OPENAI_API_KEY": true,
	"IMAP_PASSWORD": true,
}

// urlVars are the variables that hold a URL: an echoed value has its user
// info (user:password@) replaced by "…", even when the URL does not parse.
var urlVars = map[string]bool{
	"BASE_URL": true, "SENDGRID_API_BASE": true, "LEAD_SEARCH_API_URL": true, "STRIPE_API_BASE": true, "OPENAI_BASE_URL": true,
	"DATABASE_URL": true,
}

// IsSecret reports whether the variable name holds a credential, whose value
// is never shown in an error or a warning.
func IsSecret(name string) bool { return secretVars[name] }

// Config is every setting HossAgent reads from its environment. A Config
// that Load returns without an error holds these invariants (FuzzConfigLoad
// checks them):
//   - ReleaseMode, LogFormat, Email.Mode, Email.SMTPTLS, Leads.Source and
//     Exec.Kind are each one of their constants;
//   - BaseURL is an absolute http or https URL with a host and without user
//     info, query or fragment; SendTimezone is not nil;
//   - every text setting is valid UTF-8 without control characters (tabs
//     aside; Email.Signature and Email.PostalAddress may hold line breaks);
//   - Email.From, and Email.ReplyTo and AdminEmail when set, are bare
//     addresses that net/mail parses to themselves;
//   - AdminPassword is empty or at least 12 bytes; EMAIL_INBOUND_SECRET is
//     empty or made of URL-safe characters (letters, digits, - . _ ~);
//   - counts are from 0 to 1000000000, SMTPPort from 1 to 65535,
//     0 <= SendDelayMin <= SendDelayMax <= 10m, AutopilotInterval from 1s to
//     24h, OpenAITimeout from 1s to 10m; Leads.MaxCompanySize is 0 or not
//     below MinCompanySize; Stripe.MaxAmountCents >= MinAmountCents;
//   - a real e-mail mode has its credential (SMTPHost or SendGridAPIKey),
//     search_api leads a SearchAPIURL, ENABLE_STRIPE an APIKey, the openai
//     executor an OpenAIAPIKey;
//   - in PRODUCTION: BaseURL is https; no STRIPE_API_BASE; Stripe on has a
//     WebhookSecret; EMAIL_INBOUND_SECRET is empty or at least
//     MinInboundSecretLen characters; SMTP with SMTP_TLS=none and a password
//     goes to a loopback host only; and a real e-mail mode has a postal
//     address, a lead source other than synthetic, a SendGrid verification
//     key when it is SENDGRID, and a sender (and Reply-To) outside the
//     reserved example domains.
type Config struct {
	Addr    string
	DataDir string
	// DatabaseURL is DATABASE_URL: a postgres:// URL puts the data in
	// PostgreSQL, where several instances may share it; empty keeps it in
	// SQLite under DataDir.
	DatabaseURL string
	// InstanceID is INSTANCE_ID: this instance's name among those sharing
	// a PostgreSQL database (the control room and /readyz show which one
	// owns the agents). Empty: main names it FLY_MACHINE_ID, or host-pid.
	InstanceID string
	// TakeoverTimeout is TAKEOVER_TIMEOUT: on PostgreSQL, how long the
	// agents may stay without an owner after theirs died or was cut off
	// before another instance has taken them over.
	TakeoverTimeout time.Duration
	BaseURL         *url.URL
	ReleaseMode     string
	LogFormat       string
	DashboardPublic bool
	// ClientIPHeader names the header a trusted proxy sets to the client's
	// address ("Fly-Client-IP" on Fly.io); empty uses the peer address.
	ClientIPHeader string

	AutopilotEnabled  bool
	AutopilotInterval time.Duration

	AdminEmail    string
	AdminPassword string

	Email  Email
	Leads  Leads
	Stripe Stripe
	Exec   Executor

	Company     Company
	Collections Collections

	LiveStreams LiveStreams
	IMAP        IMAP
}

// LiveStreams bounds the open live-update (SSE) streams: each holds a
// connection, two goroutines and about 40 KB, and each view renders on
// every change.
type LiveStreams struct {
	// PerAddress bounds the streams without a session (the public
	// dashboard, client portals) from one client address; an IPv6 /64 is
	// one address. LIVE_STREAMS_PER_ADDRESS, default 8.
	PerAddress int
	// PerUser bounds the streams of one signed-in user, over all their
	// sessions and addresses. LIVE_STREAMS_PER_USER, default 16.
	PerUser int
	// Max bounds every stream together. LIVE_STREAMS_MAX, default 10000
	// (fly.toml sets 300, below its proxy's hard_limit). Streams without a
	// session take at most half of it, so anonymous readers filling the
	// server never shut the operators' control room out.
	Max int
}

// DefaultLiveStreams are the stream limits when none is set.
func DefaultLiveStreams() LiveStreams {
	return LiveStreams{PerAddress: 8, PerUser: 16, Max: 10_000}
}

// Email configures outreach.
type Email struct {
	Mode         string
	MaxPerCycle  int
	MaxPerHour   int
	MaxPerDay    int
	SendDelayMin time.Duration
	SendDelayMax time.Duration
	From         string
	// ReplyTo is the Reply-To address of outreach mail (EMAIL_REPLY_TO);
	// empty sends none, so replies go to From.
	ReplyTo       string
	SenderName    string
	Offer         string
	Signature     string
	PostalAddress string
	SMTPHost      string
	SMTPPort      int
	SMTPUsername  string
	SMTPPassword  string
	// SMTPTLS is "starttls" (required STARTTLS), "tls" (implicit TLS) or
	// "none" (plain, for a local relay or a test server only).
	SMTPTLS        string
	SendGridAPIKey string
	// SendGridSandbox sends with SendGrid's sandbox mode: accepted, never
	// delivered.
	SendGridSandbox bool
	// SendGridAPIBase is SendGrid's API URL (tests point it at a fake).
	SendGridAPIBase string
	// SendGridVerificationKey is the event webhook's public key (base64
	// DER, ECDSA); events are verified when it is set.
	SendGridVerificationKey string
	InboundSecret           string
	// SendWindow limits sending to a daily window ("09:00-17:00") in
	// SendTimezone; empty sends at any hour.
	SendWindow   string
	SendTimezone *time.Location
	// PauseAfterErrors consecutive provider errors pause outreach until an
	// admin resumes it.
	PauseAfterErrors int
	// Guard is the deliverability guard: the bounce rate that pauses
	// outreach, and the warm-up ramp of the daily cap.
	Guard Deliverability
	// Review (OUTREACH_REVIEW) has BizDev draft every outreach step for an
	// admin's approval in /admin/outreach/drafts instead of queueing it.
	Review bool
}

// Leads configures the lead source.
type Leads struct {
	Source         string
	MaxPerCycle    int
	Niche          string
	Geography      string
	MinCompanySize int
	MaxCompanySize int
	SearchAPIURL   string
	SearchAPIKey   string
}

// Stripe configures billing through Stripe.
type Stripe struct {
	Enabled         bool
	APIKey          string
	WebhookSecret   string
	DefaultCurrency string
	MinAmountCents  int64
	MaxAmountCents  int64
	APIBase         string
}

// Executor configures how tasks are executed.
type Executor struct {
	Kind             string
	BuiltinCostCents int64
	OpenAIAPIKey     string
	OpenAIBaseURL    string
	OpenAIModel      string
	// Prices in whole cents per million tokens; a task's cost is its usage
	// times these, rounded up to the cent.
	OpenAIInputCentsPerMTok  int64
	OpenAIOutputCentsPerMTok int64
	OpenAITimeout            time.Duration
}

// IsProduction reports whether RELEASE_MODE is PRODUCTION.
func (c Config) IsProduction() bool { return c.ReleaseMode == Production }

// IsDevelopment reports whether RELEASE_MODE is DEVELOPMENT.
func (c Config) IsDevelopment() bool { return c.ReleaseMode == Development }

// DatabasePath is the SQLite file under DATA_DIR.
func (c Config) DatabasePath(fileName string) string {
	return strings.TrimRight(c.DataDir, "/") + "/" + fileName
}

// Error is an invalid configuration value. Its message is the one line an
// operator sees when the start is refused: the variable, its value when it
// may be shown, and the rule.
type Error struct {
	// Var is the variable as the operator set it: the prototype's name when
	// the value was read through one (Alias is then the current name).
	Var string
	// Value is the value as it may be shown: never a secret's (Hidden is set
	// and Value is empty), and a URL's user info replaced by "…".
	Value  string
	Hidden bool
	// NoValue leaves the value out of the message: the rule is about the
	// variable being set at all.
	NoValue bool
	Alias   string
	// Problem is "is invalid" unless set.
	Problem string
	Want    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.Var)
	switch {
	case e.Hidden:
		b.WriteString(" (secret, value not shown)")
	case !e.NoValue:
		fmt.Fprintf(&b, "=%q", e.Value)
	}
	if e.Alias != "" {
		b.WriteString(" (the prototype's name for " + e.Alias + ")")
	}
	problem := e.Problem
	if problem == "" {
		problem = "is invalid"
	}
	b.WriteString(" " + problem + ": " + e.Want)
	return b.String()
}

// shownValue is v as an error may show it for the variable name: nothing for
// a secret; for a URL, its user info hidden and its query and fragment
// dropped; for any other value, the user info of a "scheme://" in it hidden.
func shownValue(name, v string) (string, bool) {
	if secretVars[name] && v != "" {
		return "", true
	}
	return hideUserInfo(v, urlVars[name]), false
}

// hideUserInfo replaces by "…" everything from the first "://" in v to its
// last "@": user info may hold "/", "?" or "#" (a password such as "p/ss"),
// and where the URL's authority ends cannot be told for sure, so all of it
// is hidden. With url set (a URL variable), a value without "://" has
// everything before its last "@" hidden ("user:pw@host" is a URL without
// its scheme), and the query and fragment after the host are dropped (shown
// as "?…" or "#…"): an API key may be in them.
func hideUserInfo(v string, url bool) string {
	head, rest := "", v
	if i := strings.Index(v, "://"); i >= 0 {
		head, rest = v[:i+3], v[i+3:]
	} else if !url {
		return v
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		head += "…"
		rest = rest[at:]
	}
	if url {
		if q := strings.IndexAny(rest, "?#"); q >= 0 {
			rest = rest[:q+1] + "…"
		}
	}
	return head + rest
}

// Load reads and validates the configuration through getenv (os.Getenv in
// main, a map in tests). Warnings are returned for settings the operator
// should change: a real e-mail mode without credentials outside PRODUCTION
// (changed to DRY_RUN), the prototype's variable names, unsafe settings that
// only PRODUCTION refuses; the caller logs them loudly.
func Load(getenv func(string) string) (Config, []string, error) {
	legacy, err := readLegacy(getenv)
	if err != nil {
		return Config{}, nil, err
	}
	r := reader{getenv: legacy.getenv(getenv), alias: legacy.alias}
	var c Config
	c.ReleaseMode = r.oneOf("RELEASE_MODE", Development, Development, Staging, Production)
	c.Addr = r.addr("ADDR", ":8080")
	c.DataDir = r.text("DATA_DIR", "./data")
	c.DatabaseURL = r.databaseURL("DATABASE_URL")
	c.InstanceID = r.instanceID("INSTANCE_ID")
	c.TakeoverTimeout = r.duration("TAKEOVER_TIMEOUT", 10*time.Second, 4*time.Second, 5*time.Minute)
	c.BaseURL = r.baseURL("BASE_URL", defaultBaseURL)
	defaultLog := LogText
	if c.ReleaseMode == Production {
		defaultLog = LogJSON
	}
	c.LogFormat = r.oneOf("LOG_FORMAT", defaultLog, LogText, LogJSON)
	c.DashboardPublic = r.boolean("DASHBOARD_PUBLIC", false)
	c.ClientIPHeader = r.headerName("CLIENT_IP_HEADER")
	c.AutopilotEnabled = r.boolean("AUTOPILOT_ENABLED", true)
	c.AutopilotInterval = r.duration("AUTOPILOT_INTERVAL", 5*time.Minute, time.Second, 24*time.Hour)
	c.AdminEmail = r.email("ADMIN_EMAIL", "")
	c.AdminPassword = r.password("ADMIN_PASSWORD")

	c.Email = Email{
		Mode:                    r.oneOf("EMAIL_MODE", mailmode.DryRun, mailmode.DryRun, mailmode.SMTP, mailmode.SendGrid),
		MaxPerCycle:             r.count("MAX_EMAILS_PER_CYCLE", 10),
		MaxPerHour:              r.count("MAX_EMAILS_PER_HOUR", 50),
		MaxPerDay:               r.count("MAX_EMAILS_PER_DAY", 200),
		SendDelayMin:            r.seconds("EMAIL_SEND_DELAY_MIN", time.Second),
		SendDelayMax:            r.seconds("EMAIL_SEND_DELAY_MAX", 5*time.Second),
		From:                    r.email("EMAIL_FROM", DefaultFrom),
		ReplyTo:                 r.email("EMAIL_REPLY_TO", ""),
		SenderName:              r.text("EMAIL_SENDER_NAME", "HossAgent"),
		Offer:                   r.text("EMAIL_OFFER", "research, competitive reviews and outreach copy, delivered in days"),
		Signature:               r.multiline("EMAIL_SIGNATURE", "The HossAgent team"),
		PostalAddress:           r.multiline("COMPANY_POSTAL_ADDRESS", ""),
		SMTPHost:                r.text("SMTP_HOST", ""),
		SMTPPort:                r.port("SMTP_PORT", 587),
		SMTPUsername:            r.text("SMTP_USERNAME", ""),
		SMTPPassword:            r.text("SMTP_PASSWORD", ""),
		SMTPTLS:                 r.oneOf("SMTP_TLS", "starttls", "starttls", "tls", "none"),
		SendGridAPIKey:          r.text("SENDGRID_API_KEY", ""),
		SendGridSandbox:         r.boolean("SENDGRID_SANDBOX", false),
		SendGridAPIBase:         r.optionalURL("SENDGRID_API_BASE"),
		SendGridVerificationKey: r.text("SENDGRID_WEBHOOK_VERIFICATION_KEY", ""),
		InboundSecret:           r.inboundSecret("EMAIL_INBOUND_SECRET"),
		SendWindow:              r.sendWindow("EMAIL_SEND_WINDOW"),
		SendTimezone:            r.location("EMAIL_SEND_TIMEZONE"),
		PauseAfterErrors:        r.count("EMAIL_PAUSE_AFTER_ERRORS", 5),
		Review:                  r.boolean("OUTREACH_REVIEW", false),
	}
	c.Email.Guard = r.deliverability()
	if r.err == nil && c.Email.SendDelayMax < c.Email.SendDelayMin {
		r.fail("EMAIL_SEND_DELAY_MAX", r.getenv("EMAIL_SEND_DELAY_MAX"), "must not be below EMAIL_SEND_DELAY_MIN ("+c.Email.SendDelayMin.String()+")")
	}

	searchURL := r.optionalURL("LEAD_SEARCH_API_URL")
	defaultSource := LeadSynthetic
	if searchURL != "" {
		defaultSource = LeadSearchAPI
	}
	c.Leads = Leads{
		Source:         r.oneOf("LEAD_SOURCE", defaultSource, LeadSynthetic, LeadSearchAPI),
		MaxPerCycle:    r.count("MAX_NEW_LEADS_PER_CYCLE", 10),
		Niche:          r.text("LEAD_NICHE", "small B2B agencies doing recurring client work"),
		Geography:      r.text("LEAD_GEOGRAPHY", ""),
		MinCompanySize: r.count("LEAD_MIN_COMPANY_SIZE", 0),
		MaxCompanySize: r.count("LEAD_MAX_COMPANY_SIZE", 0),
		SearchAPIURL:   searchURL,
		SearchAPIKey:   r.text("LEAD_SEARCH_API_KEY", ""),
	}
	if r.err == nil && c.Leads.MaxCompanySize != 0 && c.Leads.MaxCompanySize < c.Leads.MinCompanySize {
		r.fail("LEAD_MAX_COMPANY_SIZE", r.getenv("LEAD_MAX_COMPANY_SIZE"), "must not be below LEAD_MIN_COMPANY_SIZE")
	}
	if r.err == nil && c.Leads.Source == LeadSearchAPI && c.Leads.SearchAPIURL == "" {
		r.fail("LEAD_SEARCH_API_URL", "", "is required when LEAD_SOURCE=search_api")
	}

	c.Stripe = Stripe{
		Enabled:         r.boolean("ENABLE_STRIPE", false),
		APIKey:          r.text("STRIPE_API_KEY", ""),
		WebhookSecret:   r.text("STRIPE_WEBHOOK_SECRET", ""),
		DefaultCurrency: r.currency("STRIPE_DEFAULT_CURRENCY", "usd"),
		MinAmountCents:  int64(r.count("STRIPE_MIN_AMOUNT_CENTS", 100)),
		MaxAmountCents:  int64(r.count("STRIPE_MAX_AMOUNT_CENTS", 50000)),
		APIBase:         r.optionalURL("STRIPE_API_BASE"),
	}
	if r.err == nil && c.Stripe.MaxAmountCents < c.Stripe.MinAmountCents {
		r.fail("STRIPE_MAX_AMOUNT_CENTS", r.getenv("STRIPE_MAX_AMOUNT_CENTS"), "must not be below STRIPE_MIN_AMOUNT_CENTS")
	}
	if r.err == nil && c.Stripe.Enabled && c.Stripe.APIKey == "" {
		r.fail("STRIPE_API_KEY", "", "is required when ENABLE_STRIPE=true")
	}

	c.Exec = Executor{
		Kind:                     r.oneOf("TASK_EXECUTOR", ExecBuiltin, ExecBuiltin, ExecOpenAI),
		BuiltinCostCents:         int64(r.count("BUILTIN_TASK_COST_CENTS", 0)),
		OpenAIAPIKey:             r.text("OPENAI_API_KEY", ""),
		OpenAIBaseURL:            r.optionalURL("OPENAI_BASE_URL"),
		OpenAIModel:              r.text("OPENAI_MODEL", "gpt-4o-mini"),
		OpenAIInputCentsPerMTok:  int64(r.count("OPENAI_INPUT_CENTS_PER_MTOK", 15)),
		OpenAIOutputCentsPerMTok: int64(r.count("OPENAI_OUTPUT_CENTS_PER_MTOK", 60)),
		OpenAITimeout:            r.duration("OPENAI_TIMEOUT", time.Minute, time.Second, 10*time.Minute),
	}
	if r.err == nil && c.Exec.Kind == ExecOpenAI && c.Exec.OpenAIAPIKey == "" {
		r.fail("OPENAI_API_KEY", "", "is required when TASK_EXECUTOR=openai")
	}
	c.Company, c.Collections = r.collections(c.Email)
	c.IMAP = r.imap(c.ReleaseMode == Production)
	live := DefaultLiveStreams()
	c.LiveStreams = LiveStreams{
		PerAddress: r.atLeastOne("LIVE_STREAMS_PER_ADDRESS", live.PerAddress),
		PerUser:    r.atLeastOne("LIVE_STREAMS_PER_USER", live.PerUser),
		Max:        r.atLeastOne("LIVE_STREAMS_MAX", live.Max),
	}
	if r.err != nil {
		return Config{}, nil, r.err
	}
	warnings := c.checkSafety(&r)
	if r.err != nil {
		return Config{}, nil, r.err
	}
	return c, append(legacy.warnings, warnings...), nil
}

// checkSafety applies the rules that depend on RELEASE_MODE: PRODUCTION
// refuses an unsafe configuration (the error is left in r); the other modes
// fall back to a safe one, or keep it, and say so.
func (c *Config) checkSafety(r *reader) []string {
	var warnings []string
	prod := c.IsProduction()
	if missing := c.Email.missingCredentials(); missing != "" {
		if prod {
			r.fail(missing, "", "is required when EMAIL_MODE="+c.Email.Mode+" in PRODUCTION")
			return nil
		}
		warnings = append(warnings, fmt.Sprintf("EMAIL_MODE=%s but %s is not set: falling back to DRY_RUN, no e-mail will leave this machine", c.Email.Mode, missing))
		c.Email.Mode = mailmode.DryRun
	}
	realMail := c.Email.Mode != mailmode.DryRun
	// SMTP_TLS=none sends the password in clear text; on the same host
	// nobody can read it on the way.
	clearPassword := c.Email.Mode == mailmode.SMTP && c.Email.SMTPTLS == "none" && c.Email.SMTPPassword != "" && !isLoopbackHost(c.Email.SMTPHost)
	shortInbound := c.Email.InboundSecret != "" && utf8.RuneCountInString(c.Email.InboundSecret) < MinInboundSecretLen
	if c.Email.SendGridVerificationKey == "" && c.Email.usesSendGridEvents() {
		if prod {
			// PRODUCTION never takes unsigned events: the endpoint is off.
			warnings = append(warnings, "SENDGRID_WEBHOOK_VERIFICATION_KEY is not set: POST /email/events is off (404) until SENDGRID_WEBHOOK_VERIFICATION_KEY is set, "+
				"so SendGrid's bounces and complaints are not received and those addresses are not suppressed; turn on Signed Event Webhook Requests in SendGrid and set the key")
		} else {
			warnings = append(warnings, "SENDGRID_WEBHOOK_VERIFICATION_KEY is not set: POST /email/events accepts unsigned events, "+
				"so anyone who knows the URL can suppress addresses; turn on Signed Event Webhook Requests in SendGrid and set the key")
		}
	}
	if !prod {
		if clearPassword {
			warnings = append(warnings, "SMTP_TLS=none sends SMTP_PASSWORD in clear text to an SMTP_HOST that is not a loopback address; PRODUCTION refuses this: use SMTP_TLS=starttls or tls")
		}
		if shortInbound {
			warnings = append(warnings, fmt.Sprintf("EMAIL_INBOUND_SECRET is shorter than %d characters; PRODUCTION refuses it: use %d or more random letters and digits", MinInboundSecretLen, MinInboundSecretLen))
		}
		return warnings
	}
	switch {
	case c.BaseURL.Scheme != "https":
		r.fail("BASE_URL", r.getenv("BASE_URL"), "must be an https:// URL in PRODUCTION (portal links and secure cookies)")
	case realMail && c.Email.PostalAddress == "":
		r.fail("COMPANY_POSTAL_ADDRESS", "", "is required in PRODUCTION when EMAIL_MODE is "+c.Email.Mode)
	case realMail && c.Leads.Source == LeadSynthetic:
		r.fail("LEAD_SOURCE", LeadSynthetic, "synthetic leads must not be mailed for real: use search_api, or EMAIL_MODE=DRY_RUN, in PRODUCTION")
	case c.Email.Mode == mailmode.SendGrid && c.Email.SendGridVerificationKey == "":
		r.fail("SENDGRID_WEBHOOK_VERIFICATION_KEY", "", "is required in PRODUCTION when EMAIL_MODE=SENDGRID (unsigned bounce events could suppress anyone)")
	case realMail && reservedDomain(c.Email.From):
		r.fail("EMAIL_FROM", c.Email.From, "want an address of your own domain in PRODUCTION: this one is at a reserved example domain (the placeholder sender, .example, .test, .invalid, .localhost, example.com …)")
	case realMail && c.Email.ReplyTo != "" && reservedDomain(c.Email.ReplyTo):
		r.fail("EMAIL_REPLY_TO", c.Email.ReplyTo, "want an address of your own domain in PRODUCTION: this one is at a reserved example domain (.example, .test, .invalid, .localhost, example.com …), where replies would be lost")
	case clearPassword:
		r.fail("SMTP_TLS", c.Email.SMTPTLS, "none would send SMTP_PASSWORD in clear text to an SMTP_HOST that is not a loopback address: use starttls or tls in PRODUCTION (none is for a relay on the same host)")
	case shortInbound:
		r.fail("EMAIL_INBOUND_SECRET", c.Email.InboundSecret, fmt.Sprintf("must be at least %d characters in PRODUCTION: it is the only credential of the inbound-mail URL", MinInboundSecretLen))
	case c.Stripe.Enabled && c.Stripe.WebhookSecret == "":
		r.fail("STRIPE_WEBHOOK_SECRET", "", "is required in PRODUCTION when ENABLE_STRIPE=true")
	case c.Stripe.APIBase != "":
		r.fail("STRIPE_API_BASE", c.Stripe.APIBase, "is for tests only and must be empty in PRODUCTION")
	}
	return warnings
}

// missingCredentials names the first credential a real e-mail mode lacks.
func (e Email) missingCredentials() string {
	switch e.Mode {
	case mailmode.SMTP:
		if e.SMTPHost == "" {
			return "SMTP_HOST"
		}
	case mailmode.SendGrid:
		if e.SendGridAPIKey == "" {
			return "SENDGRID_API_KEY"
		}
	}
	return ""
}

// sendGridSMTPHost is SendGrid's SMTP relay: mail sent through it produces
// SendGrid events as the API does.
const sendGridSMTPHost = "smtp.sendgrid.net"

// usesSendGridEvents reports whether SendGrid's event webhook has events for
// this install: mail goes through SendGrid, by its API or its SMTP relay.
// In DRY_RUN, or SendGrid's sandbox, no mail leaves, so no event is due.
func (e Email) usesSendGridEvents() bool {
	switch e.Mode {
	case mailmode.SendGrid:
		return !e.SendGridSandbox
	case mailmode.SMTP:
		return strings.EqualFold(strings.TrimSuffix(e.SMTPHost, "."), sendGridSMTPHost)
	}
	return false
}

// isLoopbackHost reports whether host names this machine: localhost or a
// loopback IP address. Other names are not resolved: a name is taken to be
// another host.
func isLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// reservedDomain reports whether addr is at a domain reserved for examples
// and tests (RFC 2606, RFC 6761): no real mailbox answers there.
func reservedDomain(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	d := strings.TrimSuffix(strings.ToLower(addr[at+1:]), ".")
	for _, tld := range []string{"example", "test", "invalid", "localhost"} {
		if d == tld || strings.HasSuffix(d, "."+tld) {
			return true
		}
	}
	for _, sld := range []string{"example.com", "example.net", "example.org"} {
		if d == sld || strings.HasSuffix(d, "."+sld) {
			return true
		}
	}
	return false
}

// reader parses variables and keeps the first error; later reads after an
// error are harmless no-ops that return defaults.
type reader struct {
	getenv func(string) string
	// alias maps a current name to the prototype's name its value was read
	// from, so that an error names the variable the operator set.
	alias map[string]string
	err   error
}

// fail keeps the first error: the variable, its value as it may be shown,
// and the rule.
func (r *reader) fail(name, value, want string) {
	if r.err != nil {
		return
	}
	e := &Error{Var: name, Want: want}
	e.Value, e.Hidden = shownValue(name, value)
	// A long value is shortened once its user info is hidden, so a cut
	// never leaves part of it.
	if r := []rune(e.Value); len(r) > 64 {
		e.Value = string(r[:32]) + "…"
	}
	if old := r.alias[name]; old != "" {
		e.Var, e.Alias = old, name
	}
	r.err = e
}

// raw returns the trimmed value and whether it was set.
func (r *reader) raw(name string) (string, bool) {
	v := strings.TrimSpace(r.getenv(name))
	return v, v != ""
}

// text reads one line of text: at most 4096 bytes of valid UTF-8 without
// control characters (tabs aside), since many end up in mail headers.
func (r *reader) text(name, def string) string { return r.textOf(name, def, false) }

// multiline reads text that may hold line breaks (a signature, a postal
// address); CRLF is read as LF.
func (r *reader) multiline(name, def string) string { return r.textOf(name, def, true) }

func (r *reader) textOf(name, def string, lines bool) string {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	if lines {
		v = strings.ReplaceAll(v, "\r\n", "\n")
	}
	switch {
	case len(v) > 4096:
		r.fail(name, v, "must be at most 4096 characters")
		return def
	case !utf8.ValidString(v):
		r.fail(name, v, "want text in UTF-8")
		return def
	case strings.IndexFunc(v, func(ch rune) bool { return unicode.IsControl(ch) && ch != '\t' && (ch != '\n' || !lines) }) >= 0:
		if lines {
			r.fail(name, v, "want text without control characters other than tabs and line breaks")
		} else {
			r.fail(name, v, "want one line of text without control characters")
		}
		return def
	}
	return v
}

// inboundSecret reads EMAIL_INBOUND_SECRET: a segment of the inbound URL,
// so made of URL-safe characters only (a "/" or "%" would make the URL
// never match).
func (r *reader) inboundSecret(name string) string {
	v := r.text(name, "")
	if strings.IndexFunc(v, func(ch rune) bool {
		return !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.ContainsRune("-._~", ch))
	}) >= 0 {
		r.fail(name, v, "want letters, digits, hyphens, dots, underscores and tildes only (it is a segment of the inbound-mail URL)")
		return ""
	}
	return v
}

// prototypeValues explain the prototype's values of the variables that kept
// their name.
var prototypeValues = map[string]map[string]string{
	"RELEASE_MODE": {"SANDBOX": "the prototype's SANDBOX is STAGING or DEVELOPMENT here", "TRUE": "the prototype's TRUE is PRODUCTION here"},
	"EMAIL_MODE":   {"SES": "there is no SES mode: use EMAIL_MODE=SMTP with SES's SMTP interface (SMTP_HOST=email-smtp.REGION.amazonaws.com)"},
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	want := "want one of " + strings.Join(allowed, ", ")
	if hint := prototypeValues[name][strings.ToUpper(v)]; hint != "" {
		want += " (" + hint + ")"
	}
	r.fail(name, v, want)
	return def
}

func (r *reader) boolean(name string, def bool) bool {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	r.fail(name, v, "want true or false")
	return def
}

func (r *reader) count(name string, def int) int {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1_000_000_000 {
		r.fail(name, v, "want a whole number from 0 to 1000000000")
		return def
	}
	return n
}

// atLeastOne is a count that must not be 0 (a limit of 0 would refuse
// everything).
func (r *reader) atLeastOne(name string, def int) int {
	n := r.count(name, def)
	if r.err == nil && n < 1 {
		r.fail(name, r.getenv(name), "want a whole number from 1 to 1000000000")
		return def
	}
	return n
}

func (r *reader) port(name string, def int) int {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		r.fail(name, v, "want a port number from 1 to 65535")
		return def
	}
	return n
}

func (r *reader) duration(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		r.fail(name, v, fmt.Sprintf("want a Go duration from %s to %s, such as 30s or 5m", lo, hi))
		return def
	}
	return d
}

// seconds accepts a plain number of seconds (the prototype's form) or a Go
// duration, from 0 to 10 minutes.
func (r *reader) seconds(name string, def time.Duration) time.Duration {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 600 {
		return time.Duration(f * float64(time.Second))
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 && d <= 10*time.Minute {
		return d
	}
	r.fail(name, v, "want seconds from 0 to 600 (such as 2 or 1.5) or a Go duration such as 1500ms")
	return def
}

func (r *reader) addr(name, def string) string {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	_, p, err := net.SplitHostPort(v)
	if err == nil && (!utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0) {
		err = fmt.Errorf("control characters or invalid UTF-8")
	}
	if err == nil {
		var n int
		n, err = strconv.Atoi(p)
		if err == nil && (n < 0 || n > 65535) {
			err = fmt.Errorf("port out of range")
		}
	}
	if err != nil {
		r.fail(name, v, "want a listen address host:port, such as :8080 or 127.0.0.1:8080")
		return def
	}
	return v
}

func (r *reader) baseURL(name, def string) *url.URL {
	v := r.text(name, def)
	u, err := url.Parse(strings.TrimRight(v, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		r.fail(name, v, "want an absolute http:// or https:// URL with a host, no user info and no query, such as https://hoss.example.com")
		u, _ = url.Parse(def)
	}
	return u
}

// databaseURL reads DATABASE_URL: empty, or a postgres:// (postgresql://)
// URL with a host and a database name. Its password is never shown in an
// error (shownValue hides user info).
func (r *reader) databaseURL(name string) string {
	v := r.text(name, "")
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		r.fail(name, v, "want a PostgreSQL URL such as postgres://user:password@host:5432/hossagent (leave it unset for SQLite under DATA_DIR)")
		return ""
	}
	return v
}

// instanceID reads INSTANCE_ID: empty, or up to 50 letters, digits and
// . _ : - starting with a letter or digit (it goes into PostgreSQL's
// application_name, which keeps 63 ASCII bytes).
func (r *reader) instanceID(name string) string {
	v := r.text(name, "")
	if v == "" {
		return ""
	}
	ok := len(v) <= 50 && isAlnum(v[0])
	for i := 0; ok && i < len(v); i++ {
		ok = isAlnum(v[i]) || strings.IndexByte("._:-", v[i]) >= 0
	}
	if !ok {
		r.fail(name, v, "want up to 50 letters, digits and . _ : - starting with a letter or digit, such as web-1")
		return ""
	}
	return v
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func (r *reader) optionalURL(name string) string {
	v := r.text(name, "")
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, v, "want an absolute http:// or https:// URL")
		return ""
	}
	return v
}

func (r *reader) email(name, def string) string {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	at := strings.LastIndex(v, "@")
	bad := at < 1 || at == len(v)-1 || strings.ContainsAny(v, " <>,;\"") || len(v) > 254 || !utf8.ValidString(v) ||
		strings.IndexFunc(v, unicode.IsControl) >= 0 // net/mail takes C1 controls (U+0080–U+009F) in a UTF-8 local part
	if !bad {
		// The address the mailers will parse: exactly this, without a name.
		a, err := netmail.ParseAddress(v)
		bad = err != nil || a.Name != "" || a.Address != v
	}
	if bad {
		r.fail(name, v, "want an e-mail address such as ops@example.com")
		return def
	}
	return strings.ToLower(v)
}

func (r *reader) password(name string) string {
	v := r.getenv(name)
	if v != "" && len(v) < 12 {
		r.fail(name, v, "want at least 12 characters")
		return ""
	}
	return v
}

func (r *reader) currency(name, def string) string {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	v = strings.ToLower(v)
	if len(v) != 3 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz") != "" {
		r.fail(name, v, "want a three-letter ISO 4217 currency code such as usd or eur")
		return def
	}
	if notTwoDecimals[v] {
		r.fail(name, v, "want a currency with two decimal places (cents): prices and amounts are kept in hundredths")
		return def
	}
	return v
}

func (r *reader) headerName(name string) string {
	v, ok := r.raw(name)
	if !ok {
		return ""
	}
	for _, ch := range v {
		if !(ch == '-' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z') {
			r.fail(name, v, "want an HTTP header name such as Fly-Client-IP")
			return ""
		}
	}
	return v
}

// sendWindow reads "HH:MM-HH:MM" (a window past midnight, such as
// 22:00-06:00, is allowed).
func (r *reader) sendWindow(name string) string {
	v, ok := r.raw(name)
	if !ok {
		return ""
	}
	from, to, found := strings.Cut(v, "-")
	_, err1 := time.Parse("15:04", strings.TrimSpace(from))
	_, err2 := time.Parse("15:04", strings.TrimSpace(to))
	if !found || err1 != nil || err2 != nil || strings.TrimSpace(from) == strings.TrimSpace(to) {
		r.fail(name, v, "want a daily window HH:MM-HH:MM such as 09:00-17:00")
		return ""
	}
	return strings.TrimSpace(from) + "-" + strings.TrimSpace(to)
}

func (r *reader) location(name string) *time.Location {
	v, ok := r.raw(name)
	if !ok {
		return time.UTC
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		r.fail(name, v, "want an IANA time zone such as UTC or Europe/Berlin")
		return time.UTC
	}
	return loc
}

// notTwoDecimals are the ISO 4217 currencies (as Stripe lists them) whose
// minor unit is not a hundredth. HossAgent keeps every amount in hundredths,
// so it refuses them rather than bill 100 times too much.
var notTwoDecimals = map[string]bool{
	"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true, "krw": true, "mga": true,
	"pyg": true, "rwf": true, "ugx": true, "vnd": true, "vuv": true, "xaf": true, "xof": true, "xpf": true,
	"bhd": true, "jod": true, "kwd": true, "omr": true, "tnd": true,
}
