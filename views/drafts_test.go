package views

import (
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// A lead whose step waits for review reads so in the leads table, never
// "finished"; the queue's approve-all form names exactly the drafts shown,
// at their revisions, and escapes what the drafts say.
func TestDraftWaitingAndQueue(t *testing.T) {
	p := AdminPage{Leads: []Lead{
		{ID: 1, Company: "First", Status: "new", DraftStep: 1},
		{ID: 2, Company: "Follow", Status: "contacted", SequenceStep: 1, DraftStep: 2},
		{ID: 3, Company: "Done", Status: "contacted", SequenceStep: 2},
	}}
	doc, _ := render(t, AdminLeads(p))
	want := []string{"not started step 1 draft waiting for review", "1 sent step 2 draft waiting for review", "2 sent; finished"}
	rows := doc.Find("#admin-leads tbody tr td.lead-sequence")
	for i, w := range want {
		if got := strings.Join(strings.Fields(rows.Eq(i).Text()), " "); got != w {
			t.Errorf("lead %d: sequence %q, want %q", i+1, got, w)
		}
	}

	q := DraftsPage{Review: true, Waiting: 3, MaxSubjectChars: 200, MaxBodyChars: 10000, Drafts: []Draft{
		{ID: 7, LeadID: 1, LeadCompany: "<b>First</b>", ToAddr: "a@first.example", Step: 1, Template: "saas/1", Subject: "Hi <script>", Body: "Body </textarea><script>x()</script>", Revision: 1, CreatedAt: time.Unix(0, 0)},
		{ID: 9, LeadID: 2, LeadCompany: "Follow", ToAddr: "b@follow.example", Step: 2, Template: "saas/step2", Subject: "Re: Hi", Body: "Again", InReplyTo: "<hossagent.outbox.3@x.example>", Revision: 3},
	}}
	doc, raw := render(t, OutreachDrafts(q))
	var refs []string
	doc.Find("#drafts-approve-all input[name=draft]").Each(func(_ int, s *goquery.Selection) { refs = append(refs, s.AttrOr("value", "")) })
	if strings.Join(refs, " ") != "7:1 9:3" {
		t.Errorf("approve-all refs = %v", refs)
	}
	if strings.Contains(raw, "<script>") || strings.Contains(raw, "<b>First") {
		t.Errorf("draft text not escaped:\n%s", raw)
	}
	if got := doc.Find("#draft-7-body").Text(); got != "Body </textarea><script>x()</script>" {
		t.Errorf("body field = %q", got)
	}
	if got := strings.Join(strings.Fields(doc.Find("#drafts-count").Text()), " "); got != "3 drafts are waiting; the oldest 2 are shown." {
		t.Errorf("count = %q", got)
	}
	if doc.Find("#draft-9").Text() == "" || !strings.Contains(doc.Find("#draft-9").Text(), "Threads under <hossagent.outbox.3@x.example>") {
		t.Errorf("follow-up draft does not show its thread: %q", doc.Find("#draft-9").Text())
	}
}
