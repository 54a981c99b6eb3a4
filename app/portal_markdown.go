package app

import (
	"bytes"
	"html"
	"unicode/utf8"

	"github.com/yuin/goldmark"
)

// Deliverables (a task's result) are Markdown written by the agents; the
// portal shows them as formatted text: headings, lists and paragraphs
// kept, never one flattened paragraph. goldmark's defaults are the safe
// ones and are kept (never html.WithUnsafe): raw HTML in the source is
// left out ("<!-- raw HTML omitted -->"), and links and images whose URL
// is dangerous (javascript:, vbscript:, file:, data: other than images)
// lose it. The page's CSP allows no inline script and no image from
// elsewhere on top of that.

var deliverableMarkdown = goldmark.New()

// maxDeliverable bounds the Markdown rendered of one deliverable.
const maxDeliverable = 64 << 10

// renderDeliverable renders a deliverable's Markdown to HTML safe to put in
// the page as it is; "" for an empty one.
func renderDeliverable(src string) string {
	if src == "" {
		return ""
	}
	if len(src) > maxDeliverable {
		src = src[:maxDeliverable]
		for !utf8.ValidString(src) {
			src = src[:len(src)-1]
		}
	}
	var b bytes.Buffer
	if err := deliverableMarkdown.Convert([]byte(src), &b); err != nil {
		return "<p>" + html.EscapeString(src) + "</p>"
	}
	return b.String()
}
