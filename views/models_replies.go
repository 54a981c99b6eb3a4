package views

import (
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
)

// sequencePosition says where a lead is in its sequence.
func sequencePosition(l Lead) string {
	switch {
	case l.SequenceStep == 0:
		return "not started"
	case l.NextStepAt == nil && l.SequenceStop == "" && l.DraftStep == 0:
		return strconv.Itoa(l.SequenceStep) + " sent; finished"
	}
	return strconv.Itoa(l.SequenceStep) + " sent"
}

// sequenceDue is when the lead's next step is due, written by at, or that
// its draft waits for review, or "".
func sequenceDue(l Lead, at func(time.Time) string) string {
	if l.DraftStep > 0 {
		return "step " + strconv.Itoa(l.DraftStep) + " draft waiting for review"
	}
	if l.NextStepAt == nil {
		return ""
	}
	return "step " + strconv.Itoa(l.SequenceStep+1) + " due " + at(*l.NextStepAt)
}

// sequenceEnded says why the lead's sequence ended early, or "".
func sequenceEnded(l Lead) string {
	if l.SequenceStop == "" {
		return ""
	}
	return "ended: " + l.SequenceStop
}

// replyClassLabel is a reply class as people read it ("not now").
func replyClassLabel(c string) string { return strings.ReplaceAll(c, "_", " ") }

// replyClassURL is where an operator changes how reply id is sorted.
func replyClassURL(id int64) templ.SafeURL {
	return templ.SafeURL("/admin/replies/" + strconv.FormatInt(id, 10) + "/class")
}
