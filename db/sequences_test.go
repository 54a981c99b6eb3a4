package db

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func testSteps(pack string, bodies ...string) []SequenceStep {
	out := make([]SequenceStep, len(bodies))
	for i, b := range bodies {
		out[i] = SequenceStep{Pack: pack, Step: MinSequenceStep + i, DelayDays: 3 + i, Body: b}
	}
	return out
}

func TestSequenceStepConstraintsInSQL(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	if _, err := d.ReplaceSequenceSteps(ctx, "saas", testSteps("saas", "Hi {first_name}")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", MaxStepBodyChars+1)
	for name, stmt := range map[string]string{
		"step 1 (the first e-mail)": `INSERT INTO sequence_steps VALUES ('agency', 1, 3, 'b', '2026-01-01 00:00:00+00:00')`,
		"step 7":                    `INSERT INTO sequence_steps VALUES ('agency', 7, 3, 'b', '2026-01-01 00:00:00+00:00')`,
		"fractional step":           `INSERT INTO sequence_steps VALUES ('agency', 2.5, 3, 'b', '2026-01-01 00:00:00+00:00')`,
		"no delay":                  `INSERT INTO sequence_steps VALUES ('agency', 2, 0, 'b', '2026-01-01 00:00:00+00:00')`,
		"delay of 31 days":          `INSERT INTO sequence_steps VALUES ('agency', 2, 31, 'b', '2026-01-01 00:00:00+00:00')`,
		"text delay":                `INSERT INTO sequence_steps VALUES ('agency', 2, 'soon', 'b', '2026-01-01 00:00:00+00:00')`,
		"empty body":                `INSERT INTO sequence_steps VALUES ('agency', 2, 3, '', '2026-01-01 00:00:00+00:00')`,
		"body too long":             `INSERT INTO sequence_steps VALUES ('agency', 2, 3, '` + long + `', '2026-01-01 00:00:00+00:00')`,
		"no body":                   `INSERT INTO sequence_steps VALUES ('agency', 2, 3, NULL, '2026-01-01 00:00:00+00:00')`,
		"no time":                   `INSERT INTO sequence_steps VALUES ('agency', 2, 3, 'b', NULL)`,
		"empty pack":                `INSERT INTO sequence_steps VALUES ('', 2, 3, 'b', '2026-01-01 00:00:00+00:00')`,
		"the same step twice":       `INSERT INTO sequence_steps VALUES ('saas', 2, 3, 'b', '2026-01-01 00:00:00+00:00')`,
	} {
		t.Run(name, func(t *testing.T) {
			if name == "fractional step" && testOnPostgres() {
				// The column is a BIGINT there: PostgreSQL rounds a
				// fraction on assignment, so none is ever stored.
				t.Skip("PostgreSQL: step is BIGINT, a fraction cannot be stored")
			}
			if _, err := d.Bun().ExecContext(ctx, stmt); err == nil {
				t.Fatalf("accepted: %.200s", stmt)
			}
		})
	}
	// The bounds themselves are fine, in characters (not bytes).
	ok := strings.Repeat("é", MaxStepBodyChars)
	if _, err := d.Bun().ExecContext(ctx, `INSERT INTO sequence_steps VALUES ('agency', 6, 30, ?, '2026-01-01 00:00:00+00:00')`, ok); err != nil {
		t.Errorf("step 6 after 30 days of 5000 characters: %v", err)
	}
	if _, err := d.Bun().ExecContext(ctx, `INSERT INTO sequence_steps VALUES ('agency', 2, 1, 'b', '2026-01-01 00:00:00+00:00')`); err != nil {
		t.Errorf("step 2 after 1 day: %v", err)
	}
}

func TestReplaceSequenceStepsInOneTransaction(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	if _, err := d.ReplaceSequenceSteps(ctx, "saas", testSteps("saas", "one", "two", "three")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReplaceSequenceSteps(ctx, "agency", testSteps("agency", "other pack")); err != nil {
		t.Fatal(err)
	}
	before, err := d.ReplaceSequenceSteps(ctx, "saas", testSteps("saas", "uno", "dos"))
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 3 || before[0].Body != "one" || before[2].Step != 4 || before[1].DelayDays != 4 {
		t.Errorf("before = %+v", before)
	}
	all, err := d.ListSequenceSteps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Pack != "agency" || all[1].Body != "uno" || all[2].Body != "dos" || all[2].Step != 3 ||
		!all[1].UpdatedAt.Equal(fixedNow.UTC()) {
		t.Fatalf("stored = %+v", all)
	}

	// Refused in Go: a gap, a start at 3, too many, bounds, another pack's step.
	gap := testSteps("saas", "a", "b")
	gap[1].Step = 4
	late := testSteps("saas", "a")
	late[0].Step = 3
	slow := testSteps("saas", "a")
	slow[0].DelayDays = 31
	foreign := testSteps("agency", "a")
	for name, steps := range map[string][]SequenceStep{
		"a gap":              gap,
		"starting at 3":      late,
		"six follow-ups":     testSteps("saas", "1", "2", "3", "4", "5", "6"),
		"31 days":            slow,
		"an empty body":      testSteps("saas", ""),
		"another pack's":     foreign,
		"a body over 5000":   testSteps("saas", strings.Repeat("x", MaxStepBodyChars+1)),
		"a second empty one": testSteps("saas", "fine", ""),
	} {
		if _, err := d.ReplaceSequenceSteps(ctx, "saas", steps); !errors.Is(err, ErrBadSequence) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A failure inside the transaction, after the delete (a test trigger
	// stands in for any refused insert), rolls the delete back with it.
	refuseWrites(t, d, "refuse_dos", "INSERT", "sequence_steps", "NEW.body = 'boom'", "boom")
	if _, err := d.ReplaceSequenceSteps(ctx, "saas", testSteps("saas", "fine", "boom")); err == nil {
		t.Error("a failing insert was not reported")
	}
	after, _ := d.ListSequenceSteps(ctx)
	if len(after) != 3 || after[1].Body != "uno" || after[2].Body != "dos" {
		t.Errorf("a failed replace changed the steps: %+v", after)
	}
	// No steps: the pack has no follow-ups; the other pack keeps its own.
	if _, err := d.ReplaceSequenceSteps(ctx, "saas", nil); err != nil {
		t.Fatal(err)
	}
	after, _ = d.ListSequenceSteps(ctx)
	if len(after) != 1 || after[0].Pack != "agency" {
		t.Errorf("after emptying saas: %+v", after)
	}
}

func TestSeedSequenceStepsOnce(t *testing.T) {
	d := mustOpen(t)
	ctx := context.Background()
	seed := append(testSteps("saas", "s2", "s3"), testSteps("agency", "a2")...)
	if ok, err := d.SeedSequenceSteps(ctx, seed); err != nil || !ok {
		t.Fatalf("first seed = %v, %v", ok, err)
	}
	if ok, err := d.SeedSequenceSteps(ctx, testSteps("revops", "r2")); err != nil || ok {
		t.Fatalf("second seed = %v, %v", ok, err)
	}
	all, _ := d.ListSequenceSteps(ctx)
	if len(all) != 3 || all[0].Pack != "agency" || all[2].Body != "s3" {
		t.Fatalf("stored = %+v", all)
	}
	// An operator empties every pack: the next start does not bring the
	// built-in follow-ups back.
	for _, p := range []string{"saas", "agency"} {
		if _, err := d.ReplaceSequenceSteps(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := d.SeedSequenceSteps(ctx, seed); err != nil || ok {
		t.Fatalf("seed after emptying = %v, %v", ok, err)
	}
	if n := countRows(t, d, "SELECT COUNT(*) FROM sequence_steps"); n != 0 {
		t.Errorf("%d steps after a seed of an emptied table", n)
	}
	// A bad seed is refused before anything is written.
	fresh := mustOpen(t)
	bad := testSteps("saas", "a", "b")
	bad[1].Step = 5
	if ok, err := fresh.SeedSequenceSteps(ctx, bad); !errors.Is(err, ErrBadSequence) || ok {
		t.Errorf("bad seed = %v, %v", ok, err)
	}
	if ok, err := fresh.SeedSequenceSteps(ctx, seed); err != nil || !ok {
		t.Errorf("seed after a refused one = %v, %v", ok, err)
	}
	// Steps stored before any seed (none of them the seed's) are kept.
	other := mustOpen(t)
	if _, err := other.ReplaceSequenceSteps(ctx, "general", testSteps("general", "mine")); err != nil {
		t.Fatal(err)
	}
	if ok, err := other.SeedSequenceSteps(ctx, seed); err != nil || ok {
		t.Errorf("seed over stored steps = %v, %v", ok, err)
	}
	if n := countRows(t, other, "SELECT COUNT(*) FROM sequence_steps"); n != 1 {
		t.Errorf("%d steps, want the operator's 1", n)
	}
}
