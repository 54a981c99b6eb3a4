package views

import "strconv"

// The view models of the sequence editor (/admin/sequences): each template
// pack's first e-mail (its variants, read-only) and its follow-ups, with
// the form that sets them. The app fills them from the stored follow-ups
// (app/admin_sequences.go).

// SequencesPage is the sequence editor.
type SequencesPage struct {
	Meta
	Packs []SequencePack
	// Placeholders are those a follow-up's body may hold.
	Placeholders []string
	// MaxFollowUps is how many follow-up rows a pack's form has.
	MaxFollowUps int
	// MinDelay and MaxDelay bound a delay, in business days.
	MinDelay, MaxDelay int
	// MaxBodyChars bounds a body, in characters.
	MaxBodyChars int
}

// SequencePack is one pack: its first e-mail's variants and its
// follow-ups, swapped in place after a save.
type SequencePack struct {
	Name     string
	Niches   []string
	Variants []SequenceVariant
	// FollowUps are the stored follow-ups, or the rows as typed after a
	// refusal.
	FollowUps []FollowUpRow
	// Result says what the last save did; ResultClass is "ok" or "bad".
	Result, ResultClass string
	// Limits, as the page's (for the form).
	MaxFollowUps, MinDelay, MaxDelay, MaxBodyChars int
}

// SequenceVariant is one variant of a pack's first e-mail, rendered for an
// example lead.
type SequenceVariant struct {
	Template, Subject, Body string
}

// FollowUpRow is one follow-up as the form shows it: its delay (as typed)
// and body.
type FollowUpRow struct {
	Delay, Body string
}

// Slots is the pack's follow-up rows padded with empty ones up to max
// (more when more were typed).
func (p SequencePack) Slots() []FollowUpRow {
	rows := append([]FollowUpRow(nil), p.FollowUps...)
	for len(rows) < p.MaxFollowUps {
		rows = append(rows, FollowUpRow{})
	}
	return rows
}

func sequenceURL(pack string) string { return "/admin/sequences/" + pack }

func sequenceField(pack, field string, i int) string {
	return "seq-" + pack + "-" + field + "-" + strconv.Itoa(i+2)
}

// followUpsText is a pack's follow-ups in a line ("2 follow-ups: after 3
// and 5 more business days").
func followUpsText(p SequencePack) string {
	n := 0
	for _, f := range p.FollowUps {
		if f.Body != "" {
			n++
		}
	}
	switch n {
	case 0:
		return "No follow-ups: leads of this pack get the first e-mail only."
	case 1:
		return "1 follow-up after the first e-mail."
	}
	return strconv.Itoa(n) + " follow-ups after the first e-mail."
}
