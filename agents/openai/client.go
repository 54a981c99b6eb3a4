package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Retry timing when Options.MaxRetryDelay is 0.
const (
	firstBackoff         = 500 * time.Millisecond // doubled after each retry
	defaultMaxBackoff    = 8 * time.Second        // cap of the backoff
	defaultRetryAfterMax = 2 * time.Minute        // longest Retry-After honoured
)

// userAgent names the client to the API.
const userAgent = "HossAgent (OpenAI-compatible chat client)"

// chatRequest is the body of a Chat Completions request.
type chatRequest struct {
	Model    string        `json:"model"`
	Messages []chatMessage `json:"messages"`
	// ResponseFormat constrains the answer (a strict JSON schema for a
	// reply's sorting); nil for free text.
	ResponseFormat any `json:"response_format,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chatCompletion is the part of a Chat Completions answer the executor
// reads. Usage and its counts are pointers so that an answer without them
// is told from one that used no tokens.
type chatCompletion struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
			Refusal string `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     *int64 `json:"prompt_tokens"`
		CompletionTokens *int64 `json:"completion_tokens"`
	} `json:"usage"`
}

// apiError is an answer with a status of 400 or more, and the message the
// API gave with it, if any.
type apiError struct {
	StatusCode int
	Message    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("the API answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// errBodyTooLarge is a response that exceeded maxBody.
var errBodyTooLarge = fmt.Errorf("the API's answer is larger than %d bytes", maxBody)

// complete posts body to the endpoint until an answer is final or the
// retries are spent, and reads the final answer. It returns the number of
// attempts made, for the error message.
func (e *Executor) complete(ctx context.Context, body []byte) (*chatCompletion, int, error) {
	for attempts := 1; ; attempts++ {
		res, err := e.send(ctx, body)
		if ctx.Err() != nil {
			discard(res)
			return nil, attempts, ctx.Err()
		}
		retry := attempts <= e.maxRetries && shouldRetry(res, err)
		var delay time.Duration
		if retry {
			delay, retry = e.retryDelay(res, attempts-1)
		}
		if !retry {
			if err != nil {
				return nil, attempts, err
			}
			out, err := readAnswer(res)
			return out, attempts, err
		}
		discard(res)
		if err := e.sleep(ctx, delay); err != nil {
			return nil, attempts, err
		}
	}
}

// send makes one attempt.
func (e *Executor) send(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	return e.client.Do(req)
}

// shouldRetry says whether an attempt that ended with res or err is worth
// repeating: a transport error (timeout, dropped connection) other than a
// refused redirect, or a 408, 409, 429 or 5xx, unless the server's
// x-should-retry header says otherwise.
func shouldRetry(res *http.Response, err error) bool {
	if errors.Is(err, errOtherOrigin) {
		return false
	}
	if err != nil || res == nil {
		return true
	}
	switch res.Header.Get("x-should-retry") {
	case "true":
		return true
	case "false":
		return false
	}
	return res.StatusCode == http.StatusRequestTimeout ||
		res.StatusCode == http.StatusConflict ||
		res.StatusCode == http.StatusTooManyRequests ||
		res.StatusCode >= http.StatusInternalServerError
}

// retryDelay is the wait before retry number retry+1 and whether to retry
// at all: the server's Retry-After-Ms or Retry-After when it gives one
// (no retry when it asks for longer than the cap), otherwise an
// exponential backoff from half a second with up to 25% jitter, capped.
func (e *Executor) retryDelay(res *http.Response, retry int) (time.Duration, bool) {
	if res != nil {
		limit := e.maxRetryDelay
		if limit == 0 {
			limit = defaultRetryAfterMax
		}
		if d, ok, tooLong := retryAfter(res.Header, e.now(), limit); ok {
			return d, !tooLong
		}
	}
	limit := e.maxRetryDelay
	if limit == 0 {
		limit = defaultMaxBackoff
	}
	delay := limit
	if retry < 30 {
		delay = min(firstBackoff<<retry, limit)
	}
	if jitter := int64(delay / 4); jitter > 0 {
		delay -= time.Duration(rand.Int64N(jitter))
	}
	return delay, true
}

// retryAfter reads the wait a server asks for: Retry-After-Ms in
// milliseconds, else Retry-After in seconds or as an HTTP-date. ok is
// false when neither header holds a usable value; tooLong when the wait
// is beyond limit.
func retryAfter(h http.Header, now time.Time, limit time.Duration) (delay time.Duration, ok, tooLong bool) {
	for _, hd := range []struct {
		name string
		unit time.Duration
	}{{"Retry-After-Ms", time.Millisecond}, {"Retry-After", time.Second}} {
		v := h.Get(hd.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseFloat(v, 64)
		switch {
		case errors.Is(err, strconv.ErrRange) && math.IsInf(n, 1):
			return 0, true, true
		case err == nil:
			if math.IsNaN(n) || math.IsInf(n, 0) || n < 0 {
				continue
			}
			if n*float64(hd.unit) > float64(limit) {
				return 0, true, true
			}
			return time.Duration(n * float64(hd.unit)), true, false
		}
		if hd.unit != time.Second {
			continue // only Retry-After may be a date
		}
		t, err := http.ParseTime(v)
		if err != nil {
			continue
		}
		d := t.Sub(now)
		if d > limit {
			return 0, true, true
		}
		return max(d, 0), true, false
	}
	return 0, false, false
}

// readAnswer reads a final response, at most maxBody bytes of it: an
// apiError for a status of 400 or more, else the completion.
func readAnswer(res *http.Response) (*chatCompletion, error) {
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if len(data) > maxBody {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if res.StatusCode >= 400 {
		return nil, &apiError{StatusCode: res.StatusCode, Message: errorMessage(data)}
	}
	out := new(chatCompletion)
	if err := json.Unmarshal(data, out); err != nil {
		return nil, err
	}
	return out, nil
}

// errorMessage is the message of an error answer: {"error": {"message":
// …}} as OpenAI sends it, or {"error": "…"} as some compatible servers do;
// empty when the body is neither.
func errorMessage(data []byte) string {
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &body) != nil || len(body.Error) == 0 {
		return ""
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body.Error, &obj) == nil && obj.Message != "" {
		return obj.Message
	}
	var s string
	if json.Unmarshal(body.Error, &s) == nil {
		return s
	}
	return ""
}

// discard drains a little of an answer that will not be read, so the
// connection can be reused, and closes it.
func discard(res *http.Response) {
	if res == nil || res.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
}

// sleepContext waits for d, or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
