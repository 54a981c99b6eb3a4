package agents

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hossagent/hossagent/db"
)

// renderBody renders body as RenderOutreach renders a first e-mail, through
// a pack that exists only for the call (the test runs alone: no test of
// this package is parallel).
func renderBody(t *testing.T, body string, d OutreachData) string {
	t.Helper()
	saved := outreachPacks
	t.Cleanup(func() { outreachPacks = saved })
	outreachPacks = append(slices.Clone(saved), templatePack{name: "probe", variants: []emailVariant{{subject: "s", body: body}}})
	e, err := RenderOutreach("probe", 0, d)
	outreachPacks = saved
	if err != nil {
		t.Fatal(err)
	}
	return e.Body
}

var placeholderToken = regexp.MustCompile(`\{[^{}\s]+\}`)

// The placeholders a follow-up may hold are those RenderOutreach fills: each
// one the packs' first e-mails use is accepted, and each one accepted is
// filled in.
func TestFollowUpPlaceholdersAreThoseRenderOutreachFills(t *testing.T) {
	for _, p := range outreachPacks {
		for _, v := range p.variants {
			for _, tok := range placeholderToken.FindAllString(v.subject+v.body, -1) {
				if !slices.Contains(followUpPlaceholders, tok) {
					t.Errorf("pack %s uses %s, which follow-ups refuse", p.name, tok)
				}
			}
		}
	}
	all := strings.Join(followUpPlaceholders, " ")
	if err := CheckFollowUpBody(all); err != nil {
		t.Fatalf("every placeholder: %v", err)
	}
	full := OutreachData{FirstName: "Ana", Company: "Zephyr Works", Niche: "widget making", SenderName: "Hoss Research", Offer: "briefs", Signature: "Sam"}
	for _, d := range []OutreachData{full, {}} {
		if got := renderBody(t, all, d); strings.ContainsAny(got, "{}") {
			t.Errorf("RenderOutreach leaves a placeholder of the list: %q", got)
		}
	}
	// The built-in follow-ups pass and render whole.
	for _, pack := range PackNames() {
		fs := DefaultFollowUps{}.FollowUps(pack)
		if err := CheckFollowUps(pack, fs); err != nil {
			t.Errorf("built-in follow-ups of %s: %v", pack, err)
		}
		for _, f := range fs {
			if got := renderBody(t, f.Body, full); strings.ContainsAny(got, "{}") || !strings.Contains(got, "Zephyr Works") {
				t.Errorf("%s step %d renders %q", pack, f.Step, got)
			}
		}
	}
}

func TestCheckFollowUpBodyRefusesWhatWouldReachAProspectAsTyped(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"Hi {frist_name},", "unknown placeholder {frist_name}"},
		{"Hi {First_Name}", "unknown placeholder {First_Name}"},
		{"Hi {first_name", "a { that opens no placeholder"},
		{"Hi first_name}", "a } that closes no placeholder"},
		{"{{first_name}}", "a { that opens no placeholder"},
		{"Hi {fir{first_name}", "a { that opens no placeholder"},
		{"   \n ", "the body is empty"},
		{strings.Repeat("é", db.MaxStepBodyChars+1), "longer than 5000 characters"},
		{"bad \xff", "not valid UTF-8"},
	} {
		err := CheckFollowUpBody(tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v, want %q", tc.body, err, tc.want)
		}
	}
	if err := CheckFollowUpBody("Hi {first_name}, {company's} note — " + strings.Repeat("é", 4900)); err != nil {
		t.Errorf("a good body: %v", err)
	}
	err := CheckFollowUps(PackSaaS, []FollowUp{{Step: 2, DelayDays: 0, Body: "a"}, {Step: 4, DelayDays: 3, Body: "{x}"}})
	for _, want := range []string{"waits 0 business days", "is step 4, want 3", "unknown placeholder {x}"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckFollowUps: %v, lacks %q", err, want)
		}
	}
	six := make([]FollowUp, MaxFollowUps+1)
	for i := range six {
		six[i] = FollowUp{Step: 2 + i, DelayDays: 1, Body: "b"}
	}
	if err := CheckFollowUps(PackSaaS, six); err == nil || !strings.Contains(err.Error(), "at most 5") {
		t.Errorf("six follow-ups: %v", err)
	}
}

func TestSeedSequencesOnceAndStoredSequencesReload(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	if ok, err := SeedSequences(ctx, store); err != nil || !ok {
		t.Fatalf("SeedSequences = %v, %v", ok, err)
	}
	if ok, err := SeedSequences(ctx, store); err != nil || ok {
		t.Fatalf("second SeedSequences = %v, %v", ok, err)
	}
	steps, err := store.ListSequenceSteps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(PackNames()) * len(builtinFollowUps); len(steps) != want {
		t.Fatalf("%d steps stored, want %d", len(steps), want)
	}
	seq, err := NewStoredSequences(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, pack := range PackNames() {
		if got := seq.FollowUps(pack); !slices.Equal(got, DefaultFollowUps{}.FollowUps(pack)) {
			t.Errorf("%s = %+v", pack, got)
		}
	}
	// A copy: the caller cannot change the holder.
	seq.FollowUps(PackSaaS)[0].Body = "changed"
	if seq.FollowUps(PackSaaS)[0].Body == "changed" {
		t.Error("FollowUps returned the holder's own slice")
	}

	// An edit shows after Reload, not before; readers run meanwhile.
	mine := []FollowUp{{Step: 2, DelayDays: 7, Body: "Still keen, {first_name}?"}}
	if _, err := store.ReplaceSequenceSteps(ctx, PackSaaS, FollowUpSteps(PackSaaS, mine)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ReplaceSequenceSteps(ctx, PackAgency, nil); err != nil {
		t.Fatal(err)
	}
	if got := seq.FollowUps(PackSaaS); len(got) != 2 {
		t.Errorf("before Reload: %+v", got)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if n := len(seq.FollowUps(PackSaaS)); n != 1 && n != 2 {
					t.Errorf("a reader saw %d follow-ups", n)
					return
				}
			}
		})
	}
	if err := seq.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got := seq.FollowUps(PackSaaS); !slices.Equal(got, mine) {
		t.Errorf("after Reload: %+v", got)
	}
	if got := seq.FollowUps(PackAgency); got != nil {
		t.Errorf("an emptied pack has follow-ups: %+v", got)
	}
	if got := seq.FollowUps("nope"); got != nil {
		t.Errorf("an unknown pack: %+v", got)
	}
	if got := seq.FollowUps(PackGeneral); len(got) != 2 {
		t.Errorf("an untouched pack: %+v", got)
	}

	// A stored body the renderer would leave a placeholder in (written past
	// the editor) fails Reload, and the holder keeps what it had.
	if _, err := store.Bun().ExecContext(ctx, "UPDATE sequence_steps SET body = 'Hi {frist_name}' WHERE pack = ?", PackSaaS); err != nil {
		t.Fatal(err)
	}
	if err := seq.Reload(ctx); err == nil || !strings.Contains(err.Error(), "{frist_name}") {
		t.Errorf("Reload of a bad body: %v", err)
	}
	if got := seq.FollowUps(PackSaaS); !slices.Equal(got, mine) {
		t.Errorf("after a failed Reload: %+v", got)
	}
	if _, err := NewStoredSequences(ctx, store); err == nil {
		t.Error("NewStoredSequences loaded a bad body")
	}
}
