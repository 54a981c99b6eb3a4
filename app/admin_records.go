package app

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// recordID reads the {id} of a record page: a positive decimal number,
// written plainly. Anything else is no page at all.
func recordID(r *http.Request) (int64, bool) {
	raw := chi.URLParam(r, "id")
	if raw == "" || len(raw) > 18 || raw[0] == '0' {
		return 0, false
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	return id, err == nil
}

func (s *Server) leadDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	rec, err := s.store.LeadDetail(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	record := leadRecordView(*rec)
	leads := []views.Lead{record.Lead}
	if err := s.markDraftSteps(r.Context(), leads); err != nil {
		s.fail(w, r, err)
		return
	}
	record.Lead = leads[0]
	s.render(w, r, http.StatusOK, views.LeadDetail(views.LeadPage{Meta: s.metaFor(r, "Lead "+rec.Lead.Company), Record: record}))
}

func (s *Server) customerDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	p, err := s.customerPage(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.CustomerDetail(p))
}

// customerPage reads everything the customer page shows, its tasks and
// invoices at the pages the query asks for.
func (s *Server) customerPage(r *http.Request, id int64) (views.CustomerPage, error) {
	ctx := r.Context()
	rec, err := s.store.CustomerDetail(ctx, id)
	if err != nil {
		return views.CustomerPage{}, err
	}
	p := views.CustomerPage{Meta: s.metaFor(r, "Customer "+rec.Customer.Company), Record: customerRecordView(*rec), Portal: portalPanel(rec)}
	if p.Plan, err = s.customerPlanPanel(ctx, rec.Customer); err != nil {
		return p, err
	}
	tasks, tasksPage, err := s.store.ListCustomerTasks(ctx, id, db.ListQuery{Cursor: cursorParam(r, "tp")})
	if err != nil {
		return p, err
	}
	p.Tasks, p.TasksPage = viewsOf(tasks, taskRowView), pageView(tasksPage)
	invoices, invoicesPage, err := s.store.ListCustomerInvoices(ctx, id, db.ListQuery{Cursor: cursorParam(r, "ip")})
	if err != nil {
		return p, err
	}
	p.Invoices, p.InvoicesPage = invoiceRowViews(invoices, p.Now), pageView(invoicesPage)
	p.MailFlag = mailFlagPanel(rec.Customer)
	p.ClientMail, err = s.clientMailPanel(ctx, views.ClientMailFilter{CustomerID: id})
	return p, err
}

// portalPanel is the portal link panel of a customer as stored.
func portalPanel(rec *db.CustomerDetail) views.PortalLinkPanel {
	return views.PortalLinkPanel{
		CustomerID:     rec.Customer.ID,
		TokenCreatedAt: rec.Customer.TokenCreatedAt,
		TokenRevokedAt: rec.Customer.TokenRevokedAt,
		Actions:        viewsOf(rec.PortalActions, auditView),
	}
}

func (s *Server) taskDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	rec, err := s.store.TaskDetail(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.TaskDetail(views.TaskPage{Meta: s.metaFor(r, "Task "+strconv.FormatInt(id, 10)), Record: taskRecordView(*rec)}))
}

func (s *Server) invoiceDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	rec, err := s.store.InvoiceDetail(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	meta := s.metaFor(r, "Invoice "+rec.Invoice.NumberOrDraft())
	mail, err := s.clientMailPanel(r.Context(), views.ClientMailFilter{InvoiceID: id})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := views.InvoicePage{Meta: meta, Record: invoiceRecordView(*rec, meta.Now), ClientMail: mail}
	if rec.Invoice.PaymentURL == "" && rec.Invoice.Status == db.InvoiceOpen {
		linkErr, err := s.store.LinkError(r.Context(), id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		page.LinkError = linkErrorView(linkErr)
	}
	s.render(w, r, http.StatusOK, views.InvoiceDetail(page))
}

// Activity windows, in hours.
const (
	defaultActivityHours = 24
	maxActivityHours     = 7 * 24
)

// activity summarises what happened in the last ?hours=N hours (1–168,
// default 24). A bad value is named on the page and the default shown.
func (s *Server) activity(w http.ResponseWriter, r *http.Request) {
	hours, problem := activityHours(r.URL.Query().Get("hours"))
	until := s.now().UTC()
	a, err := s.store.Activity(r.Context(), until.Add(-time.Duration(hours)*time.Hour), until)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.Activity(views.ActivityPage{
		Meta: s.metaFor(r, "Activity"), Hours: hours, Problem: problem, Activity: activityView(a),
	}))
}

// activityHours reads the window; "" is the default without complaint.
func activityHours(raw string) (int, string) {
	if raw == "" {
		return defaultActivityHours, ""
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxActivityHours {
		return defaultActivityHours, "The window must be a whole number of hours from 1 to 168; showing the last 24 hours instead."
	}
	return n, ""
}
