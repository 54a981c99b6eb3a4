package config

import (
	"errors"
	"net"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hossagent/hossagent/agents/mailmode"
)

// sentinel marks every character pair of a secret (and of a URL's user info)
// in the fuzzed environment; it is stripped from every other value, and no
// message of Load's contains it of its own. So any error or warning that
// holds a sentinel shows a piece of a secret.
const sentinel = '~'

// markSecret puts the sentinel before every second character of v: any
// piece of three characters or more holds one.
func markSecret(v string) string {
	var b strings.Builder
	for i, r := range []rune(v) {
		if i%2 == 0 {
			b.WriteRune(sentinel)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fuzzEnv turns the fuzzer's text ("NAME=value" lines) and user info into an
// environment: secret values marked, other values without the sentinel, the
// user info (marked) put into every URL variable, and every URL variable's
// query and fragment marked.
func fuzzEnv(text, userInfo string) map[string]string {
	env := map[string]string{}
	userInfo = strings.Map(func(r rune) rune {
		if strings.ContainsRune("@"+string(sentinel), r) {
			return -1
		}
		return r
	}, userInfo)
	for _, line := range strings.Split(text, "\n") {
		name, value, _ := strings.Cut(line, "=")
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if neverShown(name) {
			env[name] = markSecret(value)
			continue
		}
		value = strings.ReplaceAll(value, string(sentinel), "")
		if urlVars[name] && userInfo != "" {
			if i := strings.Index(value, "://"); i >= 0 {
				value = value[:i+3] + markSecret(userInfo) + "@" + value[i+3:]
			} else {
				value = markSecret(userInfo) + "@" + value
			}
		}
		if q := urlQuery(value); urlVars[name] && q != "" {
			value = value[:len(value)-len(q)] + markSecret(q)
		}
		env[name] = value
	}
	return env
}

// FuzzConfigLoad feeds Load a fuzzed environment: it never panics; it
// returns either a Config that holds the invariants Config documents, or one
// *Error; and no error or warning ever shows a piece of a secret or of a
// URL's user info.
func FuzzConfigLoad(f *testing.F) {
	long := strings.Repeat("sk_live_4eC39HqLyjWDarjtT1zdp7dc", 200)
	prod := "RELEASE_MODE=PRODUCTION\nBASE_URL=https://hoss.acme-corp.com\nEMAIL_MODE=SMTP\nSMTP_HOST=smtp.mailhost.net\n" +
		"SMTP_USERNAME=hoss\nSMTP_PASSWORD=pw-0123456789\nCOMPANY_POSTAL_ADDRESS=1 Main St\nLEAD_SEARCH_API_URL=https://leads.acme-corp.com/api\n" +
		"EMAIL_FROM=outreach@acme-corp.com\n"
	// The inputs.
	f.Add(prod+"SMTP_TLS=none", "")
	f.Add(prod+"EMAIL_INBOUND_SECRET=abc", "")
	f.Add(prod+"EMAIL_FROM=outreach@hossagent.example", "")
	f.Add(strings.Replace(prod, "EMAIL_FROM=outreach@acme-corp.com\n", "", 1), "")
	f.Add("BASE_URL=https://user:pw@hoss.acme-corp.com", "")
	f.Add("BASE_URL=https://hoss.acme-corp.com", "user:pw")
	f.Add("RELEASE_MODE=PRODUCTION\nBASE_URL=http://hoss.acme-corp.com", "hossuser:hunter2")
	f.Add("RELEASE_MODE=PRODUCTION\nBASE_URL=http://hoss.acme-corp.com", "user:p/ss")
	f.Add("RELEASE_MODE=PRODUCTION\nBASE_URL=http://hoss.acme-corp.com", "user:p#ss")
	f.Add("RELEASE_MODE=PRODUCTION\nBASE_URL=http://hoss.acme-corp.com", "user:p?ss")
	f.Add("RELEASE_MODE=PRODUCTION\nBASE_URL=hoss.acme-corp.com", "user:p/ss")
	f.Add("LEAD_SEARCH_API_URL=ftp://x/search?api_key=SECRET", "")
	f.Add("LEAD_SEARCH_API_URL=ftp://x/search#api_key=SECRET", "")
	f.Add("RELEASE_MODE=PRODUCTION\nBASE_URL=http://hoss.acme-corp.com/?api_key=SECRET", "user:p?ss")
	f.Add("STRIPE_API_KEY="+long, "")
	f.Add("ENABLE_STRIPE=true\nSTRIPE_API_KEY="+long, "")
	f.Add("SMTP_FROM_EMAIL=sales@acme-corp.com\nSENDGRID_FROM_EMAIL=sales@acme-corp.com\nBIZDEV_SENDER_EMAIL=other@acme-corp.com", "")
	f.Add("BIZDEV_SENDER_NAME=Acme\nBIZDEV_OFFER=audits\nBIZDEV_NICHE_TEMPLATE=saas\nOUTBOUND_REPLY_TO=r@acme-corp.com", "")
	f.Add("INBOUND_EMAIL_SECRET=abc\nEMAIL_INBOUND_SECRET=abd", "")
	f.Add("DATABASE_URL=postgres://u:p@db/hoss\nAWS_SES_SECRET_KEY=x\nSESSION_SECRET=y", "")
	f.Add("EMAIL_MODE=SENDGRID\nSENDGRID_API_KEY=SG.x", "")
	f.Add("EMAIL_MODE=DRY_RUN", "")
	f.Add("RELEASE_MODE=SANDBOX\nEMAIL_MODE=SES", "")
	f.Add("EMAIL_SENDER_NAME=Hoss\r\nBcc: x@y\nEMAIL_SIGNATURE=a\x00b\nLEAD_NICHE=\xff", "")
	// Normal ones.
	f.Add("", "")
	f.Add(prod, "")
	f.Add(prod+"SMTP_TLS=none\nSMTP_HOST=127.0.0.1\nEMAIL_INBOUND_SECRET="+strings.Repeat("k", 32), "")
	f.Add("RELEASE_MODE=PRODUCTION\nBASE_URL=https://h.acme-corp.com\nEMAIL_MODE=SENDGRID\nSENDGRID_API_KEY=SG.x\n"+
		"SENDGRID_WEBHOOK_VERIFICATION_KEY=MFkw\nCOMPANY_POSTAL_ADDRESS=1 Main St\nLEAD_SEARCH_API_URL=https://l.acme-corp.com\n"+
		"EMAIL_FROM=o@acme-corp.com\nEMAIL_REPLY_TO=r@acme-corp.com\nENABLE_STRIPE=true\nSTRIPE_API_KEY=sk\nSTRIPE_WEBHOOK_SECRET=whsec", "")
	f.Add("ADDR=127.0.0.1:9090\nAUTOPILOT_INTERVAL=10s\nEMAIL_SEND_DELAY_MIN=0.5\nEMAIL_SEND_DELAY_MAX=1500ms\n"+
		"EMAIL_SEND_WINDOW=22:00-06:00\nEMAIL_SEND_TIMEZONE=Europe/Berlin\nTASK_EXECUTOR=openai\nOPENAI_API_KEY=k\n"+
		"LEAD_MIN_COMPANY_SIZE=5\nLEAD_MAX_COMPANY_SIZE=50\nSTRIPE_DEFAULT_CURRENCY=EUR\nADMIN_EMAIL=Ops@Acme-Corp.com\nADMIN_PASSWORD=0123456789ab", "")

	f.Fuzz(func(t *testing.T, text, userInfo string) {
		env := fuzzEnv(text, userInfo)
		c, warnings, err := Load(envOf(env))
		for _, w := range warnings {
			if strings.ContainsRune(w, sentinel) || strings.ContainsAny(w, "\r\n") {
				t.Fatalf("warning shows a secret or is not one line: %q", w)
			}
		}
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Var == "" || len(warnings) != 0 {
				t.Fatalf("error %v (%T) with warnings %q", err, err, warnings)
			}
			msg := err.Error()
			if strings.ContainsRune(msg, sentinel) || strings.ContainsRune(cerr.Value, sentinel) || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error shows a secret or is not one line: %q", msg)
			}
			return
		}
		checkInvariants(t, c)
		// Loading is a function of the environment.
		c2, warnings2, err2 := Load(envOf(env))
		if err2 != nil || !slices.Equal(warnings, warnings2) || c2.Email.From != c.Email.From || c2.BaseURL.String() != c.BaseURL.String() {
			t.Fatalf("a second load differs: %v, %q", err2, warnings2)
		}
	})
}

// checkInvariants checks, independently of Load's code, what Config's
// documentation promises.
func checkInvariants(t *testing.T, c Config) {
	t.Helper()
	fail := func(format string, args ...any) { t.Helper(); t.Fatalf("invariant: "+format, args...) }
	oneOf := func(name, v string, allowed ...string) {
		if !slices.Contains(allowed, v) {
			fail("%s = %q, not one of %v", name, v, allowed)
		}
	}
	oneOf("ReleaseMode", c.ReleaseMode, Development, Staging, Production)
	oneOf("LogFormat", c.LogFormat, LogText, LogJSON)
	oneOf("Email.Mode", c.Email.Mode, mailmode.DryRun, mailmode.SMTP, mailmode.SendGrid)
	oneOf("Email.SMTPTLS", c.Email.SMTPTLS, "starttls", "tls", "none")
	oneOf("Leads.Source", c.Leads.Source, LeadSynthetic, LeadSearchAPI)
	oneOf("Exec.Kind", c.Exec.Kind, ExecBuiltin, ExecOpenAI)

	u := c.BaseURL
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		fail("BaseURL %v", u)
	}
	if c.Email.SendTimezone == nil {
		fail("SendTimezone is nil")
	}

	for name, v := range map[string]string{
		"Addr": c.Addr, "DataDir": c.DataDir, "ClientIPHeader": c.ClientIPHeader, "AdminEmail": c.AdminEmail,
		"Email.From": c.Email.From, "Email.ReplyTo": c.Email.ReplyTo, "Email.SenderName": c.Email.SenderName, "Email.Offer": c.Email.Offer,
		"Email.SMTPHost": c.Email.SMTPHost, "Email.SMTPUsername": c.Email.SMTPUsername, "Email.SMTPPassword": c.Email.SMTPPassword,
		"Email.SendGridAPIKey": c.Email.SendGridAPIKey, "Email.SendGridAPIBase": c.Email.SendGridAPIBase,
		"Email.SendGridVerificationKey": c.Email.SendGridVerificationKey, "Email.InboundSecret": c.Email.InboundSecret,
		"Email.SendWindow": c.Email.SendWindow, "Leads.Niche": c.Leads.Niche, "Leads.Geography": c.Leads.Geography,
		"Leads.SearchAPIURL": c.Leads.SearchAPIURL, "Leads.SearchAPIKey": c.Leads.SearchAPIKey, "Stripe.APIKey": c.Stripe.APIKey,
		"Stripe.WebhookSecret": c.Stripe.WebhookSecret, "Stripe.APIBase": c.Stripe.APIBase, "Exec.OpenAIAPIKey": c.Exec.OpenAIAPIKey,
		"Exec.OpenAIBaseURL": c.Exec.OpenAIBaseURL, "Exec.OpenAIModel": c.Exec.OpenAIModel,
	} {
		if !cleanText(v, false) {
			fail("%s = %q is not one line of clean text", name, v)
		}
	}
	for name, v := range map[string]string{"Email.Signature": c.Email.Signature, "Email.PostalAddress": c.Email.PostalAddress} {
		if !cleanText(v, true) {
			fail("%s = %q is not clean text", name, v)
		}
	}
	for name, v := range map[string]string{"Email.From": c.Email.From, "Email.ReplyTo": c.Email.ReplyTo, "AdminEmail": c.AdminEmail} {
		if v == "" && name != "Email.From" {
			continue
		}
		if a, err := netmail.ParseAddress(v); err != nil || a.Name != "" || a.Address != v {
			fail("%s = %q is not a bare address (%v)", name, v, err)
		}
	}
	if p := c.AdminPassword; p != "" && len(p) < 12 {
		fail("AdminPassword has %d bytes", len(p))
	}
	if strings.IndexFunc(c.Email.InboundSecret, func(r rune) bool {
		return !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-._~", r)))
	}) >= 0 {
		fail("InboundSecret %q is not URL-safe", c.Email.InboundSecret)
	}

	for name, n := range map[string]int{"Email.MaxPerCycle": c.Email.MaxPerCycle, "Email.MaxPerHour": c.Email.MaxPerHour,
		"Email.MaxPerDay": c.Email.MaxPerDay, "Email.PauseAfterErrors": c.Email.PauseAfterErrors, "Leads.MaxPerCycle": c.Leads.MaxPerCycle,
		"Leads.MinCompanySize": c.Leads.MinCompanySize, "Leads.MaxCompanySize": c.Leads.MaxCompanySize,
		"Stripe.MinAmountCents": int(c.Stripe.MinAmountCents), "Stripe.MaxAmountCents": int(c.Stripe.MaxAmountCents),
		"Exec.BuiltinCostCents": int(c.Exec.BuiltinCostCents), "Exec.OpenAIInputCentsPerMTok": int(c.Exec.OpenAIInputCentsPerMTok),
		"Exec.OpenAIOutputCentsPerMTok": int(c.Exec.OpenAIOutputCentsPerMTok)} {
		if n < 0 || n > 1_000_000_000 {
			fail("%s = %d", name, n)
		}
	}
	if c.Email.SMTPPort < 1 || c.Email.SMTPPort > 65535 {
		fail("SMTPPort = %d", c.Email.SMTPPort)
	}
	if c.Email.SendDelayMin < 0 || c.Email.SendDelayMax < c.Email.SendDelayMin || c.Email.SendDelayMax > 10*time.Minute {
		fail("send delays %s..%s", c.Email.SendDelayMin, c.Email.SendDelayMax)
	}
	if c.AutopilotInterval < time.Second || c.AutopilotInterval > 24*time.Hour || c.Exec.OpenAITimeout < time.Second || c.Exec.OpenAITimeout > 10*time.Minute {
		fail("durations %s, %s", c.AutopilotInterval, c.Exec.OpenAITimeout)
	}
	if c.Leads.MaxCompanySize != 0 && c.Leads.MaxCompanySize < c.Leads.MinCompanySize || c.Stripe.MaxAmountCents < c.Stripe.MinAmountCents {
		fail("bounds: company %d..%d, amounts %d..%d", c.Leads.MinCompanySize, c.Leads.MaxCompanySize, c.Stripe.MinAmountCents, c.Stripe.MaxAmountCents)
	}
	switch {
	case c.Email.Mode == mailmode.SMTP && c.Email.SMTPHost == "", c.Email.Mode == mailmode.SendGrid && c.Email.SendGridAPIKey == "",
		c.Leads.Source == LeadSearchAPI && c.Leads.SearchAPIURL == "", c.Stripe.Enabled && c.Stripe.APIKey == "",
		c.Exec.Kind == ExecOpenAI && c.Exec.OpenAIAPIKey == "":
		fail("a mode without its credential: %+v", c)
	}

	if !c.IsProduction() {
		return
	}
	realMail := c.Email.Mode != mailmode.DryRun
	host := strings.TrimSuffix(strings.ToLower(strings.Trim(c.Email.SMTPHost, "[]")), ".")
	ip := net.ParseIP(host)
	loopback := host == "localhost" || strings.HasSuffix(host, ".localhost") || ip != nil && ip.IsLoopback()
	switch {
	case c.BaseURL.Scheme != "https", c.Stripe.APIBase != "", c.Stripe.Enabled && c.Stripe.WebhookSecret == "":
		fail("PRODUCTION with base %s, Stripe base %q", c.BaseURL, c.Stripe.APIBase)
	case c.Email.InboundSecret != "" && utf8.RuneCountInString(c.Email.InboundSecret) < 32:
		fail("PRODUCTION with a %d-character inbound secret", utf8.RuneCountInString(c.Email.InboundSecret))
	case c.Email.Mode == mailmode.SMTP && c.Email.SMTPTLS == "none" && c.Email.SMTPPassword != "" && !loopback:
		fail("PRODUCTION sends the SMTP password in clear text to %q", c.Email.SMTPHost)
	case realMail && (c.Email.PostalAddress == "" || c.Leads.Source == LeadSynthetic || c.Email.Mode == mailmode.SendGrid && c.Email.SendGridVerificationKey == ""):
		fail("PRODUCTION real mail without its safeguards: %+v", c.Email)
	case realMail && (exampleDomain(c.Email.From) || c.Email.ReplyTo != "" && exampleDomain(c.Email.ReplyTo)):
		fail("PRODUCTION real mail from %q, Reply-To %q", c.Email.From, c.Email.ReplyTo)
	}
}

// cleanText is valid UTF-8 without control characters but tabs (and line
// feeds when lines is set).
func cleanText(v string, lines bool) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\t' && (r != '\n' || !lines) {
			return false
		}
	}
	return true
}

// exampleDomain reports an address at a domain reserved for examples.
func exampleDomain(addr string) bool {
	d := strings.TrimSuffix(strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:]), ".")
	labels := strings.Split(d, ".")
	last := labels[len(labels)-1]
	if last == "example" || last == "test" || last == "invalid" || last == "localhost" {
		return true
	}
	if len(labels) >= 2 {
		two := labels[len(labels)-2] + "." + last
		return two == "example.com" || two == "example.net" || two == "example.org"
	}
	return false
}
