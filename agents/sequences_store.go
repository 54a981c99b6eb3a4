package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hossagent/hossagent/db"
)

// The follow-ups as the store keeps them (db/sequences.go): seeded once
// from DefaultFollowUps (SeedSequences), edited in the admin
// (/admin/sequences), and held by the process in StoredSequences, which
// BizDev reads through the Sequences port.

// followUpPlaceholders are the placeholders a follow-up's body may hold:
// exactly those RenderOutreach fills in (TestFollowUpPlaceholdersAreThoseRenderOutreachFills
// keeps the two lists the same).
var followUpPlaceholders = []string{
	"{first_name}", "{company}", "{company's}", "{Company}", "{niches}",
	"{sender}", "{Sender}", "{offer}", "{signature}",
}

// FollowUpPlaceholders lists the placeholders a follow-up's body may hold,
// for the editor's help.
func FollowUpPlaceholders() []string { return append([]string(nil), followUpPlaceholders...) }

// CheckFollowUpBody reports why body cannot be a follow-up's: empty, over
// db.MaxStepBodyChars characters, not valid UTF-8, or holding a brace that
// is not one of FollowUpPlaceholders ("{frist_name}"), which would reach a
// prospect as typed.
func CheckFollowUpBody(body string) error {
	switch {
	case strings.TrimSpace(body) == "":
		return errors.New("the body is empty")
	case !utf8.ValidString(body):
		return errors.New("the body is not valid UTF-8")
	case utf8.RuneCountInString(body) > db.MaxStepBodyChars:
		return fmt.Errorf("the body is longer than %d characters", db.MaxStepBodyChars)
	}
	list := strings.Join(followUpPlaceholders, ", ")
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			if p := placeholderAt(body[i:]); p != "" {
				i += len(p) - 1
				continue
			}
			if j := strings.IndexAny(body[i+1:], "{}\n"); j >= 0 && j <= 40 && body[i+1+j] == '}' {
				return fmt.Errorf("the body holds the unknown placeholder %s (the placeholders are %s)", body[i:i+2+j], list)
			}
			return fmt.Errorf("the body holds a { that opens no placeholder (the placeholders are %s)", list)
		case '}':
			return fmt.Errorf("the body holds a } that closes no placeholder (the placeholders are %s)", list)
		}
	}
	return nil
}

// placeholderAt is the placeholder s starts with, or "".
func placeholderAt(s string) string {
	for _, p := range followUpPlaceholders {
		if strings.HasPrefix(s, p) {
			return p
		}
	}
	return ""
}

// CheckFollowUps reports every problem of a pack's follow-ups at once:
// steps not numbered 2, 3, … without gaps, more than MaxFollowUps, a
// delay outside 1 to 30 business days, a body CheckFollowUpBody refuses.
func CheckFollowUps(pack string, fs []FollowUp) error {
	var errs []error
	if len(fs) > MaxFollowUps {
		errs = append(errs, fmt.Errorf("pack %s has %d follow-ups, at most %d", pack, len(fs), MaxFollowUps))
	}
	for i, f := range fs {
		if f.Step != db.MinSequenceStep+i {
			errs = append(errs, fmt.Errorf("pack %s's follow-up %d is step %d, want %d", pack, i+1, f.Step, db.MinSequenceStep+i))
		}
		if f.DelayDays < db.MinStepDelayDays || f.DelayDays > db.MaxStepDelayDays {
			errs = append(errs, fmt.Errorf("pack %s step %d waits %d business days (%d to %d)", pack, f.Step, f.DelayDays, db.MinStepDelayDays, db.MaxStepDelayDays))
		}
		if err := CheckFollowUpBody(f.Body); err != nil {
			errs = append(errs, fmt.Errorf("pack %s step %d: %w", pack, f.Step, err))
		}
	}
	return errors.Join(errs...)
}

// FollowUpSteps is a pack's follow-ups as the store keeps them.
func FollowUpSteps(pack string, fs []FollowUp) []db.SequenceStep {
	out := make([]db.SequenceStep, len(fs))
	for i, f := range fs {
		out[i] = db.SequenceStep{Pack: pack, Step: f.Step, DelayDays: f.DelayDays, Body: f.Body}
	}
	return out
}

// SeedSequences stores DefaultFollowUps for each of PackNames() once, when
// the store holds no follow-ups and never did (db.SeedSequenceSteps), and
// reports whether it did; an operator's follow-ups, even none, are never
// overwritten. main calls it at start, before NewStoredSequences.
func SeedSequences(ctx context.Context, store *db.DB) (bool, error) {
	var steps []db.SequenceStep
	for _, pack := range PackNames() {
		fs := DefaultFollowUps{}.FollowUps(pack)
		if err := CheckFollowUps(pack, fs); err != nil {
			return false, err
		}
		steps = append(steps, FollowUpSteps(pack, fs)...)
	}
	return store.SeedSequenceSteps(ctx, steps)
}

// LoadSequences reads every pack's stored follow-ups, validated
// (CheckFollowUps): a pack with no stored steps has none.
func LoadSequences(ctx context.Context, store *db.DB) (map[string][]FollowUp, error) {
	steps, err := store.ListSequenceSteps(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]FollowUp{}
	for _, s := range steps {
		out[s.Pack] = append(out[s.Pack], FollowUp{Step: s.Step, DelayDays: s.DelayDays, Body: s.Body})
	}
	var errs []error
	for pack, fs := range out {
		errs = append(errs, CheckFollowUps(pack, fs))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sequences: the stored follow-ups are not valid: %w", err)
	}
	return out, nil
}

// StoredSequences is the stored follow-ups as the process holds them, the
// Sequences BizDev reads: loaded at start, reloaded after each admin edit
// (Reload). Safe for concurrent use.
type StoredSequences struct {
	store *db.DB
	mu    sync.RWMutex
	cur   map[string][]FollowUp
}

var _ Sequences = (*StoredSequences)(nil)

// NewStoredSequences loads the stored follow-ups (seeded first, see
// SeedSequences) into a holder.
func NewStoredSequences(ctx context.Context, store *db.DB) (*StoredSequences, error) {
	h := &StoredSequences{store: store}
	if err := h.Reload(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// Reload reads the stored follow-ups again; on an error the holder keeps
// what it had.
func (h *StoredSequences) Reload(ctx context.Context) error {
	cur, err := LoadSequences(ctx, h.store)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.cur = cur
	h.mu.Unlock()
	return nil
}

// FollowUps returns pack's follow-ups as last loaded, in step order (a
// copy); none for a pack without stored steps.
func (h *StoredSequences) FollowUps(pack string) []FollowUp {
	h.mu.RLock()
	defer h.mu.RUnlock()
	fs := h.cur[pack]
	if len(fs) == 0 {
		return nil
	}
	out := make([]FollowUp, len(fs))
	copy(out, fs)
	return out
}
