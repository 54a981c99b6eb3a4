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
	return parseID(chi.URLParam(r, "id"))
}

func (s *Server) leadDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	p, err := s.leadPage(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.LeadDetail(p))
}

// leadPage reads everything the lead page shows.
func (s *Server) leadPage(r *http.Request, id int64) (views.LeadPage, error) {
	rec, err := s.store.LeadDetail(r.Context(), id)
	if err != nil {
		return views.LeadPage{}, err
	}
	record := leadRecordView(*rec)
	leads := []views.Lead{record.Lead}
	if err := s.markDraftSteps(r.Context(), leads); err != nil {
		return views.LeadPage{}, err
	}
	record.Lead = leads[0]
	meta := s.metaFor(r, "Lead "+rec.Lead.Company)
	meta.LiveURL = recordLiveURL("lead", id, r)
	return views.LeadPage{Meta: meta, Record: record}, nil
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
	meta := s.metaFor(r, "Customer "+rec.Customer.Company)
	meta.LiveURL = recordLiveURL("customer", id, r)
	p := views.CustomerPage{Meta: meta, Record: customerRecordView(*rec), Portal: portalPanel(rec)}
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
	p, err := s.taskPage(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.TaskDetail(p))
}

// taskPage reads everything the task page shows.
func (s *Server) taskPage(r *http.Request, id int64) (views.TaskPage, error) {
	rec, err := s.store.TaskDetail(r.Context(), id)
	if err != nil {
		return views.TaskPage{}, err
	}
	meta := s.metaFor(r, "Task "+strconv.FormatInt(id, 10))
	meta.LiveURL = recordLiveURL("task", id, r)
	return views.TaskPage{Meta: meta, Record: taskRecordView(*rec)}, nil
}

func (s *Server) invoiceDetail(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	p, err := s.invoicePage(r, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.InvoiceDetail(p))
}

// invoicePage reads everything the invoice page shows.
func (s *Server) invoicePage(r *http.Request, id int64) (views.InvoicePage, error) {
	rec, err := s.store.InvoiceDetail(r.Context(), id)
	if err != nil {
		return views.InvoicePage{}, err
	}
	meta := s.metaFor(r, "Invoice "+rec.Invoice.NumberOrDraft())
	meta.LiveURL = recordLiveURL("invoice", id, r)
	mail, err := s.clientMailPanel(r.Context(), views.ClientMailFilter{InvoiceID: id})
	if err != nil {
		return views.InvoicePage{}, err
	}
	page := views.InvoicePage{Meta: meta, Record: invoiceRecordView(*rec, meta.Now), ClientMail: mail}
	if rec.Invoice.PaymentURL == "" && rec.Invoice.Status == db.InvoiceOpen {
		linkErr, err := s.store.LinkError(r.Context(), id)
		if err != nil {
			return views.InvoicePage{}, err
		}
		page.LinkError = linkErrorView(linkErr)
	}
	return page, nil
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
	since := until.Add(-time.Duration(hours) * time.Hour)
	a, err := s.store.Activity(r.Context(), since, until)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	byHour, err := s.store.ActivityByHour(r.Context(), since, until)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	at := make([]time.Time, len(byHour))
	emails, tasks := make([]int64, len(byHour)), make([]int64, len(byHour))
	for i, h := range byHour {
		at[i], emails[i], tasks[i] = h.Hour, h.Emails, h.TasksDone
	}
	p := views.ActivityPage{Meta: s.metaFor(r, "Activity"), Hours: hours, Problem: problem, Activity: activityView(a)}
	p.EmailsByHour, p.TasksByHour = views.HourlyCharts(at, emails, tasks)
	s.render(w, r, http.StatusOK, views.Activity(p))
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
