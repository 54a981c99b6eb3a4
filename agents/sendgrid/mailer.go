// Package sendgrid is HossAgent's SendGrid adapter: the agents.Mailer that
// sends through SendGrid's v3 Mail Send API (EMAIL_MODE=SENDGRID), and the
// agents.MailEvents that verifies and reads its Event Webhook (events.go).
package sendgrid

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hossagent/hossagent/agents"
)

// DefaultAPIBase is SendGrid's API.
const DefaultAPIBase = "https://api.sendgrid.com"

const (
	// sendGridTimeout bounds one request when no client is given, and every
	// request in any case.
	sendGridTimeout = 30 * time.Second
	// maxSendGridRequest refuses an absurd message before it leaves; an
	// outreach e-mail is a few kilobytes. Attachments (at most
	// agents.MaxAttachmentBytes) come on top, base64-encoded.
	maxSendGridRequest = 1 << 20
	// maxSendGridResponse bounds what is read of an answer: error JSON is
	// small, and a proxy's error page need not be read whole.
	maxSendGridResponse = 64 << 10
)

// Options configure the SendGrid mailer (the SENDGRID_* settings).
type Options struct {
	APIKey string
	// APIBase is SendGrid's URL, DefaultAPIBase when empty; tests
	// point it at a fake.
	APIBase string
	// Sandbox asks SendGrid to validate each message without delivering it.
	Sandbox bool
	// From and FromName are the sender for a message that names none; it
	// must be a sender identity verified in the SendGrid account.
	From, FromName string
	// ReplyTo, when set, is the Reply-To address of every message
	// (EMAIL_REPLY_TO).
	ReplyTo string
	// Client makes the requests; nil is a client with a 30 s timeout.
	Client *http.Client
	// Timeout bounds one request whatever the client; 0 is 30 s.
	Timeout time.Duration
}

// Mailer sends through SendGrid's v3 Mail Send API. Safe for
// concurrent use.
type Mailer struct {
	opts     Options
	endpoint string
	// replyTo is opts.ReplyTo parsed; nil sends no Reply-To. SendGrid
	// refuses Reply-To among the headers: it is a field of its own.
	replyTo *sendGridAddress
}

// NewMailer checks the options and returns the mailer for
// EMAIL_MODE=SENDGRID.
func NewMailer(opts Options) (*Mailer, error) {
	if strings.TrimSpace(opts.APIKey) == "" {
		return nil, errors.New("sendgrid: no API key")
	}
	if opts.APIBase == "" {
		opts.APIBase = DefaultAPIBase
	}
	base, err := url.Parse(strings.TrimRight(opts.APIBase, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("sendgrid: API base %q is not an http(s) URL", opts.APIBase)
	}
	var replyTo *sendGridAddress
	if opts.ReplyTo != "" {
		a, err := netmail.ParseAddress(opts.ReplyTo)
		if err != nil {
			return nil, fmt.Errorf("sendgrid: Reply-To %q: %w", opts.ReplyTo, err)
		}
		replyTo = &sendGridAddress{Email: a.Address, Name: a.Name}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = sendGridTimeout
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Timeout}
	}
	return &Mailer{opts: opts, endpoint: base.String() + "/v3/mail/send", replyTo: replyTo}, nil
}

// Mode is SENDGRID; in sandbox mode it is DRY_RUN, because SendGrid accepts
// the messages and delivers none: BizDev records them as dry-run, and the
// re-queue action sends them for real once the sandbox is off.
func (m *Mailer) Mode() string {
	if m.opts.Sandbox {
		return agents.MailModeDryRun
	}
	return agents.MailModeSendGrid
}

// The Mail Send request, as SendGrid's v3 API defines it.
type (
	sendGridRequest struct {
		Personalizations []sendGridPersonalization `json:"personalizations"`
		From             sendGridAddress           `json:"from"`
		ReplyTo          *sendGridAddress          `json:"reply_to,omitempty"`
		Subject          string                    `json:"subject"`
		Content          []sendGridContent         `json:"content"`
		Attachments      []sendGridAttachment      `json:"attachments,omitempty"`
		Headers          map[string]string         `json:"headers,omitempty"`
		CustomArgs       map[string]string         `json:"custom_args,omitempty"`
		MailSettings     sendGridMailSettings      `json:"mail_settings"`
		TrackingSettings sendGridTracking          `json:"tracking_settings"`
	}
	sendGridPersonalization struct {
		To []sendGridAddress `json:"to"`
	}
	sendGridAddress struct {
		Email string `json:"email"`
		Name  string `json:"name,omitempty"`
	}
	sendGridContent struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	sendGridAttachment struct {
		Content     string `json:"content"` // base64
		Filename    string `json:"filename"`
		Type        string `json:"type"`
		Disposition string `json:"disposition"`
	}
	sendGridMailSettings struct {
		SandboxMode sendGridSwitch `json:"sandbox_mode"`
	}
	sendGridTracking struct {
		ClickTracking sendGridClickTracking `json:"click_tracking"`
	}
	sendGridClickTracking struct {
		Enable     bool `json:"enable"`
		EnableText bool `json:"enable_text"`
	}
	sendGridSwitch struct {
		Enable bool `json:"enable"`
	}
	// sendGridErrors is SendGrid's error answer.
	sendGridErrors struct {
		Errors []struct {
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"errors"`
	}
)

// OutboxArg is the custom argument that carries the outbox id; the
// event webhook hands it back with every event of the message.
const OutboxArg = "outbox_id"

// Send posts one message and returns SendGrid's message id (the
// X-Message-Id header). An answer other than 2xx is an agents.MailError carrying
// SendGrid's own error messages.
func (m *Mailer) Send(ctx context.Context, out agents.OutgoingMail) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	body, err := m.request(out)
	if err != nil {
		return "", &agents.MailError{Provider: "sendgrid", Permanent: true, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", &agents.MailError{Provider: "sendgrid", Permanent: true, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+m.opts.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "HossAgent")
	resp, err := m.opts.Client.Do(req)
	if err != nil {
		// Only a failure to connect proves the request never arrived; a
		// timeout or a dropped connection after that may hide an accepted
		// message.
		var op *net.OpError
		notSent := errors.As(err, &op) && op.Op == "dial"
		return "", &agents.MailError{Provider: "sendgrid", Unknown: !notSent, Err: err}
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxSendGridResponse))
	if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK {
		// Accepted, whatever happens to the rest of the answer: it must
		// never be sent again.
		if id := strings.TrimSpace(resp.Header.Get("X-Message-Id")); id != "" {
			return id, nil
		}
		// The sandbox answers 200 without an id.
		return "sendgrid.outbox." + strconv.FormatInt(out.OutboxID, 10), nil
	}
	if readErr != nil {
		return "", &agents.MailError{Provider: "sendgrid", Code: resp.StatusCode, Err: readErr}
	}
	return "", sendGridError(resp.StatusCode, answer)
}

// request encodes the Mail Send body for one message.
func (m *Mailer) request(out agents.OutgoingMail) ([]byte, error) {
	from := sendGridAddress{Email: out.From, Name: out.FromName}
	if from.Email == "" {
		from = sendGridAddress{Email: m.opts.From, Name: m.opts.FromName}
	}
	if from.Email == "" || out.To == "" {
		return nil, errors.New("a message needs a sender and a recipient")
	}
	if err := agents.CheckAttachments(out.Attachments); err != nil {
		return nil, err
	}
	// SendGrid wants text/plain first, then text/html.
	content := []sendGridContent{{Type: "text/plain", Value: out.Body}}
	if out.HTML != "" {
		content = append(content, sendGridContent{Type: "text/html", Value: out.HTML})
	}
	limit := maxSendGridRequest
	var files []sendGridAttachment
	for _, a := range out.Attachments {
		files = append(files, sendGridAttachment{
			Content: base64.StdEncoding.EncodeToString(a.Content), Filename: agents.AttachmentName(a.Filename),
			Type: agents.AttachmentType(a.ContentType), Disposition: "attachment",
		})
		limit += base64.StdEncoding.EncodedLen(len(a.Content)) + 4<<10
	}
	replyTo := m.replyTo
	if out.ReplyTo != "" {
		a, err := netmail.ParseAddress(out.ReplyTo)
		if err != nil {
			return nil, fmt.Errorf("Reply-To %q: %w", out.ReplyTo, err)
		}
		replyTo = &sendGridAddress{Email: a.Address, Name: a.Name}
	}
	r := sendGridRequest{
		Personalizations: []sendGridPersonalization{{To: []sendGridAddress{{Email: out.To}}}},
		From:             from,
		ReplyTo:          replyTo,
		Subject:          out.Subject,
		Content:          content,
		Attachments:      files,
		Headers:          out.Headers,
		CustomArgs:       map[string]string{OutboxArg: strconv.FormatInt(out.OutboxID, 10)},
		MailSettings:     sendGridMailSettings{SandboxMode: sendGridSwitch{Enable: m.opts.Sandbox}},
		// Click tracking would rewrite the links of the plain-text body,
		// the unsubscribe link among them, into SendGrid redirects.
		TrackingSettings: sendGridTracking{ClickTracking: sendGridClickTracking{Enable: false, EnableText: false}},
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(body) > limit {
		return nil, fmt.Errorf("the message is %d bytes, over the %d this mailer sends", len(body), limit)
	}
	return body, nil
}

// sendGridError turns a refusal into an agents.MailError with SendGrid's messages.
// A 4xx is permanent (the request is wrong: key, sender identity, fields),
// except 408 and 429, which pass; a 5xx is temporary.
func sendGridError(status int, answer []byte) error {
	var parsed sendGridErrors
	var msgs []string
	if json.Unmarshal(answer, &parsed) == nil {
		for _, e := range parsed.Errors {
			msg := strings.TrimSpace(e.Message)
			if e.Field != "" {
				msg = e.Field + ": " + msg
			}
			if msg != "" {
				msgs = append(msgs, msg)
			}
		}
	}
	text := strings.Join(msgs, "; ")
	if text == "" {
		text = strings.TrimSpace(string(answer))
		if r := []rune(text); len(r) > 200 {
			text = string(r[:200]) + "…"
		}
	}
	if text == "" {
		text = "no explanation"
	}
	permanent := status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
	return &agents.MailError{Provider: "sendgrid", Permanent: permanent, Code: status,
		Err: fmt.Errorf("%s: %s", http.StatusText(status), text)}
}
