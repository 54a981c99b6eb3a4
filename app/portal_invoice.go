package app

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// One invoice of the portal's client, and its documents. Only the session
// customer's invoices exist here: another customer's, a draft, or an id
// that names nothing are the same 404.

// portalInvoice is invoice {id}'s page: its lines by the tasks' titles,
// PAY NOW while open, its PDF and, once paid, its receipt.
func (s *Server) portalInvoice(w http.ResponseWriter, r *http.Request) {
	c, id, ok := s.portalInvoiceRequest(w, r)
	if !ok {
		return
	}
	inv, _, lines, err := s.store.InvoiceDocumentData(r.Context(), id)
	if err != nil || !visibleToClient(inv, c) {
		if err != nil && codeOf(err) != codeNotFound {
			s.fail(w, r, err)
			return
		}
		s.notFound(w, r)
		return
	}
	now := s.now().UTC()
	p := views.PortalInvoicePage{Meta: s.meta("Invoice " + inv.NumberOrDraft()), Customer: portalCustomerView(*c),
		Provider: s.portalProvider(), Invoice: portalInvoiceRow(*inv, now)}
	for _, l := range lines {
		p.Lines = append(p.Lines, views.PortalLine{Title: s.kindTitles(l.TaskKind), Description: l.Description,
			Amount: db.Money{Cents: l.AmountCents, Currency: inv.Currency}})
	}
	noStore(w)
	s.render(w, r, http.StatusOK, views.PortalInvoiceDetail(p))
}

// portalInvoicePDF downloads invoice {id}'s PDF.
func (s *Server) portalInvoicePDF(w http.ResponseWriter, r *http.Request) {
	s.portalDocument(w, r, "invoice", func(ctx context.Context, id int64) ([]byte, error) { return s.invoiceFiles.InvoicePDF(ctx, id) })
}

// portalReceiptPDF downloads paid invoice {id}'s receipt.
func (s *Server) portalReceiptPDF(w http.ResponseWriter, r *http.Request) {
	s.portalDocument(w, r, "receipt", func(ctx context.Context, id int64) ([]byte, error) { return s.invoiceFiles.ReceiptPDF(ctx, id) })
}

// portalDocument answers one of invoice {id}'s documents as an attachment
// named kind-<number>.pdf. Without s.invoiceFiles it is 503; a receipt of
// an unpaid invoice is 404.
func (s *Server) portalDocument(w http.ResponseWriter, r *http.Request, kind string, render func(context.Context, int64) ([]byte, error)) {
	c, id, ok := s.portalInvoiceRequest(w, r)
	if !ok {
		return
	}
	inv, err := s.store.Invoice(r.Context(), id)
	if err != nil || !visibleToClient(inv, c) {
		if err != nil && codeOf(err) != codeNotFound {
			s.fail(w, r, err)
			return
		}
		s.notFound(w, r)
		return
	}
	if kind == "receipt" && inv.Status != db.InvoicePaid && inv.Status != db.InvoiceRefunded {
		s.notFound(w, r)
		return
	}
	if s.invoiceFiles == nil {
		s.renderError(w, r, http.StatusServiceUnavailable, "Documents unavailable",
			"Invoice documents cannot be made right now. Try again later, or write to us for a copy.")
		return
	}
	pdf, err := render(r.Context(), id)
	if err != nil {
		if errors.Is(err, db.ErrNotFound) {
			s.notFound(w, r)
			return
		}
		s.log.Error("portal document failed", "kind", kind, "invoice", id, "err", err)
		s.renderError(w, r, http.StatusInternalServerError, "Document not made",
			"The server hit an error and logged it. Try again in a moment.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Disposition", `attachment; filename="`+documentFilename(kind, inv.NumberOrDraft())+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	noStore(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(pdf)
}

// portalInvoiceRequest checks a portal invoice request: within the
// address's budget, with a session (else to the sign-in page) and an id
// (else 404).
func (s *Server) portalInvoiceRequest(w http.ResponseWriter, r *http.Request) (*db.Customer, int64, bool) {
	if !s.allowPortalVisit(w, r) {
		return nil, 0, false
	}
	c, _, err := s.portalSession(w, r)
	if err != nil {
		if codeOf(err) != codeNotFound {
			s.fail(w, r, err)
			return nil, 0, false
		}
		noStore(w)
		http.Redirect(w, r, "/portal", http.StatusSeeOther)
		return nil, 0, false
	}
	id, ok := recordID(r)
	if !ok {
		s.notFound(w, r)
		return nil, 0, false
	}
	return c, id, true
}

// visibleToClient reports whether the portal shows inv to customer c: one
// of c's own, issued (a draft is not the client's yet).
func visibleToClient(inv *db.Invoice, c *db.Customer) bool {
	return inv != nil && c != nil && inv.CustomerID == c.ID && inv.Status != db.InvoiceDraft && inv.Number != nil
}

// documentFilename is a download's name, kind-<number>.pdf, with only
// letters, digits, '-' and '_' kept of the number.
func documentFilename(kind, number string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return -1
	}, number)
	if len(clean) > 64 {
		clean = clean[:64]
	}
	if clean == "" {
		clean = "document"
	}
	return kind + "-" + clean + ".pdf"
}
