package app

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// csvExport is one table as CSV: its columns and how to read a page of rows
// after a given id.
type csvExport struct {
	name   string
	header []string
	page   func(ctx context.Context, store *db.DB, afterID int64) (rows [][]string, lastID int64, err error)
}

// exportCSV streams every row of a table, a page at a time in id order (so
// rows added meanwhile never shift a page). The first page is read before
// anything is written, so a failing database still gets a proper error
// page; a failure later aborts the response rather than end a file that
// looks complete.
// The export is named by its table; a name that is no export is a
// programming error, found when the router is built.
func (s *Server) exportCSV(table string) http.HandlerFunc {
	i := slices.IndexFunc(csvExports, func(e csvExport) bool { return e.name == table })
	if i < 0 {
		panic("app: no CSV export of table " + table)
	}
	e := csvExports[i]
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		rows, last, err := e.page(ctx, s.store, 0)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		name := fmt.Sprintf("hossagent-%s-%s.csv", e.name, s.now().UTC().Format("20060102T150405Z"))
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		h.Set("Cache-Control", "no-store")
		cw := csv.NewWriter(w)
		_ = cw.Write(e.header)
		total := 0
		for len(rows) > 0 {
			if err := cw.WriteAll(rows); err != nil { // WriteAll flushes
				return // the client went away
			}
			total += len(rows)
			if rows, last, err = e.page(ctx, s.store, last); err != nil {
				if ctx.Err() == nil {
					s.log.Error("csv export failed midway", "table", e.name, "rows", total, "err", err)
				}
				panic(http.ErrAbortHandler)
			}
		}
		cw.Flush()
		s.audit(r, "export csv", e.name, strconv.Itoa(total)+" rows")
	}
}

// csvCell makes a text cell safe to open in a spreadsheet: one starting
// with = + - @, a tab or a carriage return would be read as a formula, so
// it gets a leading single quote. Numbers, money and times are written by
// this program (csvInt, csvMoney, csvTime) and are never text from outside.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func csvInt(n int64) string { return strconv.FormatInt(n, 10) }

func csvOptInt(n *int64) string {
	if n == nil {
		return ""
	}
	return csvInt(*n)
}

func csvOptText(s *string) string {
	if s == nil {
		return ""
	}
	return csvCell(*s)
}

// csvMoney is an amount of minor units as a decimal string ("-12.50"); the
// currency has its own column.
func csvMoney(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func csvOptTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return csvTime(*t)
}

// csvPage builds a table's page function from the store method that reads
// rows after an id, the row's id and its record.
func csvPage[T any](read func(*db.DB, context.Context, int64, int) ([]T, error), id func(T) int64, record func(T) []string) func(context.Context, *db.DB, int64) ([][]string, int64, error) {
	return func(ctx context.Context, store *db.DB, after int64) ([][]string, int64, error) {
		rows, err := read(store, ctx, after, db.MaxPerPage)
		if err != nil || len(rows) == 0 {
			return nil, after, err
		}
		out := make([][]string, len(rows))
		for i, row := range rows {
			out[i] = record(row)
		}
		return out, id(rows[len(rows)-1]), nil
	}
}

// csvExports are the four exportable tables.
var csvExports = []csvExport{
	{
		name: "leads",
		header: []string{"id", "name", "email", "company", "domain_key", "niche", "website", "source", "status",
			"dry_run", "contacted_at", "responded_at", "converted_at", "created_at", "updated_at"},
		page: csvPage((*db.DB).LeadsAfter, func(l db.Lead) int64 { return l.ID }, func(l db.Lead) []string {
			return []string{csvInt(l.ID), csvCell(l.Name), csvOptText(l.Email), csvCell(l.Company), csvOptText(l.DomainKey),
				csvCell(l.Niche), csvCell(l.Website), csvCell(l.Source), csvCell(l.Status), strconv.FormatBool(l.DryRun),
				csvOptTime(l.ContactedAt), csvOptTime(l.RespondedAt), csvOptTime(l.ConvertedAt), csvTime(l.CreatedAt), csvTime(l.UpdatedAt)}
		}),
	},
	{
		name: "customers",
		header: []string{"id", "company", "contact_email", "plan", "lead_id", "status", "stripe_customer_id",
			"token_created_at", "token_revoked_at", "created_at"},
		page: csvPage((*db.DB).CustomersAfter, func(c db.Customer) int64 { return c.ID }, func(c db.Customer) []string {
			return []string{csvInt(c.ID), csvCell(c.Company), csvCell(c.ContactEmail), csvCell(c.Plan), csvOptInt(c.LeadID),
				csvCell(c.Status), csvCell(c.StripeCustomerID), csvTime(c.TokenCreatedAt), csvOptTime(c.TokenRevokedAt), csvTime(c.CreatedAt)}
		}),
	},
	{
		name: "tasks",
		header: []string{"id", "customer_id", "kind", "description", "status", "currency", "reward", "cost", "profit",
			"attempts", "started_at", "lease_expires_at", "completed_at", "result", "last_error", "created_at", "updated_at"},
		page: csvPage((*db.DB).TasksAfter, func(t db.Task) int64 { return t.ID }, func(t db.Task) []string {
			return []string{csvInt(t.ID), csvInt(t.CustomerID), csvCell(t.Kind), csvCell(t.Description), csvCell(t.Status),
				csvCell(t.Currency), csvMoney(t.Earned().Cents), csvMoney(t.CostCents), csvMoney(t.Profit().Cents), strconv.Itoa(t.Attempts),
				csvOptTime(t.StartedAt), csvOptTime(t.LeaseExpiresAt), csvOptTime(t.CompletedAt), csvCell(t.Result), csvCell(t.LastError),
				csvTime(t.CreatedAt), csvTime(t.UpdatedAt)}
		}),
	},
	{
		name: "invoices",
		header: []string{"id", "number", "customer_id", "status", "currency", "amount", "issued_at", "due_at", "paid_at",
			"payer_email", "payer_name", "stripe_price_id", "stripe_payment_link_id", "payment_url", "flag", "created_at", "updated_at"},
		page: csvPage((*db.DB).InvoicesAfter, func(i db.Invoice) int64 { return i.ID }, func(i db.Invoice) []string {
			return []string{csvInt(i.ID), csvOptText(i.Number), csvInt(i.CustomerID), csvCell(i.Status), csvCell(i.Currency),
				csvMoney(i.AmountCents), csvOptTime(i.IssuedAt), csvOptTime(i.DueAt), csvOptTime(i.PaidAt), csvCell(i.PayerEmail),
				csvCell(i.PayerName), csvCell(i.StripePriceID), csvCell(i.StripePaymentLinkID), csvCell(i.PaymentURL), csvCell(i.Flag),
				csvTime(i.CreatedAt), csvTime(i.UpdatedAt)}
		}),
	},
}

// maxImportBody bounds an import request: the file's 1 MiB and room for the
// multipart envelope.
const maxImportBody = agents.MaxCSVBytes + 64<<10

// importLeads stores the leads of an uploaded CSV file (field "file") and
// answers with the report, row by row: a fragment for htmx, a page
// otherwise (a redirect would lose the report). A file refused whole
// stores nothing.
func (s *Server) importLeads(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxImportBody)
	report, status := s.readImport(r)
	if isHXRequest(r) {
		s.render(w, r, status, views.ImportResult(report))
		return
	}
	s.render(w, r, status, views.ImportReportPage(views.ImportPage{Meta: s.metaFor(r, "Lead import"), Report: report}))
}

func (s *Server) readImport(r *http.Request) (views.ImportReport, int) {
	refuse := func(status int, msg string) (views.ImportReport, int) {
		s.audit(r, "import leads refused", "leads", msg)
		return views.ImportReport{Error: msg}, status
	}
	tooLarge := fmt.Sprintf("The file is larger than %d KiB; split it and import the parts.", agents.MaxCSVBytes>>10)
	if err := r.ParseMultipartForm(maxImportBody); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return refuse(http.StatusRequestEntityTooLarge, tooLarge)
		}
		return refuse(http.StatusBadRequest, "Choose a CSV file to import (the form must be sent as multipart/form-data).")
	}
	defer r.MultipartForm.RemoveAll()
	file, header, err := r.FormFile("file")
	if err != nil {
		return refuse(http.StatusBadRequest, "Choose a CSV file to import.")
	}
	defer file.Close()
	if header.Size > agents.MaxCSVBytes {
		return refuse(http.StatusRequestEntityTooLarge, tooLarge)
	}
	name := shortName(header.Filename)
	rep, err := agents.ImportLeadsCSV(r.Context(), s.store, file, "csv_import", s.now())
	switch {
	case codeOf(err) == codeInvalid: // what is wrong with the file, in its own words
		return refuse(errorStatus(err), "The file was not imported: "+err.Error()+".")
	case err != nil:
		s.log.Error("csv import failed", "rows", len(rep.Rows), "err", err)
		msg := fmt.Sprintf("The import stopped on a server error (logged) after %d rows; %d leads were created before it.", len(rep.Rows), rep.Created)
		s.audit(r, "import leads failed", "leads", msg)
		return views.ImportReport{FileName: name, Error: msg}, http.StatusInternalServerError
	}
	if rep.Created > 0 {
		s.refreshLive() // the leads table and the counts show the new leads at once
	}
	out := views.ImportReport{FileName: name, Created: rep.Created, Duplicate: rep.Duplicate, Invalid: rep.Invalid}
	for _, row := range rep.Rows {
		out.Rows = append(out.Rows, views.ImportRow{Row: row.Row, Status: row.Status, Reason: row.Reason})
	}
	s.audit(r, "import leads", "leads", fmt.Sprintf("%s: %d created, %d duplicate, %d invalid", name, rep.Created, rep.Duplicate, rep.Invalid))
	return out, http.StatusOK
}

// shortName bounds an uploaded file's name for the report and the audit log.
func shortName(name string) string {
	const limit = 100
	if len(name) <= limit {
		return name
	}
	name = name[:limit]
	for !utf8.ValidString(name) {
		name = name[:len(name)-1]
	}
	return name + "…"
}
