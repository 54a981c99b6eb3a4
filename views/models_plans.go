package views

import (
	"strconv"
	"time"
)

// The view models of the plan catalogue editor (/admin/plans) and of a
// customer's plan panel on the customer page. The app fills them from the
// stored catalogue (app/admin_plans.go).

// Plan billing, as the store spells it (db.BillingOnce, db.BillingMonthly).
const (
	BillingOnce    = "once"
	BillingMonthly = "monthly"
)

// PlansPage is the catalogue editor.
type PlansPage struct {
	Meta
	Editor PlansEditor
}

// PlansEditor is the editor's body: swapped in place after an action.
type PlansEditor struct {
	Currency string
	Kinds    []CatalogueKindRow
	Plans    []CataloguePlanRow
	// DefaultPlan is the plan a lead whose niche no plan lists gets.
	DefaultPlan string
	// MaxItems is how many task fields a plan's form has at most.
	MaxItems int
	// Result says what the last action did; ResultClass is "ok" or "bad".
	Result, ResultClass string
	// Add is what the add form shows (its values after a refusal).
	Add CataloguePlanRow
}

// CatalogueKindRow is a task kind with its price.
type CatalogueKindRow struct {
	Kind      string
	Title     string
	Price     Money
	PriceText string // the price field's value ("150.00")
	UsedBy    int    // plans listing it
}

// CataloguePlanRow is a plan with its items and niches.
type CataloguePlanRow struct {
	Name     string
	Title    string
	Billing  string
	Niches   string   // comma-separated, as the field shows them
	Kinds    []string // the kinds of its items, in order
	Total    Money    // what one period (or the one-off plan) costs
	Active   bool
	Position int64
}

// ItemSlots is the kinds of the plan's task fields: its items, then empty
// fields to add more, max fields in all.
func (p CataloguePlanRow) ItemSlots(max int) []string {
	slots := append([]string(nil), p.Kinds...)
	for extra := 0; len(slots) < max && extra < 2; extra++ {
		slots = append(slots, "")
	}
	return slots
}

// CustomerPlanPanel is a customer's plan and the form that changes it.
type CustomerPlanPanel struct {
	CustomerID   int64
	Plan         string
	PlanTitle    string // "" when the plan is not in the catalogue
	Billing      string
	NextPeriodAt *time.Time
	Options      []PlanOption // the active plans
	Result       string
	ResultClass  string
}

// PlanOption is a plan a customer can be put on.
type PlanOption struct {
	Name, Title, Billing string
}

func billingText(b string) string {
	if b == BillingMonthly {
		return "monthly"
	}
	return "one-off"
}

func planItemField(name string, i int) string {
	return "plan-" + name + "-item-" + strconv.Itoa(i)
}

func plansActionURL(name, action string) string {
	return "/admin/plans/" + name + "/" + action
}

func kindEditURL(kind string) string { return "/admin/kinds/" + kind + "/edit" }

func customerPlanURL(id int64) string {
	return "/admin/customers/" + strconv.FormatInt(id, 10) + "/plan"
}

// planCostText is what a plan costs a customer: "$210.00 a month",
// "$270.00 once".
func planCostText(p CataloguePlanRow) string {
	if p.Billing == BillingMonthly {
		return p.Total.String() + " a month"
	}
	return p.Total.String() + " once"
}
