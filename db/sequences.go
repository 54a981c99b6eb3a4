package db

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// This file holds the follow-ups of the outreach sequences (migration
// 0016): per template pack, steps 2 to N, each with its delay in business
// days and its body. agents.StoredSequences turns them into the agents'
// follow-ups; the admin edits them (/admin/sequences).

// Bounds of a stored follow-up, as the schema checks them.
const (
	MinSequenceStep  = 2    // the first follow-up; step 1 is the pack's first e-mail
	MaxSequenceStep  = 6    // the last follow-up a pack may have
	MinStepDelayDays = 1    // business days after the step before
	MaxStepDelayDays = 30   //
	MaxStepBodyChars = 5000 // a body, in characters
	MaxPackKey       = 64   // a pack's name, in bytes
)

// AuditSequenceEdited is the audit action of an edit of a pack's
// follow-ups.
const AuditSequenceEdited = "sequence follow-ups edited"

// settingSequencesSeeded marks that the follow-ups were seeded once, so an
// operator who deletes every follow-up of every pack does not get the
// built-in ones back at the next start.
const settingSequencesSeeded = "sequences.seeded"

// ErrBadSequence: a pack's follow-ups are not contiguous from step 2, or a
// step is out of bounds.
var ErrBadSequence = errors.New("invalid sequence")

// SequenceStep is one stored follow-up of a pack.
type SequenceStep struct {
	bun.BaseModel `bun:"table:sequence_steps,alias:ss"`

	Pack      string    `bun:"pack,pk"`
	Step      int       `bun:"step,pk"`
	DelayDays int       `bun:"delay_days,notnull"`
	Body      string    `bun:"body,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// ListSequenceSteps reads every stored follow-up, by pack then step (a
// small table, read at start and after an edit).
func (d *DB) ListSequenceSteps(ctx context.Context) ([]SequenceStep, error) {
	var steps []SequenceStep
	if err := d.bun.NewSelect().Model(&steps).OrderExpr("ss.pack, ss.step").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read the sequence steps: %w", err)
	}
	return steps, nil
}

// checkSequence reports the first problem of pack's steps: they must be
// numbered 2, 3, … in order, at most up to MaxSequenceStep, each within the
// bounds of the schema.
func checkSequence(pack string, steps []SequenceStep) error {
	if pack == "" || len(pack) > MaxPackKey {
		return fmt.Errorf("%w: the pack name must be 1 to %d bytes", ErrBadSequence, MaxPackKey)
	}
	if len(steps) > MaxSequenceStep-MinSequenceStep+1 {
		return fmt.Errorf("%w: pack %s has %d follow-ups, at most %d", ErrBadSequence, pack, len(steps), MaxSequenceStep-MinSequenceStep+1)
	}
	for i, s := range steps {
		switch {
		case s.Pack != pack:
			return fmt.Errorf("%w: a step of pack %q is given for pack %s", ErrBadSequence, s.Pack, pack)
		case s.Step != MinSequenceStep+i:
			return fmt.Errorf("%w: pack %s's follow-up %d is numbered %d (steps run 2, 3, … without gaps)", ErrBadSequence, pack, i+1, s.Step)
		case s.DelayDays < MinStepDelayDays || s.DelayDays > MaxStepDelayDays:
			return fmt.Errorf("%w: pack %s step %d waits %d business days (%d to %d)", ErrBadSequence, pack, s.Step, s.DelayDays, MinStepDelayDays, MaxStepDelayDays)
		case s.Body == "" || utf8.RuneCountInString(s.Body) > MaxStepBodyChars:
			return fmt.Errorf("%w: pack %s step %d's body must be 1 to %d characters", ErrBadSequence, pack, s.Step, MaxStepBodyChars)
		}
	}
	return nil
}

// ReplaceSequenceSteps replaces pack's follow-ups with steps (none: the
// pack has no follow-ups) in one transaction, and returns the steps as they
// were. Steps must be numbered 2, 3, … without gaps (ErrBadSequence);
// nothing is changed when any is refused.
func (d *DB) ReplaceSequenceSteps(ctx context.Context, pack string, steps []SequenceStep) ([]SequenceStep, error) {
	if err := checkSequence(pack, steps); err != nil {
		return nil, fmt.Errorf("store: unable to save pack %s's follow-ups: %w", pack, err)
	}
	var before []SequenceStep
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		before = nil
		if err := tx.NewSelect().Model(&before).Where("ss.pack = ?", pack).OrderExpr("ss.step").Scan(ctx); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model((*SequenceStep)(nil)).Where("pack = ?", pack).Exec(ctx); err != nil {
			return err
		}
		return insertSequenceSteps(ctx, tx, steps, d.Now())
	})
	if err != nil {
		return nil, fmt.Errorf("store: unable to save pack %s's follow-ups: %w", pack, err)
	}
	return before, nil
}

func insertSequenceSteps(ctx context.Context, tx bun.Tx, steps []SequenceStep, now time.Time) error {
	if len(steps) == 0 {
		return nil
	}
	rows := make([]SequenceStep, len(steps))
	for i, s := range steps {
		s.UpdatedAt = now.UTC()
		rows[i] = s
	}
	_, err := tx.NewInsert().Model(&rows).Exec(ctx)
	return err
}

// SeedSequenceSteps stores steps (every pack's follow-ups) when the
// follow-ups were never seeded and the table is empty, and reports whether
// it did. It seeds once: a table an operator emptied stays empty. One
// transaction.
func (d *DB) SeedSequenceSteps(ctx context.Context, steps []SequenceStep) (bool, error) {
	byPack := map[string][]SequenceStep{}
	var packs []string
	for _, s := range steps {
		if _, ok := byPack[s.Pack]; !ok {
			packs = append(packs, s.Pack)
		}
		byPack[s.Pack] = append(byPack[s.Pack], s)
	}
	for _, p := range packs {
		if err := checkSequence(p, byPack[p]); err != nil {
			return false, fmt.Errorf("store: unable to seed the sequence steps: %w", err)
		}
	}
	seeded := false
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		// RunInTx may run this again (PostgreSQL retries a conflict): start
		// from nothing.
		seeded = false
		_, done, err := settingIn(ctx, tx, settingSequencesSeeded)
		if err != nil || done {
			return err
		}
		now := d.Now()
		stored, err := tx.NewSelect().Model((*SequenceStep)(nil)).Limit(1).Exists(ctx)
		if err != nil {
			return err
		}
		if !stored {
			if err := insertSequenceSteps(ctx, tx, steps, now); err != nil {
				return err
			}
			seeded = true
		}
		return putSetting(ctx, tx, settingSequencesSeeded, "true", now)
	})
	if err != nil {
		return false, fmt.Errorf("store: unable to seed the sequence steps: %w", err)
	}
	return seeded, nil
}
