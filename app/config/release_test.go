package config

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents/mailmode"
)

// prodSMTP is a PRODUCTION configuration with real SMTP mail that Load
// accepts; the tests change one thing at a time.
func prodSMTP(changes map[string]string) map[string]string {
	e := map[string]string{
		"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://hoss.acme-corp.com", "EMAIL_MODE": "SMTP",
		"SMTP_HOST": "smtp.mailhost.net", "SMTP_USERNAME": "hoss", "SMTP_PASSWORD": "pw-0123456789",
		"COMPANY_POSTAL_ADDRESS": "1 Main St, Springfield", "LEAD_SEARCH_API_URL": "https://leads.acme-corp.com/api",
		"EMAIL_FROM": "outreach@acme-corp.com",
	}
	maps.Copy(e, changes)
	for k, v := range e {
		if v == "" {
			delete(e, k)
		}
	}
	return e
}

// loadErr loads env and returns the *Error, failing the test when Load
// accepts it.
func loadErr(t *testing.T, env map[string]string) *Error {
	t.Helper()
	_, _, err := Load(envOf(env))
	if err == nil {
		t.Fatalf("Load accepted %v", env)
	}
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v is not a *config.Error", err)
	}
	return cerr
}

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestProductionBaseConfigIsAccepted(t *testing.T) {
	c, warnings, err := Load(envOf(prodSMTP(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Email.Mode != mailmode.SMTP || !c.IsProduction() || len(warnings) != 0 {
		t.Fatalf("mode %s, production %v, warnings %q", c.Email.Mode, c.IsProduction(), warnings)
	}
}

// PRODUCTION refuses, by name and rule, plaintext SMTP carrying a password
// to another host, a guessable inbound secret, and the placeholder sender.
func TestProductionRefusesUnsafeMailSettings(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		bad     string // the variable the error names; "" when accepted
		want    string
		notShow string // a value the message must not show
	}{
		{"plaintext password to a remote host", prodSMTP(map[string]string{"SMTP_TLS": "none"}), "SMTP_TLS", "clear text", "pw-0123456789"},
		{"plaintext password to a remote IP", prodSMTP(map[string]string{"SMTP_TLS": "none", "SMTP_HOST": "203.0.113.7"}), "SMTP_TLS", "loopback", ""},
		{"plaintext password to a name that only looks local", prodSMTP(map[string]string{"SMTP_TLS": "none", "SMTP_HOST": "127.0.0.1.nip.io"}), "SMTP_TLS", "loopback", ""},
		{"plaintext password to localhost", prodSMTP(map[string]string{"SMTP_TLS": "none", "SMTP_HOST": "localhost"}), "", "", ""},
		{"plaintext password to 127.0.0.1", prodSMTP(map[string]string{"SMTP_TLS": "none", "SMTP_HOST": "127.0.0.1"}), "", "", ""},
		{"plaintext password to ::1", prodSMTP(map[string]string{"SMTP_TLS": "none", "SMTP_HOST": "::1"}), "", "", ""},
		{"plaintext without a password", prodSMTP(map[string]string{"SMTP_TLS": "none", "SMTP_PASSWORD": ""}), "", "", ""},
		{"password over STARTTLS", prodSMTP(map[string]string{"SMTP_TLS": "starttls"}), "", "", ""},
		{"password over TLS", prodSMTP(map[string]string{"SMTP_TLS": "tls", "SMTP_PORT": "465"}), "", "", ""},

		{"3-character inbound secret", prodSMTP(map[string]string{"EMAIL_INBOUND_SECRET": "abc"}), "EMAIL_INBOUND_SECRET", "at least 32 characters", "abc"},
		{"31-character inbound secret", prodSMTP(map[string]string{"EMAIL_INBOUND_SECRET": strings.Repeat("k", 31)}), "EMAIL_INBOUND_SECRET", "at least 32", strings.Repeat("k", 31)},
		{"32-character inbound secret", prodSMTP(map[string]string{"EMAIL_INBOUND_SECRET": strings.Repeat("k", 32)}), "", "", ""},
		{"inbound secret in DRY_RUN too", map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.acme-corp.com", "EMAIL_INBOUND_SECRET": "abc"}, "EMAIL_INBOUND_SECRET", "at least 32", "abc"},

		{"placeholder sender (the default)", prodSMTP(map[string]string{"EMAIL_FROM": ""}), "EMAIL_FROM", "reserved example domain", ""},
		{"placeholder sender given", prodSMTP(map[string]string{"EMAIL_FROM": "outreach@hossagent.example"}), "EMAIL_FROM", "reserved example domain", ""},
		{"any .example sender", prodSMTP(map[string]string{"EMAIL_FROM": "me@acme.example"}), "EMAIL_FROM", "reserved", ""},
		{"example.com sender", prodSMTP(map[string]string{"EMAIL_FROM": "me@mail.example.com"}), "EMAIL_FROM", "reserved", ""},
		{".test sender", prodSMTP(map[string]string{"EMAIL_FROM": "me@acme.test"}), "EMAIL_FROM", "reserved", ""},
		{"placeholder sender with SendGrid", map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.acme-corp.com", "EMAIL_MODE": "SENDGRID",
			"SENDGRID_API_KEY": "SG.key", "SENDGRID_WEBHOOK_VERIFICATION_KEY": "MFkw", "COMPANY_POSTAL_ADDRESS": "1 Main St", "LEAD_SEARCH_API_URL": "https://l.acme-corp.com"}, "EMAIL_FROM", "reserved", ""},
		{"reserved Reply-To", prodSMTP(map[string]string{"EMAIL_REPLY_TO": "replies@hossagent.example"}), "EMAIL_REPLY_TO", "reserved", ""},
		{"a lookalike domain is a real one", prodSMTP(map[string]string{"EMAIL_FROM": "me@example.company"}), "", "", ""},
		// Nothing leaves in DRY_RUN: the placeholder is kept until mail is real.
		{"placeholder sender in DRY_RUN", map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.acme-corp.com"}, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bad == "" {
				if _, _, err := Load(envOf(tc.env)); err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			cerr := loadErr(t, tc.env)
			msg := cerr.Error()
			if cerr.Var != tc.bad || !strings.Contains(msg, tc.bad) || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "PRODUCTION") {
				t.Errorf("error %q: want it to name %s and say %q in PRODUCTION", msg, tc.bad, tc.want)
			}
			if tc.notShow != "" && (strings.Contains(msg, tc.notShow) || strings.Contains(cerr.Value, tc.notShow)) {
				t.Errorf("error %q shows the secret %q", msg, tc.notShow)
			}
			// The same settings outside PRODUCTION start, and the
			// security rules among them say why PRODUCTION would not.
			staging := maps.Clone(tc.env)
			staging["RELEASE_MODE"] = "STAGING"
			_, warnings, err := Load(envOf(staging))
			if err != nil {
				t.Fatalf("STAGING refused it: %v", err)
			}
			if tc.bad == "SMTP_TLS" || tc.bad == "EMAIL_INBOUND_SECRET" {
				if w := strings.Join(warnings, "\n"); !strings.Contains(w, tc.bad) || !strings.Contains(w, "PRODUCTION refuses") {
					t.Errorf("STAGING warnings %q do not say PRODUCTION refuses %s", warnings, tc.bad)
				}
			}
		})
	}
}

// The inbound secret is a URL path segment: a character that would make the
// URL never match is refused in every mode, without showing the secret.
func TestInboundSecretIsURLSafe(t *testing.T) {
	for _, v := range []string{"abc/def-0123456789-0123456789-0123", "abc%2Fdef-0123456789-0123456789-01", "abc def", "abc?x=1"} {
		cerr := loadErr(t, map[string]string{"EMAIL_INBOUND_SECRET": v})
		if cerr.Var != "EMAIL_INBOUND_SECRET" || !strings.Contains(cerr.Error(), "letters, digits") || strings.Contains(cerr.Error(), v) {
			t.Errorf("%q: %v", v, cerr)
		}
	}
	c, _, err := Load(envOf(map[string]string{"EMAIL_INBOUND_SECRET": "Abc-def_0123.456~789"}))
	if err != nil || c.Email.InboundSecret != "Abc-def_0123.456~789" {
		t.Errorf("URL-safe secret: %q, %v", c.Email.InboundSecret, err)
	}
}

// The SendGrid verification-key warning is for installs whose mail goes
// through SendGrid; in DRY_RUN (or SMTP elsewhere) no SendGrid event is due.
func TestSendGridKeyWarningOnlyWhereEventsAreUsed(t *testing.T) {
	const key = "SENDGRID_WEBHOOK_VERIFICATION_KEY"
	cases := []struct {
		env  map[string]string
		warn bool
	}{
		{nil, false},
		{map[string]string{"EMAIL_MODE": "DRY_RUN"}, false},
		{map[string]string{"EMAIL_MODE": "SMTP", "SMTP_HOST": "smtp.mailhost.net"}, false},
		{map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.acme-corp.com"}, false},
		// SENDGRID without its API key falls back to DRY_RUN: nothing is sent.
		{map[string]string{"EMAIL_MODE": "SENDGRID"}, false},
		{map[string]string{"EMAIL_MODE": "SENDGRID", "SENDGRID_API_KEY": "SG.key", "SENDGRID_WEBHOOK_VERIFICATION_KEY": "MFkw"}, false},
		{map[string]string{"EMAIL_MODE": "SENDGRID", "SENDGRID_API_KEY": "SG.key"}, true},
		{map[string]string{"EMAIL_MODE": "SENDGRID", "SENDGRID_API_KEY": "SG.key", "SENDGRID_SANDBOX": "true"}, false},
		{map[string]string{"EMAIL_MODE": "SENDGRID", "SENDGRID_API_KEY": "SG.key", "RELEASE_MODE": "STAGING"}, true},
		{map[string]string{"EMAIL_MODE": "SMTP", "SMTP_HOST": "smtp.sendgrid.net"}, true},
	}
	for _, tc := range cases {
		_, warnings, err := Load(envOf(tc.env))
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		got := 0
		for _, w := range warnings {
			if strings.Contains(w, key) {
				got++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[tc.warn]; got != want {
			t.Errorf("%v: %d warnings about %s, want %d: %q", tc.env, got, key, want, warnings)
		}
	}
}

// Without a verification key, PRODUCTION turns POST /email/events off (404),
// so the warning says bounces and complaints are not received; elsewhere the
// endpoint takes unsigned events, and the warning says so.
func TestSendGridKeyWarningSaysWhatTheEndpointDoes(t *testing.T) {
	const key = "SENDGRID_WEBHOOK_VERIFICATION_KEY"
	cases := []struct {
		env       map[string]string
		want, not []string
	}{
		{prodSMTP(map[string]string{"SMTP_HOST": "smtp.sendgrid.net"}),
			[]string{"/email/events is off (404)", "until " + key + " is set", "bounces and complaints"}, []string{"accepts unsigned"}},
		{prodSMTP(map[string]string{"SMTP_HOST": "smtp.sendgrid.net", "RELEASE_MODE": "STAGING"}),
			[]string{"accepts unsigned events"}, []string{"404"}},
		{map[string]string{"EMAIL_MODE": "SENDGRID", "SENDGRID_API_KEY": "SG.key"},
			[]string{"accepts unsigned events"}, []string{"404"}},
	}
	for _, tc := range cases {
		_, warnings, err := Load(envOf(tc.env))
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		var w string
		for _, x := range warnings {
			if strings.Contains(x, key) {
				w = x
			}
		}
		for _, s := range tc.want {
			if !strings.Contains(w, s) {
				t.Errorf("%s: warning %q does not say %q", tc.env["RELEASE_MODE"], w, s)
			}
		}
		for _, s := range tc.not {
			if strings.Contains(w, s) {
				t.Errorf("%s: warning %q says %q", tc.env["RELEASE_MODE"], w, s)
			}
		}
	}
}
