package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// This file holds the catalogue an owner controls (migration 0013): the
// kinds of work with their prices, the plans made of them, and the monthly
// periods of the customers on a monthly plan. agents.LoadCatalogue turns
// what is stored into the agents' Catalogue; the admin edits it
// (/admin/plans); the Onboarding cycle opens each period's tasks.

// Plan billing.
const (
	BillingOnce    = "once"    // the plan's tasks are opened at conversion
	BillingMonthly = "monthly" // and again every calendar month
)

// Audit actions of the catalogue editor and of a customer's plan.
const (
	AuditKindEdited      = "task kind edited"
	AuditPlanAdded       = "plan added"
	AuditPlanEdited      = "plan edited"
	AuditPlanDeactivated = "plan deactivated"
	AuditPlanActivated   = "plan activated"
	AuditCustomerPlanSet = "customer plan changed"
)

// Bounds of the catalogue's text, as the schema checks them.
const (
	MaxCatalogueTitle = 200 // a kind's or plan's title, in bytes
	MaxCatalogueKey   = 64  // a kind's or plan's key: a lower-case letter, then lower-case letters, digits and _
	MaxNicheLen       = 100 // one niche
	MaxPlanItems      = 20  // tasks of a plan (the editor's limit)
	MaxPlanNiches     = 20  // niches of a plan (the editor's limit)
)

// Catalogue errors: each says what an operator must fix.
var (
	ErrUnknownKind    = errors.New("unknown task kind")
	ErrUnknownPlan    = errors.New("unknown plan")
	ErrEmptyPlan      = errors.New("a plan needs at least one task")
	ErrPlanExists     = errors.New("a plan with that name exists")
	ErrPlanInactive   = errors.New("the plan is not active")
	ErrLastActivePlan = errors.New("the last active plan cannot be deactivated: new customers need a plan")
	ErrBadCatalogue   = errors.New("invalid catalogue entry")
)

// CatalogueKind is a stored task kind.
type CatalogueKind struct {
	bun.BaseModel `bun:"table:task_kinds,alias:tk"`

	Kind       string    `bun:"kind,pk"`
	Title      string    `bun:"title,notnull"`
	PriceCents int64     `bun:"price_cents,notnull"`
	Currency   string    `bun:"currency,notnull"`
	UpdatedAt  time.Time `bun:"updated_at,notnull"`
}

// Price is the kind's price as Money.
func (k CatalogueKind) Price() Money { return Money{Cents: k.PriceCents, Currency: k.Currency} }

// CataloguePlan is a stored plan with its items (kinds, in order) and the
// niches it is chosen for.
type CataloguePlan struct {
	bun.BaseModel `bun:"table:plans,alias:p"`

	Name      string    `bun:"name,pk"`
	Title     string    `bun:"title,notnull"`
	Currency  string    `bun:"currency,notnull"`
	Billing   string    `bun:"billing,notnull"`
	Position  int64     `bun:"position,notnull"`
	Active    bool      `bun:"active,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`

	Kinds  []string `bun:"-"`
	Niches []string `bun:"-"`
}

// CatalogueData is the whole stored catalogue: the kinds in the order they
// were added, the plans by position.
type CatalogueData struct {
	Kinds []CatalogueKind
	Plans []CataloguePlan
}

type planItem struct {
	bun.BaseModel `bun:"table:plan_items"`

	Plan     string `bun:"plan,pk"`
	Position int64  `bun:"position,pk"`
	Kind     string `bun:"kind,notnull"`
	Currency string `bun:"currency,notnull"`
}

type planNiche struct {
	bun.BaseModel `bun:"table:plan_niches"`

	Plan  string `bun:"plan,pk"`
	Niche string `bun:"niche,pk"`
}

// NormalNiche is a niche as plans store and compare it: trimmed, inner
// spaces collapsed, lower-cased.
func NormalNiche(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// ReadCatalogue reads the whole catalogue (a few small tables).
func (d *DB) ReadCatalogue(ctx context.Context) (CatalogueData, error) {
	// Four reads in one transaction: an edit or a first seed committed
	// between them would give plans naming kinds not read yet.
	var c CatalogueData
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		c, err = readCatalogue(ctx, tx)
		return err
	})
	return c, err
}

// kindsOrder is the order the catalogue lists its task kinds in: on
// SQLite the order they were stored in (rowid), the first one's currency
// being the admin's default. task_kinds has no such column on PostgreSQL
// (its key is the kind, and PostgreSQL keeps no insertion order), so there
// they are listed by kind: the same kinds, the admin's default currency the
// same whenever the catalogue has one currency, the listing alphabetical.
func kindsOrder(idb bun.IDB) string {
	if idb.Dialect().Name() == dialect.PG {
		return "tk.kind"
	}
	return "tk.rowid"
}

func readCatalogue(ctx context.Context, idb bun.IDB) (CatalogueData, error) {
	var c CatalogueData
	if err := idb.NewSelect().Model(&c.Kinds).OrderExpr(kindsOrder(idb)).Scan(ctx); err != nil {
		return c, fmt.Errorf("store: unable to read task kinds: %w", err)
	}
	if err := idb.NewSelect().Model(&c.Plans).OrderExpr("p.position, p.name").Scan(ctx); err != nil {
		return c, fmt.Errorf("store: unable to read plans: %w", err)
	}
	var items []planItem
	if err := idb.NewSelect().Model(&items).OrderExpr("plan, position").Scan(ctx); err != nil {
		return c, fmt.Errorf("store: unable to read plan items: %w", err)
	}
	var niches []planNiche
	if err := idb.NewSelect().Model(&niches).OrderExpr("plan, niche").Scan(ctx); err != nil {
		return c, fmt.Errorf("store: unable to read plan niches: %w", err)
	}
	at := make(map[string]*CataloguePlan, len(c.Plans))
	for i := range c.Plans {
		at[c.Plans[i].Name] = &c.Plans[i]
	}
	for _, it := range items {
		if p := at[it.Plan]; p != nil {
			p.Kinds = append(p.Kinds, it.Kind)
		}
	}
	for _, n := range niches {
		if p := at[n.Plan]; p != nil {
			p.Niches = append(p.Niches, n.Niche)
		}
	}
	return c, nil
}

// SeedCatalogue stores c when the catalogue is empty (no kind and no plan)
// and reports whether it did; a stored catalogue, even one an operator
// emptied of plans, is never overwritten. One transaction.
func (d *DB) SeedCatalogue(ctx context.Context, c CatalogueData) (bool, error) {
	seeded := false
	// Two instances starting on one empty PostgreSQL database seed at
	// once: SERIALIZABLE aborts the later (it read the tables empty while
	// the other filled them, or its insert meets the other's key), and run
	// again it finds the catalogue stored and leaves it.
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		seeded = false
		var n int
		// PostgreSQL wants a name for each subquery in FROM; SQLite takes one.
		if err := tx.NewRaw("SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM task_kinds LIMIT 1) AS k) + (SELECT COUNT(*) FROM (SELECT 1 FROM plans LIMIT 1) AS p)").Scan(ctx, &n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		now := d.Now()
		for _, k := range c.Kinds {
			k.UpdatedAt = now
			if _, err := tx.NewInsert().Model(&k).Exec(ctx); err != nil {
				return fmt.Errorf("task kind %q: %w", k.Kind, err)
			}
		}
		for i, p := range c.Plans {
			if p.Position == 0 {
				p.Position = int64(i + 1)
			}
			p.UpdatedAt = now
			if _, err := tx.NewInsert().Model(&p).Exec(ctx); err != nil {
				return fmt.Errorf("plan %q: %w", p.Name, err)
			}
			if err := writePlanParts(ctx, tx, p); err != nil {
				return err
			}
		}
		seeded = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: unable to seed the catalogue: %w", err)
	}
	return seeded, nil
}

// writePlanParts replaces plan p's items and niches with p.Kinds and
// p.Niches.
func writePlanParts(ctx context.Context, tx bun.Tx, p CataloguePlan) error {
	if len(p.Kinds) == 0 {
		return fmt.Errorf("plan %q: %w", p.Name, ErrEmptyPlan)
	}
	if _, err := tx.NewDelete().Model((*planItem)(nil)).Where("plan = ?", p.Name).Exec(ctx); err != nil {
		return err
	}
	if _, err := tx.NewDelete().Model((*planNiche)(nil)).Where("plan = ?", p.Name).Exec(ctx); err != nil {
		return err
	}
	items := make([]planItem, len(p.Kinds))
	for i, k := range p.Kinds {
		var cur string
		err := tx.NewSelect().Model((*CatalogueKind)(nil)).Column("currency").Where("kind = ?", k).Scan(ctx, &cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w %q", ErrUnknownKind, k)
		case err != nil:
			return err
		case cur != p.Currency:
			return fmt.Errorf("%w: task kind %q is priced in %s, the plan in %s", ErrBadCatalogue, k, cur, p.Currency)
		}
		items[i] = planItem{Plan: p.Name, Position: int64(i + 1), Kind: k, Currency: p.Currency}
	}
	if _, err := tx.NewInsert().Model(&items).Exec(ctx); err != nil {
		return err
	}
	seen := map[string]bool{}
	var niches []planNiche
	for _, n := range p.Niches {
		n = NormalNiche(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		niches = append(niches, planNiche{Plan: p.Name, Niche: n})
	}
	if len(niches) > 0 {
		if _, err := tx.NewInsert().Model(&niches).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// UpdateTaskKind sets a kind's title and price and returns the kind as it
// was. Tasks already opened keep the price they were opened at.
func (d *DB) UpdateTaskKind(ctx context.Context, kind, title string, priceCents int64) (CatalogueKind, error) {
	var before CatalogueKind
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&before).Where("tk.kind = ?", kind).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w %q", ErrUnknownKind, kind)
			}
			return err
		}
		_, err := tx.NewUpdate().Model((*CatalogueKind)(nil)).Set("title = ?", title).Set("price_cents = ?", priceCents).
			Set("updated_at = ?", d.Now()).Where("kind = ?", kind).Exec(ctx)
		return err
	})
	if err != nil {
		return CatalogueKind{}, fmt.Errorf("store: unable to update task kind %q: %w", kind, err)
	}
	return before, nil
}

// AddPlan stores a new plan after the others (its position is the last
// plus one), active. p.Currency must be the currency of its kinds.
func (d *DB) AddPlan(ctx context.Context, p CataloguePlan) error {
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		exists, err := tx.NewSelect().Model((*CataloguePlan)(nil)).Where("p.name = ?", p.Name).Exists(ctx)
		if err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("%w: %q", ErrPlanExists, p.Name)
		}
		if err := tx.NewRaw("SELECT COALESCE(MAX(position), 0) + 1 FROM plans").Scan(ctx, &p.Position); err != nil {
			return err
		}
		p.Active, p.UpdatedAt = true, d.Now()
		if _, err := tx.NewInsert().Model(&p).Exec(ctx); err != nil {
			return err
		}
		return writePlanParts(ctx, tx, p)
	})
	if err != nil {
		return fmt.Errorf("store: unable to add plan %q: %w", p.Name, err)
	}
	return nil
}

// UpdatePlan sets plan p.Name's title, billing, niches and items and
// returns the plan as it was. Tasks already opened are not touched; a
// billing change moves the periods of the plan's active customers: to
// monthly, their first period opens one calendar month from now; to once,
// their periods stop.
func (d *DB) UpdatePlan(ctx context.Context, p CataloguePlan) (CataloguePlan, error) {
	var before CataloguePlan
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		all, err := readCatalogue(ctx, tx)
		if err != nil {
			return err
		}
		found := false
		for _, q := range all.Plans {
			if q.Name == p.Name {
				before, found = q, true
			}
		}
		if !found {
			return fmt.Errorf("%w %q", ErrUnknownPlan, p.Name)
		}
		now := d.Now()
		p.Currency = before.Currency
		if _, err := tx.NewUpdate().Model((*CataloguePlan)(nil)).Set("title = ?", p.Title).Set("billing = ?", p.Billing).
			Set("updated_at = ?", now).Where("name = ?", p.Name).Exec(ctx); err != nil {
			return err
		}
		if err := writePlanParts(ctx, tx, p); err != nil {
			return err
		}
		if before.Billing == p.Billing {
			return nil
		}
		q := tx.NewUpdate().Model((*Customer)(nil)).Where("plan = ?", p.Name)
		if p.Billing == BillingMonthly {
			q = q.Set("next_period_at = ?", AddMonth(now)).Where("status = ? AND next_period_at IS NULL", CustomerActive)
		} else {
			q = q.Set("next_period_at = NULL").Where("next_period_at IS NOT NULL")
		}
		_, err = q.Exec(ctx)
		return err
	})
	if err != nil {
		return CataloguePlan{}, fmt.Errorf("store: unable to update plan %q: %w", p.Name, err)
	}
	return before, nil
}

// SetPlanActive activates or deactivates a plan. An inactive plan is not
// chosen for new customers (its customers keep it and, on a monthly plan,
// their periods); the last active plan cannot be deactivated.
func (d *DB) SetPlanActive(ctx context.Context, name string, active bool) error {
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		p := new(CataloguePlan)
		if err := tx.NewSelect().Model(p).Where("p.name = ?", name).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w %q", ErrUnknownPlan, name)
			}
			return err
		}
		if !active && p.Active {
			others, err := tx.NewSelect().Model((*CataloguePlan)(nil)).Where("p.active AND p.name <> ?", name).Count(ctx)
			if err != nil {
				return err
			}
			if others == 0 {
				return ErrLastActivePlan
			}
		}
		_, err := tx.NewUpdate().Model((*CataloguePlan)(nil)).Set("active = ?", active).Set("updated_at = ?", d.Now()).
			Where("name = ?", name).Exec(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: unable to change plan %q: %w", name, err)
	}
	return nil
}

// CustomerPlanChange is what changing a customer's plan did.
type CustomerPlanChange struct {
	Old, New     string
	NextPeriodAt *time.Time // the customer's next period after the change; nil on a one-off plan
}

// SetCustomerPlan puts customer id on plan from now on. Work already opened
// keeps its kinds and prices. To a monthly plan, the customer's periods
// continue (already monthly) or start at the next Onboarding cycle; to a
// one-off plan they stop. Only an active plan can be chosen (resubmitting
// the current one changes nothing).
func (d *DB) SetCustomerPlan(ctx context.Context, id int64, plan string, now time.Time) (CustomerPlanChange, error) {
	now = now.UTC().Truncate(time.Second)
	var ch CustomerPlanChange
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		c := new(Customer)
		if err := tx.NewSelect().Model(c).Where("c.id = ?", id).Scan(ctx); err != nil {
			return notFound(err)
		}
		p := new(CataloguePlan)
		if err := tx.NewSelect().Model(p).Where("p.name = ?", plan).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w %q", ErrUnknownPlan, plan)
			}
			return err
		}
		ch = CustomerPlanChange{Old: c.Plan, New: plan, NextPeriodAt: c.NextPeriodAt}
		if c.Plan == plan {
			return nil
		}
		if !p.Active {
			return fmt.Errorf("%w: %q", ErrPlanInactive, plan)
		}
		var next *time.Time
		if p.Billing == BillingMonthly && c.Status != CustomerClosed {
			next = &now
			if c.NextPeriodAt != nil {
				next = c.NextPeriodAt
			}
		}
		ch.NextPeriodAt = next
		_, err := tx.NewUpdate().Model((*Customer)(nil)).Set("plan = ?", plan).Set("next_period_at = ?", next).
			Where("id = ?", id).Exec(ctx)
		return err
	})
	if err != nil {
		return CustomerPlanChange{}, fmt.Errorf("store: unable to change the plan of customer %d: %w", id, err)
	}
	return ch, nil
}

// AddMonth is t one calendar month later, in UTC, to the second: the same
// day of the next month, or its last day when it is shorter (31 January
// → 28 February; the next period then stays on the 28th).
func AddMonth(t time.Time) time.Time {
	t = t.UTC()
	y, m, day := t.Date()
	first := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(day, last), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// duePeriodsQuery reads up to limit customers whose period is due at now,
// the most overdue first: a range of the partial index
// customers_next_period, which holds only the customers on monthly plans.
func duePeriodsQuery(idb bun.IDB, dst *[]Customer, now time.Time, limit int) *bun.SelectQuery {
	return idb.NewSelect().Model(dst).ModelTableExpr(pinned(idb, "customers AS c INDEXED BY customers_next_period")).
		Where("c.next_period_at IS NOT NULL AND c.next_period_at <= ?", now.UTC()).
		OrderExpr("c.next_period_at, c.id").Limit(int64(limit))
}

// DuePeriods returns up to limit customers whose next period is due at now.
func (d *DB) DuePeriods(ctx context.Context, now time.Time, limit int) ([]Customer, error) {
	var cs []Customer
	if err := duePeriodsQuery(d.bun, &cs, now, limit).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to read the customers due a period: %w", err)
	}
	return cs, nil
}

// PeriodOpening is one due period of a customer, as its caller read it
// (DuePeriods): the plan and the period it saw, the next period (nil to
// stop: the plan is no longer monthly, the customer is closed) and the
// tasks to open (none for a paused customer).
type PeriodOpening struct {
	CustomerID int64
	Plan       string
	Due        time.Time
	Next       *time.Time
	Tasks      []NewTask
}

// OpenPeriod opens a period in one transaction: the customer's
// next_period_at moves from p.Due to p.Next, and p.Tasks are opened, only
// if the customer is still on p.Plan with that period due. It reports
// false, opening nothing, when another run opened the period first or the
// plan changed meanwhile: a period is opened at most once. Across
// instances on PostgreSQL the guarded UPDATE takes the customer's row
// lock: a second opener waits, SERIALIZABLE then aborts it (40001), and run
// again it finds next_period_at moved and opens nothing.
func (d *DB) OpenPeriod(ctx context.Context, p PeriodOpening, now time.Time) (bool, []Task, error) {
	now = now.UTC()
	var (
		opened bool
		tasks  []Task
	)
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		opened, tasks = false, nil
		res, err := tx.NewUpdate().Model((*Customer)(nil)).Set("next_period_at = ?", p.Next).
			Where("id = ? AND plan = ? AND next_period_at = ?", p.CustomerID, p.Plan, p.Due.UTC()).Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		opened = true
		tasks, err = openTasks(ctx, tx, p.CustomerID, p.Tasks, now)
		return err
	})
	if err != nil {
		return false, nil, fmt.Errorf("store: unable to open the period of customer %d: %w", p.CustomerID, err)
	}
	return opened, tasks, nil
}
