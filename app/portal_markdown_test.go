package app

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// Deliverables keep their structure and lose every way to run script.
func TestRenderDeliverable(t *testing.T) {
	src := "# Findings\n\nFirst paragraph.\n\nSecond paragraph.\n\n- one\n- two\n\n1. first\n2. second\n\n" +
		"<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n" +
		"Inline <b onclick=alert(3)>bold</b> and <a href=\"javascript:alert(4)\">raw link</a>.\n\n" +
		"[click](javascript:alert(5)) [data](data:text/html;base64,PHNjcmlwdD4=) <javascript:alert(6)> " +
		"![pic](javascript:alert(7)) [ok](https://example.com/report)\n\n" +
		"<div style=\"x\">\nblock html\n</div>\n\n```\n<script>code</script>\n```\n"
	out := renderDeliverable(src)
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Find("h1").Length() != 1 || doc.Find("p").Length() < 3 || doc.Find("ul li").Length() != 2 || doc.Find("ol li").Length() != 2 {
		t.Errorf("structure lost: %s", out)
	}
	if doc.Find("script, img[onerror], [onclick], [style], div").Length() != 0 {
		t.Errorf("raw HTML reached the page: %s", out)
	}
	lower := strings.ToLower(out)
	for _, bad := range []string{"<script", "onerror", "onclick", "=\"javascript:", "data:text/html", "<b ", "<img src=\"x\""} {
		if strings.Contains(lower, bad) {
			t.Errorf("output contains %q: %s", bad, out)
		}
	}
	doc.Find("a[href], img[src]").Each(func(_ int, s *goquery.Selection) {
		u := s.AttrOr("href", s.AttrOr("src", ""))
		if u != "" && !strings.HasPrefix(u, "https://") {
			t.Errorf("link or image to %q", u)
		}
	})
	// The code block keeps its text, escaped.
	if got := doc.Find("pre code").Text(); !strings.Contains(got, "<script>code</script>") {
		t.Errorf("code block = %q", got)
	}
	if renderDeliverable("") != "" {
		t.Errorf("empty deliverable rendered")
	}
	if got := renderDeliverable(strings.Repeat("é", maxDeliverable)); len(got) > maxDeliverable+100 || !strings.HasPrefix(got, "<p>") {
		t.Errorf("huge deliverable: %d bytes", len(got))
	}
}
