package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

// classifyServer is an OpenAI-compatible server for reply sortings: it
// keeps each request's body and answers with answer(n, body).
type classifyServer struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
}

func newClassifyServer(t *testing.T, answer func(n int, body map[string]any, w http.ResponseWriter, r *http.Request)) *classifyServer {
	t.Helper()
	s := &classifyServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(data, &body); err != nil || r.URL.Path != "/v1/chat/completions" {
			t.Errorf("classify server: %s %s: %v", r.Method, r.URL.Path, err)
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		n := len(s.bodies)
		s.mu.Unlock()
		answer(n, body, w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *classifyServer) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func (s *classifyServer) body(i int) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[i]
}

// executor is pointed at the server at 250 and 1000 cents per million
// tokens, without retries.
func (s *classifyServer) executor(t *testing.T) *Executor {
	t.Helper()
	e, err := New(Options{APIKey: fakeOpenAIKey, BaseURL: s.srv.URL + "/v1", Model: "gpt-4o-mini",
		InputCentsPerMTok: 250, OutputCentsPerMTok: 1000, Timeout: 5 * time.Second, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func answerClass(class, reason string, promptTokens, completionTokens int64) func(int, map[string]any, http.ResponseWriter, *http.Request) {
	return func(_ int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
		content, _ := json.Marshal(map[string]string{"class": class, "reason": reason})
		writeJSON(w, http.StatusOK, completionJSON(string(content), promptTokens, completionTokens))
	}
}

// userMessage is the user message of a request body.
func userMessage(t *testing.T, body map[string]any) string {
	t.Helper()
	msgs, _ := body["messages"].([]any)
	for _, m := range msgs {
		if mm, _ := m.(map[string]any); mm["role"] == "user" {
			s, _ := mm["content"].(string)
			return s
		}
	}
	t.Fatalf("no user message in %v", body)
	return ""
}

// The request asks for a strict JSON schema whose class is one of the
// reply classes, sends the reply without its quoted history and clipped;
// the answer's class and reason come back with the cost of the tokens,
// rounded up to the cent.
func TestClassifyReplyAsksForStrictJSONAndCountsTheCost(t *testing.T) {
	s := newClassifyServer(t, answerClass("interested", "Asks  for a call\non Tuesday.", 40_000, 500))
	e := s.executor(t)
	text := "Could we do Tuesday?\n" + strings.Repeat("word ", 2000) + "\n\nOn Mon, 5 Jan 2026, Hoss Research wrote:\n> SECRET-QUOTED-HISTORY\n"
	v, err := e.ClassifyReply(context.Background(), agents.ReplyToClassify{Subject: "Re: A quick idea", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	// 40,000 × 250 + 500 × 1000 = 10,500,000 per million: 10.5, rounded up.
	if v.Class != agents.ReplyInterested || v.Reason != "Asks for a call on Tuesday." || v.CostCents != 11 || v.Model != "gpt-4o-mini" {
		t.Errorf("verdict = %+v", v)
	}
	body := s.body(0)
	format, _ := body["response_format"].(map[string]any)
	schema, _ := format["json_schema"].(map[string]any)
	inner, _ := schema["schema"].(map[string]any)
	props, _ := inner["properties"].(map[string]any)
	class, _ := props["class"].(map[string]any)
	var enum []string
	for _, c := range class["enum"].([]any) {
		enum = append(enum, c.(string))
	}
	if format["type"] != "json_schema" || schema["strict"] != true || inner["additionalProperties"] != false || !slices.Equal(enum, agents.ReplyClasses) {
		t.Errorf("response_format = %v", format)
	}
	user := userMessage(t, body)
	if strings.Contains(user, "SECRET-QUOTED-HISTORY") || !strings.Contains(user, "Could we do Tuesday?") || !strings.Contains(user, "Subject: Re: A quick idea") {
		t.Errorf("user message = %.300q", user)
	}
	if len([]rune(user)) > maxClassifyText+400 || !strings.Contains(user, "the rest was cut") {
		t.Errorf("the reply was not clipped: %d characters", len([]rune(user)))
	}
}

// An answer that is not a reply class, or not the JSON asked for, is an
// error that still carries what the call cost.
func TestClassifyReplyRefusesAnUnusableAnswer(t *testing.T) {
	for _, content := range []string{`{"class":"maybe","reason":"unsure"}`, `I think interested`, `{"reason":"no class"}`} {
		s := newClassifyServer(t, func(_ int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, completionJSON(content, 4000, 100))
		})
		v, err := s.executor(t).ClassifyReply(context.Background(), agents.ReplyToClassify{Text: "hmm"})
		if err == nil || v.Class != "" || v.CostCents != 2 {
			t.Errorf("%s: verdict %+v, err %v; want an error and a cost of 2 cents", content, v, err)
		}
	}
	// A fenced answer, as a compatible server without structured outputs
	// writes it, is read.
	s := newClassifyServer(t, func(_ int, _ map[string]any, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, completionJSON("```json\n{\"class\":\"not_now\",\"reason\":\"next quarter\"}\n```", 10, 10))
	})
	if v, err := s.executor(t).ClassifyReply(context.Background(), agents.ReplyToClassify{Text: "hmm"}); err != nil || v.Class != agents.ReplyNotNow {
		t.Errorf("fenced answer: %+v, %v", v, err)
	}
}

// replyWorld is a store with contacted leads and the Replies cycle asking
// the server for second opinions.
type replyWorld struct {
	*agentstest.World
	replies *agents.RepliesCycle
	n       int
}

func newReplyWorld(t *testing.T, s *classifyServer, timeout time.Duration) *replyWorld {
	w := &replyWorld{World: agentstest.NewWorld(t)}
	w.replies = agents.NewRepliesCycle(w.Store, w.Env, nil, agents.RepliesOptions{Classifier: s.executor(t), Currency: "usd", ClassifyTimeout: timeout})
	return w
}

func (w *replyWorld) contactedLead() *db.Lead {
	w.T.Helper()
	w.n++
	l, err := w.Store.CreateLead(w.Ctx, nil, db.NewLead{Name: fmt.Sprintf("Pat %d", w.n), Email: fmt.Sprintf("pat@lead%d.example", w.n),
		Company: fmt.Sprintf("Lead %d", w.n), DomainKey: fmt.Sprintf("lead%d.example", w.n), Niche: "dental clinics", Source: "test"})
	if err != nil {
		w.T.Fatal(err)
	}
	if _, err := w.Store.Bun().NewUpdate().Model((*db.Lead)(nil)).Set("status = ?", db.LeadContacted).Where("id = ?", l.ID).Exec(w.Ctx); err != nil {
		w.T.Fatal(err)
	}
	return l
}

func (w *replyWorld) reply(l *db.Lead, id, text string) string {
	w.T.Helper()
	raw := fmt.Sprintf("From: %s\r\nTo: outreach@hoss.example\r\nSubject: Re: A quick idea\r\nMessage-ID: <%s@lead.example>\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", l.EmailAddr(), id, strings.ReplaceAll(text, "\n", "\r\n"))
	outcome, err := w.replies.Apply(w.Ctx, []byte(raw), false)
	if err != nil {
		w.T.Fatalf("Apply: %v", err)
	}
	return outcome
}

func (w *replyWorld) stored(l *db.Lead) db.Reply {
	w.T.Helper()
	var r db.Reply
	if err := w.Store.Bun().NewSelect().Model(&r).Where("lead_id = ?", l.ID).Scan(w.Ctx); err != nil {
		w.T.Fatalf("reply of lead %d: %v", l.ID, err)
	}
	return r
}

func (w *replyWorld) sortings(r db.Reply) []db.ReplySorting {
	w.T.Helper()
	out, err := w.Store.ReplySortings(w.Ctx, r.ID)
	if err != nil {
		w.T.Fatal(err)
	}
	return out
}

const unsureText = "Could you tell me whether this works with the booking system we already run at our four clinics?"

// A reply the rules cannot sort goes to the LLM: its class is taken (an
// interested lead moves to responded), its reason shown as "LLM: …", the
// call and its cost recorded once, a second delivery not asked about again,
// and the cost counted in the kept total and the profit.
func TestTheLLMSortsWhatTheRulesCannot(t *testing.T) {
	s := newClassifyServer(t, answerClass("interested", "asks whether it works with their booking system", 40_000, 500))
	w := newReplyWorld(t, s, 0)
	l := w.contactedLead()
	if got := w.reply(l, "q1", unsureText); got != "stored" {
		t.Fatalf("outcome %q", got)
	}
	r := w.stored(l)
	if r.Class != db.ReplyInterested || r.ClassBy != "llm" || r.ClassReason != "LLM: asks whether it works with their booking system" {
		t.Errorf("reply = %s by %s: %q", r.Class, r.ClassBy, r.ClassReason)
	}
	var lead db.Lead
	if err := w.Store.Bun().NewSelect().Model(&lead).Where("l.id = ?", l.ID).Scan(w.Ctx); err != nil || lead.Status != db.LeadResponded {
		t.Errorf("lead is %s (%v), want responded", lead.Status, err)
	}
	if got := w.reply(l, "q1", unsureText); got != "duplicate" {
		t.Errorf("second delivery: %q", got)
	}
	if s.calls() != 1 {
		t.Errorf("the LLM was asked %d times, want once", s.calls())
	}
	rs := w.sortings(r)
	if len(rs) != 1 || rs[0].Class != db.ReplyInterested || rs[0].CostCents != 11 || rs[0].Currency != "usd" || rs[0].Model != "gpt-4o-mini" {
		t.Errorf("sortings = %+v", rs)
	}
	st, err := w.Store.Stats(w.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := db.Totals{{Cents: 11, Currency: "usd"}}
	if !slices.Equal(st.ReplySortCost, want) || st.ReplySortings != 1 ||
		!slices.Equal(st.CollectedProfit, db.Totals{{Cents: -11, Currency: "usd"}}) || !slices.Equal(st.Profit, db.Totals{{Cents: -11, Currency: "usd"}}) {
		t.Errorf("stats: sort cost %v (%d), collected profit %v, profit %v", st.ReplySortCost, st.ReplySortings, st.CollectedProfit, st.Profit)
	}

	// What the rules are sure of never reaches the LLM: an unsubscribe, a
	// one-word answer, an auto-reply.
	for i, text := range []string{"Please remove me from your list.", "No.", "Sounds good, let's talk next week."} {
		if got := w.reply(w.contactedLead(), fmt.Sprintf("sure%d", i), text); got != "stored" {
			t.Errorf("%q: %q", text, got)
		}
	}
	if s.calls() != 1 {
		t.Errorf("sure replies went to the LLM: %d calls", s.calls())
	}
}

// An LLM that fails or does not answer in time loses no reply: it is stored
// with the rules' class, its reason says the LLM was unavailable, and the
// call is recorded at no cost. An LLM that calls a person's words a bounce
// is not followed.
func TestAnUnavailableLLMLosesNoReply(t *testing.T) {
	release := make(chan struct{})
	s := newClassifyServer(t, func(n int, body map[string]any, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			writeJSON(w, http.StatusInternalServerError, `{"error":{"message":"The server had an error while processing your request."}}`)
		case 2:
			select { // no answer until the cycle gives up
			case <-r.Context().Done():
			case <-release:
			}
		default:
			answerClass("bounce", "looks like a failure", 100, 10)(n, body, w, r)
		}
	})
	t.Cleanup(func() { close(release) })
	w := newReplyWorld(t, s, 300*time.Millisecond)
	for i, want := range []string{"server error (500 Internal Server Error)", "no answer within 300ms"} {
		l := w.contactedLead()
		if got := w.reply(l, fmt.Sprintf("e%d", i), unsureText); got != "stored" {
			t.Fatalf("outcome %q", got)
		}
		r := w.stored(l)
		if r.Class != db.ReplyOther || r.ClassBy != "rules" || !strings.Contains(r.ClassReason, "no rule matched; the LLM was unavailable (") ||
			!strings.Contains(r.ClassReason, want) {
			t.Errorf("reply %d = %s by %s: %q; want other by rules, …%q…", i, r.Class, r.ClassBy, r.ClassReason, want)
		}
		rs := w.sortings(r)
		if len(rs) != 1 || rs[0].Class != "" || rs[0].CostCents != 0 || !strings.HasPrefix(rs[0].Reason, "unavailable: ") {
			t.Errorf("sortings of reply %d = %+v", i, rs)
		}
	}
	l := w.contactedLead()
	w.reply(l, "b1", unsureText)
	if r := w.stored(l); r.Class != db.ReplyOther || r.ClassBy != "rules" || !strings.Contains(r.ClassReason, "the LLM said bounce") {
		t.Errorf("an LLM bounce was followed: %s by %s: %q", r.Class, r.ClassBy, r.ClassReason)
	}
	if ok, _ := w.Store.IsSuppressed(w.Ctx, l.EmailAddr()); ok {
		t.Error("an LLM bounce suppressed the address")
	}
	st, err := w.Store.Stats(w.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ReplySortings != 3 || !slices.Equal(st.ReplySortCost, db.Totals{{Cents: 1, Currency: "usd"}}) {
		t.Errorf("stats: %d sortings costing %v; want 3 costing 1 cent", st.ReplySortings, st.ReplySortCost)
	}
}
