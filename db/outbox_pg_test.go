package db

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// The outbox's claims across instances (issue 14, item 2): several stores
// on one PostgreSQL database, each with its own pool as separate instances
// have, claim from one outbox at once. Every run must end with the cap
// reached exactly (never passed), each message claimed by one instance
// only, and no claim failing.

const claimInstances = 4

// claimRace has each of stores walk the sendable outbox once, all starting
// together, claiming every message with caps and recording each claimed
// one as sent (sent: a real send, which starts the warm-up ramp). It
// returns which store claimed each message.
func claimRace(t *testing.T, stores []*DB, caps EmailCaps, send bool) map[int64][]int {
	t.Helper()
	ctx := context.Background()
	start := make(chan struct{})
	var mu sync.Mutex
	claimedBy := map[int64][]int{}
	errs := make(chan error, len(stores))
	var wg sync.WaitGroup
	for i, d := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			msgs, err := d.SendableMessages(ctx, 1000)
			if err != nil {
				errs <- err
				return
			}
			for _, m := range msgs {
				c, err := d.ClaimMessage(ctx, m.ID, caps)
				if err != nil {
					errs <- fmt.Errorf("instance %d: %w", i, err)
					return
				}
				if c != ClaimOK {
					continue
				}
				mu.Lock()
				claimedBy[m.ID] = append(claimedBy[m.ID], i)
				mu.Unlock()
				if send {
					if err := d.MarkSent(ctx, m.ID, fmt.Sprintf("p-%d", m.ID), false); err != nil {
						errs <- fmt.Errorf("instance %d: %w", i, err)
						return
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return claimedBy
}

// queueOutbox stores n new leads with a queued first message each.
func queueOutbox(t *testing.T, d *DB, n int) {
	t.Helper()
	for i := range n {
		l := outboxLead(t, d, fmt.Sprintf("p%d@race%d.example", i, i), fmt.Sprintf("race%d.example", i))
		if outboxQueue(t, d, l.ID) == nil {
			t.Fatalf("lead %d got no message", l.ID)
		}
	}
}

// requireClaims checks a race's outcome: want messages claimed, each by
// one instance, and as many left the outbox in the database.
func requireClaims(t *testing.T, d *DB, claimedBy map[int64][]int, want int) {
	t.Helper()
	for id, by := range claimedBy {
		if len(by) != 1 {
			t.Errorf("message %d claimed by instances %v", id, by)
		}
	}
	if len(claimedBy) != want {
		t.Errorf("%d messages claimed, want the cap's %d", len(claimedBy), want)
	}
	hour, day, err := sendsInWindows(context.Background(), d.bun, d.Now())
	if err != nil {
		t.Fatal(err)
	}
	if hour != want || day != want {
		t.Errorf("the windows count %d in the hour, %d in the day; want %d", hour, day, want)
	}
	requireAllInvariants(t, d, d.Now())
}

func TestPostgresOutboxClaimsAcrossInstancesKeepTheCaps(t *testing.T) {
	clock := WithClock(func() time.Time { return fixedNow })
	for _, tc := range []struct {
		name  string
		caps  EmailCaps
		guard Guard
		send  bool
		want  int
	}{
		{name: "hourly cap, claims left sending", caps: EmailCaps{PerCycle: 100, PerHour: 7, PerDay: 100}, want: 7},
		{name: "daily cap, claims sent", caps: EmailCaps{PerCycle: 100, PerHour: 100, PerDay: 5}, send: true, want: 5},
		// Day 1 of the ramp: 3 a day although the stored cap is 100.
		{name: "warm-up ramp", caps: EmailCaps{PerCycle: 100, PerHour: 100, PerDay: 100}, guard: Guard{WarmupStart: 3, WarmupDays: 14}, send: true, want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stores := openInstances(t, claimInstances, clock, WithGuard(tc.guard))
			queueOutbox(t, stores[0], 30)
			claimedBy := claimRace(t, stores, tc.caps, tc.send)
			requireClaims(t, stores[0], claimedBy, tc.want)
			// The next round finds the cap full on every instance.
			for i, d := range stores {
				msgs, err := d.SendableMessages(context.Background(), 1)
				if err != nil || len(msgs) != 1 {
					t.Fatalf("instance %d: sendable %v, %v", i, msgs, err)
				}
				if c := outboxClaim(t, d, msgs[0].ID, tc.caps); c != ClaimCapped {
					t.Errorf("instance %d after the race: %s, want capped", i, c)
				}
			}
		})
	}
}

// Instances queueing from one list of new leads (NewLeadsToContact, then
// QueueMessage per lead) give each lead one message.
func TestPostgresQueueMessageOncePerLeadAcrossInstances(t *testing.T) {
	ctx := context.Background()
	stores := openInstances(t, claimInstances, WithClock(func() time.Time { return fixedNow }))
	const leads = 25
	for i := range leads {
		outboxLead(t, stores[0], fmt.Sprintf("q%d@queue%d.example", i, i), fmt.Sprintf("queue%d.example", i))
	}
	start := make(chan struct{})
	var mu sync.Mutex
	queued := map[int64]int{}
	errs := make(chan error, claimInstances)
	var wg sync.WaitGroup
	for i, d := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ls, err := d.NewLeadsToContact(ctx, 100)
			if err != nil {
				errs <- err
				return
			}
			for _, l := range ls {
				m, err := d.QueueMessage(ctx, l.ID, func(l *Lead, id int64) (OutboxDraft, error) {
					return OutboxDraft{Template: "general/1", Subject: "Hello " + l.Company, Body: fmt.Sprintf("message %d", id)}, nil
				})
				if err != nil {
					errs <- fmt.Errorf("instance %d: %w", i, err)
					return
				}
				if m != nil {
					mu.Lock()
					queued[m.LeadID]++
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var perLead []struct {
		LeadID int64 `bun:"lead_id"`
		N      int   `bun:"n"`
	}
	if err := stores[1].Bun().NewRaw("SELECT lead_id, COUNT(*) AS n FROM messages GROUP BY lead_id").Scan(ctx, &perLead); err != nil {
		t.Fatal(err)
	}
	if len(perLead) != leads || len(queued) != leads {
		t.Errorf("%d leads have messages, %d were reported queued; want %d", len(perLead), len(queued), leads)
	}
	for _, r := range perLead {
		if r.N != 1 || queued[r.LeadID] != 1 {
			t.Errorf("lead %d: %d messages stored, %d reported", r.LeadID, r.N, queued[r.LeadID])
		}
	}
}

// Instances approving one waiting draft at once approve it once: one
// outbox message, the others refused.
func TestPostgresDraftApprovedOnceAcrossInstances(t *testing.T) {
	ctx := context.Background()
	stores := openInstances(t, claimInstances, WithClock(func() time.Time { return fixedNow }))
	l := outboxLead(t, stores[0], "ann@approve.example", "approve.example")
	dr, err := stores[0].DraftFirstStep(ctx, l.ID, firstStepText)
	if err != nil || dr == nil {
		t.Fatalf("DraftFirstStep = %v, %v", dr, err)
	}
	start := make(chan struct{})
	outs := make([]DraftOutcome, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, d := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			outs[i], errs[i] = d.ApproveDraft(ctx, dr.ID, 0, fmt.Sprintf("admin%d@x.example", i), footerCompose)
		}()
	}
	close(start)
	wg.Wait()
	done := 0
	for i := range stores {
		if errs[i] != nil {
			t.Errorf("instance %d: %v", i, errs[i])
		}
		if outs[i].Done {
			done++
		} else if outs[i].Refused == "" {
			t.Errorf("instance %d: neither approved nor refused: %+v", i, outs[i])
		}
	}
	n := countRows(t, stores[0], "SELECT COUNT(*) FROM messages")
	if done != 1 || n != 1 {
		t.Errorf("%d approvals, %d messages; want one of each", done, n)
	}
}

// Instances receiving one inbound reply at once (a provider delivering it
// twice to two instances) store it once.
func TestPostgresInboundReplyStoredOnceAcrossInstances(t *testing.T) {
	ctx := context.Background()
	stores := openInstances(t, claimInstances, WithClock(func() time.Time { return fixedNow }))
	l := outboxLead(t, stores[0], "bo@reply.example", "reply.example")
	m := outboxQueue(t, stores[0], l.ID)
	if c := outboxClaim(t, stores[0], m.ID, outboxRoomy); c != ClaimOK {
		t.Fatalf("claim %s", c)
	}
	if err := stores[0].MarkSent(ctx, m.ID, "p1", false); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	res := make([]InboundResult, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, d := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res[i], errs[i] = d.RecordInboundReply(ctx, InboundReply{FromAddr: "Bo@Reply.example", Subject: "Re: hello", Body: "Yes please", MessageID: "<r1@mail.example>"})
		}()
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i := range stores {
		if errs[i] != nil {
			t.Errorf("instance %d: %v", i, errs[i])
		}
		if !res[i].Duplicate {
			fresh++
		}
	}
	if n := countRows(t, stores[0], "SELECT COUNT(*) FROM replies"); n != 1 || fresh != 1 {
		t.Errorf("%d replies stored, %d deliveries taken as new; want one of each", n, fresh)
	}
}

// The client outbox's claims across instances keep its caps too.
func TestPostgresClientClaimsAcrossInstancesKeepTheCaps(t *testing.T) {
	ctx := context.Background()
	stores := openInstances(t, claimInstances, WithClock(func() time.Time { return fixedNow }))
	mustExec(t, stores[0].Bun(), `INSERT INTO customers (company, contact_email, plan, portal_token_hash, token_created_at, created_at)
		VALUES ('Acme', 'ap@acme.example', 'starter', ?, ?, ?)`, fmt.Sprintf("%064d", 1), fixedNow, fixedNow)
	mustExec(t, stores[0].Bun(), `INSERT INTO client_messages (customer_id, kind, dedupe_key, to_addr, subject, body_text, created_at, updated_at)
		SELECT 1, 'welcome', 'race:' || i, 'ap@acme.example', 'Welcome', 'Hello', ?, ? FROM generate_series(1, 30) AS i`, fixedNow, fixedNow)
	caps := ClientCaps{PerHour: 6, PerDay: 100, LinksPerHour: 100, LinksPerDay: 100}
	start := make(chan struct{})
	var mu sync.Mutex
	claimedBy := map[int64][]int{}
	errs := make(chan error, len(stores))
	var wg sync.WaitGroup
	for i, d := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			msgs, err := d.SendableClientMessages(ctx, 1000)
			if err != nil {
				errs <- err
				return
			}
			for _, m := range msgs {
				c, err := d.ClaimClientMessage(ctx, m.ID, caps, nil)
				if err != nil {
					errs <- fmt.Errorf("instance %d: %w", i, err)
					return
				}
				if c == ClaimOK {
					mu.Lock()
					claimedBy[m.ID] = append(claimedBy[m.ID], i)
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for id, by := range claimedBy {
		if len(by) != 1 {
			t.Errorf("client message %d claimed by instances %v", id, by)
		}
	}
	if n := countRows(t, stores[0], "SELECT COUNT(*) FROM client_messages WHERE status = 'sending'"); len(claimedBy) != caps.PerHour || n != caps.PerHour {
		t.Errorf("%d claimed, %d sending; want the cap's %d", len(claimedBy), n, caps.PerHour)
	}
}

// On a store after months of outreach, the outbox's claim and count
// queries read their partial indexes, never the whole messages or leads
// table: PostgreSQL has no INDEXED BY (d.pin drops it), so this is what
// holds its planner to them. SQLite's plans are pinned by
// TestHotQueryPlansReadTheBatchNotTheTable and TestDraftQueryPlansReadTheQueue.
func TestPostgresOutboxQueriesUseTheirIndexes(t *testing.T) {
	if !testOnPostgres() {
		t.Skip("the PostgreSQL plans; TestHotQueryPlansReadTheBatchNotTheTable checks SQLite's")
	}
	if testing.Short() {
		t.Skip("builds a large dataset")
	}
	ctx := context.Background()
	d := openTestStore(t, WithClock(func() time.Time { return fixedNow }))
	seedMailPG(t, d, 20_000, fixedNow)
	rawPG := func(q string, args ...any) string { return d.bun.NewRaw(d.pin(q), args...).String() }
	queries := []struct {
		name, sql string
		uses      []string
	}{
		{"caps count (sendsInWindowsSQL)", rawPG(sendsInWindowsSQL, fixedNow.Add(-time.Hour), fixedNow.Add(-24*time.Hour)), []string{"messages_left", "messages_sending"}},
		{"PendingOutbox", rawPG(pendingOutboxSQL, MaxSendAttempts), []string{"messages_sendable"}},
		{"SendableMessages", sendableMessagesQuery(d.bun, new([]Message), 10).String(), []string{"messages_sendable"}},
		{"NewLeadsToContact", newLeadsToContactQuery(d.bun, new([]Lead), 10).String(), []string{"leads_new_email"}},
		// messages_sent_window or messages_left: either is the sent
		// messages by sent_at, read backwards to the LIMIT.
		{"bounce window", rawPG(bounceWindowSQL, fixedNow.Add(-10*24*time.Hour), 50), nil},
		{"FlagStaleSending", flagStaleSendingQuery(d.bun, fixedNow, 15*time.Minute).String(), []string{"messages_sending"}},
		{"DueFollowUps", dueFollowUpsQuery(d.bun, new([]Lead), fixedNow, 10).String(), []string{"leads_next_step"}},
		{"RespondedLeads", respondedLeadsQuery(d.bun, new([]Lead), 5).String(), []string{"leads_responded"}},
		{"suppression of an address", rawPG(suppressionForSQL, "pat18@lead18.example", bun.List([]string{"lead18.example", "example"})), nil},
		{"WaitingDrafts", rawPG(waitingDraftsSQL, 50), []string{"outreach_drafts_waiting"}},
		{"WaitingDraftCount", rawPG(waitingDraftCountSQL), []string{"outreach_drafts_waiting"}},
		{"WaitingDraftSteps", rawPG(waitingDraftStepsSQL, bun.List([]int64{3, 503, 7})), []string{"outreach_drafts_waiting_step"}},
	}
	for _, q := range queries {
		checkPGPlan(t, d, q.name, q.sql, q.uses...)
	}
	// The claim and the queueing themselves, statement by statement.
	queued, err := d.SendableMessages(ctx, 1)
	if err != nil || len(queued) != 1 {
		t.Fatalf("SendableMessages: %v, %v", queued, err)
	}
	newLeads, err := d.NewLeadsToContact(ctx, 1)
	if err != nil || len(newLeads) != 1 {
		t.Fatalf("NewLeadsToContact: %v, %v", newLeads, err)
	}
	hook := &recordQueries{}
	//lint:ignore SA1019 the store's handle, not a copy, needs the hook
	d.Bun().AddQueryHook(hook)
	// In this order: MarkSent records the claimed message.
	steps := []struct {
		name string
		run  func() error
	}{
		{"ClaimMessage", func() error {
			c, err := d.ClaimMessage(ctx, queued[0].ID, EmailCaps{PerCycle: 1e6, PerHour: 1e6, PerDay: 1e6})
			if err == nil && c != ClaimOK {
				err = fmt.Errorf("claim %s", c)
			}
			return err
		}},
		{"QueueMessage", func() error {
			_, err := d.QueueMessage(ctx, newLeads[0].ID, func(l *Lead, id int64) (OutboxDraft, error) {
				return OutboxDraft{Template: "general/1", Subject: "Hello", Body: "body"}, nil
			})
			return err
		}},
		{"MarkSent", func() error { return d.MarkSent(ctx, queued[0].ID, "p", false) }},
		{"ListSuppressions", func() error { _, _, err := d.ListSuppressions(ctx, ListQuery{}); return err }},
		{"ListSuppressions page 3", func() error {
			_, _, err := d.ListSuppressions(ctx, ListQuery{Cursor: Cursor{Page: 3, ID: 1500}})
			return err
		}},
		{"ListSuppressions search", func() error { _, _, err := d.ListSuppressions(ctx, ListQuery{Search: "pat1234"}); return err }},
	}
	for _, step := range steps {
		hook.take()
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		for _, q := range hook.take() {
			if q == "BEGIN" || q == "COMMIT" || q == "ROLLBACK" || len(q) < 6 || (q[:6] != "SELECT" && q[:6] != "UPDATE" && q[:6] != "INSERT") {
				continue
			}
			checkPGPlan(t, d, step.name, q)
		}
	}
}
