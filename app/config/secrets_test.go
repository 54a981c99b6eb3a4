package config

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readVariables is every variable Load reads: it asks for all of them
// whatever their values (the prototype's names included).
func readVariables(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	_, _, _ = Load(func(k string) string { seen[k] = true; return "" })
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	})
	if len(names) < 60 {
		t.Fatalf("Load read only %d variables: %v", len(names), names)
	}
	return names
}

// neverShown reports whether no value of the variable may ever appear in an
// error or a warning: the current secrets, the prototype's names for them,
// and every prototype name that is not read (some are secrets or URLs with
// credentials, and none is echoed).
func neverShown(name string) bool {
	if IsSecret(name) {
		return true
	}
	for _, lv := range legacyVars {
		if lv.Old == name {
			return lv.Kind != legacyRenamed || IsSecret(lv.New)
		}
	}
	return false
}

// The secret-looking names Load reads are all secrets, but for a public key.
func TestEverySecretLookingVariableIsASecret(t *testing.T) {
	looksSecret := regexp.MustCompile(`PASSWORD|SECRET|_KEY|TOKEN`)
	public := map[string]bool{"SENDGRID_WEBHOOK_VERIFICATION_KEY": true} // a public key
	for _, name := range readVariables(t) {
		if looksSecret.MatchString(name) && !public[name] && !neverShown(name) {
			t.Errorf("%s looks like a secret but its value may be shown in errors", name)
		}
	}
}

// Secret-looking values fed to every variable, alone and over several base
// configurations: no error or warning shows a secret's value (nor a piece of
// it), or a URL's user info, whichever variable it is given to.
func TestNoErrorOrWarningShowsASecret(t *testing.T) {
	const key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	values := []string{
		key,
		strings.Repeat(key, 200), // over 4096 characters: a prefix used to be shown
		"Zq7",                    // short: passwords and the inbound secret refuse it
		key + "\x00",
		key + "/x y%",
		"https://hossuser:hunter2hunter2@h.acme-corp.com/x",
		"http://hossuser:hunter2hunter2@h.acme-corp.com",
		"https://hossuser:hunter2hunter2@h.acme-corp.com/x?q=1",
		"hossuser:hunter2hunter2@h.acme-corp.com",
		"https://hossuser:hunter2hunter2@h.acme-corp.com:99999999/%zz",
		// User info holding "/", "#" or "?": hidden up to the last "@".
		"https://hossuser:hunter2/hunter2@h.acme-corp.com",
		"https://hossuser:hunter2#hunter2@h.acme-corp.com",
		"https://hossuser:hunter2?hunter2@h.acme-corp.com",
		"hossuser:hunter2/hunter2@h.acme-corp.com",
		// A key in a URL's query or fragment: not shown.
		"ftp://x/search?api_key=" + key,
		"https://h.acme-corp.com/search#" + key,
		// Over 4096 characters, the user info beyond the part once shown.
		"https://" + strings.Repeat("hossuser", 600) + ":hunter2hunter2@h.acme-corp.com",
	}
	bases := map[string]map[string]string{
		"empty":      nil,
		"production": prodSMTP(nil),
		"sendgrid": {"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.acme-corp.com", "EMAIL_MODE": "SENDGRID",
			"SENDGRID_API_KEY": "SG.key", "COMPANY_POSTAL_ADDRESS": "1 Main St", "LEAD_SEARCH_API_URL": "https://l.acme-corp.com"},
		"stripe":  {"ENABLE_STRIPE": "true", "STRIPE_API_KEY": "x", "RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://h.acme-corp.com"},
		"openai":  {"TASK_EXECUTOR": "openai"},
		"staging": {"RELEASE_MODE": "STAGING", "EMAIL_MODE": "SMTP", "SMTP_HOST": "smtp.mailhost.net", "SMTP_TLS": "none"},
	}
	names := readVariables(t)
	refused := 0
	for _, name := range names {
		for baseName, base := range bases {
			for _, v := range values {
				env := map[string]string{}
				for k, bv := range base {
					env[k] = bv
				}
				env[name] = v
				_, warnings, err := Load(envOf(env))
				texts := append([]string(nil), warnings...)
				if err != nil {
					refused++
					texts = append(texts, err.Error())
					var cerr *Error
					if errors.As(err, &cerr) {
						texts = append(texts, cerr.Value)
					}
				}
				for _, text := range texts {
					if leak := leaked(name, v, text); leak != "" {
						t.Errorf("%s=%.40q over %s: %q shows %q", name, v, baseName, text, leak)
					}
				}
			}
		}
	}
	if refused < len(names) {
		t.Errorf("only %d of the loads were refused: the values do not reach the rules", refused)
	}
}

// urlQuery is the query and fragment of a URL variable's value v: what
// follows the first "?" or "#" after its user info (up to the last "@"), or
// after its scheme. None of it may be shown.
func urlQuery(v string) string {
	rest := v
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		return rest[i+1:]
	}
	return ""
}

// leaked returns the part of value v of variable name that text shows and
// must not: any 8 characters of a never-shown value, a short one whole, a
// URL's user info, or any 8 characters of a URL variable's query or fragment.
func leaked(name, v, text string) string {
	for _, userInfo := range []string{"hossuser", "hunter2"} {
		if strings.Contains(v, userInfo) && strings.Contains(text, userInfo) && (strings.Contains(v, "://") || urlVars[name] || neverShown(name)) {
			return userInfo
		}
	}
	if urlVars[name] {
		if q := urlQuery(v); len(q) >= 8 {
			for i := 0; i+8 <= len(q); i++ {
				if strings.Contains(text, q[i:i+8]) {
					return q[i : i+8]
				}
			}
		}
	}
	if !neverShown(name) {
		return ""
	}
	v = strings.TrimSpace(v)
	if i := strings.Index(v, "://"); i >= 0 {
		v = v[i+3:] // "https://" is in the messages' own words
	}
	if len(v) < 8 {
		if v != "" && strings.Contains(text, v) {
			return v
		}
		return ""
	}
	for i := 0; i+8 <= len(v); i++ {
		if strings.Contains(text, v[i:i+8]) {
			return v[i : i+8]
		}
	}
	return ""
}

// A URL variable's value is shown as https://…@host/path: user info hidden
// up to the last "@" (whatever it holds), query and fragment dropped. Other
// values keep their text but the user info of a "scheme://" in them.
func TestShownValueOfAURL(t *testing.T) {
	cases := []struct{ name, v, want string }{
		{"BASE_URL", "https://user:p/ss@host", "https://…@host"},
		{"BASE_URL", "https://user:p#ss@host", "https://…@host"},
		{"BASE_URL", "https://user:p?ss@host/path", "https://…@host/path"},
		{"BASE_URL", "https://user:pw@host/path?api_key=SECRET#frag", "https://…@host/path?…"},
		{"BASE_URL", "user:p/ss@host/x", "…@host/x"},
		{"BASE_URL", "https://host/x#SECRET", "https://host/x#…"},
		{"BASE_URL", "https://host/x", "https://host/x"},
		{"LEAD_SEARCH_API_URL", "ftp://x/search?api_key=SECRET", "ftp://x/search?…"},
		{"SENDGRID_API_BASE", "host:8080", "host:8080"},
		{"TASK_EXECUTOR", "https://user:p/ss@host?q", "https://…@host?q"},
		{"TASK_EXECUTOR", "a@b?c", "a@b?c"},
	}
	for _, tc := range cases {
		got, hidden := shownValue(tc.name, tc.v)
		if got != tc.want || hidden {
			t.Errorf("%s=%q shown as %q (hidden %v), want %q", tc.name, tc.v, got, hidden, tc.want)
		}
	}
}
