package config

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents/mailmode"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaultsAreTheEmbeddedDemo(t *testing.T) {
	c, warnings, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load with no environment: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %v, want none", warnings)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Addr", c.Addr, ":8080"},
		{"DataDir", c.DataDir, "./data"},
		{"BaseURL", c.BaseURL.String(), "http://localhost:8080"},
		{"ReleaseMode", c.ReleaseMode, Development},
		{"LogFormat", c.LogFormat, LogText},
		{"AutopilotEnabled", c.AutopilotEnabled, true},
		{"AutopilotInterval", c.AutopilotInterval, 5 * time.Minute},
		{"Email.Mode", c.Email.Mode, mailmode.DryRun},
		{"Email.MaxPerCycle", c.Email.MaxPerCycle, 10},
		{"Email.MaxPerHour", c.Email.MaxPerHour, 50},
		{"Email.MaxPerDay", c.Email.MaxPerDay, 200},
		{"Email.SendDelayMin", c.Email.SendDelayMin, time.Second},
		{"Email.SendDelayMax", c.Email.SendDelayMax, 5 * time.Second},
		{"Leads.Source", c.Leads.Source, LeadSynthetic},
		{"Leads.MaxPerCycle", c.Leads.MaxPerCycle, 10},
		{"Stripe.Enabled", c.Stripe.Enabled, false},
		{"Stripe.DefaultCurrency", c.Stripe.DefaultCurrency, "usd"},
		{"Stripe.MinAmountCents", c.Stripe.MinAmountCents, int64(100)},
		{"Stripe.MaxAmountCents", c.Stripe.MaxAmountCents, int64(50000)},
		{"Exec.Kind", c.Exec.Kind, ExecBuiltin},
		{"DashboardPublic", c.DashboardPublic, false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if got := c.DatabasePath("hossagent.db"); got != "./data/hossagent.db" {
		t.Errorf("DatabasePath = %q", got)
	}
}

func TestValidValuesAreRead(t *testing.T) {
	c, _, err := Load(env(map[string]string{
		"ADDR": "127.0.0.1:9090", "BASE_URL": "https://hoss.example.com/", "AUTOPILOT_INTERVAL": "10s",
		"AUTOPILOT_ENABLED": "false", "MAX_EMAILS_PER_HOUR": "7", "EMAIL_SEND_DELAY_MIN": "0.5",
		"EMAIL_SEND_DELAY_MAX": "1500ms", "EMAIL_MODE": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "2525",
		"LOG_FORMAT": "JSON", "STRIPE_DEFAULT_CURRENCY": "EUR", "LEAD_SEARCH_API_URL": "http://127.0.0.1:1/search",
		"EMAIL_REPLY_TO": "Replies@Reply.Acme-Corp.com", "EMAIL_SIGNATURE": "The team\r\nAcme Corp",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9090" || c.BaseURL.String() != "https://hoss.example.com" || c.AutopilotInterval != 10*time.Second ||
		c.AutopilotEnabled || c.Email.MaxPerHour != 7 || c.Email.SendDelayMin != 500*time.Millisecond ||
		c.Email.SendDelayMax != 1500*time.Millisecond || c.Email.Mode != mailmode.SMTP || c.Email.SMTPPort != 2525 ||
		c.LogFormat != LogJSON || c.Stripe.DefaultCurrency != "eur" || c.Leads.Source != LeadSearchAPI ||
		c.Email.ReplyTo != "replies@reply.acme-corp.com" || c.Email.Signature != "The team\nAcme Corp" {
		t.Errorf("config not read as given: %+v", c)
	}
}

// Every invalid value of every variable stops the start with one line that
// names the variable, shows the value and says what is accepted.
func TestInvalidValuesAreRefused(t *testing.T) {
	cases := []struct {
		env  map[string]string
		bad  string // variable the message must name
		want string // part of what is accepted
	}{
		{map[string]string{"ADDR": "8080"}, "ADDR", "host:port"},
		{map[string]string{"ADDR": ":99999"}, "ADDR", "host:port"},
		{map[string]string{"BASE_URL": "localhost:8080"}, "BASE_URL", "absolute http"},
		{map[string]string{"BASE_URL": "ftp://x.example"}, "BASE_URL", "absolute http"},
		{map[string]string{"BASE_URL": "https://x.example/?a=1"}, "BASE_URL", "no query"},
		{map[string]string{"BASE_URL": "https://hossuser:hunter2@x.example"}, "BASE_URL", "no user info"},
		{map[string]string{"RELEASE_MODE": "prod"}, "RELEASE_MODE", "DEVELOPMENT, STAGING, PRODUCTION"},
		{map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT", "text, json"},
		{map[string]string{"DASHBOARD_PUBLIC": "maybe"}, "DASHBOARD_PUBLIC", "true or false"},
		{map[string]string{"CLIENT_IP_HEADER": "X Forwarded: For"}, "CLIENT_IP_HEADER", "header name"},
		{map[string]string{"AUTOPILOT_ENABLED": "yes please"}, "AUTOPILOT_ENABLED", "true or false"},
		{map[string]string{"AUTOPILOT_INTERVAL": "5"}, "AUTOPILOT_INTERVAL", "Go duration"},
		{map[string]string{"AUTOPILOT_INTERVAL": "100ms"}, "AUTOPILOT_INTERVAL", "Go duration"},
		{map[string]string{"AUTOPILOT_INTERVAL": "48h"}, "AUTOPILOT_INTERVAL", "Go duration"},
		{map[string]string{"ADMIN_EMAIL": "root"}, "ADMIN_EMAIL", "e-mail address"},
		{map[string]string{"ADMIN_PASSWORD": "short"}, "ADMIN_PASSWORD", "12 characters"},
		{map[string]string{"EMAIL_MODE": "MAILGUN"}, "EMAIL_MODE", "DRY_RUN, SMTP, SENDGRID"},
		{map[string]string{"MAX_EMAILS_PER_CYCLE": "ten"}, "MAX_EMAILS_PER_CYCLE", "whole number"},
		{map[string]string{"MAX_EMAILS_PER_HOUR": "abc"}, "MAX_EMAILS_PER_HOUR", "whole number"},
		{map[string]string{"MAX_EMAILS_PER_DAY": "-1"}, "MAX_EMAILS_PER_DAY", "whole number"},
		{map[string]string{"MAX_EMAILS_PER_DAY": "1.5"}, "MAX_EMAILS_PER_DAY", "whole number"},
		{map[string]string{"EMAIL_SEND_DELAY_MIN": "soon"}, "EMAIL_SEND_DELAY_MIN", "seconds"},
		{map[string]string{"EMAIL_SEND_DELAY_MAX": "-2"}, "EMAIL_SEND_DELAY_MAX", "seconds"},
		{map[string]string{"EMAIL_SEND_DELAY_MIN": "4", "EMAIL_SEND_DELAY_MAX": "2"}, "EMAIL_SEND_DELAY_MAX", "EMAIL_SEND_DELAY_MIN"},
		{map[string]string{"EMAIL_FROM": "not-an-address"}, "EMAIL_FROM", "e-mail address"},
		{map[string]string{"EMAIL_FROM": "Hoss <outreach@acme-corp.com>"}, "EMAIL_FROM", "e-mail address"},
		{map[string]string{"EMAIL_REPLY_TO": "replies"}, "EMAIL_REPLY_TO", "e-mail address"},
		{map[string]string{"EMAIL_REPLY_TO": "a@b@c"}, "EMAIL_REPLY_TO", "e-mail address"},
		{map[string]string{"EMAIL_SENDER_NAME": "Hoss\r\nBcc: all@x.example"}, "EMAIL_SENDER_NAME", "one line"},
		{map[string]string{"EMAIL_SIGNATURE": "The team\x00"}, "EMAIL_SIGNATURE", "control characters"},
		{map[string]string{"LEAD_NICHE": "agencies\xff"}, "LEAD_NICHE", "UTF-8"},
		{map[string]string{"SMTP_PORT": "0"}, "SMTP_PORT", "port number"},
		{map[string]string{"SMTP_PORT": "smtp"}, "SMTP_PORT", "port number"},
		{map[string]string{"SMTP_TLS": "ssl3"}, "SMTP_TLS", "starttls, tls, none"},
		{map[string]string{"SENDGRID_SANDBOX": "sometimes"}, "SENDGRID_SANDBOX", "true or false"},
		{map[string]string{"SENDGRID_API_BASE": "sendgrid"}, "SENDGRID_API_BASE", "absolute http"},
		{map[string]string{"EMAIL_SEND_WINDOW": "9-5"}, "EMAIL_SEND_WINDOW", "HH:MM-HH:MM"},
		{map[string]string{"EMAIL_SEND_WINDOW": "09:00-09:00"}, "EMAIL_SEND_WINDOW", "HH:MM-HH:MM"},
		{map[string]string{"EMAIL_SEND_TIMEZONE": "Mars/Olympus"}, "EMAIL_SEND_TIMEZONE", "IANA time zone"},
		{map[string]string{"EMAIL_PAUSE_AFTER_ERRORS": "many"}, "EMAIL_PAUSE_AFTER_ERRORS", "whole number"},
		{map[string]string{"OPENAI_INPUT_CENTS_PER_MTOK": "0.15"}, "OPENAI_INPUT_CENTS_PER_MTOK", "whole number"},
		{map[string]string{"OPENAI_OUTPUT_CENTS_PER_MTOK": "-1"}, "OPENAI_OUTPUT_CENTS_PER_MTOK", "whole number"},
		{map[string]string{"OPENAI_TIMEOUT": "forever"}, "OPENAI_TIMEOUT", "Go duration"},
		{map[string]string{"LEAD_SOURCE": "linkedin"}, "LEAD_SOURCE", "synthetic, search_api"},
		{map[string]string{"LEAD_SOURCE": "search_api"}, "LEAD_SEARCH_API_URL", "required"},
		{map[string]string{"LEAD_SEARCH_API_URL": "leads.example/api"}, "LEAD_SEARCH_API_URL", "absolute http"},
		{map[string]string{"MAX_NEW_LEADS_PER_CYCLE": "lots"}, "MAX_NEW_LEADS_PER_CYCLE", "whole number"},
		{map[string]string{"LEAD_MIN_COMPANY_SIZE": "x"}, "LEAD_MIN_COMPANY_SIZE", "whole number"},
		{map[string]string{"LEAD_MAX_COMPANY_SIZE": "x"}, "LEAD_MAX_COMPANY_SIZE", "whole number"},
		{map[string]string{"LEAD_MIN_COMPANY_SIZE": "50", "LEAD_MAX_COMPANY_SIZE": "10"}, "LEAD_MAX_COMPANY_SIZE", "LEAD_MIN_COMPANY_SIZE"},
		{map[string]string{"ENABLE_STRIPE": "sure"}, "ENABLE_STRIPE", "true or false"},
		{map[string]string{"ENABLE_STRIPE": "true"}, "STRIPE_API_KEY", "required"},
		{map[string]string{"STRIPE_DEFAULT_CURRENCY": "dollars"}, "STRIPE_DEFAULT_CURRENCY", "three-letter"},
		{map[string]string{"STRIPE_DEFAULT_CURRENCY": "u$d"}, "STRIPE_DEFAULT_CURRENCY", "three-letter"},
		{map[string]string{"STRIPE_DEFAULT_CURRENCY": "jpy"}, "STRIPE_DEFAULT_CURRENCY", "two decimal places"},
		{map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.example", "EMAIL_MODE": "SENDGRID", "SENDGRID_API_KEY": "SG.x", "COMPANY_POSTAL_ADDRESS": "1 Main St", "LEAD_SEARCH_API_URL": "https://leads.example/api"}, "SENDGRID_WEBHOOK_VERIFICATION_KEY", "required"},
		{map[string]string{"STRIPE_MIN_AMOUNT_CENTS": "1e2"}, "STRIPE_MIN_AMOUNT_CENTS", "whole number"},
		{map[string]string{"STRIPE_MAX_AMOUNT_CENTS": "big"}, "STRIPE_MAX_AMOUNT_CENTS", "whole number"},
		{map[string]string{"STRIPE_MIN_AMOUNT_CENTS": "500", "STRIPE_MAX_AMOUNT_CENTS": "100"}, "STRIPE_MAX_AMOUNT_CENTS", "STRIPE_MIN_AMOUNT_CENTS"},
		{map[string]string{"STRIPE_API_BASE": "localhost:12111"}, "STRIPE_API_BASE", "absolute http"},
		{map[string]string{"TASK_EXECUTOR": "gpt"}, "TASK_EXECUTOR", "builtin, openai"},
		{map[string]string{"TASK_EXECUTOR": "openai"}, "OPENAI_API_KEY", "required"},
		{map[string]string{"OPENAI_BASE_URL": "api.openai"}, "OPENAI_BASE_URL", "absolute http"},
		{map[string]string{"BUILTIN_TASK_COST_CENTS": "0.5"}, "BUILTIN_TASK_COST_CENTS", "whole number"},
		// PRODUCTION refuses an unsafe configuration and names the variable.
		{map[string]string{"RELEASE_MODE": "PRODUCTION"}, "BASE_URL", "https"},
		{map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.example", "EMAIL_MODE": "SMTP"}, "SMTP_HOST", "required"},
		{map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.example", "EMAIL_MODE": "SENDGRID"}, "SENDGRID_API_KEY", "required"},
		{map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.example", "EMAIL_MODE": "SMTP", "SMTP_HOST": "mx.example"}, "COMPANY_POSTAL_ADDRESS", "required"},
		{map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.example", "EMAIL_MODE": "SMTP", "SMTP_HOST": "mx.example", "COMPANY_POSTAL_ADDRESS": "1 Main St"}, "LEAD_SOURCE", "synthetic"},
		{map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.example", "ENABLE_STRIPE": "true", "STRIPE_API_KEY": "sk_live_x"}, "STRIPE_WEBHOOK_SECRET", "required"},
		{map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.example", "STRIPE_API_BASE": "http://127.0.0.1:1"}, "STRIPE_API_BASE", "tests only"},
	}
	for _, tc := range cases {
		t.Run(tc.bad, func(t *testing.T) {
			_, _, err := Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load(%v) accepted an invalid value", tc.env)
			}
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Var != tc.bad {
				t.Fatalf("error %v names the wrong variable, want %s", err, tc.bad)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message is not one line: %q", msg)
			}
			if !strings.HasPrefix(msg, "config: "+tc.bad+"=") && !strings.HasPrefix(msg, "config: "+tc.bad+" (secret") || !strings.Contains(msg, tc.want) {
				t.Errorf("message %q should name %s and say %q", msg, tc.bad, tc.want)
			}
			v := tc.env[tc.bad]
			switch {
			case v == "":
			case IsSecret(tc.bad):
				if strings.Contains(msg, v) || cerr.Value != "" || !cerr.Hidden {
					t.Errorf("message %q (Value %q) shows the secret", msg, cerr.Value)
				}
			case strings.Contains(v, "@") && urlVars[tc.bad]:
				if strings.Contains(msg, "hossuser") || strings.Contains(msg, "hunter2") || !strings.Contains(msg, "…@") {
					t.Errorf("message %q shows the URL's user info", msg)
				}
			case strings.ContainsAny(v, "?#") && urlVars[tc.bad]:
				q := v[strings.IndexAny(v, "?#"):]
				if strings.Contains(msg, q) || !strings.Contains(msg, q[:1]+"…") {
					t.Errorf("message %q shows the URL's query or fragment %q", msg, q)
				}
			case !strings.Contains(msg, strconv.Quote(v)):
				t.Errorf("message %q does not show the value %q", msg, v)
			}
		})
	}
}

// Outside PRODUCTION a real e-mail mode without credentials falls back to
// DRY_RUN, loudly.
func TestRealMailWithoutCredentialsFallsBackOutsideProduction(t *testing.T) {
	c, warnings, err := Load(env(map[string]string{"EMAIL_MODE": "SENDGRID", "RELEASE_MODE": "STAGING"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Email.Mode != mailmode.DryRun {
		t.Errorf("mode = %s, want DRY_RUN", c.Email.Mode)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "SENDGRID_API_KEY") || !strings.Contains(warnings[0], "DRY_RUN") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestProductionDefaultsToJSONLogs(t *testing.T) {
	c, _, err := Load(env(map[string]string{"RELEASE_MODE": "production", "BASE_URL": "https://h.example"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogFormat != LogJSON || !c.IsProduction() {
		t.Errorf("LogFormat=%s production=%v", c.LogFormat, c.IsProduction())
	}
}

func TestDatabaseURLSelectsPostgreSQLAndNeverShowsItsPassword(t *testing.T) {
	c, _, err := Load(env(map[string]string{"DATABASE_URL": "postgres://hoss:s3cret@db.internal:5432/hossagent?sslmode=require"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.DatabaseURL != "postgres://hoss:s3cret@db.internal:5432/hossagent?sslmode=require" {
		t.Errorf("DatabaseURL = %q", c.DatabaseURL)
	}
	if c, _, err := Load(env(nil)); err != nil || c.DatabaseURL != "" {
		t.Errorf("no DATABASE_URL: %q, %v; want SQLite (empty)", c.DatabaseURL, err)
	}
	for _, bad := range []string{"mysql://hoss:s3cret@db/hossagent", "postgres://hoss:s3cret@db.internal:5432/", "postgres:///hossagent", "hoss:s3cret@db/hossagent"} {
		_, _, err := Load(env(map[string]string{"DATABASE_URL": bad}))
		if err == nil {
			t.Errorf("DATABASE_URL=%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("DATABASE_URL=%q: error %q must name the variable and hide the password", bad, err)
		}
	}
}
