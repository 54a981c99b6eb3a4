package sendgrid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

const sendGridTestKey = "SG.test-key"

// sendGridFake is SendGrid's Mail Send endpoint as the tests need it: it
// checks the method, path, auth and JSON shape of every request, keeps the
// decoded bodies, and answers what answer says.
type sendGridFake struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request)

	mu       sync.Mutex
	requests []map[string]any
}

func newSendGridFake(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *sendGridFake {
	t.Helper()
	f := &sendGridFake{t: t, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *sendGridFake) serve(w http.ResponseWriter, r *http.Request) {
	problem := ""
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send":
		problem = "unexpected " + r.Method + " " + r.URL.Path
	case r.Header.Get("Authorization") != "Bearer "+sendGridTestKey:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked","help":null}]}`)
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		problem = "Content-Type " + r.Header.Get("Content-Type")
	}
	var body map[string]any
	if problem == "" {
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		if err := dec.Decode(&body); err != nil {
			problem = "body: " + err.Error()
		}
	}
	if problem != "" {
		f.t.Errorf("SendGrid fake: %s", problem)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, body)
	f.mu.Unlock()
	f.answer(w, r)
}

func (f *sendGridFake) lastRequest() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		f.t.Fatal("SendGrid received no request")
	}
	return f.requests[len(f.requests)-1]
}

func (f *sendGridFake) mailer(t *testing.T, o Options) *Mailer {
	t.Helper()
	if o.APIKey == "" {
		o.APIKey = sendGridTestKey
	}
	o.APIBase = f.srv.URL
	m, err := NewMailer(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func accepted(id string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Message-Id", id)
		w.WriteHeader(http.StatusAccepted)
	}
}

// jsonPath walks decoded JSON: strings index objects, ints index arrays.
func jsonPath(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func TestSendGridMailerPostsTheMailSendRequest(t *testing.T) {
	fake := newSendGridFake(t, accepted("sg-msg-1"))
	m := fake.mailer(t, Options{})
	id, err := m.Send(context.Background(), testMail("dana@delta.example", 42))
	if err != nil || id != "sg-msg-1" || m.Mode() != agents.MailModeSendGrid {
		t.Fatalf("Send = %q, %v (mode %s)", id, err, m.Mode())
	}
	req := fake.lastRequest()
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"personalizations", 0, "to", 0, "email"}, "dana@delta.example"},
		{[]any{"from", "email"}, "outreach@hossagent.example"},
		{[]any{"from", "name"}, "Hoss Research"},
		{[]any{"subject"}, "A note for Delta"},
		{[]any{"content", 0, "type"}, "text/plain"},
		{[]any{"content", 0, "value"}, "Hi Dana,\n\nHello there.\n"},
		{[]any{"headers", "List-Unsubscribe"}, "<https://hoss.example/unsubscribe/tok42>"},
		{[]any{"headers", "List-Unsubscribe-Post"}, "List-Unsubscribe=One-Click"},
		{[]any{"custom_args", "outbox_id"}, "42"},
		{[]any{"mail_settings", "sandbox_mode", "enable"}, false},
		{[]any{"tracking_settings", "click_tracking", "enable"}, false},
	} {
		if got := jsonPath(req, c.path...); got != c.want {
			t.Errorf("request %v = %#v, want %#v", c.path, got, c.want)
		}
	}
	if n := len(jsonPath(req, "personalizations").([]any)); n != 1 {
		t.Errorf("%d personalizations, want 1", n)
	}
}

// EMAIL_REPLY_TO is the request's reply_to (SendGrid refuses Reply-To among
// the headers); without it the request has none.
func TestSendGridMailerSetsReplyTo(t *testing.T) {
	fake := newSendGridFake(t, accepted("sg-msg-1"))
	if _, err := fake.mailer(t, Options{ReplyTo: "replies@reply.acme-corp.com"}).Send(context.Background(), testMail("dana@delta.example", 42)); err != nil {
		t.Fatal(err)
	}
	req := fake.lastRequest()
	if got := jsonPath(req, "reply_to", "email"); got != "replies@reply.acme-corp.com" {
		t.Errorf("reply_to.email = %#v", got)
	}
	if got := jsonPath(req, "headers", "Reply-To"); got != nil {
		t.Errorf("headers carry Reply-To %#v", got)
	}
	if got := jsonPath(req, "from", "email"); got != "outreach@hossagent.example" {
		t.Errorf("from.email = %#v: Reply-To must not change the sender", got)
	}

	if _, err := fake.mailer(t, Options{}).Send(context.Background(), testMail("dana@delta.example", 43)); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.lastRequest()["reply_to"]; ok {
		t.Errorf("reply_to sent without EMAIL_REPLY_TO: %v", fake.lastRequest()["reply_to"])
	}
	if _, err := NewMailer(Options{APIKey: sendGridTestKey, ReplyTo: "not an address"}); err == nil {
		t.Error("a malformed Reply-To was accepted")
	}
}

func TestSendGridSandboxIsRecordedAsDryRun(t *testing.T) {
	// The sandbox answers 200 OK without a message id.
	fake := newSendGridFake(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	m := fake.mailer(t, Options{Sandbox: true})
	id, err := m.Send(context.Background(), testMail("dana@delta.example", 42))
	if err != nil || id != "sendgrid.outbox.42" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	if got := jsonPath(fake.lastRequest(), "mail_settings", "sandbox_mode", "enable"); got != true {
		t.Fatalf("sandbox_mode.enable = %#v, want true", got)
	}
	if m.Mode() != agents.MailModeDryRun {
		t.Fatalf("sandbox mode = %s, want DRY_RUN", m.Mode())
	}
}

func TestSendGridRefusalsCarrySendGridsMessages(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       string
		status    int
		body      string
		permanent bool
		want      []string
	}{
		{"unverified sender", "", http.StatusBadRequest,
			`{"errors":[{"message":"The from address does not match a verified Sender Identity.","field":"from","help":"http://sendgrid.com/docs"},{"message":"Invalid type. Expected: object","field":"personalizations.0.to","help":null}]}`,
			true, []string{"permanent 400", "from: The from address does not match a verified Sender Identity.", "personalizations.0.to: Invalid type"}},
		{"bad key", "SG.wrong", 0, "", true, []string{"permanent 401", "authorization grant is invalid"}},
		{"rate limited", "", http.StatusTooManyRequests, `{"errors":[{"message":"too many requests","field":null,"help":null}]}`,
			false, []string{"temporary 429", "too many requests"}},
		{"server error", "", http.StatusInternalServerError, `<html>upstream failed</html>`,
			false, []string{"temporary 500", "Internal Server Error", "upstream failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newSendGridFake(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			_, err := fake.mailer(t, Options{APIKey: tc.key}).Send(context.Background(), testMail("dana@delta.example", 1))
			var me *agents.MailError
			if !errors.As(err, &me) || me.Permanent != tc.permanent || agents.IsPermanentMailError(err) != tc.permanent {
				t.Fatalf("Send = %v, want an agents.MailError permanent=%v", err, tc.permanent)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// A request that reached SendGrid and got no answer may have been accepted:
// its outcome is unknown. A server that cannot be reached at all is an
// ordinary temporary error.
func TestSendGridTimeoutIsAnUnknownOutcome(t *testing.T) {
	fake := newSendGridFake(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	m := fake.mailer(t, Options{Timeout: 50 * time.Millisecond})
	_, err := m.Send(context.Background(), testMail("dana@delta.example", 1))
	var me *agents.MailError
	if !errors.As(err, &me) || me.Permanent || me.Code != 0 || !errors.Is(err, context.DeadlineExceeded) || !agents.IsUnknownMailOutcome(err) {
		t.Fatalf("Send to a server that never answers = %v, want an unknown outcome", err)
	}

	closed := newSendGridFake(t, accepted("never"))
	down := closed.mailer(t, Options{Timeout: time.Second})
	closed.srv.Close()
	_, err = down.Send(context.Background(), testMail("dana@delta.example", 2))
	if !errors.As(err, &me) || agents.IsUnknownMailOutcome(err) {
		t.Fatalf("Send to a closed port = %v, want a temporary error with a known outcome", err)
	}
}

func TestSendGridRefusesBadOptionsAndOversizedMessages(t *testing.T) {
	for _, o := range []Options{{}, {APIKey: "k", APIBase: "ftp://api.example"}, {APIKey: "k", APIBase: "https://"}} {
		if _, err := NewMailer(o); err == nil {
			t.Errorf("NewMailer(%+v) accepted", o)
		}
	}
	if m, err := NewMailer(Options{APIKey: "k"}); err != nil || m.endpoint != "https://api.sendgrid.com/v3/mail/send" {
		t.Fatalf("default endpoint: %v %v", m, err)
	}
	fake := newSendGridFake(t, accepted("never"))
	big := testMail("dana@delta.example", 1)
	big.Body = strings.Repeat("x", maxSendGridRequest)
	if _, err := fake.mailer(t, Options{}).Send(context.Background(), big); !agents.IsPermanentMailError(err) {
		t.Fatalf("oversized message: %v, want a permanent refusal", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.requests) != 0 {
		t.Fatal("an oversized message was posted")
	}
}

func TestBizDevThroughSendGrid(t *testing.T) {
	r := agentstest.NewRig(t)
	l := r.AddLead("Dana Lee", "dana@delta.example", "Delta", "")
	fake := newSendGridFake(t, accepted("sg-abc"))
	agentstest.WantCounts(t, r.Run(r.BizDev(fake.mailer(t, Options{}), agentstest.BizDevOptions(&agentstest.Sleeps{}))), agents.Counts{"sent": 1})
	msg := r.Messages(l.ID)[0]
	if msg.Status != db.MessageSent || msg.ProviderID != "sg-abc" {
		t.Fatalf("outbox row: %+v", msg)
	}
	tokens, err := agents.LoadUnsubscribeTokens(r.Ctx, r.Store, r.Rand)
	if err != nil {
		t.Fatal(err)
	}
	req := fake.lastRequest()
	link := "https://hoss.example/unsubscribe/" + tokens.UnsubscribeToken(msg.ID)
	if got := jsonPath(req, "headers", "List-Unsubscribe"); got != "<"+link+">" {
		t.Errorf("List-Unsubscribe = %v", got)
	}
	if body, _ := jsonPath(req, "content", 0, "value").(string); body != msg.Body || !strings.Contains(body, "1 Test Street, Springfield") {
		t.Errorf("content lacks the outbox body with its footer:\n%s", body)
	}
}

// testMail is one outreach message as BizDev hands it to a mailer.
func testMail(to string, id int64) agents.OutgoingMail {
	return agents.OutgoingMail{
		To: to, From: "outreach@hossagent.example", FromName: "Hoss Research", Subject: "A note for Delta",
		Body: "Hi Dana,\n\nHello there.\n", OutboxID: id,
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://hoss.example/unsubscribe/tok" + fmt.Sprint(id) + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
}
