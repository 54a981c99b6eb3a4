package views

import (
	"strconv"
	"strings"

	"github.com/a-h/templ"
)

// sequencePosition says where a lead is in its sequence.
func sequencePosition(l Lead) string {
	switch {
	case l.SequenceStep == 0:
		return "not started"
	case l.NextStepAt == nil && l.SequenceStop == "":
		return strconv.Itoa(l.SequenceStep) + " sent; finished"
	}
	return strconv.Itoa(l.SequenceStep) + " sent"
}

// replyClassLabel is a reply class as people read it ("not now").
func replyClassLabel(c string) string { return strings.ReplaceAll(c, "_", " ") }

// replyClassURL is where an operator changes how reply id is sorted.
func replyClassURL(id int64) templ.SafeURL {
	return templ.SafeURL("/admin/replies/" + strconv.FormatInt(id, 10) + "/class")
}
