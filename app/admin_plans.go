package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/db/money"
	"github.com/hossagent/hossagent/views"
)

// The plan catalogue editor (/admin/plans) and a customer's plan: the
// owner edits the task kinds' titles and prices, edits, adds, deactivates
// and activates plans, and puts a customer on another plan. Every action is
// validated (a clear message next to the editor, 422), audited, and
// reloads the process's catalogue (Deps.Catalogues) so the kind titles
// follow. The cycles read the stored catalogue at every run. With htmx an
// action answers the editor (or the customer's plan panel) in place; a
// plain form POST gets the whole page back (a customer's plan: a 303 to
// the customer page).

// maxNichesText bounds the niches field, in bytes.
const maxNichesText = 500

var catalogueKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// plans shows the editor.
func (s *Server) plans(w http.ResponseWriter, r *http.Request) {
	e, err := s.plansEditor(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.Plans(views.PlansPage{Meta: s.metaFor(r, "Plans and prices"), Editor: e}))
}

// plansEditor reads the stored catalogue into the editor.
func (s *Server) plansEditor(ctx context.Context) (views.PlansEditor, error) {
	data, err := s.store.ReadCatalogue(ctx)
	if err != nil {
		return views.PlansEditor{}, err
	}
	e := views.PlansEditor{Currency: s.cfg.Stripe.DefaultCurrency, MaxItems: db.MaxPlanItems, Add: views.CataloguePlanRow{Billing: db.BillingOnce}}
	if len(data.Kinds) > 0 {
		e.Currency = data.Kinds[0].Currency
	}
	prices := map[string]int64{}
	used := map[string]int{}
	for _, p := range data.Plans {
		seen := map[string]bool{}
		for _, k := range p.Kinds {
			if !seen[k] {
				used[k]++
				seen[k] = true
			}
		}
	}
	for _, k := range data.Kinds {
		prices[k.Kind] = k.PriceCents
		e.Kinds = append(e.Kinds, views.CatalogueKindRow{Kind: k.Kind, Title: k.Title, Price: k.Price(),
			PriceText: money.FormatCents(k.PriceCents), UsedBy: used[k.Kind]})
	}
	for _, p := range data.Plans {
		row := views.CataloguePlanRow{Name: p.Name, Title: p.Title, Billing: p.Billing, Niches: strings.Join(p.Niches, ", "),
			Kinds: p.Kinds, Active: p.Active, Position: p.Position, Total: db.Money{Currency: p.Currency}}
		for _, k := range p.Kinds {
			row.Total.Cents += prices[k]
		}
		e.Plans = append(e.Plans, row)
		if p.Active && e.DefaultPlan == "" {
			e.DefaultPlan = p.Name
		}
	}
	return e, nil
}

// plansAnswer answers an editor action: the editor with the result for
// htmx, the whole page otherwise. add is the add form's values to show
// again after a refusal.
func (s *Server) plansAnswer(w http.ResponseWriter, r *http.Request, status int, class, result string, add *views.CataloguePlanRow) {
	e, err := s.plansEditor(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e.Result, e.ResultClass = result, class
	if add != nil {
		e.Add = *add
	}
	if isHXRequest(r) {
		s.render(w, r, status, views.PlansEditorPanel(e))
		return
	}
	s.render(w, r, status, views.Plans(views.PlansPage{Meta: s.metaFor(r, "Plans and prices"), Editor: e}))
}

// readCatalogueForm reads an action's form within maxActionBody; false
// when it was refused (answered).
func (s *Server) readCatalogueForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	if err := r.ParseForm(); err != nil {
		s.plansAnswer(w, r, http.StatusRequestEntityTooLarge, "bad", "The form could not be read: it is too large or malformed. Nothing was changed.", nil)
		return false
	}
	return true
}

// catalogueChanged reloads the process's catalogue after an edit and tells
// the live pages.
func (s *Server) catalogueChanged(ctx context.Context) {
	if s.catalogues != nil {
		if err := s.catalogues.Reload(context.WithoutCancel(ctx)); err != nil {
			s.log.Error("catalogue not reloaded after an edit", "err", err)
		}
	}
	s.tellPeers(agents.EventCatalogueEdited)
	s.refreshLive()
}

// readTitle reads a kind's or plan's title: one line, 1 to 200 bytes.
func readTitle(raw string) (string, string) {
	t := strings.TrimSpace(raw)
	switch {
	case t == "":
		return "", "the title is empty"
	case len(t) > db.MaxCatalogueTitle:
		return "", fmt.Sprintf("the title is longer than %d bytes", db.MaxCatalogueTitle)
	case strings.ContainsAny(t, "\r\n\t"):
		return "", "the title must be one line"
	}
	return t, ""
}

// editKind sets a task kind's title and price.
func (s *Server) editKind(w http.ResponseWriter, r *http.Request) {
	kind := chi.URLParam(r, "kind")
	if !catalogueKey.MatchString(kind) {
		s.notFound(w, r)
		return
	}
	if !s.readCatalogueForm(w, r) {
		return
	}
	title, problem := readTitle(r.PostForm.Get("title"))
	cents, err := money.ParseCents(r.PostForm.Get("price"))
	if problem == "" && err != nil {
		problem = "the price " + err.Error()
		if strings.HasPrefix(err.Error(), "enter") {
			problem = err.Error()
		}
	}
	if problem != "" {
		s.plansAnswer(w, r, http.StatusUnprocessableEntity, "bad", fmt.Sprintf("Task kind %s not saved: %s.", kind, problem), nil)
		return
	}
	before, err := s.store.UpdateTaskKind(context.WithoutCancel(r.Context()), kind, title, cents)
	switch {
	case errors.Is(err, db.ErrUnknownKind):
		s.notFound(w, r)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	after := db.CatalogueKind{Kind: kind, Title: title, PriceCents: cents, Currency: before.Currency}
	s.audit(r, db.AuditKindEdited, "task kind "+kind, fmt.Sprintf("title %q → %q; price %s → %s", before.Title, title, before.Price(), after.Price()))
	s.catalogueChanged(r.Context())
	s.plansAnswer(w, r, http.StatusOK, "ok", fmt.Sprintf("Task kind %s saved: %s at %s, for tasks opened from now on.", kind, title, after.Price()), nil)
}

// planForm is a plan's form, read and validated against the catalogue.
type planForm struct {
	plan db.CataloguePlan
	row  views.CataloguePlanRow // the values to show again
}

// readPlanForm reads title, billing, niches and the items of a plan form;
// the problem is "" when the plan is valid.
func readPlanForm(r *http.Request, name string, cat db.CatalogueData) (planForm, string) {
	f := planForm{}
	f.row = views.CataloguePlanRow{Name: name, Title: clipEcho(r.PostForm.Get("title"), db.MaxCatalogueTitle),
		Billing: r.PostForm.Get("billing"), Niches: clipEcho(r.PostForm.Get("niches"), maxNichesText)}
	for _, k := range r.PostForm["item"] {
		if k = strings.TrimSpace(k); k != "" && len(f.row.Kinds) <= db.MaxPlanItems {
			f.row.Kinds = append(f.row.Kinds, clipEcho(k, db.MaxCatalogueKey))
		}
	}
	title, problem := readTitle(r.PostForm.Get("title"))
	if problem != "" {
		return f, problem
	}
	billing := r.PostForm.Get("billing")
	if billing != db.BillingOnce && billing != db.BillingMonthly {
		return f, "billing must be one-off (once) or monthly"
	}
	nichesText := r.PostForm.Get("niches")
	if len(nichesText) > maxNichesText {
		return f, fmt.Sprintf("the niches are longer than %d bytes", maxNichesText)
	}
	var niches []string
	seen := map[string]bool{}
	for _, n := range strings.Split(nichesText, ",") {
		n = db.NormalNiche(n)
		switch {
		case n == "" || seen[n]:
			continue
		case len(n) > db.MaxNicheLen:
			return f, fmt.Sprintf("the niche %q is longer than %d bytes", clipEcho(n, 40), db.MaxNicheLen)
		}
		seen[n] = true
		niches = append(niches, n)
	}
	if len(niches) > db.MaxPlanNiches {
		return f, fmt.Sprintf("a plan is chosen for at most %d niches", db.MaxPlanNiches)
	}
	known := map[string]bool{}
	for _, k := range cat.Kinds {
		known[k.Kind] = true
	}
	kinds := f.row.Kinds
	switch {
	case len(kinds) == 0:
		return f, "a plan needs at least one task"
	case len(kinds) > db.MaxPlanItems:
		return f, fmt.Sprintf("a plan has at most %d tasks", db.MaxPlanItems)
	}
	for _, k := range kinds {
		if !known[k] {
			return f, fmt.Sprintf("task kind %q is not in the catalogue", k)
		}
	}
	f.plan = db.CataloguePlan{Name: name, Title: title, Billing: billing, Niches: niches, Kinds: kinds}
	return f, ""
}

// editPlan sets a plan's title, billing, niches and tasks.
func (s *Server) editPlan(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if !catalogueKey.MatchString(name) {
		s.notFound(w, r)
		return
	}
	if !s.readCatalogueForm(w, r) {
		return
	}
	cat, err := s.store.ReadCatalogue(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, problem := readPlanForm(r, name, cat)
	if problem != "" {
		s.plansAnswer(w, r, http.StatusUnprocessableEntity, "bad", fmt.Sprintf("Plan %s not saved: %s.", name, problem), nil)
		return
	}
	before, err := s.store.UpdatePlan(context.WithoutCancel(r.Context()), f.plan)
	switch {
	case errors.Is(err, db.ErrUnknownPlan):
		s.notFound(w, r)
		return
	case errors.Is(err, db.ErrUnknownKind), errors.Is(err, db.ErrEmptyPlan), errors.Is(err, db.ErrBadCatalogue):
		s.plansAnswer(w, r, http.StatusUnprocessableEntity, "bad", fmt.Sprintf("Plan %s not saved: %s.", name, catalogueProblem(err)), nil)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.audit(r, db.AuditPlanEdited, "plan "+name, planChanges(before, f.plan))
	s.catalogueChanged(r.Context())
	msg := fmt.Sprintf("Plan %s saved. It applies to work opened from now on.", name)
	if before.Billing != f.plan.Billing {
		if f.plan.Billing == db.BillingMonthly {
			msg += " Its active customers' first monthly period opens one month from now."
		} else {
			msg += " Its customers' monthly periods stopped."
		}
	}
	s.plansAnswer(w, r, http.StatusOK, "ok", msg, nil)
}

// addPlan adds a plan after the others, active.
func (s *Server) addPlan(w http.ResponseWriter, r *http.Request) {
	if !s.readCatalogueForm(w, r) {
		return
	}
	cat, err := s.store.ReadCatalogue(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	raw := strings.TrimSpace(r.PostForm.Get("name"))
	f, problem := readPlanForm(r, clipEcho(raw, db.MaxCatalogueKey), cat)
	switch {
	case !catalogueKey.MatchString(raw):
		problem = "the key must be a lower-case letter then up to 63 lower-case letters, digits or _"
	case len(cat.Kinds) == 0:
		problem = "the catalogue has no task kinds"
	}
	if problem != "" {
		s.plansAnswer(w, r, http.StatusUnprocessableEntity, "bad", "Plan not added: "+problem+".", &f.row)
		return
	}
	f.plan.Name, f.plan.Currency = raw, cat.Kinds[0].Currency
	err = s.store.AddPlan(context.WithoutCancel(r.Context()), f.plan)
	switch {
	case errors.Is(err, db.ErrPlanExists):
		s.plansAnswer(w, r, http.StatusConflict, "bad", fmt.Sprintf("Plan not added: a plan with the key %s exists.", raw), &f.row)
		return
	case errors.Is(err, db.ErrUnknownKind), errors.Is(err, db.ErrEmptyPlan), errors.Is(err, db.ErrBadCatalogue):
		s.plansAnswer(w, r, http.StatusUnprocessableEntity, "bad", "Plan not added: "+catalogueProblem(err)+".", &f.row)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.audit(r, db.AuditPlanAdded, "plan "+raw, planChanges(db.CataloguePlan{}, f.plan))
	s.catalogueChanged(r.Context())
	s.plansAnswer(w, r, http.StatusOK, "ok", fmt.Sprintf("Plan %s added, active, after the others.", raw), nil)
}

func (s *Server) deactivatePlan(w http.ResponseWriter, r *http.Request) { s.setPlanActive(w, r, false) }
func (s *Server) activatePlan(w http.ResponseWriter, r *http.Request)   { s.setPlanActive(w, r, true) }

// setPlanActive deactivates or activates a plan.
func (s *Server) setPlanActive(w http.ResponseWriter, r *http.Request, active bool) {
	name := chi.URLParam(r, "name")
	if !catalogueKey.MatchString(name) {
		s.notFound(w, r)
		return
	}
	if !s.readCatalogueForm(w, r) {
		return
	}
	err := s.store.SetPlanActive(context.WithoutCancel(r.Context()), name, active)
	switch {
	case errors.Is(err, db.ErrUnknownPlan):
		s.notFound(w, r)
		return
	case errors.Is(err, db.ErrLastActivePlan):
		s.plansAnswer(w, r, http.StatusConflict, "bad", fmt.Sprintf("Plan %s stays active: it is the last active plan, and new customers need one.", name), nil)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	action, msg := db.AuditPlanActivated, fmt.Sprintf("Plan %s activated: new customers may be put on it.", name)
	if !active {
		action, msg = db.AuditPlanDeactivated, fmt.Sprintf("Plan %s deactivated: new customers are no longer put on it; its customers keep it.", name)
	}
	s.audit(r, action, "plan "+name, "")
	s.catalogueChanged(r.Context())
	s.plansAnswer(w, r, http.StatusOK, "ok", msg, nil)
}

// catalogueProblem is a store refusal in an operator's words.
func catalogueProblem(err error) string {
	for _, e := range []error{db.ErrUnknownKind, db.ErrEmptyPlan, db.ErrBadCatalogue} {
		if errors.Is(err, e) {
			msg := err.Error()
			if i := strings.Index(msg, e.Error()); i >= 0 {
				return msg[i:]
			}
			return e.Error()
		}
	}
	return "the server hit an error"
}

// planChanges is the audit detail of a plan edit: what it was and is.
func planChanges(before, after db.CataloguePlan) string {
	var parts []string
	field := func(name, was, is string) {
		if was != is {
			if was == "" {
				parts = append(parts, fmt.Sprintf("%s %q", name, is))
			} else {
				parts = append(parts, fmt.Sprintf("%s %q → %q", name, was, is))
			}
		}
	}
	field("title", before.Title, after.Title)
	field("billing", before.Billing, after.Billing)
	field("niches", strings.Join(before.Niches, ", "), strings.Join(after.Niches, ", "))
	field("tasks", strings.Join(before.Kinds, ", "), strings.Join(after.Kinds, ", "))
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, "; ")
}

// customerPlanPanel is customer c's plan panel, with the active plans to
// choose from.
func (s *Server) customerPlanPanel(ctx context.Context, c db.Customer) (views.CustomerPlanPanel, error) {
	p := views.CustomerPlanPanel{CustomerID: c.ID, Plan: c.Plan, NextPeriodAt: c.NextPeriodAt}
	data, err := s.store.ReadCatalogue(ctx)
	if err != nil {
		return p, err
	}
	for _, pl := range data.Plans {
		if pl.Name == c.Plan {
			p.PlanTitle, p.Billing = pl.Title, pl.Billing
		}
		if pl.Active || pl.Name == c.Plan {
			p.Options = append(p.Options, views.PlanOption{Name: pl.Name, Title: pl.Title, Billing: pl.Billing})
		}
	}
	return p, nil
}

// setCustomerPlan puts a customer on another plan, from now on.
func (s *Server) setCustomerPlan(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	if err := r.ParseForm(); err != nil {
		s.customerPlanAnswer(w, r, id, http.StatusRequestEntityTooLarge, "bad", "The form could not be read: it is too large or malformed. The plan was not changed.")
		return
	}
	plan := strings.TrimSpace(r.PostForm.Get("plan"))
	if !catalogueKey.MatchString(plan) {
		s.customerPlanAnswer(w, r, id, http.StatusUnprocessableEntity, "bad", "Plan not changed: choose a plan of the catalogue.")
		return
	}
	ch, err := s.store.SetCustomerPlan(context.WithoutCancel(r.Context()), id, plan, s.now())
	switch {
	case errors.Is(err, db.ErrUnknownPlan):
		s.customerPlanAnswer(w, r, id, http.StatusUnprocessableEntity, "bad", fmt.Sprintf("Plan not changed: there is no plan %s.", plan))
		return
	case errors.Is(err, db.ErrPlanInactive):
		s.customerPlanAnswer(w, r, id, http.StatusUnprocessableEntity, "bad", fmt.Sprintf("Plan not changed: plan %s is not active.", plan))
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	msg := fmt.Sprintf("The customer stays on %s.", plan)
	if ch.Old != ch.New {
		next := "no monthly periods"
		if ch.NextPeriodAt != nil {
			next = "next period " + ch.NextPeriodAt.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		s.audit(r, db.AuditCustomerPlanSet, "customer "+strconv.FormatInt(id, 10), fmt.Sprintf("%s → %s; %s", ch.Old, ch.New, next))
		s.refreshLive()
		msg = fmt.Sprintf("Plan changed from %s to %s, for work opened from now on (%s).", ch.Old, ch.New, next)
	}
	if !isHXRequest(r) {
		http.Redirect(w, r, "/admin/customers/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
		return
	}
	s.customerPlanAnswer(w, r, id, http.StatusOK, "ok", msg)
}

// customerPlanAnswer shows the plan panel with a result for htmx, an error
// page (or the customer page) otherwise; a missing customer is the 404 page.
func (s *Server) customerPlanAnswer(w http.ResponseWriter, r *http.Request, id int64, status int, class, msg string) {
	rec, err := s.store.CustomerDetail(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !isHXRequest(r) {
		if status >= 400 {
			s.renderError(w, r, status, "Plan not changed", msg)
			return
		}
		http.Redirect(w, r, "/admin/customers/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
		return
	}
	p, err := s.customerPlanPanel(r.Context(), rec.Customer)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Result, p.ResultClass = msg, class
	s.render(w, r, status, views.CustomerPlan(p))
}
