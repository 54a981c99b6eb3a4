package app

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/db"
)

// The leads table's bulk form: tick two rows, "mark dead", confirm; the
// result shows beside the table, the converted lead is named as refused,
// the table updates live, and the lead not ticked is left alone.
func TestBrowserBulkMarkLeadsDead(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, nil)
	f.seed(t)
	f.exec(t, "UPDATE leads SET status = 'converted' WHERE id = 3")
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.acceptDialogs(t)
	b.markPage(t)
	b.click(t, "#lead-pick-1")
	b.click(t, "#lead-pick-3")
	b.click(t, "#leads-bulk-dead")
	b.waitText(t, "#admin-leads-result", "Marked dead: 1 of the 2 leads selected")
	b.waitText(t, "#admin-leads-result", "#3")
	b.waitText(t, "#admin-leads-result", "it is converted")
	// The live update re-renders the table: lead 1 is dead there, and its
	// box is still ticked (hx-preserve).
	b.waitText(t, "#admin-leads tbody tr:has(#lead-pick-1)", "dead")
	checked, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector("#lead-pick-1").checked && !document.querySelector("#lead-pick-2").checked`))
	if err != nil || !checked {
		t.Errorf("ticks after the live update: %v %v", checked, err)
	}
	b.assertNotReloaded(t)
	for id, want := range map[int64]string{1: db.LeadDead, 2: db.LeadNew, 3: db.LeadConverted} {
		if got := f.leadStatus(t, id); got != want {
			t.Errorf("lead %d is %s, want %s", id, got, want)
		}
	}
	if b.dialogs.Load() == 0 {
		t.Error("the action was not confirmed first")
	}
}

// A failed task is retried from its page (the fields update in place) and
// the failed rows the tasks table shows are retried at once from the table.
func TestBrowserTaskRetry(t *testing.T) {
	b := newBrowser(t)
	f, _ := liveFixture(t, nil)
	f.seed(t)
	one, other := f.failedTask(t, false), f.failedTask(t, false)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b.signIn(t, f.srv.URL, u.Email)
	b.acceptDialogs(t)
	b.do(t, chromedp.Navigate(fmt.Sprintf("%s/admin/tasks/%d", f.srv.URL, one)), chromedp.WaitVisible(chromedp.CSS("#task-retry")))
	b.markPage(t)
	b.click(t, "#task-retry")
	b.waitText(t, "#task-actions", "pending again")
	b.waitText(t, "#record-fields", "pending")
	b.assertNotReloaded(t)
	if s, n := f.taskStatus(t, one); s != db.TaskPending || n != 0 {
		t.Errorf("task %d: %s, %d attempts", one, s, n)
	}

	b.do(t, chromedp.Navigate(f.srv.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#tasks-retry-failed")))
	b.waitText(t, "#tasks-retry-failed", "Retry all failed shown (1)")
	b.markPage(t)
	b.click(t, "#tasks-retry-failed")
	b.waitText(t, "#admin-tasks-result", "1 of the 1 task is pending again")
	// Live: the table no longer shows a failed row, so the button goes.
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`!document.querySelector("#tasks-retry-failed")`, chromedp.WithPollingMutation())); err != nil {
		t.Errorf("the retry button stayed after the live update: %v", err)
	}
	b.assertNotReloaded(t)
	if s, _ := f.taskStatus(t, other); s != db.TaskPending {
		t.Errorf("task %d is %s", other, s)
	}
}
