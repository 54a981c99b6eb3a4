package app

import (
	"context"
	"mime"
	"net/http"
	"net/mail"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/mailmode"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// The clients' outbox in the admin: every welcome, invoice, receipt,
// reminder and portal link e-mail, as the client sees it (in DRY_RUN too,
// where each is recorded, not sent), the files sent with them, an
// invoice's documents, and a customer's client-address flag.

const (
	// clientMailPerPage is the list's page; clientMailRecent what a
	// customer's or an invoice's page shows.
	clientMailPerPage = 50
	clientMailRecent  = 10
	// auditMailFlagCleared is the audit action of clearing a customer's
	// client-address flag.
	auditMailFlagCleared = "client mail flag cleared"
	// messageCSP is the message page's policy: the application's, but
	// with inline styles, which the HTML part in its sandboxed frame
	// (srcdoc inherits this policy) is written with, as every e-mail is.
	// The page itself has nothing inline: templ escapes every value.
	messageCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
		"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// clientMail lists the clients' outbox, newest first, 50 a page
// (?before=<id>), of one customer (?customer=<id>) or one invoice
// (?invoice=<id>) when asked.
func (s *Server) clientMail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	before, ok1 := optionalID(q.Get("before"))
	customer, ok2 := optionalID(q.Get("customer"))
	invoice, ok3 := optionalID(q.Get("invoice"))
	if !ok1 || !ok2 || !ok3 {
		s.renderError(w, r, http.StatusBadRequest, "Bad request", "before, customer and invoice must each be a record number (1, 2, 3 …).")
		return
	}
	if customer > 0 && invoice > 0 {
		s.renderError(w, r, http.StatusBadRequest, "Bad request", "Filter by a customer or by an invoice, not both.")
		return
	}
	ctx := r.Context()
	filter := views.ClientMailFilter{CustomerID: customer, InvoiceID: invoice}
	rows, more, err := s.clientMessageRows(ctx, before, filter, clientMailPerPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := views.ClientMailListPage{Meta: s.metaFor(r, "Client mail"), Filter: filter, Rows: rows, Before: before, DryRun: s.clientMailDryRun()}
	if more {
		p.Next = rows[len(rows)-1].ID
	}
	if p.Pending, err = s.store.PendingClientOutbox(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.SentHour, p.SentDay, err = s.store.ClientSends(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, views.ClientMailList(p))
}

// clientMessageRows reads up to limit client messages older than before,
// with their attachment counts, and whether there are more.
func (s *Server) clientMessageRows(ctx context.Context, before int64, f views.ClientMailFilter, limit int) ([]views.ClientMessageRow, bool, error) {
	msgs, err := s.store.ClientMessagesBefore(ctx, before, f.CustomerID, f.InvoiceID, limit+1)
	if err != nil {
		return nil, false, err
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[:limit]
	}
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	files, err := s.store.ClientAttachmentCounts(ctx, ids)
	if err != nil {
		return nil, false, err
	}
	rows := make([]views.ClientMessageRow, len(msgs))
	for i, m := range msgs {
		rows[i] = clientMessageRowView(m)
		rows[i].Attachments = files[m.ID]
	}
	return rows, more, nil
}

// clientMailPanel is the latest client messages of a customer or an
// invoice, for its page.
func (s *Server) clientMailPanel(ctx context.Context, f views.ClientMailFilter) (views.ClientMailPanel, error) {
	rows, more, err := s.clientMessageRows(ctx, 0, f, clientMailRecent)
	return views.ClientMailPanel{Filter: f, Rows: rows, More: more}, err
}

// clientMessage shows one client message as its client sees it.
func (s *Server) clientMessage(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	ctx := r.Context()
	m, err := s.store.ClientMessageByID(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	files, err := s.store.ClientAttachments(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := views.ClientMessageView{
		ClientMessageRow: clientMessageRowView(*m),
		Text:             strings.ReplaceAll(m.BodyText, agents.PortalLinkPlaceholder, views.PortalLinkShown),
		HTML:             strings.ReplaceAll(m.BodyHTML, agents.PortalLinkPlaceholder, views.PortalLinkShown),
		ProviderID:       m.ProviderID, DedupeKey: m.DedupeKey, SendingAt: m.SendingAt, UpdatedAt: m.UpdatedAt,
	}
	v.Attachments = len(files)
	v.From, v.ReplyTo = s.clientMailFrom()
	p := views.ClientMessagePage{Meta: s.metaFor(r, "Client e-mail "+strconv.FormatInt(id, 10)), Message: v}
	for _, f := range files {
		p.Attachments = append(p.Attachments, views.ClientAttachmentRow{ID: f.ID, Filename: f.Filename, ContentType: f.ContentType, Size: len(f.Content)})
	}
	w.Header().Set("Content-Security-Policy", messageCSP)
	s.render(w, r, http.StatusOK, views.ClientMessage(p))
}

// clientMailFrom is the sender of client e-mail as configured: the
// company's name at EMAIL_FROM, replies to BILLING_EMAIL.
func (s *Server) clientMailFrom() (from, replyTo string) {
	from = s.cfg.Email.From
	if name := s.cfg.Company.Name; name != "" && from != "" {
		from = (&mail.Address{Name: name, Address: from}).String()
	}
	if b := s.cfg.Company.BillingEmail; b != "" && !strings.EqualFold(b, s.cfg.Email.From) {
		replyTo = b
	}
	return from, replyTo
}

// clientMailDryRun reports whether client e-mail is recorded, not sent.
func (s *Server) clientMailDryRun() bool { return s.cfg.Email.Mode == mailmode.DryRun }

// clientAttachment sends a file of a client message, exactly as it was
// sent; a file of another message is no file here (404).
func (s *Server) clientAttachment(w http.ResponseWriter, r *http.Request) {
	id, ok1 := recordID(r)
	aid, ok2 := optionalID(chi.URLParam(r, "aid"))
	if !ok1 || !ok2 || aid == 0 {
		s.notFound(w, r)
		return
	}
	a, err := s.store.ClientAttachment(r.Context(), id, aid)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeDownload(w, a.Filename, a.ContentType, a.Content)
}

// adminInvoicePDF and adminReceiptPDF send an invoice's documents as the
// client gets them (s.invoiceFiles); the receipt of an unpaid invoice is
// no document (404).
func (s *Server) adminInvoicePDF(w http.ResponseWriter, r *http.Request) {
	s.adminInvoiceFile(w, r, "invoice", InvoiceFiles.InvoicePDF)
}

func (s *Server) adminReceiptPDF(w http.ResponseWriter, r *http.Request) {
	s.adminInvoiceFile(w, r, "receipt", InvoiceFiles.ReceiptPDF)
}

func (s *Server) adminInvoiceFile(w http.ResponseWriter, r *http.Request, what string, render func(InvoiceFiles, context.Context, int64) ([]byte, error)) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	if s.invoiceFiles == nil {
		s.renderError(w, r, http.StatusServiceUnavailable, "Documents unavailable", "This server renders no invoice documents: it was started without them.")
		return
	}
	inv, err := s.store.Invoice(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := render(s.invoiceFiles, r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeDownload(w, what+"-"+inv.NumberOrDraft()+".pdf", "application/pdf", b)
}

// writeDownload sends b as a file to save, never to render: a safe name,
// PDF or else an opaque type, no sniffing, no caching.
func writeDownload(w http.ResponseWriter, name, ctype string, b []byte) {
	h := w.Header()
	if mt, _, err := mime.ParseMediaType(ctype); err != nil || mt != "application/pdf" {
		ctype = "application/octet-stream"
	} else {
		ctype = "application/pdf"
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": safeFilename(name)}))
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// safeFilename keeps letters, digits, dots, dashes and underscores of a
// file's name (others become "_"), no leading dot, at most 100 bytes.
func safeFilename(name string) string {
	var b strings.Builder
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 100 {
			break
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if strings.Trim(out, "._-") == "" {
		return "attachment"
	}
	return out
}

// clearMailFlag lets Collections write to a customer's address again; it
// is audited with the flag it cleared.
func (s *Server) clearMailFlag(w http.ResponseWriter, r *http.Request) {
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	if err := r.ParseForm(); err != nil {
		s.mailFlagAnswer(w, r, views.MailFlagPanel{CustomerID: id}, http.StatusRequestEntityTooLarge, "bad", "The request was too large; the flag was not changed.")
		return
	}
	ctx := r.Context()
	c, err := s.store.CustomerByID(ctx, id)
	if err != nil {
		s.mailFlagFailed(w, r, id, err)
		return
	}
	panel := views.MailFlagPanel{CustomerID: id, Flag: c.MailFlag, FlaggedAt: c.MailFlaggedAt}
	if c.MailFlag == "" {
		s.mailFlagAnswer(w, r, panel, http.StatusOK, "ok", "The address was not flagged: nothing to clear.")
		return
	}
	if err := s.store.ClearCustomerMailFlag(context.WithoutCancel(ctx), id); err != nil {
		s.mailFlagFailed(w, r, id, err)
		return
	}
	s.audit(r, auditMailFlagCleared, "customer "+strconv.FormatInt(id, 10), "was: "+clipEcho(c.MailFlag, 200))
	s.refreshLive()
	panel.Flag, panel.FlaggedAt = "", nil
	s.mailFlagAnswer(w, r, panel, http.StatusOK, "ok", "Flag cleared: client e-mail goes to "+c.ContactEmail+" again.")
}

// mailFlagFailed answers a failed read or write: a missing customer is
// the 404 page, anything else a logged 500.
func (s *Server) mailFlagFailed(w http.ResponseWriter, r *http.Request, id int64, err error) {
	if codeOf(err) == codeNotFound || !isHXRequest(r) {
		s.fail(w, r, err)
		return
	}
	s.log.Error("mail flag not cleared", "customer", id, "err", err)
	s.mailFlagAnswer(w, r, views.MailFlagPanel{CustomerID: id}, http.StatusInternalServerError, "bad", "The flag was not changed: the server hit an error and logged it. Try again.")
}

// mailFlagAnswer renders the panel for htmx, else sends the browser back
// to the customer's page (or an error page for a refusal).
func (s *Server) mailFlagAnswer(w http.ResponseWriter, r *http.Request, p views.MailFlagPanel, status int, kind, text string) {
	switch {
	case isHXRequest(r):
		p.Result, p.ResultClass = text, kind
		s.render(w, r, status, views.MailFlag(p))
	case status < http.StatusBadRequest:
		http.Redirect(w, r, "/admin/customers/"+strconv.FormatInt(p.CustomerID, 10), http.StatusSeeOther)
	default:
		s.renderError(w, r, status, "Flag not changed", text)
	}
}

// optionalID reads an optional record id: "" is 0, a plain positive
// decimal its value; anything else is not an id.
func optionalID(raw string) (int64, bool) {
	if raw == "" {
		return 0, true
	}
	if len(raw) > 18 || raw[0] == '0' {
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

// clientMessageRowView is a client message without its bodies.
func clientMessageRowView(m db.ClientMessage) views.ClientMessageRow {
	return views.ClientMessageRow{
		ID: m.ID, CustomerID: m.CustomerID, InvoiceID: m.InvoiceID, Kind: m.Kind, ToAddr: m.ToAddr,
		Subject: m.Subject, Status: m.Status, NeedsReview: m.NeedsReview, Error: m.Error, Attempts: m.Attempts,
		CreatedAt: m.CreatedAt, SentAt: m.SentAt,
	}
}

// mailFlagPanel is a customer's flag as stored.
func mailFlagPanel(c db.Customer) views.MailFlagPanel {
	return views.MailFlagPanel{CustomerID: c.ID, Flag: c.MailFlag, FlaggedAt: c.MailFlaggedAt}
}

// clientMailControl is the control room's client mail panel.
func (s *Server) clientMailControl(ctx context.Context) (views.AdminClientMailPanel, error) {
	p := views.AdminClientMailPanel{DryRun: s.clientMailDryRun()}
	var err error
	if p.Pending, err = s.store.PendingClientOutbox(ctx); err != nil {
		return p, err
	}
	if _, p.SentDay, err = s.store.ClientSends(ctx); err != nil {
		return p, err
	}
	return p, nil
}
