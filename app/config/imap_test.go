package config

import (
	"errors"
	"strings"
	"testing"
)

func TestIMAPSettings(t *testing.T) {
	c, _, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := (IMAP{Port: 993, TLS: "tls", Mailbox: "INBOX"}); c.IMAP != want || c.IMAP.Enabled() {
		t.Fatalf("defaults = %+v, want %+v, off", c.IMAP, want)
	}
	c, _, err = Load(env(map[string]string{
		"IMAP_HOST": "imap.acme-corp.com", "IMAP_USERNAME": "replies@acme-corp.com", "IMAP_PASSWORD": "pw-imap-123",
		"IMAP_TLS": "STARTTLS", "IMAP_MAILBOX": "Replies",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := IMAP{Host: "imap.acme-corp.com", Port: 143, Username: "replies@acme-corp.com", Password: "pw-imap-123", TLS: "starttls", Mailbox: "Replies"}
	if c.IMAP != want || !c.IMAP.Enabled() {
		t.Fatalf("IMAP = %+v, want %+v", c.IMAP, want)
	}
	c, _, err = Load(env(map[string]string{"IMAP_HOST": "127.0.0.1", "IMAP_PORT": "1143", "IMAP_USERNAME": "u", "IMAP_PASSWORD": "p", "IMAP_TLS": "none", "RELEASE_MODE": "PRODUCTION",
		"BASE_URL": "https://hoss.acme-corp.com"}))
	if err != nil || c.IMAP.Port != 1143 || c.IMAP.TLS != "none" {
		t.Fatalf("plain IMAP to a loopback host in PRODUCTION: %+v, %v", c.IMAP, err)
	}
}

func TestIMAPSettingsRefused(t *testing.T) {
	const secret = "hunter2-imap-secret"
	for _, tc := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"IMAP_HOST": "imap.acme-corp.com"}, "IMAP_USERNAME"},
		{map[string]string{"IMAP_HOST": "imap.acme-corp.com", "IMAP_USERNAME": "u"}, "IMAP_PASSWORD"},
		{map[string]string{"IMAP_HOST": "imap.acme-corp.com", "IMAP_PASSWORD": secret}, "IMAP_USERNAME"},
		{map[string]string{"IMAP_TLS": "ssl"}, "IMAP_TLS"},
		{map[string]string{"IMAP_PORT": "0"}, "IMAP_PORT"},
		{map[string]string{"IMAP_PASSWORD": secret + "\x00"}, "IMAP_PASSWORD"},
		{map[string]string{"IMAP_HOST": "imap.acme-corp.com", "IMAP_USERNAME": "u", "IMAP_PASSWORD": secret, "IMAP_TLS": "none",
			"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://hoss.acme-corp.com"}, "IMAP_TLS"},
	} {
		_, _, err := Load(env(tc.env))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != tc.name {
			t.Errorf("%v: error %v, want one about %s", tc.env, err, tc.name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%v: the error shows the password: %v", tc.env, err)
		}
	}
	if !IsSecret("IMAP_PASSWORD") {
		t.Error("IMAP_PASSWORD is not a secret")
	}
}
