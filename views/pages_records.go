package views

import (
	"fmt"
	"strconv"
	"time"

	"github.com/a-h/templ"
)

// LeadPage is one lead at /admin/leads/{id}.
type LeadPage struct {
	Meta
	Record LeadRecord
}

// CustomerPage is one customer at /admin/customers/{id}, with its tasks and
// invoices paged (tp, ip).
type CustomerPage struct {
	Meta
	Record       CustomerRecord
	Tasks        []TaskRow
	TasksPage    Page
	Invoices     []InvoiceRow
	InvoicesPage Page
	// Portal is the portal link panel, with a fresh link when the operator
	// has just rotated it.
	Portal PortalLinkPanel
	// MailFlag is the client address's flag; ClientMail the latest client
	// e-mails (models_client_mail.go).
	MailFlag   MailFlagPanel
	ClientMail ClientMailPanel
	// Plan is the customer's plan and the form that changes it.
	Plan CustomerPlanPanel
}

// PortalLinkPanel is the portal link controls of a customer. NewLink is set
// only in the answer to a rotation: the one moment the link exists outside
// the customer's hands.
type PortalLinkPanel struct {
	CustomerID     int64
	TokenCreatedAt time.Time
	TokenRevokedAt *time.Time
	Actions        []AuditEntry // latest rotations and revocations
	NewLink        string
	Result         string // what the last action did, "" on a plain view
	ResultClass    string // ok or bad
}

// TaskPage is one task at /admin/tasks/{id}.
type TaskPage struct {
	Meta
	Record TaskRecord
}

// InvoicePage is one invoice at /admin/invoices/{id}.
type InvoicePage struct {
	Meta
	Record     InvoiceRecord
	ClientMail ClientMailPanel // the latest client e-mails of the invoice
	LinkError  *LinkError      // the last payment-link failure, while it has no link
}

// ActivityPage is the activity summary at /admin/activity.
type ActivityPage struct {
	Meta
	Hours    int
	Problem  string // why the asked-for window was not used, "" when it was
	Activity ActivitySummary
	// EmailsByHour and TasksByHour chart the window hour by hour.
	EmailsByHour, TasksByHour BarChart
}

// HourlyCharts charts e-mail outcomes and tasks done per hour (UTC) of an
// activity window.
func HourlyCharts(hours []time.Time, emails, tasks []int64) (BarChart, BarChart) {
	labels := make([]string, len(hours))
	for i, h := range hours {
		labels[i] = h.UTC().Format("Mon 15:00")
	}
	chart := func(id, title string, values []int64) BarChart {
		var total int64
		for _, v := range values {
			total += v
		}
		return BarChart{ID: id, Title: title, Slot: "Hour (UTC)", Current: Series{Labels: labels, Values: values},
			CurrentName: "Per hour", Summary: fmtCount(total) + " in the window"}
	}
	return chart("activity-emails-hourly", "E-mail outcomes per hour", emails), chart("activity-tasks-hourly", "Tasks done per hour", tasks)
}

// ImportReport is what a CSV import of leads did, row by row.
type ImportReport struct {
	FileName                    string
	Created, Duplicate, Invalid int
	Rows                        []ImportRow
	Error                       string // why the file was refused whole, "" when it was read
}

// ImportRow is one row of an import.
type ImportRow struct {
	Row    int // line of the file; the header is line 1
	Status string
	Reason string
}

// ImportPage is an import report as a full page (a form posted without htmx).
type ImportPage struct {
	Meta
	Report ImportReport
}

// timeSecLayout is timeLayout with seconds, for record pages where events a
// few seconds apart must read in order.
const timeSecLayout = "2006-01-02 15:04:05 UTC"

// fmtTimeSec formats t in UTC to the second; the zero time is a dash.
func fmtTimeSec(t time.Time) string {
	if t.IsZero() {
		return dash
	}
	return t.UTC().Format(timeSecLayout)
}

// fmtTimeSecPtr is fmtTimeSec for optional times.
func fmtTimeSecPtr(t *time.Time) string {
	if t == nil {
		return dash
	}
	return fmtTimeSec(*t)
}

// isoTime is the machine-readable form of t for <time datetime>.
func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// recordPaths are the detail pages by the kind of row a timeline entry
// names.
var recordPaths = map[string]string{"lead": "/admin/leads/", "customer": "/admin/customers/", "task": "/admin/tasks/", "invoice": "/admin/invoices/"}

// hasRecordPage reports whether rows of kind ref have a detail page.
func hasRecordPage(ref string) bool { _, ok := recordPaths[ref]; return ok }

// recordURL links to the detail page of row id of kind ref.
func recordURL(ref string, id int64) templ.SafeURL {
	return templ.URL(recordPaths[ref] + strconv.FormatInt(id, 10))
}

// rowID formats a row id as "#12".
func rowID(id int64) string { return "#" + strconv.FormatInt(id, 10) }

// optID formats an optional row id.
func optID(id *int64) string {
	if id == nil {
		return dash
	}
	return rowID(*id)
}

// optString shows an optional string, a dash for nil or empty.
func optString(s *string) string {
	if s == nil {
		return dash
	}
	return orDash(*s)
}

// recordFlag spells a flag.
func recordFlag(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// recordMoney is cents of a currency, for people.
func recordMoney(cents int64, currency string) string {
	return Money{Cents: cents, Currency: currency}.String()
}

// customerPageURL links to a page of a customer's tasks or invoices.
func customerPageURL(p CustomerPage, param string) func(string) templ.SafeURL {
	q := map[string][]string{}
	if c := p.TasksPage.At; c != "" {
		q["tp"] = []string{c}
	}
	if c := p.InvoicesPage.At; c != "" {
		q["ip"] = []string{c}
	}
	path := fmt.Sprintf("/admin/customers/%d", p.Record.Customer.ID)
	return func(cursor string) templ.SafeURL { return pageURL(path, q, param, cursor) }
}

// portalActionURL is the POST address of a portal link action (rotate or
// revoke) of customer id.
func portalActionURL(id int64, action string) string {
	return fmt.Sprintf("/admin/customers/%d/portal/%s", id, action)
}

// activityURL links to the activity summary of the last hours.
func activityURL(hours int) templ.SafeURL {
	return templ.URL("/admin/activity?hours=" + strconv.Itoa(hours))
}

// emailOutcomes are the outbox statuses the activity page lists, in order.
var emailOutcomes = MessageStatuses
