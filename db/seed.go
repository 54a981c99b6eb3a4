package db

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// SeedEpoch is the "now" a seed is generated against unless told
// otherwise: a fixed instant, so the same sizes and seed always write the
// same rows.
var SeedEpoch = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// SeedSource is the source of every seeded lead.
const SeedSource = "seed"

// seedCurrency is the currency of every seeded task and invoice.
const seedCurrency = "usd"

// Seeded history: leads arrive over seedLeadDays, the last of them
// seedLeadQuietDays before now, so that every later step of a lead's life
// (contact, answer, conversion) still lies in the past.
const (
	seedLeadDays      = 180
	seedLeadQuietDays = 5
	// seedUnbilledAge is how recent finished work may stay unbilled: the
	// next billing cycle picks it up.
	seedUnbilledAge = 2 * 24 * time.Hour
	seedDueAfter    = 14 * 24 * time.Hour
	// seedMaxVariables bounds the bound values of one INSERT statement,
	// under SQLite's default limit of 32766.
	seedMaxVariables = 16000
)

// ErrSeedRefused is returned (wrapped) when the database already holds
// business data: a seed never mixes made-up rows with real ones.
var ErrSeedRefused = errors.New("seed refused")

// SeedSizes says how much a seed writes. Every seeded customer comes from
// a converted lead, every task belongs to a customer and every invoice bills
// at least one done task of its customer, so Customers <= Leads, Tasks need
// Customers, and Invoices cannot exceed the done tasks the seed makes.
type SeedSizes struct {
	Leads, Customers, Tasks, Invoices int
	// Seed picks the pseudo-random stream: same sizes and seed, same rows.
	Seed uint64
	// Now is the instant the data is generated against (all of it lies
	// before); zero means SeedEpoch.
	Now time.Time
}

// Validate reports sizes that cannot be seeded, before anything is opened.
func (s SeedSizes) Validate() error {
	switch {
	case s.Leads < 0 || s.Customers < 0 || s.Tasks < 0 || s.Invoices < 0:
		return errors.New("seed: sizes must not be negative")
	case s.Leads > 10_000_000 || s.Tasks > 10_000_000:
		return errors.New("seed: at most 10000000 leads and 10000000 tasks")
	case s.Customers > s.Leads:
		return fmt.Errorf("seed: %d customers need as many leads (each customer is a converted lead), got %d", s.Customers, s.Leads)
	case s.Tasks > 0 && s.Customers == 0:
		return errors.New("seed: tasks need at least one customer")
	case s.Invoices > s.Tasks:
		return fmt.Errorf("seed: %d invoices need at least as many done tasks; got %d tasks", s.Invoices, s.Tasks)
	}
	return nil
}

func (s SeedSizes) now() time.Time {
	if s.Now.IsZero() {
		return SeedEpoch
	}
	return s.Now.UTC().Truncate(time.Second)
}

// SeedReport says what a seed wrote.
type SeedReport struct {
	Leads, Messages, Customers, Tasks, DoneTasks, Invoices, InvoiceLines, PaidInvoices int
	// PortalToken opens the first customer's portal (/portal/<token>); it is
	// the one seeded token anybody is shown.
	PortalToken string
	Elapsed     time.Duration
}

// String is the one-line summary the seed command prints.
func (r SeedReport) String() string {
	return fmt.Sprintf("seeded %d leads, %d messages, %d customers, %d tasks (%d done), %d invoices (%d paid) with %d lines in %s",
		r.Leads, r.Messages, r.Customers, r.Tasks, r.DoneTasks, r.Invoices, r.PaidInvoices, r.InvoiceLines,
		r.Elapsed.Round(time.Millisecond))
}

// seedGuardTables must all be empty for a seed to run; users, sessions,
// settings and the cycle log may exist (an operator signed in to look).
var seedGuardTables = []string{"leads", "customers", "tasks", "invoices", "invoice_lines", "messages"}

// Seed fills an empty database with a deterministic, made-up business of
// the given sizes, for development and load tests: leads through the whole
// pipeline with their outreach messages, customers with portal tokens,
// tasks (mostly done, some pending or failed, none running) and invoices
// billing done work, paid or open, some overdue, numbered without gaps.
// Every invariant CheckInvariants proves holds on the result.
//
// Rows are written with ordinary multi-row INSERT statements in one
// transaction, so triggers see every row and a failed seed leaves nothing.
// It refuses (ErrSeedRefused) a database whose business tables hold rows.
func (d *DB) Seed(ctx context.Context, sizes SeedSizes) (SeedReport, error) {
	if err := sizes.Validate(); err != nil {
		return SeedReport{}, err
	}
	started := time.Now()
	plan, err := planSeed(sizes)
	if err != nil {
		return SeedReport{}, err
	}
	if err := d.seedWrite(ctx, plan); err != nil {
		return SeedReport{}, err
	}
	r := plan.report()
	r.Elapsed = time.Since(started)
	return r, nil
}

// seedCacheKiB is the page cache of the seeding connection: the indexes of
// a large seed fit, so inserting into them seldom reads a page back.
const seedCacheKiB = 256 << 10

// seedWrite checks the database is empty and writes the plan in one
// transaction, on a connection whose page cache is enlarged for the while.
func (d *DB) seedWrite(ctx context.Context, plan *seedPlanned) error {
	conn, err := d.bun.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer conn.Close()
	var cache int64
	if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = %d", -seedCacheKiB)); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA cache_size = %d", cache)) //nolint:errcheck // best effort: the pool may reuse the connection
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := refuseNonEmpty(ctx, tx); err != nil {
		return err
	}
	if err := plan.write(ctx, tx); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// refuseNonEmpty fails with ErrSeedRefused when a business table holds rows
// or invoice numbers were already handed out.
func refuseNonEmpty(ctx context.Context, tx *sql.Tx) error {
	var held []string
	for _, table := range seedGuardTables {
		var n int64
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		if n > 0 {
			held = append(held, fmt.Sprintf("%s: %d", table, n))
		}
	}
	var issued int64
	err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = ?", InvoiceCounter).Scan(&issued)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if issued > 0 {
		held = append(held, fmt.Sprintf("invoice numbers issued: %d", issued))
	}
	if len(held) > 0 {
		return fmt.Errorf("%w: the database already holds data (%s); seed only an empty database", ErrSeedRefused, strings.Join(held, ", "))
	}
	return nil
}

// seedTime is a stored timestamp: whole seconds, UTC, in the layout bun
// writes, so seeded and live rows compare and sort alike.
func seedTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999-07:00") }

// seedTimePtr is seedTime, or NULL for the zero time.
func seedTimePtr(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return seedTime(t)
}

// seedRand is one named pseudo-random stream of a seed: each table draws
// from its own, so a table's rows depend only on the sizes and the seed.
func seedRand(seed uint64, stream string) *rand.Rand {
	sum := sha256.Sum256([]byte(stream))
	var s2 uint64
	for _, b := range sum[:8] {
		s2 = s2<<8 | uint64(b)
	}
	return rand.New(rand.NewPCG(seed, s2))
}

// between draws a duration in [lo, hi), in whole seconds.
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	span := int64((hi - lo) / time.Second)
	if span <= 0 {
		return lo
	}
	return lo + time.Duration(r.Int64N(span))*time.Second
}

// seedPortalToken is the deterministic portal token of seeded customer id:
// 256 bits that look random, derived from the seed.
func seedPortalToken(seed uint64, id int64) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "hossagent seed %d portal %d", seed, id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// batch buffers the rows of one table and writes them as multi-row
// INSERTs of up to per rows each, through one prepared statement.
type batch struct {
	ctx   context.Context
	tx    *sql.Tx
	table string
	cols  []string
	per   int
	args  []any
	rows  int
	full  *sql.Stmt
	count int
}

func newBatch(ctx context.Context, tx *sql.Tx, table string, cols ...string) *batch {
	per := max(1, min(500, seedMaxVariables/len(cols)))
	return &batch{ctx: ctx, tx: tx, table: table, cols: cols, per: per, args: make([]any, 0, per*len(cols))}
}

// insertSQL is the INSERT of n rows.
func (b *batch) insertSQL(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(b.cols)), ",") + ")"
	return "INSERT INTO " + b.table + " (" + strings.Join(b.cols, ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// add buffers one row, writing the batch when it is full.
func (b *batch) add(values ...any) error {
	if len(values) != len(b.cols) {
		return fmt.Errorf("%s: %d values for %d columns", b.table, len(values), len(b.cols))
	}
	b.args = append(b.args, values...)
	b.rows++
	b.count++
	if b.rows < b.per {
		return nil
	}
	if b.full == nil {
		st, err := b.tx.PrepareContext(b.ctx, b.insertSQL(b.per))
		if err != nil {
			return fmt.Errorf("%s: %w", b.table, err)
		}
		b.full = st
	}
	_, err := b.full.ExecContext(b.ctx, b.args...)
	b.args, b.rows = b.args[:0], 0
	if err != nil {
		return fmt.Errorf("%s: %w", b.table, err)
	}
	return nil
}

// flush writes the rows still buffered and releases the statement.
func (b *batch) flush() error {
	defer func() {
		if b.full != nil {
			b.full.Close()
			b.full = nil
		}
	}()
	if b.rows == 0 {
		return nil
	}
	_, err := b.tx.ExecContext(b.ctx, b.insertSQL(b.rows), b.args...)
	b.args, b.rows = b.args[:0], 0
	if err != nil {
		return fmt.Errorf("%s: %w", b.table, err)
	}
	return nil
}

// Made-up names the seeded business is written with.
var (
	seedFirstNames = []string{"Ada", "Ben", "Chloe", "Dev", "Elena", "Finn", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam", "Maya", "Noah", "Olga", "Paul", "Rosa", "Sami", "Tara", "Umar"}
	seedLastNames  = []string{"Adler", "Brooks", "Costa", "Dietz", "Evans", "Fischer", "Garcia", "Hale", "Ito", "Jensen", "Keller", "Lopez", "Moreau", "Novak", "Okafor", "Park", "Quinn", "Rossi", "Silva", "Tanaka"}
	seedAdjectives = []string{"Bright", "North", "Blue", "Granite", "Harbor", "Maple", "Summit", "Cedar", "Silver", "Copper", "Prairie", "Lumen"}
	seedNouns      = []string{"Works", "Labs", "Supply", "Partners", "Studio", "Foods", "Logistics", "Dental", "Fitness", "Legal", "Roofing", "Analytics"}
	seedNiches     = []string{"dental clinics", "law firms", "gyms", "roofers", "bakeries", "accountants", "logistics", "e-commerce", "real estate", "veterinary"}
)

// seedKind is one kind of task and its price, as the default catalogue
// sells them.
type seedKind struct {
	kind, name string
	cents      int64
}

var seedKinds = []seedKind{
	{"market_research_brief", "Market research brief", 15000},
	{"competitive_landscape_review", "Competitive landscape review", 20000},
	{"lead_list_enrichment", "Lead list enrichment", 9000},
	{"outreach_copy_pack", "Outreach copy pack", 12000},
}

// seedPlans are the plans and the kinds (indexes into seedKinds) each sells.
var seedPlans = []struct {
	name  string
	kinds []int
}{
	{"starter", []int{0, 3}},
	{"growth", []int{0, 1, 2, 3}},
}

// seedLead is one generated lead and, when contacted, its message.
type seedLead struct {
	id                                       int64
	first, last, company, niche              string
	status                                   string
	created, contacted, responded, converted time.Time
	messageStatus, template                  string
	customerPlan                             int // index into seedPlans, for converted leads
	customerID                               int64
	customerPaused                           bool
	email, domain                            string
}

// seedTask is one generated task.
type seedTask struct {
	id, customerID              int64
	kind                        int
	status                      string
	attempts                    int
	cost                        int64
	created, started, completed time.Time
}

// seedInvoice is one generated invoice and the done tasks it bills.
type seedInvoice struct {
	id, customerID int64
	issued, paid   time.Time
	tasks          []*seedTask
	amount         int64
}

// seedPlanned is a whole seed, generated in memory before it is written.
type seedPlanned struct {
	sizes     SeedSizes
	now       time.Time
	leads     []seedLead
	customers []*seedLead // customer id i+1 is customers[i]
	tasks     []*seedTask
	invoices  []*seedInvoice
}

// planSeed generates every row of a seed.
func planSeed(s SeedSizes) (*seedPlanned, error) {
	p := &seedPlanned{sizes: s, now: s.now()}
	p.planLeads()
	p.planTasks()
	if err := p.planInvoices(); err != nil {
		return nil, err
	}
	return p, nil
}

// planLeads spreads the leads over seedLeadDays and walks each through the
// pipeline; evenly spaced leads become the customers.
func (p *seedPlanned) planLeads() {
	r := seedRand(p.sizes.Seed, "leads")
	n, c := p.sizes.Leads, p.sizes.Customers
	first := p.now.Add(-seedLeadDays * 24 * time.Hour)
	span := time.Duration(seedLeadDays-seedLeadQuietDays) * 24 * time.Hour
	p.leads = make([]seedLead, n)
	next := 0 // the next customer to place
	for i := range p.leads {
		l := &p.leads[i]
		l.id = int64(i + 1)
		l.first, l.last = seedFirstNames[r.IntN(len(seedFirstNames))], seedLastNames[r.IntN(len(seedLastNames))]
		l.company = fmt.Sprintf("%s %s %d", seedAdjectives[r.IntN(len(seedAdjectives))], seedNouns[r.IntN(len(seedNouns))], i+1)
		l.niche = seedNiches[r.IntN(len(seedNiches))]
		l.domain = fmt.Sprintf("lead%d.example", i+1)
		l.email = strings.ToLower(l.first+"."+l.last) + "@" + l.domain
		l.created = first.Add(time.Duration(int64(span) / int64(n) * int64(i))).Add(between(r, 0, time.Hour)).Truncate(time.Second)
		converted := next < c && i == next*n/c
		if converted {
			next++
			l.customerID = int64(next)
			l.customerPlan = r.IntN(len(seedPlans))
			l.customerPaused = r.IntN(100) < 5
			p.customers = append(p.customers, l)
		}
		l.walk(r, converted)
	}
}

// walk picks a lead's status and the times of the steps it took.
func (l *seedLead) walk(r *rand.Rand, converted bool) {
	l.status = LeadConverted
	if !converted {
		switch x := r.IntN(100); {
		case x < 35:
			l.status = LeadNew
		case x < 65:
			l.status = LeadContacted
		case x < 68:
			l.status = LeadResponded
		case x < 73:
			l.status = LeadBounced
		case x < 78:
			l.status = LeadUnsubscribed
		case x < 81:
			l.status = LeadFailed
		default:
			l.status = LeadDead
		}
	}
	if l.status == LeadNew || l.status == LeadFailed {
		return
	}
	l.contacted = l.created.Add(between(r, time.Hour, 24*time.Hour))
	l.template = fmt.Sprintf("general/%d", 1+r.IntN(3))
	l.messageStatus = MessageSent
	if l.status != LeadBounced && r.IntN(100) < 60 {
		l.messageStatus = MessageDryRun
	}
	if l.status == LeadResponded || l.status == LeadConverted {
		l.responded = l.contacted.Add(between(r, time.Hour, 48*time.Hour))
	}
	if l.status == LeadConverted {
		l.converted = l.responded.Add(between(r, 10*time.Minute, 24*time.Hour))
	}
}

// updated is the time of the lead's last step.
func (l *seedLead) updated() time.Time {
	for _, t := range []time.Time{l.converted, l.responded, l.contacted} {
		if !t.IsZero() {
			return t
		}
	}
	return l.created
}

// planTasks gives each task a customer, a kind of its plan, a time after
// the customer's start and a status: mostly done, some pending or failed.
// Ids follow creation time, as the app would have handed them out.
func (p *seedPlanned) planTasks() {
	r := seedRand(p.sizes.Seed, "tasks")
	p.tasks = make([]*seedTask, p.sizes.Tasks)
	for i := range p.tasks {
		cust := p.customers[r.IntN(len(p.customers))]
		kinds := seedPlans[cust.customerPlan].kinds
		t := &seedTask{customerID: cust.customerID, kind: kinds[r.IntN(len(kinds))]}
		t.created = cust.converted.Add(between(r, 0, p.now.Sub(cust.converted)))
		t.settle(r, p.now)
		p.tasks[i] = t
	}
	slices.SortStableFunc(p.tasks, func(a, b *seedTask) int {
		return cmp.Or(a.created.Compare(b.created), cmp.Compare(a.customerID, b.customerID))
	})
	for i, t := range p.tasks {
		t.id = int64(i + 1)
	}
}

// settle picks a task's status; work that could not have finished before
// now is still pending.
func (t *seedTask) settle(r *rand.Rand, now time.Time) {
	t.status = TaskPending
	x := r.IntN(100)
	if x >= 96 || now.Sub(t.created) < 2*time.Hour {
		return
	}
	t.started = t.created.Add(between(r, time.Minute, time.Hour))
	t.attempts = 1
	if r.IntN(10) == 0 {
		t.attempts = 2
	}
	if x < 4 {
		t.status, t.attempts = TaskFailed, 3
		t.cost = int64(t.attempts) * (5 + r.Int64N(20))
		return
	}
	t.completed = t.started.Add(between(r, 30*time.Second, 10*time.Minute))
	if t.completed.After(now) {
		*t = seedTask{customerID: t.customerID, kind: t.kind, created: t.created, status: TaskPending}
		return
	}
	t.status = TaskDone
	t.cost = int64(t.attempts) * (5 + r.Int64N(40))
}

// planInvoices bills done work: each customer's billable tasks, in the
// order they were finished, are cut into consecutive invoices, the count
// of invoices shared out in proportion to the work. Work finished in the
// last seedUnbilledAge is left for the next billing cycle when the invoices
// asked for fit without it.
func (p *seedPlanned) planInvoices() error {
	want := p.sizes.Invoices
	if want == 0 {
		return nil
	}
	billable, total := p.billable(p.now.Add(-seedUnbilledAge))
	if total < want {
		billable, total = p.billable(p.now)
	}
	if total < want {
		return fmt.Errorf("seed: %d invoices need as many done tasks, but these sizes make %d; ask for fewer invoices or more tasks", want, total)
	}
	r := seedRand(p.sizes.Seed, "invoices")
	remainder := want
	shares := make([]int, len(billable))
	for i, work := range billable {
		shares[i] = want * len(work) / total
		remainder -= shares[i]
	}
	for i, work := range billable {
		if remainder > 0 && want*len(work)%total != 0 {
			shares[i]++
			remainder--
		}
	}
	for i, work := range billable {
		for j := range shares[i] {
			p.invoices = append(p.invoices, p.invoice(r, work[j*len(work)/shares[i]:(j+1)*len(work)/shares[i]]))
		}
	}
	slices.SortStableFunc(p.invoices, func(a, b *seedInvoice) int {
		return cmp.Or(a.issued.Compare(b.issued), cmp.Compare(a.tasks[0].id, b.tasks[0].id))
	})
	for i, inv := range p.invoices {
		inv.id = int64(i + 1)
	}
	return nil
}

// billable lists, per customer (by id), the done tasks finished before
// cutoff in the order they were finished, and how many there are.
func (p *seedPlanned) billable(cutoff time.Time) ([][]*seedTask, int) {
	per := make([][]*seedTask, len(p.customers))
	total := 0
	for _, t := range p.tasks {
		if t.status == TaskDone && t.completed.Before(cutoff) {
			per[t.customerID-1] = append(per[t.customerID-1], t)
			total++
		}
	}
	for _, work := range per {
		slices.SortStableFunc(work, func(a, b *seedTask) int {
			return cmp.Or(a.completed.Compare(b.completed), cmp.Compare(a.id, b.id))
		})
	}
	return per, total
}

// invoice bills tasks (finished, of one customer) shortly after the last
// of them; most invoices past due are paid, some are overdue.
func (p *seedPlanned) invoice(r *rand.Rand, tasks []*seedTask) *seedInvoice {
	inv := &seedInvoice{customerID: tasks[0].customerID, tasks: tasks}
	last := tasks[len(tasks)-1].completed
	inv.issued = last.Add(between(r, time.Hour, 12*time.Hour))
	if inv.issued.After(p.now) {
		inv.issued = p.now
	}
	for _, t := range tasks {
		inv.amount += seedKinds[t.kind].cents
	}
	paidShare := 45
	if inv.issued.Add(seedDueAfter).Before(p.now) {
		paidShare = 90
	}
	if r.IntN(100) < paidShare {
		inv.paid = inv.issued.Add(between(r, time.Hour, 13*24*time.Hour))
		if inv.paid.After(p.now) {
			inv.paid = inv.issued.Add(p.now.Sub(inv.issued) / 2).Truncate(time.Second)
		}
	}
	return inv
}

// report counts what the plan holds.
func (p *seedPlanned) report() SeedReport {
	r := SeedReport{Leads: len(p.leads), Customers: len(p.customers), Tasks: len(p.tasks), Invoices: len(p.invoices)}
	for i := range p.leads {
		if p.leads[i].messageStatus != "" {
			r.Messages++
		}
	}
	for _, t := range p.tasks {
		if t.status == TaskDone {
			r.DoneTasks++
		}
	}
	for _, inv := range p.invoices {
		r.InvoiceLines += len(inv.tasks)
		if !inv.paid.IsZero() {
			r.PaidInvoices++
		}
	}
	if len(p.customers) > 0 {
		r.PortalToken = seedPortalToken(p.sizes.Seed, 1)
	}
	return r
}

// write inserts the plan, parents before children.
func (p *seedPlanned) write(ctx context.Context, tx *sql.Tx) error {
	for _, step := range []func(context.Context, *sql.Tx) error{
		p.writeLeads, p.writeMessages, p.writeCustomers, p.writeTasks, p.writeInvoices, p.writeCounter,
	} {
		if err := step(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

func (p *seedPlanned) writeLeads(ctx context.Context, tx *sql.Tx) error {
	b := newBatch(ctx, tx, "leads", "id", "name", "email", "company", "domain_key", "niche", "website", "website_key", "source",
		"status", "dry_run", "contacted_at", "responded_at", "converted_at", "created_at", "updated_at")
	for i := range p.leads {
		l := &p.leads[i]
		err := b.add(l.id, l.first+" "+l.last, l.email, l.company, l.domain, l.niche, "https://"+l.domain, WebsiteKey("https://"+l.domain), SeedSource,
			l.status, l.messageStatus == MessageDryRun, seedTimePtr(l.contacted), seedTimePtr(l.responded), seedTimePtr(l.converted),
			seedTime(l.created), seedTime(l.updated()))
		if err != nil {
			return err
		}
	}
	return b.flush()
}

func (p *seedPlanned) writeMessages(ctx context.Context, tx *sql.Tx) error {
	b := newBatch(ctx, tx, "messages", "id", "lead_id", "to_addr", "template", "subject", "body", "status",
		"provider_id", "attempts", "created_at", "sending_at", "sent_at", "updated_at")
	var id int64
	for i := range p.leads {
		l := &p.leads[i]
		if l.messageStatus == "" {
			continue
		}
		id++
		provider := ""
		if l.messageStatus == MessageSent {
			provider = fmt.Sprintf("seed-%d", id)
		}
		queued := l.contacted.Add(-time.Minute)
		err := b.add(id, l.id, l.email, l.template, "A quick idea for "+l.company,
			"Hi "+l.first+",\n\nwe help "+l.niche+" like "+l.company+" find their next customers.\n", l.messageStatus,
			provider, 1, seedTime(queued), seedTime(l.contacted), seedTime(l.contacted), seedTime(l.contacted))
		if err != nil {
			return err
		}
	}
	return b.flush()
}

func (p *seedPlanned) writeCustomers(ctx context.Context, tx *sql.Tx) error {
	b := newBatch(ctx, tx, "customers", "id", "company", "contact_email", "plan", "lead_id", "status",
		"portal_token_hash", "token_created_at", "created_at")
	for _, l := range p.customers {
		status := CustomerActive
		if l.customerPaused {
			status = CustomerPaused
		}
		err := b.add(l.customerID, l.company, l.email, seedPlans[l.customerPlan].name, l.id, status,
			HashToken(seedPortalToken(p.sizes.Seed, l.customerID)), seedTime(l.converted), seedTime(l.converted))
		if err != nil {
			return err
		}
	}
	return b.flush()
}

func (p *seedPlanned) writeTasks(ctx context.Context, tx *sql.Tx) error {
	b := newBatch(ctx, tx, "tasks", "id", "customer_id", "kind", "description", "status", "currency",
		"reward_cents", "cost_cents", "profit_cents", "attempts", "started_at", "result", "last_error",
		"completed_at", "created_at", "updated_at")
	for _, t := range p.tasks {
		k := seedKinds[t.kind]
		company := p.customers[t.customerID-1].company
		result, lastErr, updated := "", "", t.created
		switch t.status {
		case TaskDone:
			result, updated = k.name+" delivered for "+company+".", t.completed
		case TaskFailed:
			lastErr, updated = "executor: no usable answer after 3 attempts (seeded)", t.started.Add(time.Minute)
		}
		err := b.add(t.id, t.customerID, k.kind, k.name+" for "+company, t.status, seedCurrency,
			k.cents, t.cost, k.cents-t.cost, t.attempts, seedTimePtr(t.started), result, lastErr,
			seedTimePtr(t.completed), seedTime(t.created), seedTime(updated))
		if err != nil {
			return err
		}
	}
	return b.flush()
}

func (p *seedPlanned) writeInvoices(ctx context.Context, tx *sql.Tx) error {
	inv := newBatch(ctx, tx, "invoices", "id", "customer_id", "number", "currency", "amount_cents", "status",
		"issued_at", "due_at", "paid_at", "payer_email", "payer_name", "created_at", "updated_at")
	for _, in := range p.invoices {
		c := p.customers[in.customerID-1]
		status, payerEmail, payerName, updated := InvoiceOpen, "", "", in.issued
		if !in.paid.IsZero() {
			status, payerEmail, payerName, updated = InvoicePaid, c.email, c.first+" "+c.last, in.paid
		}
		err := inv.add(in.id, in.customerID, fmt.Sprintf("INV-%06d", in.id), seedCurrency, in.amount, status,
			seedTime(in.issued), seedTime(in.issued.Add(seedDueAfter)), seedTimePtr(in.paid), payerEmail, payerName,
			seedTime(in.issued), seedTime(updated))
		if err != nil {
			return err
		}
	}
	if err := inv.flush(); err != nil {
		return err
	}
	return p.writeInvoiceLines(ctx, tx)
}

func (p *seedPlanned) writeInvoiceLines(ctx context.Context, tx *sql.Tx) error {
	b := newBatch(ctx, tx, "invoice_lines", "id", "invoice_id", "task_id", "description", "amount_cents", "created_at")
	var id int64
	for _, in := range p.invoices {
		for _, t := range in.tasks {
			id++
			k := seedKinds[t.kind]
			if err := b.add(id, in.id, t.id, k.name+" for "+p.customers[t.customerID-1].company, k.cents, seedTime(in.issued)); err != nil {
				return err
			}
		}
	}
	return b.flush()
}

// writeCounter sets the invoice counter to the last number issued, so the
// billing cycle goes on without a gap.
func (p *seedPlanned) writeCounter(ctx context.Context, tx *sql.Tx) error {
	if len(p.invoices) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, InvoiceCounter, len(p.invoices))
	return err
}
