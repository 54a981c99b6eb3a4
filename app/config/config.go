// Package config reads HossAgent's configuration from the environment once,
// into a typed struct, and validates it. An invalid value stops the start
// with one line naming the variable, the value and what is accepted.
package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Release modes.
const (
	Development = "DEVELOPMENT"
	Staging     = "STAGING"
	Production  = "PRODUCTION"
)

// E-mail modes.
const (
	EmailDryRun   = "DRY_RUN"
	EmailSMTP     = "SMTP"
	EmailSendGrid = "SENDGRID"
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
)

// Config is every setting HossAgent reads from its environment.
type Config struct {
	Addr            string
	DataDir         string
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
}

// Email configures outreach.
type Email struct {
	Mode          string
	MaxPerCycle   int
	MaxPerHour    int
	MaxPerDay     int
	SendDelayMin  time.Duration
	SendDelayMax  time.Duration
	From          string
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
// operator sees when the start is refused.
type Error struct {
	Var, Value, Want string
}

func (e *Error) Error() string {
	return fmt.Sprintf("config: %s=%q is invalid: %s", e.Var, e.Value, e.Want)
}

// Load reads and validates the configuration through getenv (os.Getenv in
// main, a map in tests). Warnings are returned for settings that were
// changed to a safe value (a real e-mail mode without credentials outside
// PRODUCTION); the caller logs them loudly.
func Load(getenv func(string) string) (Config, []string, error) {
	r := reader{getenv: getenv}
	var c Config
	c.ReleaseMode = r.oneOf("RELEASE_MODE", Development, Development, Staging, Production)
	c.Addr = r.addr("ADDR", ":8080")
	c.DataDir = r.nonEmpty("DATA_DIR", "./data")
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
		Mode:                    r.oneOf("EMAIL_MODE", EmailDryRun, EmailDryRun, EmailSMTP, EmailSendGrid),
		MaxPerCycle:             r.count("MAX_EMAILS_PER_CYCLE", 10),
		MaxPerHour:              r.count("MAX_EMAILS_PER_HOUR", 50),
		MaxPerDay:               r.count("MAX_EMAILS_PER_DAY", 200),
		SendDelayMin:            r.seconds("EMAIL_SEND_DELAY_MIN", time.Second),
		SendDelayMax:            r.seconds("EMAIL_SEND_DELAY_MAX", 5*time.Second),
		From:                    r.email("EMAIL_FROM", "outreach@hossagent.example"),
		SenderName:              r.text("EMAIL_SENDER_NAME", "HossAgent"),
		Offer:                   r.text("EMAIL_OFFER", "research, competitive reviews and outreach copy, delivered in days"),
		Signature:               r.text("EMAIL_SIGNATURE", "The HossAgent team"),
		PostalAddress:           r.text("COMPANY_POSTAL_ADDRESS", ""),
		SMTPHost:                r.text("SMTP_HOST", ""),
		SMTPPort:                r.port("SMTP_PORT", 587),
		SMTPUsername:            r.text("SMTP_USERNAME", ""),
		SMTPPassword:            r.text("SMTP_PASSWORD", ""),
		SMTPTLS:                 r.oneOf("SMTP_TLS", "starttls", "starttls", "tls", "none"),
		SendGridAPIKey:          r.text("SENDGRID_API_KEY", ""),
		SendGridSandbox:         r.boolean("SENDGRID_SANDBOX", false),
		SendGridAPIBase:         r.optionalURL("SENDGRID_API_BASE"),
		SendGridVerificationKey: r.text("SENDGRID_WEBHOOK_VERIFICATION_KEY", ""),
		InboundSecret:           r.text("EMAIL_INBOUND_SECRET", ""),
		SendWindow:              r.sendWindow("EMAIL_SEND_WINDOW"),
		SendTimezone:            r.location("EMAIL_SEND_TIMEZONE"),
		PauseAfterErrors:        r.count("EMAIL_PAUSE_AFTER_ERRORS", 5),
	}
	if r.err == nil && c.Email.SendDelayMax < c.Email.SendDelayMin {
		r.fail("EMAIL_SEND_DELAY_MAX", getenv("EMAIL_SEND_DELAY_MAX"), "must not be below EMAIL_SEND_DELAY_MIN ("+c.Email.SendDelayMin.String()+")")
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
		r.fail("LEAD_MAX_COMPANY_SIZE", getenv("LEAD_MAX_COMPANY_SIZE"), "must not be below LEAD_MIN_COMPANY_SIZE")
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
		r.fail("STRIPE_MAX_AMOUNT_CENTS", getenv("STRIPE_MAX_AMOUNT_CENTS"), "must not be below STRIPE_MIN_AMOUNT_CENTS")
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
	if r.err != nil {
		return Config{}, nil, r.err
	}
	warnings, err := c.checkSafety(getenv)
	if err != nil {
		return Config{}, nil, err
	}
	return c, warnings, nil
}

// checkSafety applies the rules that depend on RELEASE_MODE: PRODUCTION
// refuses an unsafe configuration; the other modes fall back to a safe one
// and say so.
func (c *Config) checkSafety(getenv func(string) string) ([]string, error) {
	var warnings []string
	prod := c.IsProduction()
	if missing := c.Email.missingCredentials(); missing != "" {
		if prod {
			return nil, &Error{Var: missing, Value: "", Want: "is required when EMAIL_MODE=" + c.Email.Mode + " in PRODUCTION"}
		}
		warnings = append(warnings, fmt.Sprintf("EMAIL_MODE=%s but %s is not set: falling back to DRY_RUN, no e-mail will leave this machine", c.Email.Mode, missing))
		c.Email.Mode = EmailDryRun
	}
	if !prod {
		return warnings, nil
	}
	realMail := c.Email.Mode != EmailDryRun
	switch {
	case c.BaseURL.Scheme != "https":
		return nil, &Error{Var: "BASE_URL", Value: getenv("BASE_URL"), Want: "must be an https:// URL in PRODUCTION (portal links and secure cookies)"}
	case realMail && c.Email.PostalAddress == "":
		return nil, &Error{Var: "COMPANY_POSTAL_ADDRESS", Value: "", Want: "is required in PRODUCTION when EMAIL_MODE is " + c.Email.Mode}
	case realMail && c.Leads.Source == LeadSynthetic:
		return nil, &Error{Var: "LEAD_SOURCE", Value: LeadSynthetic, Want: "synthetic leads must not be mailed for real: use search_api, or EMAIL_MODE=DRY_RUN, in PRODUCTION"}
	case c.Email.Mode == EmailSendGrid && c.Email.SendGridVerificationKey == "":
		return nil, &Error{Var: "SENDGRID_WEBHOOK_VERIFICATION_KEY", Value: "", Want: "is required in PRODUCTION when EMAIL_MODE=SENDGRID (unsigned bounce events could suppress anyone)"}
	case c.Stripe.Enabled && c.Stripe.WebhookSecret == "":
		return nil, &Error{Var: "STRIPE_WEBHOOK_SECRET", Value: "", Want: "is required in PRODUCTION when ENABLE_STRIPE=true"}
	case c.Stripe.APIBase != "":
		return nil, &Error{Var: "STRIPE_API_BASE", Value: c.Stripe.APIBase, Want: "is for tests only and must be empty in PRODUCTION"}
	}
	return warnings, nil
}

// missingCredentials names the first credential a real e-mail mode lacks.
func (e Email) missingCredentials() string {
	switch e.Mode {
	case EmailSMTP:
		if e.SMTPHost == "" {
			return "SMTP_HOST"
		}
	case EmailSendGrid:
		if e.SendGridAPIKey == "" {
			return "SENDGRID_API_KEY"
		}
	}
	return ""
}

// reader parses variables and keeps the first error; later reads after an
// error are harmless no-ops that return defaults.
type reader struct {
	getenv func(string) string
	err    error
}

func (r *reader) fail(name, value, want string) {
	if r.err == nil {
		r.err = &Error{Var: name, Value: value, Want: want}
	}
}

// raw returns the trimmed value and whether it was set.
func (r *reader) raw(name string) (string, bool) {
	v := strings.TrimSpace(r.getenv(name))
	return v, v != ""
}

func (r *reader) text(name, def string) string {
	if v, ok := r.raw(name); ok {
		if len(v) > 4096 {
			r.fail(name, v[:32]+"…", "must be at most 4096 characters")
		}
		return v
	}
	return def
}

func (r *reader) nonEmpty(name, def string) string { return r.text(name, def) }

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
	r.fail(name, v, "want one of "+strings.Join(allowed, ", "))
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
	v, ok := r.raw(name)
	if !ok {
		v = def
	}
	u, err := url.Parse(strings.TrimRight(v, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		r.fail(name, v, "want an absolute http:// or https:// URL with a host and no query, such as https://hoss.example.com")
		u, _ = url.Parse(def)
	}
	return u
}

func (r *reader) optionalURL(name string) string {
	v, ok := r.raw(name)
	if !ok {
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
	if at < 1 || at == len(v)-1 || strings.ContainsAny(v, " <>,;\"") || len(v) > 254 {
		r.fail(name, v, "want an e-mail address such as ops@example.com")
		return def
	}
	return strings.ToLower(v)
}

func (r *reader) password(name string) string {
	v := r.getenv(name)
	if v != "" && len(v) < 12 {
		r.fail(name, "(hidden)", "want at least 12 characters")
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
