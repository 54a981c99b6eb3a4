//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/db/pgtest"
)

// Several instances of the real binary share one PostgreSQL database
// (issue 14). One of them owns the agents; the tests below find it from the
// outside, as an operator or a load balancer would (GET /readyz), kill it,
// and watch the others through their HTTP surfaces and live streams.

const (
	clusterAdmin    = "ops@hoss.example"
	clusterPassword = "a failover test password"
	clusterSecret   = "whsec_failover_test"
	// takeoverBound is the default takeover (the 10 s): from the
	// owner's death to another instance owning the agents.
	takeoverBound = 10 * time.Second
	// paymentShownBound is how soon a payment must show on a live stream of
	// another instance (150 to 350 ms here, under 1 s on a loaded machine).
	// The views re-render by themselves only once a minute
	// (app.refreshEvery), but a standby also re-renders on the owner's
	// agent-state snapshots, every 2 to 3 s in this test: with the
	// payment's own event lost, some payments wait that long, so the bound
	// stays below it.
	paymentShownBound = 2 * time.Second
	// switchShownBound is the bound for an autopilot switch to show
	// on every instance's control room.
	switchShownBound = time.Second
)

// A fast autopilot on three instances, with real SMTP, stripe-mock and a
// steady flow of leads, outreach, conversions, tasks, invoices, collections
// e-mails and payments. The owner of the agents is killed with SIGKILL
// again and again while work is in flight (an e-mail has just reached the
// SMTP server, whose answer is held back); each time another instance must
// own the agents within takeoverBound, and a replacement is started.
// Meanwhile invoices are paid through signed Stripe webhooks, and one live
// client of the control room on a standby (it moves, as a browser behind a
// load balancer would, when its instance dies or becomes the owner) must
// see every payment within paymentShownBound; each webhook goes to another
// instance, so what the client sees came across instances.
// Afterwards every invariant holds, no recipient got any e-mail twice, no
// task is on two invoice lines, and the live client saw every payment the
// database holds.
//
// Issue 14 wants it to pass three times in a row:
//
//	go test -count=3 -run '^TestFailoverOnPostgres$' -v .
func TestFailoverOnPostgres(t *testing.T) {
	const (
		instances = 3
		rounds    = 5
		prospects = 40 // leads that answered: they become customers, 5 a cycle
	)
	dbURL := pgtest.Start(t).NewDatabase(t)
	stripeURL := startStripeMockServer(t)
	sink := agentstest.StartMailSink(t, 30*time.Millisecond)
	ctx := context.Background()
	store, err := db.OpenPostgres(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	seedRespondedLeads(t, store, prospects)

	f := newFleet(t, dbURL, map[string]string{
		"EMAIL_MODE": "SMTP", "SMTP_HOST": sink.Host, "SMTP_PORT": strconv.Itoa(sink.Port), "SMTP_TLS": "none",
		"EMAIL_SEND_DELAY_MIN": "0", "EMAIL_SEND_DELAY_MAX": "0", "AUTOPILOT_INTERVAL": "1s",
		"LEAD_SOURCE": "synthetic", "MAX_NEW_LEADS_PER_CYCLE": "3", "MAX_EMAILS_PER_CYCLE": "5", "MAX_EMAILS_PER_HOUR": "1000",
		"ENABLE_STRIPE": "true", "STRIPE_API_KEY": "sk_test_123", "STRIPE_API_BASE": stripeURL, "STRIPE_WEBHOOK_SECRET": clusterSecret,
		"COMPANY_NAME": "Hoss Services", "BILLING_EMAIL": "billing@hoss.example",
	})
	f.startN(instances)
	cookie := signIn(t, f.running()[0].base)
	owner, _ := f.waitOwner(nil, 30*time.Second)
	t.Logf("%s owns the agents", owner.id)

	watchCtx, stopWatching := context.WithCancel(ctx)
	payCtx, stopPaying := context.WithCancel(ctx)
	watch := newPaymentWatch()
	var watching, paying sync.WaitGroup
	watching.Go(func() { watch.follow(watchCtx, f, cookie) })
	pay := &payer{store: store, fleet: f, watch: watch, rng: rand.New(rand.NewPCG(14, 3)), done: make(chan struct{}, 1)}
	paying.Go(func() { pay.run(payCtx) })

	var locked, takeovers []time.Duration
	cuts := map[string]int{}
	roundStart := time.Now()
	for round := range rounds {
		// The owner first finishes a full cycle (its last stage,
		// Collections, completes), so that every stage makes progress
		// between the kills.
		f.waitRun(t, "collections", roundStart, roundStart.Add(30*time.Second))
		// Then work in flight: the SMTP server has just been handed a
		// message whose answer it holds back, so the owner does not know
		// yet whether it left. Rounds alternate between a client's e-mail
		// (Collections) and outreach, so that both are cut off; when the
		// one wanted does not come within 5 s (the clients' e-mail is
		// finite), any e-mail will do.
		wantClient := round%2 == 0
		before, asked := len(sink.Mails()), time.Now()
		var cut agentstest.ReceivedMail
		sink.WaitFor(t, 30*time.Second, fmt.Sprintf("new e-mail (round %d)", round), func(agentstest.ReceivedMail) bool {
			for _, m := range sink.Mails()[before:] {
				if isClientMail(m) == wantClient || time.Since(asked) > 5*time.Second {
					cut = m
					return true
				}
			}
			return false
		})
		what := map[bool]string{true: "client e-mail", false: "outreach e-mail"}[isClientMail(cut)]
		cuts[what]++
		killed := time.Now()
		f.kill(owner)
		reaped := time.Now()
		// Taking the lock is not yet running the agents: the new owner
		// waits for a cut-off predecessor to stop, and settles what it
		// left in flight first. The takeover is over when an agent runs.
		next, _ := f.waitOwner(owner, takeoverBound-time.Since(killed))
		lockedAfter := time.Since(killed)
		ran := f.firstRunAfter(t, reaped, killed.Add(takeoverBound+5*time.Second))
		took := ran.Sub(killed)
		locked, takeovers = append(locked, lockedAfter), append(takeovers, took)
		t.Logf("round %d: %s killed while a %s was in flight; %s said it owns the agents %s later and ran one %s later",
			round, owner.id, what, next.id, lockedAfter.Round(time.Millisecond), took.Round(time.Millisecond))
		if took > takeoverBound {
			t.Errorf("round %d: the agents ran again %s after the owner died, want within %s", round, took, takeoverBound)
		}
		// The live control room names the new owner on every agent card.
		if owners, ok := watch.showedOwner(next.id, time.Now().Add(paymentShownBound)); !ok {
			t.Errorf("round %d: the live control room names the owners %v, want %s for every agent", round, owners, next.id)
		}
		if watch.following() == next {
			watch.moveOff() // the live client follows standbys only
		}
		owner, roundStart = next, ran
		f.start() // the replacement, as the platform would start one
	}

	// Payments go on (through the kills above) until at least four were
	// made, then stop.
	deadline := time.Now().Add(30 * time.Second)
	for pay.count() < 4 && time.Now().Before(deadline) {
		pay.waitPaid(deadline)
	}
	stopPaying()
	paying.Wait() // the last payment is shown, or not, before the live client stops
	stopWatching()
	watching.Wait()
	paid, payErrs := pay.result()
	for _, e := range payErrs {
		t.Error(e)
	}
	if len(paid) < 4 {
		t.Errorf("only %d invoices were paid during the test, want at least 4", len(paid))
	}
	for _, m := range slices.Clone(f.running()) {
		f.stop(m)
	}

	count := func(q string) int64 {
		t.Helper()
		var n int64
		if err := store.Bun().NewRaw(q).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var summary []string
	for _, q := range []string{
		"SELECT 'outreach ' || status || CASE WHEN needs_review THEN ' (review)' ELSE '' END AS k, COUNT(*) AS n FROM messages GROUP BY 1",
		"SELECT 'client ' || kind || ' ' || status || CASE WHEN needs_review THEN ' (review)' ELSE '' END AS k, COUNT(*) AS n FROM client_messages GROUP BY 1",
		"SELECT 'job ' || kind AS k, COUNT(*) AS n FROM collection_jobs GROUP BY 1",
		"SELECT 'invoice ' || status AS k, COUNT(*) AS n FROM invoices GROUP BY 1",
	} {
		var rows []struct {
			K string
			N int64
		}
		if err := store.Bun().NewRaw(q).Scan(ctx, &rows); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			summary = append(summary, fmt.Sprintf("%s %d", r.K, r.N))
		}
	}
	slices.Sort(summary)
	t.Logf("at the end: %s", strings.Join(summary, ", "))
	// The flow really ran: outreach, conversions, work, invoices with
	// links, client e-mails and payments.
	for what, n := range map[string]int64{
		"outreach e-mails sent": count("SELECT COUNT(*) FROM messages WHERE status = 'sent'"),
		"customers":             count("SELECT COUNT(*) FROM customers"),
		"tasks done":            count("SELECT COUNT(*) FROM tasks WHERE status = 'done'"),
		"invoices with a link":  count("SELECT COUNT(*) FROM invoices WHERE stripe_payment_link_id <> ''"),
		"client e-mails sent":   count("SELECT COUNT(*) FROM client_messages WHERE status = 'sent'"),
	} {
		if n == 0 {
			t.Errorf("no %s: the flow did not run", what)
		}
	}

	// Every payment the database holds was applied by one of our webhooks
	// and shown, with the running total, on the live stream.
	var dbPaid []int64
	if err := store.Bun().NewRaw("SELECT id FROM invoices WHERE status = 'paid' ORDER BY id").Scan(ctx, &dbPaid); err != nil {
		t.Fatal(err)
	}
	var total int64
	var ids []int64
	for _, p := range paid {
		total += p.cents
		ids = append(ids, p.invoice)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, dbPaid) {
		t.Errorf("paid invoices in the database %v, paid by the webhooks %v", dbPaid, ids)
	}
	if got := count("SELECT COALESCE(SUM(amount_cents), 0) FROM invoices WHERE status = 'paid'"); got != total || watch.highest() != total {
		t.Errorf("collected: %d cents in the database, %d paid by the webhooks, %d the live stream showed last", got, total, watch.highest())
	}

	seen := map[string]int{}
	for _, m := range sink.Mails() {
		key := strings.Join(m.To, ",") + " | " + m.Subject
		if seen[key]++; seen[key] == 2 {
			t.Errorf("received twice: %s", key)
		}
	}
	if n := count("SELECT COUNT(*) FROM (SELECT task_id FROM invoice_lines GROUP BY task_id HAVING COUNT(*) > 1) AS twice"); n != 0 {
		t.Errorf("%d tasks are on more than one invoice line", n)
	}
	results, err := store.CheckInvariants(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("invariant %d (%s): %q", r.Number, r.Name, r.Violations)
		}
	}
	if cuts["client e-mail"] == 0 || cuts["outreach e-mail"] == 0 {
		t.Errorf("the kills cut off %v: want both a client's e-mail and outreach", cuts)
	}
	// The operator's own check says the same, on the same URL.
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"check"}, envOf(map[string]string{"DATABASE_URL": dbURL}), &out, &errOut); code != 0 || !strings.Contains(out.String(), "invariants hold") {
		t.Errorf("hossagent check exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	var worst time.Duration
	for _, d := range takeovers {
		worst = max(worst, d)
	}
	t.Logf("cut off %v; lock taken after %v; takeovers %v (worst %s, bound %s); %d e-mails at the SMTP server; %d invoices paid (%d cents), the live stream on %d instances in turn, payments shown after %v",
		cuts, roundAll(locked), roundAll(takeovers), worst.Round(time.Millisecond), takeoverBound, len(sink.Mails()), len(paid), total, watch.connections(), roundAll(pay.shownAfter()))
}

// An autopilot switch taken on one instance shows on every instance's
// control room within switchShownBound, and the owner's autopilot obeys
// it. Each control room's live stream is open before the switch; the time
// is from the moment the request is sent to the moment the stream carries
// the new state.
func TestAutopilotSwitchReachesEveryInstance(t *testing.T) {
	dbURL := pgtest.Start(t).NewDatabase(t)
	f := newFleet(t, dbURL, map[string]string{"AUTOPILOT_INTERVAL": "1s", "EMAIL_MODE": "DRY_RUN"})
	f.startN(3)
	cookie := signIn(t, f.running()[0].base)
	owner, _ := f.waitOwner(nil, 30*time.Second)
	var standby []*member
	for _, m := range f.running() {
		if m != owner {
			standby = append(standby, m)
		}
	}
	streams := map[*member]*liveStream{}
	for _, m := range f.running() {
		s, err := openLive(m.base+"/events/admin", cookie)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.close)
		streams[m] = s
	}
	status := func(s *liveStream) string { return autopilotStatus(s.region("admin-status")) }
	// shownEverywhere posts the switch to the instance at, and measures how
	// long each stream takes to show want.
	shownEverywhere := func(at *member, path string, form url.Values, want string) {
		t.Helper()
		sent := time.Now()
		if code, body := adminPost(t, at.base+path, cookie, form); code != http.StatusOK && code != http.StatusSeeOther {
			t.Fatalf("POST %s on %s = %d %s", path, at.id, code, body)
		}
		for _, m := range f.running() {
			s := streams[m]
			if !s.waitFor(sent.Add(5*time.Second), func() bool { return status(s) == want }) {
				t.Fatalf("%s's control room never showed %q (shows %q)", m.id, want, status(s))
			}
			shownAt, _ := s.firstShown(sent, "admin-status", func(html string) bool { return autopilotStatus(html) == want })
			took := shownAt.Sub(sent)
			t.Logf("%q (taken on %s) shown on %s after %s", want, at.id, m.id, took.Round(time.Millisecond))
			if took > switchShownBound {
				t.Errorf("%s showed %q only after %s, want within %s", m.id, want, took, switchShownBound)
			}
		}
	}
	// Every control room shows the autopilot ON and names the owner on
	// every agent's card.
	for _, m := range f.running() {
		s := streams[m]
		if !s.waitFor(time.Now().Add(10*time.Second), func() bool { return status(s) == "ON every 1s" }) {
			t.Fatalf("%s's control room shows %q, want the autopilot ON every 1s", m.id, status(s))
		}
		named := func() bool {
			owners := agentOwners(s.region("admin-agents"))
			for _, o := range owners {
				if o != owner.id {
					return false
				}
			}
			return len(owners) > 0
		}
		if !s.waitFor(time.Now().Add(10*time.Second), named) {
			t.Errorf("%s's control room names the owners %v, want %s", m.id, agentOwners(s.region("admin-agents")), owner.id)
		}
	}
	autopilotRuns := func(since time.Time) int {
		var n int
		err := f.store(t).Bun().NewRaw("SELECT COUNT(*) FROM agent_runs WHERE trigger = 'autopilot' AND started_at > ?", since).Scan(context.Background(), &n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The owner's autopilot runs (so that the check after OFF can fail).
	start := time.Now()
	if !pollUntil(time.Now().Add(10*time.Second), func() bool { return autopilotRuns(start) > 0 }) {
		t.Fatal("the autopilot never ran")
	}

	// OFF, taken on a standby: the owner's coordinator must obey, not only
	// the pages. A cycle may have begun while the request was on its way;
	// none may begin once every page shows OFF and an interval has passed.
	shownEverywhere(standby[0], "/admin/autopilot", url.Values{"enabled": {"off"}}, "OFF every 1s")
	quiet := time.Now().Add(time.Second)
	pollUntil(quiet.Add(3*time.Second), func() bool { return autopilotRuns(quiet) > 0 })
	if n := autopilotRuns(quiet); n != 0 {
		t.Errorf("%d autopilot runs began after the autopilot was switched OFF", n)
	}

	// ON again with another interval, taken on the other standby and then
	// on the owner.
	shownEverywhere(standby[1], "/admin/autopilot/interval", url.Values{"interval": {"45s"}}, "OFF every 45s")
	shownEverywhere(owner, "/admin/autopilot", url.Values{"enabled": {"on"}}, "ON every 45s")
	for _, m := range slices.Clone(f.running()) {
		f.stop(m)
	}
}

// fleet is the instances of one test, all on one database.
type fleet struct {
	t    *testing.T
	bin  string
	vars map[string]string
	n    int // instances started so far; names them

	all []*member // every instance started

	mu sync.Mutex
	up []*member // running, in the order they started

	reader *db.DB // opened on first use
}

// member is one running `hossagent serve`.
type member struct {
	id   string // its INSTANCE_ID
	c    *child
	base string
}

func newFleet(t *testing.T, dbURL string, vars map[string]string) *fleet {
	all := map[string]string{
		"DATABASE_URL": dbURL, "ADDR": "127.0.0.1:0", "RELEASE_MODE": "DEVELOPMENT",
		"ADMIN_EMAIL": clusterAdmin, "ADMIN_PASSWORD": clusterPassword, "LOG_FORMAT": "text",
	}
	maps.Copy(all, vars)
	f := &fleet{t: t, bin: testBinary(t), vars: all}
	t.Cleanup(func() {
		if t.Failed() {
			f.logProblems()
		}
	})
	return f
}

// logProblems logs what every instance logged at WARN and ERROR.
func (f *fleet) logProblems() {
	for _, m := range f.all {
		var lines []string
		for line := range strings.Lines(m.c.stderr.String()) {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				lines = append(lines, line)
			}
		}
		if len(lines) > 40 {
			lines = append(lines[:20], append([]string{"…\n"}, lines[len(lines)-20:]...)...)
		}
		f.t.Logf("%s's warnings and errors:\n%s", m.id, strings.Join(lines, ""))
	}
}

// startN starts n instances: the first alone (it bootstraps the admin and
// seeds the catalogue), then the others together.
func (f *fleet) startN(n int) {
	f.t.Helper()
	first := f.launch()
	f.join(first)
	signInStatus(f.t, first.base, clusterAdmin, clusterPassword) // waits for the bootstrap
	var rest []*member
	for range n - 1 {
		rest = append(rest, f.launch())
	}
	for _, m := range rest {
		f.join(m)
	}
}

// start starts one instance and returns once it listens.
func (f *fleet) start() *member {
	f.t.Helper()
	m := f.launch()
	f.join(m)
	return m
}

func (f *fleet) launch() *member {
	f.n++
	id := fmt.Sprintf("node%d", f.n)
	vars := maps.Clone(f.vars)
	vars["INSTANCE_ID"] = id
	m := &member{id: id, c: startChild(f.t, f.bin, "serve", vars, nil)}
	f.all = append(f.all, m)
	return m
}

func (f *fleet) join(m *member) {
	f.t.Helper()
	m.base = m.c.serving(f.t)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up = append(f.up, m)
}

// running is the instances up now.
func (f *fleet) running() []*member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.up)
}

func (f *fleet) leave(m *member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up = slices.DeleteFunc(f.up, func(x *member) bool { return x == m })
}

// kill ends m with SIGKILL: no shutdown, its sessions cut by the kernel.
func (f *fleet) kill(m *member) {
	f.t.Helper()
	f.leave(m)
	if err := m.c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		f.t.Fatal(err)
	}
	m.c.wait(f.t)
}

// stop ends m with SIGTERM and wants a clean stop.
func (f *fleet) stop(m *member) {
	f.t.Helper()
	f.leave(m)
	if err := m.c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		f.t.Fatal(err)
	}
	if code := m.c.wait(f.t); code != 0 || !strings.Contains(m.c.stderr.String(), "stopped cleanly") {
		f.t.Errorf("%s exited %d on SIGTERM:\n%s", m.id, code, m.c.stderr.String())
	}
}

// store is a connection of the test's own to the fleet's database.
func (f *fleet) store(t *testing.T) *db.DB {
	t.Helper()
	if f.reader == nil {
		s, err := db.OpenPostgresExisting(context.Background(), f.vars["DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f.reader = s
	}
	return f.reader
}

// waitOwner polls every running instance's /readyz until one other than
// not says it owns the agents, and returns it with the time that took. Two
// instances saying so at once fail the test.
func (f *fleet) waitOwner(not *member, bound time.Duration) (*member, time.Duration) {
	f.t.Helper()
	start := time.Now()
	deadline := start.Add(bound)
	client := &http.Client{Timeout: time.Second}
	for {
		var owners []*member
		var said []string
		for _, m := range f.running() {
			body, owns := readyzOwner(client, m)
			said = append(said, m.id+": "+strings.TrimSpace(body))
			if owns {
				owners = append(owners, m)
			}
		}
		if len(owners) > 1 {
			f.t.Fatalf("two instances own the agents at once: %q", said)
		}
		if len(owners) == 1 && owners[0] != not {
			return owners[0], time.Since(start)
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no instance owned the agents within %s: %q", bound, said)
		}
		time.Sleep(20 * time.Millisecond) // a poll of /readyz, bounded by the deadline
	}
}

// firstRunAfter is when the first agent run began after since: only the
// owner runs agents. It fails the test when none began by the deadline.
func (f *fleet) firstRunAfter(t *testing.T, since, deadline time.Time) time.Time {
	t.Helper()
	var first time.Time
	if !pollUntil(deadline, func() bool {
		var at []time.Time
		err := f.store(t).Bun().NewRaw("SELECT started_at FROM agent_runs WHERE started_at > ? ORDER BY started_at LIMIT 1", since).Scan(context.Background(), &at)
		if err != nil {
			t.Fatal(err)
		}
		if len(at) > 0 {
			first = at[0]
		}
		return len(at) > 0
	}) {
		t.Fatalf("no agent ran between %s and %s", since.Format(time.StampMilli), deadline.Format(time.StampMilli))
	}
	return first
}

// waitRun waits until a run of agent that began after since has finished
// well, and fails the test at the deadline.
func (f *fleet) waitRun(t *testing.T, agent string, since, deadline time.Time) {
	t.Helper()
	if !pollUntil(deadline, func() bool {
		var n int
		err := f.store(t).Bun().NewRaw("SELECT COUNT(*) FROM agent_runs WHERE agent = ? AND started_at >= ? AND outcome = 'ok'", agent, since).Scan(context.Background(), &n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}) {
		t.Fatalf("no %s run that began after %s finished by %s", agent, since.Format(time.StampMilli), deadline.Format(time.StampMilli))
	}
}

// isClientMail tells a client's e-mail (Collections, to the customers the
// test seeded) from outreach.
func isClientMail(m agentstest.ReceivedMail) bool {
	return len(m.To) == 1 && strings.HasSuffix(m.To[0], ".example") && strings.Contains(m.To[0], "@client")
}

// readyzOwner reads m's /readyz and whether it says m owns the agents.
func readyzOwner(client *http.Client, m *member) (string, bool) {
	resp, err := client.Get(m.base + "/readyz")
	if err != nil {
		return err.Error(), false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body), resp.StatusCode == http.StatusOK && ownsRE.Match(body)
}

// ownsRE is what /readyz says on the instance that owns the agents.
var ownsRE = regexp.MustCompile(`(?m)^ready: owner$`)

// seedRespondedLeads stores n leads that answered: Onboarding makes them
// customers, whose work Ops does, Billing invoices and Collections mails.
func seedRespondedLeads(t *testing.T, store *db.DB, n int) {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for i := range n {
		l, err := store.AddLead(ctx, db.NewLead{Name: fmt.Sprintf("Pat %02d", i), Email: fmt.Sprintf("pat@client%02d.example", i),
			Company: fmt.Sprintf("Client %02d", i), Website: fmt.Sprintf("https://client%02d.example", i),
			Niche: "marketing agency", Source: "import", DomainKey: fmt.Sprintf("client%02d.example", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ID)
	}
	if _, err := store.MarkLeads(ctx, ids, db.LeadResponded, "answered", db.AuditEntry{Actor: "failover test", Action: "lead.mark"}); err != nil {
		t.Fatal(err)
	}
}

// signIn signs in as the fleet's admin at base and returns the session
// cookie. Sessions live in the database: the cookie works on every instance.
func signIn(t *testing.T, base string) string {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(base+"/login", url.Values{"email": {clusterAdmin}, "password": {clusterPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "hossagent_session" && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("sign-in = %d without a session cookie", resp.StatusCode)
	return ""
}

// adminPost posts an admin form as the signed-in admin.
func adminPost(t *testing.T, target, cookie string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", cookie)
	req.Header.Set("HX-Request", "true")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// liveStream is one SSE client of a live view. It keeps the last HTML of
// every region the server sent, and when the last one changed.
type liveStream struct {
	resp *http.Response

	mu      sync.Mutex
	regions map[string]string
	history []liveMessage
	ended   error
	update  chan struct{} // a message arrived or the stream ended
}

// liveMessage is one message as it arrived: the regions it carried.
type liveMessage struct {
	at      time.Time
	regions map[string]string
}

// openLive connects to a live stream and reads it in the background.
func openLive(target, cookie string) (*liveStream, error) {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s = %d", target, resp.StatusCode)
	}
	s := &liveStream{resp: resp, regions: map[string]string{}, update: make(chan struct{}, 1)}
	go s.read()
	return s, nil
}

var partialRE = regexp.MustCompile(`(?s)<hx-partial hx-target="#([^"]+)" hx-swap="outerMorph">(.*?)</hx-partial>`)

func (s *liveStream) read() {
	r := bufio.NewReaderSize(s.resp.Body, 1<<16)
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.end(err)
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		case strings.HasPrefix(line, "event: session-ended"):
			s.end(errors.New("session ended"))
			return
		case line == "" && len(data) > 0:
			msg := liveMessage{at: time.Now(), regions: map[string]string{}}
			for _, m := range partialRE.FindAllStringSubmatch(strings.Join(data, "\n"), -1) {
				msg.regions[m[1]] = m[2]
			}
			s.mu.Lock()
			maps.Copy(s.regions, msg.regions)
			s.history = append(s.history, msg)
			s.mu.Unlock()
			data = data[:0]
			s.poke()
		}
	}
}

func (s *liveStream) end(err error) {
	s.mu.Lock()
	s.ended = err
	s.mu.Unlock()
	s.poke()
}

func (s *liveStream) poke() {
	select {
	case s.update <- struct{}{}:
	default:
	}
}

func (s *liveStream) close() { s.resp.Body.Close() }

// region is the last HTML of the region with this id.
func (s *liveStream) region(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.regions[id]
}

// firstShown is when the region id first showed what cond wants in a
// message that arrived after since.
func (s *liveStream) firstShown(since time.Time, id string, cond func(html string) bool) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	html := ""
	for _, m := range s.history {
		if h, ok := m.regions[id]; ok {
			html = h
		}
		if m.at.After(since) && cond(html) {
			return m.at, true
		}
	}
	return time.Time{}, false
}

func (s *liveStream) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// waitFor waits for the stream's messages until cond holds (true), the
// stream ends or the deadline passes (false).
func (s *liveStream) waitFor(deadline time.Time, cond func() bool) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		if cond() {
			return true
		}
		if s.err() != nil {
			return false
		}
		select {
		case <-s.update:
		case <-timer.C:
			return cond()
		}
	}
}

var (
	autopilotRE = regexp.MustCompile(`(?s)<dt>Autopilot</dt>\s*<dd>\s*<span class="(?:ok|bad)">(ON|OFF)</span>\s*(?:<span class="muted">every ([^<]+)</span>)?`)
	collectedRE = regexp.MustCompile(`(?s)<span class="value"><span[^>]*>([^<]*)</span></span>\s*<span class="label">Collected</span>`)
)

var ownerRE = regexp.MustCompile(`(?s)<dd id="agent-([a-z_]+)-owner">\s*(?:<code>([^<]*)</code>|<span class="warn">)`)

// agentOwners reads the owner each agent card of the control room names
// ("" while a takeover is under way).
func agentOwners(html string) map[string]string {
	owners := map[string]string{}
	for _, m := range ownerRE.FindAllStringSubmatch(html, -1) {
		owners[m[1]] = m[2]
	}
	return owners
}

// autopilotStatus is what a control room's status region says of the
// autopilot, as "ON every 1s".
func autopilotStatus(html string) string {
	m := autopilotRE.FindStringSubmatch(html)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1] + " every " + m[2])
}

// collectedCents reads the control room's "Collected" figure (US dollars:
// the fleet's only currency), or -1 when the cards do not show one.
func collectedCents(cards string) int64 {
	m := collectedRE.FindStringSubmatch(cards)
	if m == nil {
		return -1
	}
	digits := strings.NewReplacer("$", "", ",", "", ".", "", " ", "").Replace(strings.TrimSpace(m[1]))
	if digits == "" || digits == "—" || digits == "-" {
		return 0
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// paymentWatch is the live control room of one running instance at a
// time; when its instance dies it reconnects to another running one, as a
// browser behind a load balancer does. It keeps the highest "Collected"
// figure it was shown.
type paymentWatch struct {
	mu      sync.Mutex
	top     int64
	cards   string // the last cards region, for a failure's message
	conns   int
	on      *member           // the instance it follows now
	stream  *liveStream       // its stream
	owners  map[string]string // agent → owner, as its cards name them
	updated chan struct{}
}

func newPaymentWatch() *paymentWatch {
	return &paymentWatch{updated: make(chan struct{}, 1)}
}

func (w *paymentWatch) follow(ctx context.Context, f *fleet, cookie string) {
	rng := rand.New(rand.NewPCG(14, 1))
	for ctx.Err() == nil {
		up := f.running()
		if len(up) == 0 {
			time.Sleep(50 * time.Millisecond) // between a kill and the next start
			continue
		}
		// A standby: it runs no agents, so nothing of its own re-renders
		// its views, and what it shows of a payment made on another
		// instance came as an event across instances.
		client := &http.Client{Timeout: time.Second}
		standbys := slices.DeleteFunc(slices.Clone(up), func(m *member) bool {
			_, owns := readyzOwner(client, m)
			return owns
		})
		if len(standbys) > 0 {
			up = standbys
		}
		m := up[rng.IntN(len(up))]
		s, err := openLive(m.base+"/events/admin", cookie)
		if err != nil {
			time.Sleep(50 * time.Millisecond) // it was being killed: take another
			continue
		}
		w.mu.Lock()
		w.conns++
		w.on, w.stream = m, s
		w.mu.Unlock()
		stop := context.AfterFunc(ctx, s.close)
		for {
			select {
			case <-s.update:
			case <-ctx.Done():
			}
			if cards, agents := s.region("admin-cards"), s.region("admin-agents"); cards != "" {
				w.mu.Lock()
				w.top, w.cards, w.owners = max(w.top, collectedCents(cards)), cards, agentOwners(agents)
				w.mu.Unlock()
				select {
				case w.updated <- struct{}{}:
				default:
				}
			}
			if s.err() != nil || ctx.Err() != nil {
				break
			}
		}
		stop()
		s.close()
	}
}

// showed waits until the live stream has shown at least cents collected.
func (w *paymentWatch) showed(cents int64, deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		if w.highest() >= cents {
			return true
		}
		select {
		case <-w.updated:
		case <-timer.C:
			return w.highest() >= cents
		}
	}
}

// showedOwner waits until the live client's agent cards all name owner.
func (w *paymentWatch) showedOwner(owner string, deadline time.Time) (map[string]string, bool) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		w.mu.Lock()
		owners := w.owners
		w.mu.Unlock()
		all := len(owners) > 0
		for _, o := range owners {
			all = all && o == owner
		}
		if all {
			return owners, true
		}
		select {
		case <-w.updated:
		case <-timer.C:
			return owners, false
		}
	}
}

// moveOff ends the live client's stream: it connects to a standby again.
// It is called when the instance it follows has become the owner.
func (w *paymentWatch) moveOff() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stream != nil {
		w.stream.close()
	}
}

// following is the instance the live client is connected to.
func (w *paymentWatch) following() *member {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.on
}

func (w *paymentWatch) highest() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.top
}

func (w *paymentWatch) lastCards() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cards
}

func (w *paymentWatch) connections() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conns
}

// payer pays open invoices that have a payment link and whose e-mail was
// sent, one at a time, with a signed checkout.session.completed posted to
// a random running instance other than the live client's, and waits for
// each to show on the live stream.
type payer struct {
	store *db.DB
	fleet *fleet
	watch *paymentWatch
	rng   *rand.Rand

	mu    sync.Mutex
	paid  []payment
	shown []time.Duration
	errs  []string
	done  chan struct{} // signalled after each payment
}

type payment struct {
	invoice, cents int64
}

// run pays until ctx ends. A payment under way when it ends is finished
// and counted: the webhook may have been applied already.
func (p *payer) run(ctx context.Context) {
	stopping := ctx
	ctx = context.WithoutCancel(ctx)
	install := ""
	var total int64
	tried := map[int64]bool{}
	for stopping.Err() == nil {
		if install == "" {
			// The install id Stripe's metadata carries; the first instance
			// stores it when it starts with Stripe on.
			v, err := p.store.Setting(ctx, "install.id", "")
			if err != nil || v == "" {
				time.Sleep(100 * time.Millisecond) // a bounded poll: ctx ends it
				continue
			}
			install = "hoss-" + v
		}
		var invs []db.Invoice
		// A client pays once the invoice e-mail has reached them.
		err := p.store.Bun().NewSelect().Model(&invs).
			Where("status = 'open' AND stripe_payment_link_id <> ''").
			Where("EXISTS (SELECT 1 FROM client_messages AS cm WHERE cm.invoice_id = i.id AND cm.kind = 'invoice' AND cm.status IN ('sent', 'sending'))").
			OrderExpr("id").Scan(ctx)
		if err != nil {
			p.fail("list open invoices: %v", err)
			return
		}
		inv := db.Invoice{}
		for _, i := range invs {
			if !tried[i.ID] {
				inv = i
				break
			}
		}
		if inv.ID == 0 {
			time.Sleep(100 * time.Millisecond) // a poll of the database until Billing opens one; ctx ends it
			continue
		}
		tried[inv.ID] = true
		outcome, via, retried, err := p.deliver(ctx, install, inv)
		if err != nil {
			p.fail("invoice %d: %v", inv.ID, err)
			return
		}
		if outcome == "duplicate" && retried {
			// An instance applied it and died before it answered (or the
			// answer was lost): Stripe's retry finds it applied.
			var status string
			if err := p.store.Bun().NewRaw("SELECT status FROM invoices WHERE id = ?", inv.ID).Scan(ctx, &status); err != nil {
				p.fail("invoice %d: %v", inv.ID, err)
				return
			}
			if status == db.InvoicePaid {
				outcome = db.OutcomePaid
			}
		}
		if outcome != db.OutcomePaid {
			p.fail("invoice %d (posted to %s): outcome %q, want paid", inv.ID, via, outcome)
			continue
		}
		total += inv.AmountCents
		applied := time.Now()
		shown := p.watch.showed(total, applied.Add(paymentShownBound))
		p.mu.Lock()
		p.paid = append(p.paid, payment{inv.ID, inv.AmountCents})
		if shown {
			p.shown = append(p.shown, time.Since(applied))
		} else {
			p.errs = append(p.errs, fmt.Sprintf("invoice %d paid through %s: the live stream showed %d cents collected after %s, want %d; its cards:\n%s",
				inv.ID, via, p.watch.highest(), paymentShownBound, total, p.watch.lastCards()))
		}
		p.mu.Unlock()
		select {
		case p.done <- struct{}{}:
		default:
		}
	}
}

// deliver posts the payment of inv to running instances until one answers
// 200, as Stripe retries a delivery that failed (the instance was killed
// while it was asked); retried says an earlier attempt failed.
func (p *payer) deliver(ctx context.Context, install string, inv db.Invoice) (outcome, via string, retried bool, err error) {
	// No payment_link in the session: stripe-mock gives every link the same
	// id, so the session names its invoice by this install's metadata.
	session := map[string]any{
		"id": fmt.Sprintf("cs_failover_%d", inv.ID), "object": "checkout.session", "mode": "payment", "status": "complete",
		"payment_status": "paid", "amount_total": inv.AmountCents, "currency": inv.Currency,
		"payment_intent":   fmt.Sprintf("pi_failover_%d", inv.ID),
		"metadata":         map[string]string{"invoice_id": strconv.FormatInt(inv.ID, 10), "hossagent_install": install},
		"customer_details": map[string]any{"email": "payer@client.example", "name": "Pat Payer"},
	}
	payload, err := json.Marshal(map[string]any{
		"id": fmt.Sprintf("evt_failover_%d", inv.ID), "object": "event", "api_version": stripe.APIVersion,
		"type": "checkout.session.completed", "created": time.Now().Unix(), "livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": session},
	})
	if err != nil {
		return "", "", false, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var last error
	for range 10 {
		// Any instance but the live client's: what the client sees came
		// across instances.
		watched := p.watch.following()
		up := slices.DeleteFunc(p.fleet.running(), func(m *member) bool { return m == watched })
		if len(up) == 0 {
			time.Sleep(50 * time.Millisecond) // between a kill and the next start
			continue
		}
		m := up[p.rng.IntN(len(up))]
		sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: clusterSecret, Timestamp: time.Now()})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.base+"/stripe/webhook", bytes.NewReader(payload))
		if err != nil {
			return "", "", false, err
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("Stripe-Signature", sig.Header)
		resp, err := client.Do(req)
		if err != nil {
			last, retried = err, true
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last, retried = fmt.Errorf("%s answered %d %s", m.id, resp.StatusCode, body), true
			continue
		}
		var answer struct{ Note string }
		if err := json.Unmarshal(body, &answer); err != nil {
			return "", "", retried, fmt.Errorf("%s answered %s", m.id, body)
		}
		return answer.Note, m.id, retried, nil
	}
	return "", "", retried, fmt.Errorf("no instance took the webhook: %v", last)
}

func (p *payer) fail(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
}

func (p *payer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.paid)
}

// waitPaid waits for the next payment, or the deadline.
func (p *payer) waitPaid(deadline time.Time) {
	select {
	case <-p.done:
	case <-time.After(time.Until(deadline)):
	}
}

func (p *payer) result() ([]payment, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.paid), slices.Clone(p.errs)
}

func (p *payer) shownAfter() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return roundAll(p.shown)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// pollUntil polls cond every 50 ms until it holds or the deadline passes.
func pollUntil(deadline time.Time, cond func() bool) bool {
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // a bounded poll of the database
	}
	return true
}

// startStripeMockServer runs stripe-mock v0.180.0 (go.mod's tool, built
// from the module cache) with -strict-version-check on free ports until the
// test ends, and returns its URL. Without it the test is skipped, except
// under CI=true, where it fails.
func startStripeMockServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.Command("go", "tool", "-n", "stripe-mock").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("stripe-mock is required under CI=true (it is go.mod's tool: `go tool -n stripe-mock`): %v", err)
		}
		t.Skipf("skipping: stripe-mock cannot be built (`go tool -n stripe-mock`: %v)", err)
	}
	cmd := exec.Command(strings.TrimSpace(string(bin)), "-strict-version-check", "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// stripe-mock binds its ports before it prints their addresses.
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "Listening for HTTP at address: "); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }() // it logs every request
			return "http://" + strings.TrimSpace(addr)
		}
	}
	t.Fatal("stripe-mock exited before listening")
	return ""
}
