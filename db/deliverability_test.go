package db

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// guardStore is a store with guard g and a clock the test moves.
func guardStore(t *testing.T, g Guard) (*DB, *time.Time) {
	t.Helper()
	now := fixedNow
	d := openTestStore(t, WithClock(func() time.Time { return now }), WithGuard(g))
	return d, &now
}

var roomyCaps = EmailCaps{PerCycle: 1000, PerHour: 1000, PerDay: 1000}

// guardSend sends one first e-mail to a new lead at addr, a minute after
// the last: queued, claimed and accepted (dryRun: recorded only).
func guardSend(t *testing.T, d *DB, now *time.Time, addr string, dryRun bool) *Lead {
	t.Helper()
	*now = now.Add(time.Minute)
	l := outboxLead(t, d, addr, "")
	m := outboxQueue(t, d, l.ID)
	if c := outboxClaim(t, d, m.ID, roomyCaps); c != ClaimOK {
		t.Fatalf("claim of the message to %s = %s", addr, c)
	}
	if err := d.MarkSent(context.Background(), m.ID, "p-"+addr, dryRun); err != nil {
		t.Fatal(err)
	}
	return l
}

// guardSends sends n messages to <prefix><i>@guard.example.
func guardSends(t *testing.T, d *DB, now *time.Time, prefix string, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range n {
		addrs[i] = fmt.Sprintf("%s%d@guard.example", prefix, i)
		guardSend(t, d, now, addrs[i], false)
	}
	return addrs
}

func bounce(t *testing.T, d *DB, now *time.Time, addr string) MailChange {
	t.Helper()
	*now = now.Add(time.Second)
	c, err := d.ApplyMailEvent(context.Background(), addr, SuppressBounced, "sendgrid:bounce")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustPause(t *testing.T, d *DB) OutreachPause {
	t.Helper()
	p, err := d.OutreachPause(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBounceRatePausesOutreachOnlyAboveTheThreshold(t *testing.T) {
	ctx := context.Background()
	d, now := guardStore(t, DefaultGuard())
	addrs := guardSends(t, d, now, "pat", 40)
	// 1 and 2 of 40 are 2.5% and 5%: not above 5%.
	for i, addr := range addrs[:2] {
		if c := bounce(t, d, now, addr); !c.Suppressed || c.Paused {
			t.Fatalf("bounce %d = %+v; want suppressed, not paused", i+1, c)
		}
	}
	if p := mustPause(t, d); p.Paused {
		t.Fatalf("paused at 2 of 40 bounces (5%%): %+v", p)
	}
	if w, err := d.BounceWindow(ctx); err != nil || w.Sends != 40 || w.Bounced != 2 || w.Over() {
		t.Fatalf("BounceWindow = %+v, %v; want 2 of 40, not over", w, err)
	}
	pausedAt := now.Add(time.Second)
	if c := bounce(t, d, now, addrs[2]); !c.Paused {
		t.Fatalf("the third bounce of 40 = %+v; want it to pause outreach", c)
	}
	p := mustPause(t, d)
	want := "3 of the last 40 recipients bounced (7.5% > 5%)"
	if !p.Paused || p.Reason != PauseBounceRate || p.Why() != want || !p.PausedAt.Equal(pausedAt) {
		t.Fatalf("OutreachPause = %+v (why %q); want paused for the bounce rate at %s: %q", p, p.Why(), pausedAt, want)
	}
	// Nothing is claimed while paused, and a later bounce keeps the reason.
	l := outboxLead(t, d, "next@guard.example", "")
	if c := outboxClaim(t, d, outboxQueue(t, d, l.ID).ID, roomyCaps); c != ClaimPaused {
		t.Fatalf("claim while paused = %s", c)
	}
	if c := bounce(t, d, now, addrs[3]); c.Paused {
		t.Fatal("a bounce while paused reported a new pause")
	}
	if p := mustPause(t, d); p.Why() != want || !p.PausedAt.Equal(pausedAt) {
		t.Fatalf("a later bounce changed the pause: %+v", p)
	}
}

func TestBounceRateNeedsTheMinimumSampleAndCountsTheLastNSends(t *testing.T) {
	d, now := guardStore(t, DefaultGuard())
	addrs := guardSends(t, d, now, "early", 10)
	// Half of ten bounce, but ten sends are below the sample of 20.
	for _, addr := range addrs[:5] {
		bounce(t, d, now, addr)
	}
	if p := mustPause(t, d); p.Paused {
		t.Fatalf("paused on 10 sends: %+v", p)
	}
	// 50 more: the 10 early ones and their 5 bounces leave the window of
	// the last 50.
	later := guardSends(t, d, now, "later", 50)
	bounce(t, d, now, addrs[5])
	if w, _ := d.BounceWindow(context.Background()); w.Sends != 50 || w.Bounced != 0 {
		t.Fatalf("BounceWindow = %+v; want 0 of 50", w)
	}
	for _, addr := range later[:2] {
		bounce(t, d, now, addr)
	}
	if p := mustPause(t, d); p.Paused {
		t.Fatalf("paused at 2 of the last 50 (4%%) with old bounces outside the window: %+v", p)
	}
	if c := bounce(t, d, now, later[2]); !c.Paused {
		t.Fatal("3 of the last 50 (6%) did not pause")
	}
	if why := mustPause(t, d).Why(); why != "3 of the last 50 recipients bounced (6% > 5%)" {
		t.Fatalf("why = %q", why)
	}
}

func TestBounceAfterAResumeCountsOnlyLaterSends(t *testing.T) {
	ctx := context.Background()
	d, now := guardStore(t, Guard{BounceRateBasisPoints: 500, BounceWindow: 50, BounceMinSends: 20})
	old := guardSends(t, d, now, "old", 20)
	for _, addr := range old[:2] {
		bounce(t, d, now, addr)
	}
	if p := mustPause(t, d); !p.Paused || p.Reason != PauseBounceRate {
		t.Fatalf("2 of 20 did not pause: %+v", p)
	}
	*now = now.Add(time.Hour)
	resumedAt := *now
	if was, err := d.ResumeOutreach(ctx); err != nil || !was.Paused || was.Reason != PauseBounceRate {
		t.Fatalf("ResumeOutreach = %+v, %v", was, err)
	}
	p := mustPause(t, d)
	if p.Paused || p.Reason != "" || p.Detail != "" || !p.ResumedAt.Equal(resumedAt) {
		t.Fatalf("after the resume: %+v; want running, no reason, resumed at %s", p, resumedAt)
	}
	// Late bounces of the old sends, and the same event again, do not
	// count: those sends are before the resume.
	for _, addr := range append(old[2:8], old[0]) {
		if c := bounce(t, d, now, addr); c.Paused {
			t.Fatalf("a bounce of an old send (%s) paused outreach again", addr)
		}
	}
	if w, _ := d.BounceWindow(ctx); w.Sends != 0 || w.Bounced != 0 {
		t.Fatalf("BounceWindow after the resume = %+v; want empty", w)
	}
	// New sends fill a fresh window: 1 of 20 is 5%, 2 of 20 is over.
	fresh := guardSends(t, d, now, "fresh", 20)
	bounce(t, d, now, fresh[0])
	if p := mustPause(t, d); p.Paused {
		t.Fatalf("1 of 20 fresh sends paused: %+v", p)
	}
	bounce(t, d, now, fresh[1])
	if p := mustPause(t, d); !p.Paused || p.Why() != "2 of the last 20 recipients bounced (10% > 5%)" {
		t.Fatalf("2 of 20 fresh sends: %+v (why %q)", p, p.Why())
	}
}

func TestBounceFromAReplyCountsAndDryRunSendsDoNot(t *testing.T) {
	ctx := context.Background()
	d, now := guardStore(t, Guard{BounceRateBasisPoints: 1000, BounceWindow: 10, BounceMinSends: 5})
	// Dry-run messages never left: neither their number nor their bounces
	// (the simulator's) count.
	var dry []*Lead
	for i := range 10 {
		dry = append(dry, guardSend(t, d, now, fmt.Sprintf("dry%d@guard.example", i), true))
	}
	for _, l := range dry[:5] {
		if _, err := d.ApplyReply(ctx, SortedReply{LeadID: l.ID, FromAddr: "mailer-daemon@guard.example", Class: ReplyBounce, By: "rules", Simulated: true}); err != nil {
			t.Fatal(err)
		}
	}
	if p := mustPause(t, d); p.Paused {
		t.Fatalf("dry-run bounces paused outreach: %+v", p)
	}
	var real []*Lead
	for i := range 5 {
		real = append(real, guardSend(t, d, now, fmt.Sprintf("real%d@guard.example", i), false))
	}
	// A DSN the Replies agent sorted as a bounce: 1 of 5 is 20% > 10%.
	out, err := d.ApplyReply(ctx, SortedReply{LeadID: real[0].ID, FromAddr: "mailer-daemon@guard.example", Subject: "Undelivered Mail Returned to Sender",
		InboundID: "<dsn-1@guard.example>", Class: ReplyBounce, By: "rules"})
	if err != nil || out.LeadMoved != LeadBounced {
		t.Fatalf("ApplyReply = %+v, %v", out, err)
	}
	if p := mustPause(t, d); !p.Paused || p.Why() != "1 of the last 5 recipients bounced (20% > 10%)" {
		t.Fatalf("after a DSN bounce: %+v (why %q)", p, p.Why())
	}
}

func TestBounceRateZeroNeverPauses(t *testing.T) {
	d, now := guardStore(t, Guard{BounceWindow: 50, BounceMinSends: 1})
	for _, addr := range guardSends(t, d, now, "pat", 3) {
		bounce(t, d, now, addr)
	}
	if p := mustPause(t, d); p.Paused {
		t.Fatalf("a rate of 0 paused outreach: %+v", p)
	}
}

func TestComplaintPausesOutreachOnce(t *testing.T) {
	ctx := context.Background()
	d, now := guardStore(t, DefaultGuard())
	guardSend(t, d, now, "angry@guard.example", false)
	*now = now.Add(time.Hour)
	c, err := d.ApplyMailEvent(ctx, "Angry@Guard.example", SuppressComplaint, "arf:feedback-report")
	if err != nil || !c.Suppressed || !c.LeadMoved || !c.Paused {
		t.Fatalf("ApplyMailEvent = %+v, %v; want suppressed, moved, paused", c, err)
	}
	p := mustPause(t, d)
	if !p.Paused || p.Reason != PauseComplaint || p.Why() != "a complaint from angry@guard.example (arf:feedback-report)" || !p.PausedAt.Equal(*now) {
		t.Fatalf("OutreachPause = %+v (why %q)", p, p.Why())
	}
	l := outboxLead(t, d, "calm@guard.example", "")
	if claim := outboxClaim(t, d, outboxQueue(t, d, l.ID).ID, roomyCaps); claim != ClaimPaused {
		t.Fatalf("claim after a complaint = %s", claim)
	}
	if _, err := d.ResumeOutreach(ctx); err != nil {
		t.Fatal(err)
	}
	// The same complaint delivered again changes nothing: no new pause.
	if c, err := d.ApplyMailEvent(ctx, "angry@guard.example", SuppressComplaint, "arf:feedback-report"); err != nil || c.Changed() || c.Paused {
		t.Fatalf("a repeated complaint = %+v, %v", c, err)
	}
	if p := mustPause(t, d); p.Paused {
		t.Fatalf("a repeated complaint paused outreach again: %+v", p)
	}
	// A complaint from an address no lead has still pauses: the sender's
	// reputation is at stake whatever the mail was.
	if c, err := d.ApplyMailEvent(ctx, "client@else.example", SuppressComplaint, "sendgrid:spamreport"); err != nil || !c.Paused {
		t.Fatalf("complaint from a stranger = %+v, %v", c, err)
	}
	if why := mustPause(t, d).Why(); why != "a complaint from client@else.example (sendgrid:spamreport)" {
		t.Fatalf("why = %q", why)
	}
}

func TestProviderErrorPauseHasItsReason(t *testing.T) {
	ctx := context.Background()
	d, now := guardStore(t, DefaultGuard())
	l := outboxLead(t, d, "pat@guard.example", "")
	m := outboxQueue(t, d, l.ID)
	outboxClaim(t, d, m.ID, roomyCaps)
	if _, err := d.RecordSendError(ctx, m.ID, "535 authentication failed", 1); err != nil {
		t.Fatal(err)
	}
	if p := mustPause(t, d); p.Reason != PauseProviderErrors || p.Why() != "1 provider error" || !p.PausedAt.Equal(*now) {
		t.Fatalf("OutreachPause = %+v (why %q)", p, p.Why())
	}
	// A complaint while paused keeps the first reason.
	if c, err := d.ApplyMailEvent(ctx, "pat@guard.example", SuppressComplaint, "arf"); err != nil || c.Paused {
		t.Fatalf("complaint while paused = %+v, %v", c, err)
	}
	if p := mustPause(t, d); p.Reason != PauseProviderErrors {
		t.Fatalf("the complaint replaced the pause reason: %+v", p)
	}
	// A pause stored before reasons existed reads as provider errors.
	for key, value := range map[string]string{SettingOutreachPauseReason: "", SettingOutreachPauseDetail: "", SettingOutreachPausedAfter: "4"} {
		if err := d.SetSetting(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	if p := mustPause(t, d); p.Reason != PauseProviderErrors || p.Why() != "4 consecutive provider errors" {
		t.Fatalf("legacy pause = %+v (why %q)", p, p.Why())
	}
}

func TestWarmupRaisesTheDailyCapDayByDay(t *testing.T) {
	ctx := context.Background()
	d, now := guardStore(t, Guard{WarmupStart: 10, WarmupDays: 14})
	w, err := d.Warmup(ctx, 200)
	if err != nil || !w.On || w.Started || w.Day != 1 || w.Cap != 10 {
		t.Fatalf("Warmup before any send = %+v, %v", w, err)
	}
	// Dry-run sends do not start the ramp.
	guardSend(t, d, now, "dry@warm.example", true)
	if w, _ := d.Warmup(ctx, 200); w.Started {
		t.Fatalf("a dry-run send started the ramp: %+v", w)
	}
	guardSend(t, d, now, "first@warm.example", false)
	start := *now
	caps := EmailCaps{PerCycle: 1000, PerHour: 1000, PerDay: 200}
	for _, tc := range []struct {
		after time.Duration
		day   int
		cap   int
		text  string
	}{
		{0, 1, 10, "warm-up day 1 of 14: cap 10 today (max 200)"},
		{23 * time.Hour, 1, 10, ""},
		{24 * time.Hour, 2, 24, ""}, // 10 + 190·1/13
		{48 * time.Hour, 3, 39, "warm-up day 3 of 14: cap 39 today (max 200)"},
		{6*24*time.Hour + time.Minute, 7, 97, ""},
		{12 * 24 * time.Hour, 13, 185, ""},
		{13 * 24 * time.Hour, 14, 200, ""},
		{40 * 24 * time.Hour, 41, 200, "warm-up done after 14 days: cap 200"},
	} {
		*now = start.Add(tc.after)
		w, err := d.Warmup(ctx, 200)
		if err != nil || w.Day != tc.day || w.Cap != tc.cap || !w.StartedAt.Equal(start) {
			t.Errorf("%s after the first send: %+v, %v; want day %d, cap %d", tc.after, w, err, tc.day, tc.cap)
		}
		if tc.text != "" && w.String() != tc.text {
			t.Errorf("%s after the first send: %q, want %q", tc.after, w.String(), tc.text)
		}
	}
	// The claim applies the day's cap over the rolling 24 hours: on day 3
	// (cap 39), 39 messages leave and the 40th waits.
	*now = start.Add(48 * time.Hour)
	for i := range 40 {
		*now = now.Add(time.Second)
		l := outboxLead(t, d, fmt.Sprintf("day3-%d@warm.example", i), "")
		m := outboxQueue(t, d, l.ID)
		c := outboxClaim(t, d, m.ID, caps)
		if want := map[bool]Claim{true: ClaimOK, false: ClaimCapped}[i < 39]; c != want {
			t.Fatalf("claim %d on day 3 = %s, want %s", i+1, c, want)
		}
		if c == ClaimOK {
			if err := d.MarkSent(ctx, m.ID, "p", false); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The stored cap is the ramp's maximum, and a cap below the start
	// is the cap.
	if w, _ := d.Warmup(ctx, 30); w.Cap != 13 || w.Max != 30 {
		t.Fatalf("Warmup under a cap of 30 on day 3 = %+v; want 10 + 20·2/13 = 13", w)
	}
	if w, _ := d.Warmup(ctx, 5); w.Cap != 5 {
		t.Fatalf("Warmup under a cap of 5 = %+v", w)
	}
	if v, err := d.Setting(ctx, SettingWarmupStartedAt, ""); err != nil || !strings.HasPrefix(v, start.Format("2006-01-02T15:04")) {
		t.Fatalf("stored start = %q, %v; want %s", v, err, start)
	}
}

func TestNoWarmupKeepsTheDailyCap(t *testing.T) {
	ctx := context.Background()
	d, now := guardStore(t, DefaultGuard())
	guardSend(t, d, now, "pat@warm.example", false)
	if w, err := d.Warmup(ctx, 200); err != nil || w.On || w.Cap != 200 {
		t.Fatalf("Warmup without a ramp = %+v, %v", w, err)
	}
	if v, _ := d.Setting(ctx, SettingWarmupStartedAt, "unset"); v != "unset" {
		t.Fatalf("a send without a ramp stored a start: %q", v)
	}
}

func TestPercentText(t *testing.T) {
	for bp, want := range map[int]string{0: "0%", 500: "5%", 250: "2.5%", 1234: "12.34%", 1205: "12.05%", 10000: "100%", 5: "0.05%"} {
		if got := PercentText(bp); got != want {
			t.Errorf("PercentText(%d) = %q, want %q", bp, got, want)
		}
	}
}

// A lead sent two steps whose address then bounced is one bounce among the
// window's recipients, not two among its sends.
func TestBounceWindowCountsEachRecipientOnce(t *testing.T) {
	ctx := context.Background()
	d, now := guardStore(t, Guard{BounceRateBasisPoints: 1500, BounceWindow: 50, BounceMinSends: 5, WarmupDays: 14})
	guardSends(t, d, now, "pat", 8)
	l := outboxLead(t, d, "twice@guard.example", "")
	for step := 1; step <= 2; step++ {
		*now = now.Add(time.Minute)
		sent := *now
		m := &Message{LeadID: l.ID, ToAddr: "twice@guard.example", Template: "general/1", Subject: "Hello", Body: "body",
			Status: MessageSent, Attempts: 1, CreatedAt: sent, SentAt: &sent, UpdatedAt: sent, Step: step}
		if _, err := d.Bun().NewInsert().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if c := bounce(t, d, now, "twice@guard.example"); !c.Suppressed || c.Paused {
		t.Fatalf("bounce = %+v; want suppressed, not paused (1 of 9 recipients is 11%% ≤ 15%%)", c)
	}
	if w, err := d.BounceWindow(ctx); err != nil || w.Sends != 9 || w.Bounced != 1 {
		t.Fatalf("BounceWindow = %+v, %v; want 1 of 9 recipients", w, err)
	}
}

// A complaint about an address already suppressed for another reason (it
// unsubscribed, then marked a delivered message as spam) pauses outreach
// and makes the suppression a complaint; the same report again does not.
func TestComplaintAboutAnUnsubscribedAddressPauses(t *testing.T) {
	ctx := context.Background()
	d, now := guardStore(t, DefaultGuard())
	guardSend(t, d, now, "left@guard.example", false)
	if _, err := d.ApplyMailEvent(ctx, "left@guard.example", SuppressUnsubscribed, "link"); err != nil {
		t.Fatal(err)
	}
	if p := mustPause(t, d); p.Paused {
		t.Fatalf("an unsubscribe paused outreach: %+v", p)
	}
	*now = now.Add(time.Hour)
	c, err := d.ApplyMailEvent(ctx, "left@guard.example", SuppressComplaint, "arf:abuse")
	if err != nil || !c.Paused {
		t.Fatalf("complaint after the unsubscribe = %+v, %v; want it to pause", c, err)
	}
	var s Suppression
	if err := d.Bun().NewSelect().Model(&s).Where("value = ?", "left@guard.example").Scan(ctx); err != nil || s.Reason != SuppressComplaint || s.Source != "arf:abuse" {
		t.Fatalf("suppression = %+v, %v", s, err)
	}
	if _, err := d.ResumeOutreach(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := d.ApplyMailEvent(ctx, "left@guard.example", SuppressComplaint, "arf:abuse"); err != nil || c.Paused || c.Suppressed {
		t.Fatalf("the same complaint again = %+v, %v", c, err)
	}
}
