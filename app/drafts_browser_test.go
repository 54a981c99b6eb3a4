package app

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/db"
)

// The review queue in a browser: the control room's e-mail panel counts
// the waiting drafts live and links to them; on the queue an admin
// approves one draft and then "all shown", each answered in place; the
// message is in the outbox, and the panel's count falls to zero.
func TestBrowserDraftsApproveFlow(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, map[string]string{"OUTREACH_REVIEW": "true"})
	_, first := draftFor(t, f.store, "Ana")
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.acceptDialogs(t)
	b.waitText(t, "#email-drafts", "1 waiting for review")
	b.markPage(t)
	_, second := draftFor(t, f.store, "Bo")
	f.server.refreshLive() // as BizDev's event does after it drafts
	b.waitText(t, "#email-drafts", "2 waiting for review")
	b.assertNotReloaded(t)

	b.click(t, "#email-drafts a")
	b.do(t, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf("#draft-%d", second.ID))))
	b.waitText(t, "#drafts-count", "2 drafts are waiting")
	b.markPage(t)
	b.click(t, fmt.Sprintf(`#draft-%d button[hx-post$="/approve"]`, first.ID))
	b.waitText(t, "#drafts-result", fmt.Sprintf("Draft %d approved", first.ID))
	b.waitText(t, "#drafts-count", "1 draft is waiting")
	b.click(t, "#drafts-approve-all button")
	b.waitText(t, "#drafts-result", "Approved 1 of the 1 draft shown")
	b.waitText(t, "#drafts-count", "No draft is waiting")
	b.assertNotReloaded(t)
	if n := countRows(t, f.store, "SELECT COUNT(*) FROM messages WHERE status = 'queued'"); n != 2 {
		t.Errorf("%d queued messages after the approvals, want 2", n)
	}
	b.do(t, chromedp.Navigate(f.srv.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#email-drafts")))
	b.waitText(t, "#email-drafts", "0 waiting for review")
}
