// Package openai is the executor that does tasks with a language model
// behind any OpenAI-compatible Chat Completions endpoint. It speaks the API
// over net/http: one POST per attempt, retried on 408, 409, 429, 5xx and
// connection errors with the server's Retry-After, and a capped answer.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hossagent/hossagent/agents"
)

// Options configure the OpenAI-compatible executor (OPENAI_* settings).
type Options struct {
	APIKey string // required; sent as a bearer token
	// BaseURL is the API root, e.g. https://api.openai.com/v1 (the default
	// when empty) or a compatible server's /v1.
	BaseURL string
	Model   string // required
	// Prices in whole cents per million tokens.
	InputCentsPerMTok  int64
	OutputCentsPerMTok int64
	// Timeout bounds each request, answer body included; 0 means 1 minute.
	Timeout time.Duration
	// MaxRetries is how many times a request is repeated after a 408, 409,
	// 429, 5xx, timeout or connection error (never after another 4xx);
	// 0 means 2, a negative value means none.
	MaxRetries int
	// MaxRetryDelay caps the wait between attempts; 0 keeps the client's own
	// (exponential backoff up to 8 s, a server's Retry-After up to 2 min).
	// A Retry-After beyond the cap ends the retries.
	MaxRetryDelay time.Duration
	// HTTPClient makes the requests (its Timeout is replaced by Timeout);
	// nil means a plain http.Client.
	HTTPClient *http.Client
}

// Limits of the OpenAI executor.
const (
	// maxBody bounds an answer read from the API: a chat completion is a few
	// tens of KiB, so anything larger is refused rather than buffered.
	maxBody = 1 << 20
	// maxResult bounds the stored deliverable, in characters.
	maxResult = 20_000
	// maxField and maxDescription bound each customer field put into the
	// prompt, which bounds what a prompt can cost.
	maxField       = 200
	maxDescription = 500
	defaultBaseURL = "https://api.openai.com/v1/"
)

// Executor does tasks with a language model behind any OpenAI-compatible
// Chat Completions endpoint, and charges each task the tokens it used at
// the configured prices. Safe for concurrent use.
type Executor struct {
	client        http.Client
	url           string // the chat completions endpoint
	apiKey        string // sent as a bearer token; scrubbed from error messages
	model         string
	inCents       int64
	outCents      int64
	timeout       time.Duration
	maxRetries    int
	maxRetryDelay time.Duration
	// sleep waits between attempts and now reads the clock for an HTTP-date
	// Retry-After; tests replace them.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

var _ agents.Executor = (*Executor)(nil)

// New checks opts and builds the executor. It is configured only from
// opts: it never reads OPENAI_* variables from the environment behind the
// config's back.
func New(opts Options) (*Executor, error) {
	opts.APIKey, opts.Model = strings.TrimSpace(opts.APIKey), strings.TrimSpace(opts.Model)
	var errs []error
	if opts.APIKey == "" {
		errs = append(errs, errors.New("openai executor: an API key is required"))
	}
	if opts.Model == "" {
		errs = append(errs, errors.New("openai executor: a model is required"))
	}
	if opts.InputCentsPerMTok < 0 || opts.OutputCentsPerMTok < 0 {
		errs = append(errs, fmt.Errorf("openai executor: token prices cannot be negative (input %d, output %d cents per million)",
			opts.InputCentsPerMTok, opts.OutputCentsPerMTok))
	}
	base := strings.TrimSpace(opts.BaseURL)
	if base == "" {
		base = defaultBaseURL
	}
	endpoint, err := chatURL(base)
	if err != nil {
		errs = append(errs, fmt.Errorf("openai executor: base URL %q is not an http(s) URL", opts.BaseURL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	switch {
	case opts.MaxRetries == 0:
		opts.MaxRetries = 2
	case opts.MaxRetries < 0:
		opts.MaxRetries = 0
	}
	// The timeout lives on the HTTP client, so it bounds each attempt, the
	// answer's body included, and an attempt that runs out is a transport
	// error, retried like a dropped connection.
	e := &Executor{
		url: endpoint.String(), apiKey: opts.APIKey, model: opts.Model,
		inCents: opts.InputCentsPerMTok, outCents: opts.OutputCentsPerMTok,
		timeout: opts.Timeout, maxRetries: opts.MaxRetries, maxRetryDelay: max(opts.MaxRetryDelay, 0),
		sleep: sleepContext, now: time.Now,
	}
	if opts.HTTPClient != nil {
		e.client = *opts.HTTPClient
	}
	e.client.Timeout = opts.Timeout
	e.client.CheckRedirect = sameOrigin(endpoint, e.client.CheckRedirect)
	return e, nil
}

// chatURL is the Chat Completions endpoint under the API root base: its
// path joined with "chat/completions", whether or not it ends in a slash.
func chatURL(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("not an http(s) URL")
	}
	u.Fragment, u.RawFragment = "", ""
	return u.JoinPath("chat", "completions"), nil
}

// errOtherOrigin refuses a redirect away from the API's scheme and host,
// which would carry the key (and the prompt) elsewhere. It is not retried.
var errOtherOrigin = errors.New("the API redirected to another origin, which is refused")

// sameOrigin is a redirect policy that follows redirects within endpoint's
// scheme and host only, then applies next (the caller's policy, or the
// default of at most 10 redirects when nil).
func sameOrigin(endpoint *url.URL, next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !strings.EqualFold(req.URL.Scheme, endpoint.Scheme) || !strings.EqualFold(req.URL.Host, endpoint.Host) {
			return errOtherOrigin
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// Name is "openai".
func (*Executor) Name() string { return "openai" }

// Model is the model the executor asks for.
func (e *Executor) Model() string { return e.model }

// Label heads every deliverable of the OpenAI executor, so a reader knows a
// language model wrote it, and which.
func Label(model string) string {
	return "Generated by " + model + " via an OpenAI-compatible API"
}

// Execute asks the model for the deliverable of in.Kind and charges the
// tokens the API reports. Any failure is returned as the attempt's error: an
// API refusal, a timeout, an unreadable or empty answer, or an answer
// without token usage, whose cost would be unknown.
func (e *Executor) Execute(ctx context.Context, in agents.TaskInput) (agents.TaskOutput, error) {
	body, err := json.Marshal(chatRequest{
		Model: e.model,
		Messages: []chatMessage{
			{Role: "system", Content: systemPrompt},
			{Role: "user", Content: userPrompt(in)},
		},
	})
	if err != nil {
		return agents.TaskOutput{}, fmt.Errorf("openai: encoding the request: %w", err)
	}
	resp, attempts, err := e.complete(ctx, body)
	if err != nil {
		return agents.TaskOutput{}, e.explain(ctx, err, attempts)
	}
	return e.deliverable(resp)
}

// deliverable turns a completion into the labelled result and its cost.
func (e *Executor) deliverable(resp *chatCompletion) (agents.TaskOutput, error) {
	usage := resp.Usage
	if usage == nil || usage.PromptTokens == nil || usage.CompletionTokens == nil {
		return agents.TaskOutput{}, errors.New("openai: the answer carries no token usage, so its cost is unknown")
	}
	cost, err := tokenCostCents(*usage.PromptTokens, *usage.CompletionTokens, e.inCents, e.outCents)
	if err != nil {
		return agents.TaskOutput{}, err
	}
	if len(resp.Choices) == 0 {
		return agents.TaskOutput{CostCents: cost}, errors.New("openai: the answer has no choices")
	}
	choice := resp.Choices[0]
	content := strings.TrimSpace(choice.Message.Content)
	if content == "" {
		if r := strings.TrimSpace(choice.Message.Refusal); r != "" {
			return agents.TaskOutput{CostCents: cost}, fmt.Errorf("openai: the model refused: %s", clip(r, 300))
		}
		return agents.TaskOutput{CostCents: cost}, fmt.Errorf("openai: the model returned no content (finish reason %q)", choice.FinishReason)
	}
	var note string
	if choice.FinishReason == "length" {
		note = "\n\n[The model stopped at its output limit; this deliverable may be incomplete.]"
	}
	return agents.TaskOutput{Result: capResult(Label(e.model) + "\n\n" + content + note + "\n"), CostCents: cost}, nil
}

// tokenCostCents is what a call cost in cents: prompt tokens at inCents and
// completion tokens at outCents per million tokens, rounded up to the cent
// so that a task never looks cheaper than it was. The arithmetic is exact.
func tokenCostCents(promptTokens, completionTokens, inCents, outCents int64) (int64, error) {
	if promptTokens < 0 || completionTokens < 0 {
		return 0, fmt.Errorf("openai: the answer reports negative token usage (%d prompt, %d completion)", promptTokens, completionTokens)
	}
	if inCents < 0 || outCents < 0 {
		return 0, fmt.Errorf("openai: negative token prices (%d, %d cents per million)", inCents, outCents)
	}
	total := new(big.Int).Mul(big.NewInt(promptTokens), big.NewInt(inCents))
	total.Add(total, new(big.Int).Mul(big.NewInt(completionTokens), big.NewInt(outCents)))
	million := big.NewInt(1_000_000)
	cents, rem := new(big.Int).QuoRem(total, million, new(big.Int))
	if rem.Sign() > 0 {
		cents.Add(cents, big.NewInt(1))
	}
	if !cents.IsInt64() {
		return 0, fmt.Errorf("openai: the cost of %d prompt and %d completion tokens does not fit in cents", promptTokens, completionTokens)
	}
	return cents.Int64(), nil
}

// explain turns a failed call into an error an operator can act on. The
// provider's message is clipped and scrubbed of the API key.
func (e *Executor) explain(ctx context.Context, err error, attempts int) error {
	tries := fmt.Sprintf("%d attempt", attempts)
	if attempts != 1 {
		tries += "s"
	}
	var apiErr *apiError
	var netErr net.Error
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("openai: interrupted after %s: %w", tries, ctx.Err())
	case errors.As(err, &apiErr):
		return e.explainStatus(apiErr, tries)
	case errors.Is(err, errBodyTooLarge):
		return fmt.Errorf("openai: %w", errBodyTooLarge)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("openai: no answer within %s (%s)", e.timeout, tries)
	case errors.As(err, &syntaxErr) || errors.As(err, &typeErr) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("openai: unreadable answer: %s", clip(e.scrub(err.Error()), 300))
	}
	return fmt.Errorf("openai: %s (%s)", e.scrub(err.Error()), tries)
}

func (e *Executor) explainStatus(apiErr *apiError, tries string) error {
	status := fmt.Sprintf("%d %s", apiErr.StatusCode, http.StatusText(apiErr.StatusCode))
	detail := ""
	if msg := strings.TrimSpace(apiErr.Message); msg != "" {
		detail = ": " + clip(e.scrub(msg), 300)
	}
	switch code := apiErr.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("openai: the API refused the key (%s; check OPENAI_API_KEY)%s", status, detail)
	case code == http.StatusNotFound:
		return fmt.Errorf("openai: not found (%s; check OPENAI_BASE_URL and OPENAI_MODEL)%s", status, detail)
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("openai: rate limited (%s) after %s%s", status, tries, detail)
	case code >= 500:
		return fmt.Errorf("openai: server error (%s) after %s%s", status, tries, detail)
	}
	return fmt.Errorf("openai: request refused (%s)%s", status, detail)
}

// scrub removes the API key from text that will be stored and shown.
func (e *Executor) scrub(s string) string {
	return strings.ReplaceAll(s, e.apiKey, "[API key]")
}
