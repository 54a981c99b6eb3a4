package agents

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// bizdevOpts are generous caps, a 1–3 s gap and a sleep recorder.
func bizdevOpts(s *outreachSleeps) BizDevOptions {
	return BizDevOptions{
		MaxPerCycle: 10, MaxPerHour: 50, MaxPerDay: 200,
		SendDelayMin: time.Second, SendDelayMax: 3 * time.Second, Sleep: s.Sleep,
		From: "outreach@hossagent.example", SenderName: "Hoss Research", Offer: "research briefs in days.",
		Signature: "Sam from Hoss Research", PostalAddress: "1 Test Street, Springfield", BaseURL: "https://hoss.example/",
	}
}

func (r *outreachRig) bizdev(m Mailer, opts BizDevOptions) *BizDevCycle {
	return NewBizDevCycle(r.store, r.env(), m, opts)
}

func (r *outreachRig) run(c Cycle) Counts {
	r.t.Helper()
	counts, err := c.Run(r.ctx)
	if err != nil {
		r.t.Fatalf("Run: %v", err)
	}
	return counts
}

func TestBizDevWithNothingToDo(t *testing.T) {
	r := newOutreachRig(t)
	// A lead without e-mail is never contacted.
	if _, err := r.store.CreateLead(r.ctx, nil, db.NewLead{Company: "Website Only", Website: "https://site.example", Source: "test"}); err != nil {
		t.Fatal(err)
	}
	m := &outreachMailer{mode: MailModeSMTP}
	counts := r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{})))
	wantOutreachCounts(t, counts, Counts{"queued": 0, "sent": 0, "dry_run": 0, "suppressed": 0, "failed": 0, "capped": 0, "needs_review": 0})
	if len(counts) != 7 {
		t.Errorf("counts = %v, want the seven BizDev counts", counts)
	}
	if m.callCount() != 0 || r.events.count(EventDataChanged) != 0 {
		t.Errorf("mailer calls %d, events %d; want none", m.callCount(), r.events.count(EventDataChanged))
	}
	// The caps were seeded into settings from the options.
	for key, want := range map[string]string{db.SettingEmailMaxPerCycle: "10", db.SettingEmailMaxPerHour: "50", db.SettingEmailMaxPerDay: "200"} {
		if got, _ := r.store.Setting(r.ctx, key, ""); got != want {
			t.Errorf("setting %s = %q, want %q", key, got, want)
		}
	}
}

func TestBizDevDryRunMarksContactedAndRequeueSendsForReal(t *testing.T) {
	r := newOutreachRig(t)
	a := r.addLead("ana lopez", "ana@alpha-agency.example", "Alpha Agency", "digital marketing agency")
	b := r.addLead("Ben", "ben@beta-soft.example", "Beta Soft", "B2B SaaS")
	counts := r.run(r.bizdev(NewDryRunMailer(), bizdevOpts(&outreachSleeps{})))
	wantOutreachCounts(t, counts, Counts{"queued": 2, "dry_run": 2, "sent": 0})
	for _, id := range []int64{a.ID, b.ID} {
		l := r.lead(id)
		if l.Status != db.LeadContacted || !l.DryRun || l.ContactedAt == nil {
			t.Fatalf("lead %d after dry run: status %s dry_run %v contacted_at %v", id, l.Status, l.DryRun, l.ContactedAt)
		}
		ms := r.messages(id)
		if len(ms) != 1 || ms[0].Status != db.MessageDryRun || !strings.HasPrefix(ms[0].ProviderID, "dry-run-") || ms[0].SentAt == nil {
			t.Fatalf("messages of lead %d: %+v", id, ms)
		}
	}
	if msg := r.messages(a.ID)[0]; msg.Template != "agency/1" && msg.Template != "agency/2" || !strings.Contains(msg.Body, "Hi Ana") && !strings.Contains(msg.Body, "Hello Ana") {
		t.Errorf("agency lead got template %q body %q", msg.Template, msg.Body)
	}
	if r.events.count(EventDataChanged) != 1 {
		t.Errorf("data_changed events = %d, want 1", r.events.count(EventDataChanged))
	}

	// A second dry run finds nothing to do.
	counts = r.run(r.bizdev(NewDryRunMailer(), bizdevOpts(&outreachSleeps{})))
	wantOutreachCounts(t, counts, Counts{"queued": 0, "dry_run": 0})

	n, err := RequeueDryRun(r.ctx, r.store)
	if err != nil || n != 2 {
		t.Fatalf("RequeueDryRun = %d, %v; want 2", n, err)
	}
	if l := r.lead(a.ID); l.Status != db.LeadNew || l.DryRun {
		t.Fatalf("requeued lead: status %s dry_run %v", l.Status, l.DryRun)
	}
	real := &outreachMailer{mode: MailModeSMTP}
	counts = r.run(r.bizdev(real, bizdevOpts(&outreachSleeps{})))
	wantOutreachCounts(t, counts, Counts{"queued": 2, "sent": 2, "dry_run": 0})
	if l := r.lead(b.ID); l.Status != db.LeadContacted || l.DryRun {
		t.Fatalf("lead after real send: status %s dry_run %v", l.Status, l.DryRun)
	}
	if ms := r.messages(b.ID); len(ms) != 2 || ms[1].Status != db.MessageSent || ms[1].ProviderID != "prov-ben@beta-soft.example" {
		t.Fatalf("messages after real send: %+v", ms)
	}
	if n, _ := RequeueDryRun(r.ctx, r.store); n != 0 {
		t.Fatalf("RequeueDryRun after real sends = %d, want 0", n)
	}
}

func TestBizDevPerCycleCapOldestFirst(t *testing.T) {
	r := newOutreachRig(t)
	var leads []*db.Lead
	for i := range 5 {
		leads = append(leads, r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), ""))
	}
	opts := bizdevOpts(&outreachSleeps{})
	opts.MaxPerCycle = 2
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"queued": 2, "sent": 2})
	if got := m.sentTo(); got["p0@co0.example"] != 1 || got["p1@co1.example"] != 1 || len(got) != 2 {
		t.Fatalf("first cycle sent to %v, want the two oldest leads", got)
	}
	if l := r.lead(leads[2].ID); l.Status != db.LeadNew {
		t.Fatalf("third lead is %s, want new", l.Status)
	}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"queued": 2, "sent": 2})
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"queued": 1, "sent": 1})
	if m.callCount() != 5 {
		t.Fatalf("mailer calls = %d, want 5", m.callCount())
	}
}

func TestBizDevHourlyCapKeepsMessagesQueuedUntilTheNextWindow(t *testing.T) {
	r := newOutreachRig(t)
	for i := range 5 {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	opts := bizdevOpts(&outreachSleeps{})
	opts.MaxPerHour = 2
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"queued": 5, "sent": 2, "capped": 3})
	if n := r.count("SELECT COUNT(*) FROM messages WHERE status = 'queued'"); n != 3 {
		t.Fatalf("queued messages = %d, want 3", n)
	}
	r.clock.Advance(30 * time.Minute)
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"queued": 0, "sent": 0, "capped": 3})
	r.clock.Advance(31 * time.Minute) // the first two sends are now over an hour old
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"sent": 2, "capped": 1})
	if m.callCount() != 4 {
		t.Fatalf("mailer calls = %d, want 4", m.callCount())
	}
}

func TestBizDevDailyCap(t *testing.T) {
	r := newOutreachRig(t)
	for i := range 4 {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	opts := bizdevOpts(&outreachSleeps{})
	opts.MaxPerDay = 3
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"sent": 3, "capped": 1})
	r.clock.Advance(2 * time.Hour) // the hour is free again, the day is not
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"sent": 0, "capped": 1})
	r.clock.Advance(22*time.Hour + time.Second)
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"sent": 1, "capped": 0})
}

func TestBizDevCapsSurviveARestart(t *testing.T) {
	r := newOutreachRig(t)
	for i := range 4 {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	opts := bizdevOpts(&outreachSleeps{})
	opts.MaxPerHour = 2
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"sent": 2})

	// "Restart": a fresh store handle and a fresh cycle whose configuration
	// asks for more. The persisted cap and the persisted sends win.
	r.store = r.open()
	opts.MaxPerHour = 50
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"sent": 0, "capped": 2})

	// The admin raises the cap at run time.
	if err := r.store.SetEmailCaps(r.ctx, db.EmailCaps{PerCycle: 10, PerHour: 3, PerDay: 200}); err != nil {
		t.Fatal(err)
	}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"sent": 1, "capped": 1})
}

func TestBizDevNeverSendsToSuppressedAddressOrDomain(t *testing.T) {
	r := newOutreachRig(t)
	addr := r.addLead("", "gone@one.example", "One", "")
	dom := r.addLead("", "someone@mail.two.example", "Two", "")
	ok := r.addLead("", "fine@three.example", "Three", "")
	if err := r.store.AddSuppression(r.ctx, "address", "Gone@One.example", "unsubscribed", "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.store.AddSuppression(r.ctx, "domain", "two.example", "complaint", "test"); err != nil {
		t.Fatal(err)
	}
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"queued": 3, "sent": 1, "suppressed": 2})
	if got := m.sentTo(); len(got) != 1 || got["fine@three.example"] != 1 {
		t.Fatalf("sent to %v, want only fine@three.example", got)
	}
	for _, l := range []*db.Lead{addr, dom} {
		if got := r.lead(l.ID); got.Status != db.LeadUnsubscribed {
			t.Errorf("suppressed lead %s is %s, want unsubscribed", l.EmailAddr(), got.Status)
		}
		if ms := r.messages(l.ID); len(ms) != 1 || ms[0].Status != db.MessageSuppressed {
			t.Errorf("messages of %s: %+v", l.EmailAddr(), ms)
		}
	}
	if got := r.lead(ok.ID); got.Status != db.LeadContacted {
		t.Errorf("unsuppressed lead is %s", got.Status)
	}
	// Nothing is ever retried for them.
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"queued": 0, "sent": 0, "suppressed": 0})
}

func TestBizDevLeadThatMovedOnIsNotSent(t *testing.T) {
	r := newOutreachRig(t)
	l := r.addLead("", "late@co.example", "Co", "")
	opts := bizdevOpts(&outreachSleeps{})
	opts.MaxPerHour = 0 // queue only
	m := &outreachMailer{mode: MailModeSMTP}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"queued": 1, "capped": 1})
	if _, err := r.store.Bun().NewUpdate().Model((*db.Lead)(nil)).Set("status = ?", db.LeadDead).Where("id = ?", l.ID).Exec(r.ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.store.SetEmailCaps(r.ctx, db.EmailCaps{PerCycle: 10, PerHour: 10, PerDay: 10}); err != nil {
		t.Fatal(err)
	}
	wantOutreachCounts(t, r.run(r.bizdev(m, opts)), Counts{"sent": 0, "suppressed": 1})
	if m.callCount() != 0 || r.lead(l.ID).Status != db.LeadDead {
		t.Fatalf("mailer calls %d, lead %s", m.callCount(), r.lead(l.ID).Status)
	}
}

func TestBizDevProviderErrorIsRetriedThenFailsAfterThreeAttempts(t *testing.T) {
	r := newOutreachRig(t)
	bad := r.addLead("", "bad@co.example", "Co", "")
	m := &outreachMailer{mode: MailModeSMTP, fail: func(_ int, _ OutgoingMail) error { return errOutreachProvider }}
	for attempt := 1; attempt <= 3; attempt++ {
		wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"failed": 1, "sent": 0})
		ms := r.messages(bad.ID)
		if len(ms) != 1 || ms[0].Status != db.MessageFailed || ms[0].Attempts != attempt || ms[0].Error != errOutreachProvider.Error() {
			t.Fatalf("after attempt %d: messages %+v", attempt, ms)
		}
		want := db.LeadNew
		if attempt == 3 {
			want = db.LeadFailed
		}
		if got := r.lead(bad.ID).Status; got != want {
			t.Fatalf("after attempt %d: lead is %s, want %s", attempt, got, want)
		}
	}
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"failed": 0, "queued": 0})
	if m.callCount() != 3 {
		t.Fatalf("mailer calls = %d, want 3", m.callCount())
	}
}

func TestBizDevRetrySucceedsAndIsNeverSentAgain(t *testing.T) {
	r := newOutreachRig(t)
	l := r.addLead("", "flaky@co.example", "Co", "")
	m := &outreachMailer{mode: MailModeSMTP, fail: func(call int, _ OutgoingMail) error {
		if call == 1 {
			return errOutreachProvider
		}
		return nil
	}}
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"failed": 1})
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"sent": 1, "queued": 0})
	ms := r.messages(l.ID)
	if len(ms) != 1 || ms[0].Status != db.MessageSent || ms[0].Attempts != 2 || ms[0].Error != "" {
		t.Fatalf("messages: %+v", ms)
	}
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"sent": 0, "queued": 0})
	if m.callCount() != 2 {
		t.Fatalf("mailer calls = %d, want 2", m.callCount())
	}
}

func TestBizDevMessageStuckInSendingIsFlaggedNotResent(t *testing.T) {
	r := newOutreachRig(t)
	l := r.addLead("", "stuck@co.example", "Co", "")
	msg, err := r.store.QueueMessage(r.ctx, l.ID, func(*db.Lead, int64) (db.OutboxDraft, error) {
		return db.OutboxDraft{Template: "general/1", Subject: "Hello", Body: "Hi"}, nil
	})
	if err != nil || msg == nil {
		t.Fatalf("QueueMessage: %v, %v", msg, err)
	}
	// A cycle claimed it and died before hearing from the provider.
	if c, err := r.store.ClaimMessage(r.ctx, msg.ID, db.EmailCaps{PerCycle: 10, PerHour: 10, PerDay: 10}); err != nil || c != db.ClaimOK {
		t.Fatalf("ClaimMessage = %v, %v", c, err)
	}
	m := &outreachMailer{mode: MailModeSMTP}
	// Soon after, it may still be in flight in another run: left alone.
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"needs_review": 0, "queued": 0, "sent": 0})
	r.clock.Advance(StaleSendingAfter + time.Second)
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"needs_review": 1, "queued": 0, "sent": 0})
	wantOutreachCounts(t, r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{}))), Counts{"needs_review": 0, "queued": 0, "sent": 0})
	ms := r.messages(l.ID)
	if len(ms) != 1 || ms[0].Status != db.MessageSending || !ms[0].NeedsReview {
		t.Fatalf("messages: %+v", ms)
	}
	if m.callCount() != 0 {
		t.Fatalf("mailer calls = %d, want 0", m.callCount())
	}
}

func TestBizDevUnsubscribeHeadersFooterAndToken(t *testing.T) {
	r := newOutreachRig(t)
	l := r.addLead("Dana Lee", "dana@delta.example", "Delta", "revenue operations")
	m := &outreachMailer{mode: MailModeSMTP}
	r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{})))
	if len(m.sent) != 1 {
		t.Fatalf("sent %d messages", len(m.sent))
	}
	got, msg := m.sent[0], r.messages(l.ID)[0]
	if got.From != "outreach@hossagent.example" || got.FromName != "Hoss Research" || got.To != "dana@delta.example" || got.OutboxID != msg.ID {
		t.Errorf("envelope: %+v", got)
	}
	lu := got.Headers["List-Unsubscribe"]
	if !strings.HasPrefix(lu, "<https://hoss.example/unsubscribe/") || !strings.HasSuffix(lu, ">") {
		t.Fatalf("List-Unsubscribe = %q", lu)
	}
	if got.Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("List-Unsubscribe-Post = %q", got.Headers["List-Unsubscribe-Post"])
	}
	link := strings.Trim(lu, "<>")
	if !strings.Contains(got.Body, link) || !strings.Contains(got.Body, "1 Test Street, Springfield") || got.Body != msg.Body {
		t.Errorf("body lacks the footer, or differs from the outbox:\n%s", got.Body)
	}
	token := strings.TrimPrefix(link, "https://hoss.example/unsubscribe/")
	tokens, err := LoadUnsubscribeTokens(r.ctx, r.store, r.rnd)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tokens.VerifyUnsubscribeToken(token); !ok || id != msg.ID {
		t.Fatalf("VerifyUnsubscribeToken = %d, %v; want %d, true", id, ok, msg.ID)
	}
	if tokens.UnsubscribeToken(msg.ID) != token {
		t.Errorf("token is not stable")
	}
	tampered := []byte(token)
	tampered[len(tampered)-2] ^= 1
	for _, bad := range []string{"", "abc", string(tampered), tokens.UnsubscribeToken(msg.ID + 1)[:20], strings.Repeat("A", 300)} {
		if _, ok := tokens.VerifyUnsubscribeToken(bad); ok {
			t.Errorf("token %q verified", bad)
		}
	}
	other := newOutreachRig(t)
	otherTokens, err := LoadUnsubscribeTokens(other.ctx, other.store, newOutreachRand(99))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := otherTokens.VerifyUnsubscribeToken(token); ok {
		t.Errorf("another install's key verified this token")
	}
}

func TestBizDevSleepsARandomGapBetweenSends(t *testing.T) {
	r := newOutreachRig(t)
	for i := range 4 {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	s := &outreachSleeps{}
	r.run(r.bizdev(&outreachMailer{mode: MailModeSMTP}, bizdevOpts(s)))
	if len(s.slept) != 3 {
		t.Fatalf("slept %v, want 3 gaps between 4 sends", s.slept)
	}
	for _, d := range s.slept {
		if d < time.Second || d > 3*time.Second {
			t.Errorf("gap %s outside 1s..3s", d)
		}
	}

	// A cancelled sleep stops the cycle; what was sent stays recorded.
	r2 := newOutreachRig(t)
	for i := range 3 {
		r2.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	opts := bizdevOpts(s)
	opts.Sleep = func(context.Context, time.Duration) error { return context.Canceled }
	counts, err := r2.bizdev(&outreachMailer{mode: MailModeSMTP}, opts).Run(r2.ctx)
	if err == nil || counts["sent"] != 1 {
		t.Fatalf("Run with cancelled sleep = %v, %v; want 1 sent and an error", counts, err)
	}
}

func TestBizDevConcurrentRunsNeverSendALeadTwoMessages(t *testing.T) {
	r := newOutreachRig(t)
	const leads = 24
	for i := range leads {
		r.addLead("", fmt.Sprintf("p%d@co%d.example", i, i), fmt.Sprintf("Co %d", i), "")
	}
	opts := bizdevOpts(&outreachSleeps{})
	opts.MaxPerCycle, opts.MaxPerHour = 8, 20
	m := &outreachMailer{mode: MailModeSMTP}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 3 {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.bizdev(m, opts).Run(r.ctx); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		r.clock.Advance(2 * time.Hour)
	}
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Run: %v", err)
	}
	for to, n := range m.sentTo() {
		if n != 1 {
			t.Errorf("%s received %d messages", to, n)
		}
	}
	if got := len(m.sentTo()); got != leads {
		t.Errorf("%d leads received mail, want %d", got, leads)
	}
	if n := r.count("SELECT COUNT(*) FROM (SELECT lead_id FROM messages GROUP BY lead_id HAVING COUNT(*) > 1)"); n != 0 {
		t.Errorf("%d leads have more than one message", n)
	}
	// The hourly cap held across the concurrent runs.
	if n := r.count("SELECT COUNT(*) FROM messages WHERE status = 'sent' AND sent_at <= ?", outreachStart.Add(2*time.Hour)); n > 20 {
		t.Errorf("%d sends in the first hour, cap 20", n)
	}
}

func TestTemplatePacksRenderEveryVariantWithoutPlaceholders(t *testing.T) {
	if got := PackNames(); fmt.Sprint(got) != "[agency saas consulting revops general]" {
		t.Fatalf("packs = %v", got)
	}
	full := OutreachData{
		FirstName: "Ana", Company: "Zephyr Works", Niche: "widget making",
		SenderName: "Hoss Research", Offer: "research briefs in days.", Signature: "Sam\nHoss Research",
	}
	for _, pack := range PackNames() {
		if PackVariants(pack) < 2 {
			t.Errorf("pack %s has %d variants, want at least 2", pack, PackVariants(pack))
		}
		for v := range PackVariants(pack) {
			e, err := RenderOutreach(pack, v, full)
			if err != nil {
				t.Fatal(err)
			}
			all := e.Subject + "\n" + e.Body
			for _, want := range []string{"Ana", "Zephyr Works", "Hoss Research", "research briefs in days", "Sam\nHoss Research"} {
				if !strings.Contains(all, want) {
					t.Errorf("%s: lacks %q:\n%s", e.Template, want, all)
				}
			}
			if strings.ContainsAny(all, "{}<>") || strings.Contains(all, "days..") || strings.Contains(e.Subject, "\n") {
				t.Errorf("%s: leftover placeholder or markup:\n%s", e.Template, all)
			}
			bare, _ := RenderOutreach(pack, v, OutreachData{Company: "Zephyr Works"})
			if !strings.Contains(bare.Body, "there,") || strings.ContainsAny(bare.Subject+bare.Body, "{}") {
				t.Errorf("%s without personal data:\n%s", bare.Template, bare.Body)
			}
		}
	}
	if _, err := RenderOutreach("nope", 0, full); err == nil {
		t.Error("unknown pack rendered")
	}
	if _, err := RenderOutreach(PackSaaS, 9, full); err == nil {
		t.Error("unknown variant rendered")
	}
}

func TestPackForMapsNichesByKeyword(t *testing.T) {
	for niche, want := range map[string]string{
		"Digital Marketing Agency": PackAgency, "Branding": PackAgency, "B2B SaaS": PackSaaS,
		"software house": PackSaaS, "Data platform": PackSaaS, "Strategy Advisory": PackConsulting,
		"management consulting": PackConsulting, "RevOps": PackRevOps, "Revenue operations": PackRevOps,
		"sales ops": PackRevOps, "Lead Gen shop": PackRevOps, "bakery": PackGeneral, "": PackGeneral,
	} {
		if got := PackFor(niche); got != want {
			t.Errorf("PackFor(%q) = %s, want %s", niche, got, want)
		}
	}
	for _, pack := range PackNames() {
		for _, niche := range PackNiches(pack) {
			if got := PackFor(niche); got != pack {
				t.Errorf("pack %s's own niche %q maps to %s", pack, niche, got)
			}
		}
	}
	for name, want := range map[string]string{"ana lopez": "Ana", "  Élodie ": "Élodie", "": "", "jane@x.example": "", "3M team": ""} {
		if got := FirstName(name); got != want {
			t.Errorf("FirstName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestDryRunMailerSendsNothingAndNumbersIDs(t *testing.T) {
	m := NewDryRunMailer()
	var ids []string
	for range 2 {
		id, err := m.Send(context.Background(), OutgoingMail{To: "a@b.example"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if m.Mode() != MailModeDryRun || fmt.Sprint(ids) != "[dry-run-1 dry-run-2]" {
		t.Fatalf("mode %s ids %v", m.Mode(), ids)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Send(ctx, OutgoingMail{}); err == nil {
		t.Fatal("Send with a cancelled context succeeded")
	}
}

// A send whose answer was lost (the body went out, no reply came) may have
// been accepted: the message is flagged for review and never sent again,
// even after later cycles and past the stale threshold.
func TestBizDevUnknownOutcomeIsFlaggedNeverResent(t *testing.T) {
	r := newOutreachRig(t)
	lead := r.addLead("Uma Unknown", "uma@unknown-co.example", "Unknown Co", "agency")
	m := &outreachMailer{mode: MailModeSMTP, fail: func(int, OutgoingMail) error {
		return &MailError{Provider: "smtp", Unknown: true, Err: fmt.Errorf("timeout waiting for the reply to DATA")}
	}}
	counts := r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{})))
	if counts["needs_review"] != 1 || counts["failed"] != 0 || counts["sent"] != 0 {
		t.Fatalf("counts = %v, want one message flagged for review", counts)
	}
	msgs := r.messages(lead.ID)
	if len(msgs) != 1 || msgs[0].Status != db.MessageSending || !msgs[0].NeedsReview {
		t.Fatalf("message = %+v, want sending and flagged", msgs)
	}
	m.fail = nil
	for i := 0; i < 3; i++ {
		r.clock.Advance(time.Hour)
		r.run(r.bizdev(m, bizdevOpts(&outreachSleeps{})))
	}
	if m.callCount() != 1 || len(r.messages(lead.ID)) != 1 {
		t.Errorf("mailer called %d times, %d messages; want the one unknown send only", m.callCount(), len(r.messages(lead.ID)))
	}
}
