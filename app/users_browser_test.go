package app

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hossagent/hossagent/db"
)

// In a real browser an admin adds a viewer from the Users page, sees the
// password once in place beside the form, and the new account in the list
// without a reload; a second browser signs in with that password and lands
// on the dashboard, and the control room answers it 403.
func TestBrowserAdminAddsAViewer(t *testing.T) {
	f := newFixture(t, nil, cheapPasswords)
	f.seed(t)
	u := f.createUser(t, "ops@hossagent.test", db.RoleAdmin)
	b := newBrowser(t)
	b.signIn(t, f.srv.URL, u.Email)
	b.do(t,
		chromedp.Navigate(f.srv.URL+"/admin/users"),
		chromedp.WaitVisible(chromedp.CSS(`#user-email`)),
	)
	b.markPage(t)
	b.do(t,
		chromedp.SendKeys(chromedp.CSS(`#user-email`), "owner@example.com"),
		chromedp.SetValue(chromedp.CSS(`#user-role`), "viewer"),
	)
	b.click(t, `#user-new button[type=submit]`)
	b.waitText(t, "#user-result", "copy its password now")
	b.waitText(t, "#user-list", "owner@example.com")
	b.assertNotReloaded(t)
	password := b.text(t, "#user-result code")
	if len(password) != 24 {
		t.Fatalf("shown password %q", password)
	}

	viewer := newBrowser(t)
	viewer.do(t,
		chromedp.Navigate(f.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), "owner@example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.signout`)),
	)
	loc, _ := chromedp.Run(viewer.ctx, chromedp.Location())
	if !strings.HasSuffix(loc, "/") {
		t.Errorf("the viewer landed on %s, want the dashboard", loc)
	}
	viewer.do(t, chromedp.Navigate(f.srv.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if got := viewer.text(t, "body"); !strings.Contains(got, "Admins only") {
		t.Errorf("the viewer's /admin shows %q", got)
	}
}
