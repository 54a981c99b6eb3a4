package db

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

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
