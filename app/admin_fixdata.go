package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// Fixing data by hand (issue 13): mark leads responded or dead (one on its
// page, or the ticked rows of the leads table), add and remove
// suppressions, retry failed tasks (one, or the failed rows the tasks table
// shows) and failed outbox messages, and edit a customer. Every action is
// a POST of the admin-only group (sign-in, same origin), asks for a
// confirmation (hx-confirm; a browser without scripts gets a confirmation
// page, Confirm, and acts only on confirm=yes), changes the store and
// writes its audit entries in one transaction (db/fixdata.go), and then
// refreshes every live view. The result comes back next to its control.

const (
	// maxFixForm bounds a data fix's form: 200 ids and a note of 500
	// characters of up to 4 bytes each, percent-encoded, fit.
	maxFixForm = 16 << 10
	// maxNote bounds a note, in characters; maxCompany and
	// maxContactName the customer's fields.
	maxNote        = 500
	maxCompany     = 200
	maxContactName = 200
	// maxDomainLen bounds a suppressed domain.
	maxDomainLen = 253
)

// fixAudit is the audit entry of an action by the signed-in operator; the
// store fills its target and detail.
func (s *Server) fixAudit(r *http.Request, action string) db.AuditEntry {
	actor := "anonymous"
	if u := userFrom(r.Context()); u != nil {
		actor = u.Email
	}
	return db.AuditEntry{Actor: actor, Action: action, RemoteAddr: s.clientIP(r), CreatedAt: s.now()}
}

// readFixForm parses a data fix's bounded form; false means it answered.
func (s *Server) readFixForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFixForm)
	if err := r.ParseForm(); err != nil {
		s.answerAction(w, r, actionRefused(http.StatusRequestEntityTooLarge, "The form could not be read: it is too large or malformed. Nothing was changed."))
		return false
	}
	return true
}

// confirmed reports whether the operator confirmed the action: htmx asked
// with hx-confirm before sending it; a plain form must carry confirm=yes,
// and without it the answer is a page that asks, posting fields again.
func (s *Server) confirmed(w http.ResponseWriter, r *http.Request, question, back string, fields [][2]string) bool {
	if isHXRequest(r) || r.PostForm.Get("confirm") == "yes" {
		return true
	}
	noStore(w)
	s.render(w, r, http.StatusOK, views.Confirm(views.ConfirmPage{
		Meta: s.metaFor(r, "Confirm"), Question: question, Action: r.URL.Path, Fields: fields, Back: back,
	}))
	return false
}

// readNote checks an optional note: plain text of at most maxNote
// characters, its runs of white space made single spaces.
func readNote(raw string) (string, string) {
	note, problem := plainText(raw, maxNote, "note")
	return note, problem
}

// plainText checks a one-line text field of at most limit characters.
func plainText(raw string, limit int, what string) (string, string) {
	if !utf8.ValidString(raw) {
		return "", "The " + what + " must be plain text."
	}
	text := strings.Join(strings.Fields(raw), " ")
	if strings.IndexFunc(text, unicode.IsControl) >= 0 {
		return "", "The " + what + " must be plain text, without control characters."
	}
	if n := utf8.RuneCountInString(text); n > limit {
		return "", fmt.Sprintf("The %s is too long: at most %d characters, this one has %d.", what, limit, n)
	}
	return text, ""
}

// readIDs reads the ids a bulk form names: plain positive decimal numbers,
// from 1 to db.MaxBulk distinct ones. A non-empty problem says what is
// wrong, and nothing is done.
func readIDs(values []string, noun string) ([]int64, string) {
	var ids []int64
	seen := map[int64]bool{}
	for _, v := range values {
		id, ok := parseID(v)
		if !ok {
			return nil, fmt.Sprintf("%q is not a %s id. Nothing was changed.", clipEcho(v, 20), noun)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	switch {
	case len(ids) == 0:
		return nil, "Select at least one " + noun + " first. Nothing was changed."
	case len(ids) > db.MaxBulk:
		return nil, fmt.Sprintf("At most %d %ss at once; this form names %d. Nothing was changed.", db.MaxBulk, noun, len(ids))
	}
	return ids, ""
}

// parseID reads a positive decimal id written plainly (as recordID does).
func parseID(raw string) (int64, bool) {
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

func idText(id int64) string { return "#" + strconv.FormatInt(id, 10) }

// ---- leads

// markLead marks the lead of the route responded or dead, from its page.
func (s *Server) markLead(status string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := recordID(r)
		if !ok {
			s.notFound(w, r)
			return
		}
		if !s.readFixForm(w, r) {
			return
		}
		lead, err := s.leadForAction(r.Context(), id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		panel := views.LeadActionsFor(lead)
		note, problem := readNote(r.PostForm.Get("note"))
		if problem != "" {
			panel.Note = clipEcho(r.PostForm.Get("note"), maxNote)
			s.leadAnswer(w, r, panel, lead, http.StatusUnprocessableEntity, "bad", problem)
			return
		}
		question := fmt.Sprintf("Mark lead %s (%s) %s? Its sequence stops.", idText(id), lead.Company, status)
		if !s.confirmed(w, r, question, "/admin/leads/"+strconv.FormatInt(id, 10), [][2]string{{"note", note}}) {
			return
		}
		out, err := s.store.MarkLeads(context.WithoutCancel(r.Context()), []int64{id}, status, note, s.fixAudit(r, db.AuditLeadMarked))
		if err != nil {
			s.log.Error("lead not marked", "lead", id, "status", status, "err", err)
			s.leadAnswer(w, r, panel, lead, http.StatusInternalServerError, "bad", "Nothing was changed: the server hit an error and logged it. Try again.")
			return
		}
		m := out[0]
		code, kind, text := http.StatusOK, "ok", fmt.Sprintf("Lead %s marked %s.", idText(id), status)
		switch {
		case m.Moved:
			s.refreshLive()
			if status == db.LeadResponded {
				text += " Onboarding converts it on its next cycle."
			}
		case m.Already:
			text = fmt.Sprintf("Lead %s was %s already: nothing changed.", idText(id), status)
		default:
			code, kind, text = http.StatusConflict, "bad", fmt.Sprintf("Lead %s was not marked %s: %s.", idText(id), status, m.Refused)
			panel.Note = note
		}
		if fresh, err := s.leadForAction(context.WithoutCancel(r.Context()), id); err == nil {
			lead = fresh
			note := panel.Note
			panel = views.LeadActionsFor(lead)
			panel.Note = note
		}
		s.leadAnswer(w, r, panel, lead, code, kind, text)
	}
}

// leadForAction reads a lead as its page shows it.
func (s *Server) leadForAction(ctx context.Context, id int64) (views.Lead, error) {
	rec, err := s.store.LeadDetail(ctx, id)
	if err != nil {
		return views.Lead{}, err
	}
	leads := []views.Lead{leadView(rec.Lead)}
	if err := s.markDraftSteps(ctx, leads); err != nil {
		return views.Lead{}, err
	}
	return leads[0], nil
}

// leadAnswer sends a lead action's result: the panel and the lead's fields
// to htmx, a 303 back to the lead page, or an error page for a refusal.
func (s *Server) leadAnswer(w http.ResponseWriter, r *http.Request, panel views.LeadActionsPanel, lead views.Lead, status int, kind, text string) {
	switch {
	case isHXRequest(r):
		panel.Result, panel.ResultKind = text, kind
		s.render(w, r, status, views.LeadActionAnswer(panel, lead))
	case status < http.StatusBadRequest:
		http.Redirect(w, r, "/admin/leads/"+strconv.FormatInt(lead.ID, 10), http.StatusSeeOther)
	default:
		s.renderError(w, r, status, http.StatusText(status), text)
	}
}

// markLeads marks the leads a bulk form names, and no others.
func (s *Server) markLeads(status string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.readFixForm(w, r) {
			return
		}
		ids, problem := readIDs(r.PostForm["lead"], "lead")
		if problem == "" {
			var note string
			if note, problem = readNote(r.PostForm.Get("note")); problem == "" {
				s.markLeadsNow(w, r, ids, status, note)
				return
			}
		}
		s.answerAction(w, r, actionRefused(http.StatusUnprocessableEntity, problem))
	}
}

func (s *Server) markLeadsNow(w http.ResponseWriter, r *http.Request, ids []int64, status, note string) {
	fields := [][2]string{{"note", note}}
	for _, id := range ids {
		fields = append(fields, [2]string{"lead", strconv.FormatInt(id, 10)})
	}
	question := fmt.Sprintf("Mark the %d selected %s %s? Their sequences stop.", len(ids), pluralOf(len(ids), "lead", "leads"), status)
	if !s.confirmed(w, r, question, "/admin", fields) {
		return
	}
	out, err := s.store.MarkLeads(context.WithoutCancel(r.Context()), ids, status, note, s.fixAudit(r, db.AuditLeadMarked))
	if err != nil {
		s.log.Error("leads not marked", "status", status, "err", err)
		s.answerAction(w, r, actionRefused(http.StatusInternalServerError, "Nothing was changed: the server hit an error and logged it. Try again."))
		return
	}
	var moved int
	var already, refused []string
	for _, m := range out {
		switch {
		case m.Moved:
			moved++
		case m.Already:
			already = append(already, idText(m.ID))
		default:
			name := idText(m.ID)
			if m.Company != "" {
				name += " " + clipEcho(m.Company, 60)
			}
			refused = append(refused, name+": "+m.Refused)
		}
	}
	if moved > 0 {
		s.refreshLive()
	}
	text := fmt.Sprintf("Marked %s: %d of the %d %s selected.", status, moved, len(out), pluralOf(len(out), "lead", "leads"))
	if len(already) > 0 {
		text += fmt.Sprintf(" Already %s: %s.", status, strings.Join(already, ", "))
	}
	if len(refused) > 0 {
		text += " Not marked: " + strings.Join(refused, "; ") + "."
	}
	s.answerBulk(w, r, moved, len(refused), text)
}

// answerBulk answers a bulk action that changed done rows and refused
// refused: done when nothing was refused, 409 when nothing was done, a
// warning otherwise.
func (s *Server) answerBulk(w http.ResponseWriter, r *http.Request, done, refused int, text string) {
	switch {
	case refused == 0:
		s.answerAction(w, r, actionDone(text))
	case done == 0:
		s.answerAction(w, r, actionRefused(http.StatusConflict, text))
	default:
		s.answerAction(w, r, actionResult{http.StatusOK, "warn", text})
	}
}

// ---- tasks

// retryTask retries the failed task of the route, from its page.
func (s *Server) retryTask(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.readFixForm(w, r) {
		return
	}
	rec, err := s.store.TaskDetail(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	question := fmt.Sprintf("Retry task %s? It goes back to pending with its attempts starting over.", idText(id))
	if !s.confirmed(w, r, question, "/admin/tasks/"+strconv.FormatInt(id, 10), nil) {
		return
	}
	out, err := s.store.RetryTasks(context.WithoutCancel(r.Context()), []int64{id}, s.fixAudit(r, db.AuditTaskRetried))
	code, kind, text := http.StatusOK, "ok", fmt.Sprintf("Task %s is pending again: Ops runs it on its next cycle.", idText(id))
	switch {
	case err != nil:
		s.log.Error("task not retried", "task", id, "err", err)
		code, kind, text = http.StatusInternalServerError, "bad", "Nothing was changed: the server hit an error and logged it. Try again."
	case out[0].Retried:
		s.refreshLive()
	default:
		code, kind, text = http.StatusConflict, "bad", fmt.Sprintf("Task %s was not retried: %s.", idText(id), out[0].Refused)
	}
	if fresh, err := s.store.TaskDetail(context.WithoutCancel(r.Context()), id); err == nil {
		rec = fresh
	}
	record := taskRecordView(*rec)
	switch panel := views.TaskActionsFor(record); {
	case isHXRequest(r):
		panel.Result, panel.ResultKind = text, kind
		s.render(w, r, code, views.TaskActionAnswer(panel, record))
	case code < http.StatusBadRequest:
		http.Redirect(w, r, "/admin/tasks/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
	default:
		s.renderError(w, r, code, http.StatusText(code), text)
	}
}

// retryTasks retries the tasks a bulk form names ("retry all failed
// shown"), and no others.
func (s *Server) retryTasks(w http.ResponseWriter, r *http.Request) {
	if !s.readFixForm(w, r) {
		return
	}
	ids, problem := readIDs(r.PostForm["task"], "task")
	if problem != "" {
		s.answerAction(w, r, actionRefused(http.StatusUnprocessableEntity, problem))
		return
	}
	fields := make([][2]string, 0, len(ids))
	for _, id := range ids {
		fields = append(fields, [2]string{"task", strconv.FormatInt(id, 10)})
	}
	question := fmt.Sprintf("Retry the %d failed %s shown? Each goes back to pending with its attempts starting over.", len(ids), pluralOf(len(ids), "task", "tasks"))
	if !s.confirmed(w, r, question, "/admin", fields) {
		return
	}
	out, err := s.store.RetryTasks(context.WithoutCancel(r.Context()), ids, s.fixAudit(r, db.AuditTaskRetried))
	if err != nil {
		s.log.Error("tasks not retried", "err", err)
		s.answerAction(w, r, actionRefused(http.StatusInternalServerError, "Nothing was changed: the server hit an error and logged it. Try again."))
		return
	}
	retried := 0
	var refused []string
	for _, t := range out {
		if t.Retried {
			retried++
		} else {
			refused = append(refused, idText(t.ID)+": "+t.Refused)
		}
	}
	if retried > 0 {
		s.refreshLive()
	}
	text := fmt.Sprintf("%d of the %d %s pending again: Ops runs them on its next cycle.", retried, len(out), pluralOf(len(out), "task is", "tasks are"))
	if len(refused) > 0 {
		text += " Not retried: " + strings.Join(refused, "; ") + "."
	}
	s.answerBulk(w, r, retried, len(refused), text)
}

// ---- outbox messages

// retryMessage queues the failed (or unknown-fate, with not_sent=yes)
// outbox message of the route again.
func (s *Server) retryMessage(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.readFixForm(w, r) {
		return
	}
	notSent := r.PostForm.Get("not_sent") == "yes"
	fields := [][2]string{}
	if notSent {
		fields = append(fields, [2]string{"not_sent", "yes"})
	}
	question := fmt.Sprintf("Queue message %s again? It is sent on the next cycle within the caps, unless its address is suppressed by then.", idText(id))
	if !s.confirmed(w, r, question, "/admin", fields) {
		return
	}
	out, err := s.store.RetryMessage(context.WithoutCancel(r.Context()), id, notSent, s.fixAudit(r, db.AuditMessageRetried))
	var refusal *db.RetryRefusal
	code, kind := http.StatusOK, "ok"
	text := fmt.Sprintf("Message %s is queued again: BizDev sends it on its next cycle, within the caps and unless it is suppressed by then.", idText(id))
	switch {
	case codeOf(err) == codeNotFound:
		s.fail(w, r, err)
		return
	case errors.As(err, &refusal):
		code, kind, text = http.StatusConflict, "bad", fmt.Sprintf("Message %s was not retried: %s.", idText(id), refusal.Text)
	case err != nil:
		s.log.Error("message not retried", "message", id, "err", err)
		code, kind, text = http.StatusInternalServerError, "bad", "Nothing was changed: the server hit an error and logged it. Try again."
	default:
		s.refreshLive()
		if out.LeadFrom != "" {
			text += fmt.Sprintf(" Its lead was %s and is %s again.", out.LeadFrom, db.LeadNew)
		}
	}
	if out.LeadID == 0 || !isHXRequest(r) {
		switch {
		case code < http.StatusBadRequest && out.LeadID != 0:
			http.Redirect(w, r, "/admin/leads/"+strconv.FormatInt(out.LeadID, 10), http.StatusSeeOther)
		case code < http.StatusBadRequest:
			http.Redirect(w, r, "/admin", http.StatusSeeOther)
		case isHXRequest(r):
			s.render(w, r, code, views.AdminActionResult(kind, text))
		default:
			s.renderError(w, r, code, http.StatusText(code), text)
		}
		return
	}
	rec, err := s.store.LeadDetail(context.WithoutCancel(r.Context()), out.LeadID)
	if err != nil {
		s.log.Error("lead not re-read after a message retry", "lead", out.LeadID, "err", err)
		s.render(w, r, code, views.AdminActionResult(kind, text))
		return
	}
	record := leadRecordView(*rec)
	panel := views.MessagesFor(record)
	panel.Result, panel.ResultKind = text, kind
	s.render(w, r, code, views.MessageRetryAnswer(panel, record.Lead))
}

// ---- customers

// editCustomer stores the customer's company, contact name and contact
// e-mail.
func (s *Server) editCustomer(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.readFixForm(w, r) {
		return
	}
	rec, err := s.store.CustomerDetail(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	record := customerRecordView(*rec)
	panel := views.CustomerEditFor(record)
	form := r.PostForm
	panel.Company, panel.ContactName, panel.ContactEmail = clipEcho(form.Get("company"), maxCompany), clipEcho(form.Get("contact_name"), maxContactName), clipEcho(form.Get("contact_email"), maxEmailLen)
	in, problem := readCustomerEdit(form)
	if problem != "" {
		s.customerAnswer(w, r, panel, record, http.StatusUnprocessableEntity, "bad", problem)
		return
	}
	question := fmt.Sprintf("Save the changes to customer %s (%s)?", idText(id), rec.Customer.Company)
	back := "/admin/customers/" + strconv.FormatInt(id, 10)
	if !s.confirmed(w, r, question, back, [][2]string{{"company", in.Company}, {"contact_name", in.ContactName}, {"contact_email", in.ContactEmail}}) {
		return
	}
	before, after, err := s.store.EditCustomer(context.WithoutCancel(r.Context()), id, in, s.fixAudit(r, db.AuditCustomerEdited))
	switch {
	case errors.Is(err, db.ErrEmailTaken):
		s.customerAnswer(w, r, panel, record, http.StatusConflict, "bad", "Another customer has the contact e-mail "+in.ContactEmail+": each address belongs to one customer. Nothing was changed.")
		return
	case err != nil:
		s.log.Error("customer not edited", "customer", id, "err", err)
		s.customerAnswer(w, r, panel, record, http.StatusInternalServerError, "bad", "Nothing was changed: the server hit an error and logged it. Try again.")
		return
	}
	text := "Nothing to change: the customer already has these details."
	if before != after {
		s.refreshLive()
		text = "Customer saved."
		if before.ContactEmail != after.ContactEmail && after.MailFlag != "" {
			text += " Its mail flag (" + clipEcho(after.MailFlag, 100) + ") was about the old address: clear it below once the new one works."
		}
	}
	if fresh, err := s.store.CustomerDetail(context.WithoutCancel(r.Context()), id); err == nil {
		record = customerRecordView(*fresh)
	}
	s.customerAnswer(w, r, views.CustomerEditFor(record), record, http.StatusOK, "ok", text)
}

// readCustomerEdit checks the edit form: a company of 1 to maxCompany
// characters, a contact name of at most maxContactName, and one plain
// e-mail address.
func readCustomerEdit(form url.Values) (db.CustomerEdit, string) {
	company, problem := plainText(form.Get("company"), maxCompany, "company")
	if problem != "" {
		return db.CustomerEdit{}, problem
	}
	if company == "" {
		return db.CustomerEdit{}, "Give the company's name."
	}
	name, problem := plainText(form.Get("contact_name"), maxContactName, "contact name")
	if problem != "" {
		return db.CustomerEdit{}, problem
	}
	email, ok := portalEmail(form.Get("contact_email"))
	if !ok {
		return db.CustomerEdit{}, "The contact e-mail must be one plain address, such as name@example.com."
	}
	return db.CustomerEdit{Company: company, ContactName: name, ContactEmail: email}, ""
}

func (s *Server) customerAnswer(w http.ResponseWriter, r *http.Request, panel views.CustomerEditPanel, record views.CustomerRecord, status int, kind, text string) {
	switch {
	case isHXRequest(r):
		panel.Result, panel.ResultKind = text, kind
		s.render(w, r, status, views.CustomerEditAnswer(panel, record))
	case status < http.StatusBadRequest:
		http.Redirect(w, r, "/admin/customers/"+strconv.FormatInt(record.Customer.ID, 10), http.StatusSeeOther)
	default:
		s.renderError(w, r, status, http.StatusText(status), text)
	}
}

// ---- suppressions

// suppressions lists the suppressions, newest first (?q= keeps those that
// start with it, ?p= is the page).
func (s *Server) suppressions(w http.ResponseWriter, r *http.Request) {
	panel, err := s.suppressionPanel(r.Context(), searchParam(r, "q"), cursorParam(r, "p"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.Suppressions(views.SuppressionsPage{Meta: s.metaFor(r, "Suppressions"), Panel: panel}))
}

func (s *Server) suppressionPanel(ctx context.Context, search string, at db.Cursor) (views.SuppressionsPanel, error) {
	rows, pg, err := s.store.ListSuppressions(ctx, db.ListQuery{Search: search, Cursor: at, PerPage: 50})
	if err != nil {
		return views.SuppressionsPanel{}, err
	}
	return views.SuppressionsPanel{Search: search, Page: pageView(pg), Rows: viewsOf(rows, func(s db.Suppression) views.Suppression {
		return views.Suppression{ID: s.ID, Kind: s.Kind, Value: s.Value, Reason: s.Reason, Source: s.Source, CreatedAt: s.CreatedAt}
	})}, nil
}

// formSearch reads the search the list was on from a form.
func formSearch(r *http.Request) string {
	q, _ := plainText(r.PostForm.Get("q"), maxSearchLen, "search")
	return q
}

// addSuppression suppresses an address or a domain (reason manual, source
// operator).
func (s *Server) addSuppression(w http.ResponseWriter, r *http.Request) {
	if !s.readFixForm(w, r) {
		return
	}
	kind, raw := r.PostForm.Get("kind"), r.PostForm.Get("value")
	value, problem := suppressionValue(kind, raw)
	if problem != "" {
		s.suppressionAnswer(w, r, formSearch(r), db.Cursor{}, kind, clipEcho(raw, maxEmailLen), http.StatusUnprocessableEntity, "bad", problem)
		return
	}
	question := fmt.Sprintf("Suppress the %s %s? No e-mail goes to it until it is removed.", kind, value)
	if !s.confirmed(w, r, question, "/admin/suppressions", [][2]string{{"kind", kind}, {"value", value}}) {
		return
	}
	sup, added, err := s.store.AddOperatorSuppression(context.WithoutCancel(r.Context()), kind, value, s.fixAudit(r, db.AuditSuppressionAdded))
	if err != nil {
		s.log.Error("suppression not added", "kind", kind, "err", err)
		s.suppressionAnswer(w, r, formSearch(r), db.Cursor{}, kind, value, http.StatusInternalServerError, "bad", "Nothing was changed: the server hit an error and logged it. Try again.")
		return
	}
	text := fmt.Sprintf("Suppressed the %s %s: no e-mail goes to it from now on.", kind, value)
	if !added {
		text = fmt.Sprintf("The %s %s was suppressed already (%s): nothing changed.", kind, value, sup.Reason)
	} else {
		s.refreshLive()
	}
	s.suppressionAnswer(w, r, formSearch(r), db.Cursor{}, "", "", http.StatusOK, "ok", text)
}

// removeSuppression deletes one suppression; nothing is sent because of it.
func (s *Server) removeSuppression(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if !s.readFixForm(w, r) {
		return
	}
	search, at := formSearch(r), db.ParseCursor(r.PostForm.Get("p"))
	if !s.confirmed(w, r, fmt.Sprintf("Remove suppression %s? Mail to it is allowed again; nothing is resent by itself.", idText(id)),
		"/admin/suppressions", [][2]string{{"q", search}, {"p", r.PostForm.Get("p")}}) {
		return
	}
	sup, err := s.store.RemoveSuppression(context.WithoutCancel(r.Context()), id, s.fixAudit(r, db.AuditSuppressionRemoved))
	switch {
	case codeOf(err) == codeNotFound:
		s.suppressionAnswer(w, r, search, at, "", "", http.StatusNotFound, "bad", fmt.Sprintf("There is no suppression %s: it was removed already.", idText(id)))
		return
	case err != nil:
		s.log.Error("suppression not removed", "suppression", id, "err", err)
		s.suppressionAnswer(w, r, search, at, "", "", http.StatusInternalServerError, "bad", "Nothing was changed: the server hit an error and logged it. Try again.")
		return
	}
	s.refreshLive()
	s.suppressionAnswer(w, r, search, at, "", "", http.StatusOK, "ok",
		fmt.Sprintf("Removed the suppression of %s (%s): mail to it is allowed again. Nothing was sent because of it; leads stay as they are.", sup.Value, sup.Reason))
}

// suppressionAnswer sends the list with a result to htmx, a 303 back to
// the list, or an error page for a refusal.
func (s *Server) suppressionAnswer(w http.ResponseWriter, r *http.Request, search string, at db.Cursor, kind, value string, status int, resultKind, text string) {
	if !isHXRequest(r) {
		if status < http.StatusBadRequest {
			target := "/admin/suppressions"
			if search != "" {
				target += "?q=" + url.QueryEscape(search)
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		s.renderError(w, r, status, http.StatusText(status), text)
		return
	}
	panel, err := s.suppressionPanel(context.WithoutCancel(r.Context()), search, at)
	if err != nil {
		s.log.Error("suppressions not read", "err", err)
		s.render(w, r, status, views.AdminActionResult(resultKind, text))
		return
	}
	panel.AddKind, panel.AddValue, panel.Result, panel.ResultKind = kind, value, text, resultKind
	s.render(w, r, status, views.SuppressionList(panel))
}

// suppressionValue checks what is to be suppressed: one plain address, or
// a domain name (a.b, letters, digits and hyphens), lower-cased.
func suppressionValue(kind, raw string) (string, string) {
	switch kind {
	case db.SuppressAddress:
		addr, ok := portalEmail(raw)
		if !ok {
			return "", "Give one plain e-mail address, such as name@example.com."
		}
		return addr, ""
	case "domain":
		d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(raw)), ".")
		if !validDomain(d) {
			return "", "Give a domain name, such as example.com (no @, no scheme, no path)."
		}
		return d, ""
	}
	return "", "Choose whether to suppress an address or a domain."
}

// validDomain reports whether d is a lower-case domain name of at least
// two labels, each 1 to 63 letters, digits or inner hyphens, its last one
// not all digits.
func validDomain(d string) bool {
	if d == "" || len(d) > maxDomainLen {
		return false
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}
