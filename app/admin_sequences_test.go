package app

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// sequencesFixture is the fixture with the built-in follow-ups stored, the
// process's copy of them wired (Deps.Sequences) and an admin signed in.
func sequencesFixture(t *testing.T) (*fixture, *agents.StoredSequences) {
	t.Helper()
	var seq *agents.StoredSequences
	f := newFixture(t, nil, func(d *Deps) {
		ctx := context.Background()
		if _, err := agents.SeedSequences(ctx, d.Store); err != nil {
			t.Fatal(err)
		}
		var err error
		if seq, err = agents.NewStoredSequences(ctx, d.Store); err != nil {
			t.Fatal(err)
		}
		d.Sequences = seq
	})
	f.signInAs(t, db.RoleAdmin)
	return f, seq
}

// followUpForm is a pack's form with the rows given as delay, body pairs,
// padded with empty rows as the page sends them.
func followUpForm(pairs ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(pairs); i += 2 {
		v.Add("delay", pairs[i])
		v.Add("body", pairs[i+1])
	}
	for len(v["delay"]) < agents.MaxFollowUps {
		v.Add("delay", "")
		v.Add("body", "")
	}
	return v
}

func TestSequencesPageShowsEveryPacksFirstEmailAndFollowUps(t *testing.T) {
	f, _ := sequencesFixture(t)
	resp, doc, _ := f.get(t, "/admin/sequences")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, pack := range agents.PackNames() {
		panel := doc.Find("#sequence-" + pack)
		if panel.Length() != 1 {
			t.Fatalf("no panel for %s", pack)
		}
		if n := panel.Find("article.sequence-variant").Length(); n != agents.PackVariants(pack) {
			t.Errorf("%s shows %d variants", pack, n)
		}
		e, _ := agents.RenderOutreach(pack, 0, agents.OutreachData{FirstName: "Ana", Company: "Example Co", Niche: agents.PackNiches(pack)[0],
			SenderName: f.server.cfg.Email.SenderName, Offer: f.server.cfg.Email.Offer, Signature: f.server.cfg.Email.Signature})
		assertContains(t, pack+" first e-mail", text(panel.Find("article.sequence-variant").First()), e.Subject, "Hi Ana")
		if n := panel.Find("textarea[name=body]").Length(); n != agents.MaxFollowUps {
			t.Errorf("%s has %d body fields", pack, n)
		}
		if got := panel.Find("#seq-" + pack + "-body-2").Text(); !strings.Contains(got, "A quick follow-up on my note below") {
			t.Errorf("%s step 2 body = %q", pack, got)
		}
		if v, _ := panel.Find("#seq-" + pack + "-delay-3").Attr("value"); v != "5" {
			t.Errorf("%s step 3 delay = %q", pack, v)
		}
		if v, _ := panel.Find("#seq-" + pack + "-delay-4").Attr("value"); v != "" {
			t.Errorf("%s step 4 (empty) delay = %q", pack, v)
		}
		if a, _ := panel.Find("form").Attr("action"); a != "/admin/sequences/"+pack {
			t.Errorf("%s form posts to %q", pack, a)
		}
	}
	assertContains(t, "help", text(doc.Find("#sequences-help")), "{first_name}", "{signature}", "at most 5 follow-ups")
	// The plans page links here.
	if _, doc, _ := f.get(t, "/admin/plans"); doc.Find(`a[href="/admin/sequences"]`).Length() != 1 {
		t.Error("the plans page does not link to the sequences")
	}
}

func TestSaveFollowUpsValidatesKeepsWhatWasTypedAndAudits(t *testing.T) {
	f, seq := sequencesFixture(t)
	six := []string{}
	for i := range agents.MaxFollowUps + 1 {
		six = append(six, "2", "Note "+string(rune('a'+i)))
	}
	for _, tc := range []struct {
		name string
		form url.Values
		want []string
	}{
		{"delay 0", followUpForm("0", "Hi {first_name}"), []string{`step 2's delay "0" is not a whole number of business days from 1 to 30`}},
		{"delay 31", followUpForm("3", "ok", "31", "Hi"), []string{`step 3's delay "31"`}},
		{"delay in words", followUpForm("soon", "Hi"), []string{`step 2's delay "soon"`}},
		{"no delay", followUpForm("", "Hi"), []string{"step 2 has no delay"}},
		{"no body", followUpForm("3", "  "), []string{"step 2: the body is empty"}},
		{"unknown placeholder", followUpForm("3", "Hi {frist_name}, about {company}"), []string{"unknown placeholder {frist_name}", "{first_name}"}},
		{"stray brace", followUpForm("3", "Hi {first_name"), []string{"opens no placeholder"}},
		{"too many steps", followUpForm(six...), []string{"6 follow-ups were given; a pack takes at most 5"}},
		{"body too long", followUpForm("3", strings.Repeat("é", db.MaxStepBodyChars+1)), []string{"longer than 5000 characters"}},
	} {
		resp, body := f.htmxPost(t, "/admin/sequences/saas", tc.form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="sequence-saas"`) {
			t.Errorf("%s: %d", tc.name, resp.StatusCode)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, strings.ReplaceAll(strings.ReplaceAll(w, `"`, "&#34;"), "'", "&#39;")) {
				t.Errorf("%s: the answer lacks %q", tc.name, w)
			}
		}
		// Nothing lost: what was typed is in the form again.
		doc := parseHTML(t, []byte(body))
		typed := tc.form["body"][0]
		if got := doc.Find("#seq-saas-body-2").Text(); strings.TrimSpace(typed) != "" && len(typed) < 200 && got != strings.TrimSpace(typed) {
			t.Errorf("%s: step 2's body shows %q, typed %q", tc.name, got, typed)
		}
		if v, _ := doc.Find("#seq-saas-delay-2").Attr("value"); v != strings.TrimSpace(tc.form["delay"][0]) {
			t.Errorf("%s: step 2's delay shows %q", tc.name, v)
		}
	}
	if tc := doc6(t, f, six); tc != agents.MaxFollowUps+1 {
		t.Errorf("too many steps: the form shows %d rows, want all 6 typed", tc)
	}
	if f.auditCount(t, db.AuditSequenceEdited) != 0 || !slices.Equal(seq.FollowUps(agents.PackSaaS), agents.DefaultFollowUps{}.FollowUps(agents.PackSaaS)) {
		t.Fatal("a refused save changed the follow-ups or was audited")
	}
	steps, _ := f.store.ListSequenceSteps(context.Background())
	if len(steps) != len(agents.PackNames())*2 {
		t.Fatalf("a refused save changed the store: %d steps", len(steps))
	}

	// A good save: empty rows dropped (a gap closes), CRLF made LF, the
	// holder reloaded, audited.
	form := followUpForm("4", "Hi {first_name},\r\nstill keen?\r\n", "", "", " 10 ", "Last note for {company}.")
	resp, body := f.htmxPost(t, "/admin/sequences/saas", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Follow-ups of saas saved: 2") {
		t.Fatalf("save: %d %s", resp.StatusCode, body)
	}
	want := []agents.FollowUp{{Step: 2, DelayDays: 4, Body: "Hi {first_name},\nstill keen?"}, {Step: 3, DelayDays: 10, Body: "Last note for {company}."}}
	if got := seq.FollowUps(agents.PackSaaS); !slices.Equal(got, want) {
		t.Errorf("the holder after the save: %+v", got)
	}
	if got := seq.FollowUps(agents.PackAgency); len(got) != 2 {
		t.Errorf("another pack changed: %+v", got)
	}
	entries := auditFor(t, f, "sequence saas")
	if len(entries) != 1 || entries[0].Action != db.AuditSequenceEdited || entries[0].Actor != "admin@hossagent.test" ||
		entries[0].Detail != "steps 2 (3d), 3 (5d) → 2 (4d), 3 (10d); bodies changed: 2, 3" {
		t.Errorf("audit = %+v", entries)
	}
	// Every row empty: the pack has no follow-ups.
	resp, body = f.htmxPost(t, "/admin/sequences/saas", followUpForm())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "get the first e-mail only") {
		t.Fatalf("emptying: %d %s", resp.StatusCode, body)
	}
	if got := seq.FollowUps(agents.PackSaaS); got != nil {
		t.Errorf("after emptying: %+v", got)
	}
	// A plain form POST gets the whole page; an unknown pack is no page.
	resp, doc := f.post(t, f.client, "/admin/sequences/revops", followUpForm("2", "Hi"), f.withOrigin(nil))
	if resp.StatusCode != http.StatusOK || doc.Find("#sequence-agency").Length() != 1 || !strings.Contains(text(doc.Find("#sequence-revops")), "saved: 1") {
		t.Errorf("plain POST: %d", resp.StatusCode)
	}
	if resp, _ := f.htmxPost(t, "/admin/sequences/astrology", followUpForm("2", "Hi")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown pack: %d", resp.StatusCode)
	}
	if n := f.auditCount(t, db.AuditSequenceEdited); n != 3 {
		t.Errorf("%d audit entries, want 3", n)
	}
}

// doc6 posts six follow-ups and counts the rows the refused form shows.
func doc6(t *testing.T, f *fixture, pairs []string) int {
	t.Helper()
	_, body := f.htmxPost(t, "/admin/sequences/saas", followUpForm(pairs...))
	return parseHTML(t, []byte(body)).Find("#sequence-saas textarea[name=body]").Length()
}

func TestSequencesAreForAdminsOnlyAndSameSite(t *testing.T) {
	f, seq := sequencesFixture(t)
	form := followUpForm("2", "Hi")
	// A POST from another site is refused.
	resp, _ := f.post(t, f.client, "/admin/sequences/saas", form, map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
	// Other methods: 405.
	if resp, _ := f.do(t, f.client, http.MethodGet, "/admin/sequences/saas", nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET of the action: %d", resp.StatusCode)
	}
	// Anonymous: sent to the sign-in, nothing changed.
	anon := newClient(t)
	if resp, _ := f.do(t, anon, http.MethodGet, "/admin/sequences", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous GET: %d", resp.StatusCode)
	}
	if resp, _ := f.post(t, anon, "/admin/sequences/saas", form, f.withOrigin(nil)); resp.StatusCode == http.StatusOK {
		t.Errorf("anonymous POST: %d", resp.StatusCode)
	}
	// A viewer: 403.
	f.signInAs(t, db.RoleViewer)
	if resp, _, _ := f.get(t, "/admin/sequences"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer GET: %d", resp.StatusCode)
	}
	if resp, _ := f.post(t, f.client, "/admin/sequences/saas", form, f.withOrigin(nil)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer POST: %d", resp.StatusCode)
	}
	if f.auditCount(t, db.AuditSequenceEdited) != 0 || len(seq.FollowUps(agents.PackSaaS)) != 2 {
		t.Error("a refused POST changed the follow-ups")
	}
}

func TestSequencesPageEscapesHostileBodies(t *testing.T) {
	f, _ := sequencesFixture(t)
	hostile := `</textarea><script>alert(1)</script><img src=x onerror=alert(2)> & "quotes"`
	resp, _ := f.htmxPost(t, "/admin/sequences/general", followUpForm("3", hostile))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("save: %d", resp.StatusCode)
	}
	// Refused bodies are shown as typed too, escaped.
	_, refused := f.htmxPost(t, "/admin/sequences/agency", followUpForm("99", hostile))
	for name, page := range map[string]string{"page": pageBody(t, f, "/admin/sequences"), "refused answer": refused} {
		if strings.Contains(page, "<script>alert(1)") || strings.Contains(page, "<img src=x") || strings.Contains(page, "</textarea><script>") {
			t.Errorf("%s: the body is not escaped", name)
		}
	}
	_, doc, _ := f.get(t, "/admin/sequences")
	if got := doc.Find("#seq-general-body-2").Text(); got != hostile {
		t.Errorf("the stored body reads back as %q", got)
	}
	if strings.Contains(doc.Find("script").Text(), "alert") || doc.Find("img[onerror]").Length() != 0 {
		t.Error("markup from a body is on the page")
	}
}

func pageBody(t *testing.T, f *fixture, path string) string {
	t.Helper()
	_, _, body := f.get(t, path)
	return body
}

func TestSequenceFormOverTheLimitIsRefused(t *testing.T) {
	f, seq := sequencesFixture(t)
	big := url.Values{"delay": {"3"}, "body": {strings.Repeat("é", maxSequenceForm/2)}}
	resp, _ := f.htmxPost(t, "/admin/sequences/saas", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a form over the limit: %d", resp.StatusCode)
	}
	// Five bodies of 5000 accented characters fit.
	var pairs []string
	for range agents.MaxFollowUps {
		pairs = append(pairs, "1", strings.Repeat("é", db.MaxStepBodyChars))
	}
	if resp, body := f.htmxPost(t, "/admin/sequences/saas", followUpForm(pairs...)); resp.StatusCode != http.StatusOK {
		t.Errorf("five full bodies: %d %.300s", resp.StatusCode, body)
	}
	if got := seq.FollowUps(agents.PackSaaS); len(got) != agents.MaxFollowUps || got[4].Step != 6 {
		t.Errorf("stored: %d follow-ups", len(got))
	}
}
