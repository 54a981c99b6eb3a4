package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/app/config"
)

// startLogs starts serve with env, waits until it serves, stops it, and
// returns what it logged.
func startLogs(t *testing.T, env map[string]string) string {
	t.Helper()
	env["DATA_DIR"], env["ADDR"], env["AUTOPILOT_ENABLED"] = t.TempDir(), "127.0.0.1:0", "false"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, envOf(env), io.Discard, io.MultiWriter(pw, &logs))
		pw.Close()
	}()
	waitForURL(t, pr)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10 s")
	}
	return logs.String()
}

// The SendGrid verification-key warning is given where SendGrid events are
// used, once, and not in DRY_RUN, where it does not apply.
func TestSendGridKeyWarningAtStartOnlyWithSendGrid(t *testing.T) {
	const key = "SENDGRID_WEBHOOK_VERIFICATION_KEY"
	if logs := startLogs(t, map[string]string{}); strings.Contains(logs, key) {
		t.Errorf("a DRY_RUN start warns about %s:\n%s", key, logs)
	}
	logs := startLogs(t, map[string]string{"EMAIL_MODE": "SENDGRID", "SENDGRID_API_KEY": "SG.test", "SENDGRID_API_BASE": "http://127.0.0.1:1"})
	if n := strings.Count(logs, key+" is not set"); n != 1 {
		t.Errorf("a SENDGRID start without the key warns %d times, want once:\n%s", n, logs)
	}
}

// A refused start names the variable and the rule, and never shows a
// secret's value or a URL's user info.
func TestRefusedStartShowsNoSecret(t *testing.T) {
	const key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	cases := []struct {
		env    map[string]string
		name   string
		secret []string
	}{
		{map[string]string{"BASE_URL": "https://hossuser:hunter2hunter2@hoss.acme-corp.com"}, "BASE_URL", []string{"hossuser", "hunter2"}},
		{map[string]string{"STRIPE_API_KEY": strings.Repeat(key, 200)}, "STRIPE_API_KEY", []string{"sk_live_4eC3"}},
		{map[string]string{"LEAD_SEARCH_API_URL": "hossuser:hunter2hunter2@leads.acme-corp.com/api"}, "LEAD_SEARCH_API_URL", []string{"hossuser", "hunter2"}},
		{map[string]string{"RELEASE_MODE": "PRODUCTION", "BASE_URL": "https://hoss.acme-corp.com", "EMAIL_INBOUND_SECRET": "Zq7"}, "EMAIL_INBOUND_SECRET", []string{"Zq7"}},
		{map[string]string{"DATABASE_URL": "postgres://hossuser:hunter2hunter2@db/hoss", "AWS_SES_SECRET_KEY": key}, "AWS_SES_SECRET_KEY", []string{"hossuser", "hunter2", "sk_live_4eC3"}},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		tc.env["DATA_DIR"] = t.TempDir()
		// A start that is not refused serves until the deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, []string{"serve"}, envOf(tc.env), &out, &errOut)
		cancel()
		if code != 2 {
			t.Errorf("%s: exit %d, want 2 (refused)", tc.name, code)
			continue
		}
		msg := errOut.String() + out.String()
		if !strings.Contains(msg, tc.name) {
			t.Errorf("%q does not name %s", msg, tc.name)
		}
		for _, s := range tc.secret {
			if strings.Contains(msg, s) {
				t.Errorf("%q shows %q", msg, s)
			}
		}
	}
}

// EMAIL_REPLY_TO reaches the mailer main builds: the SendGrid request
// carries it (the SMTP mailer's header is tested against a real server in
// agents/smtp).
func TestReplyToReachesTheMailer(t *testing.T) {
	bodies := make(chan map[string]any, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		bodies <- body
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	cfg, _, err := config.Load(envOf(map[string]string{"EMAIL_MODE": "SENDGRID", "SENDGRID_API_KEY": "SG.test",
		"SENDGRID_API_BASE": srv.URL, "EMAIL_FROM": "outreach@acme-corp.com", "OUTBOUND_REPLY_TO": "replies@reply.acme-corp.com"}))
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := newMailer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mailer.Send(context.Background(), agents.OutgoingMail{To: "dana@delta.example", Subject: "Hi", Body: "Hello", OutboxID: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-bodies:
		if rt, _ := body["reply_to"].(map[string]any); rt == nil || rt["email"] != "replies@reply.acme-corp.com" {
			t.Errorf("reply_to = %v", body["reply_to"])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SendGrid received no request")
	}
}
