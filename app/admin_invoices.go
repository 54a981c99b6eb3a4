package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
	"github.com/hossagent/hossagent/views"
)

// The invoice actions of SPEC §5.3: mark an open invoice paid by hand (money
// received outside Stripe) or void it, each with a reason that is kept on
// the invoice and in the audit log, and create the payment links open
// invoices lack — one from the invoice page, or all of them at once from
// the control room. Closing an invoice never touches its lines: its tasks
// stay billed exactly once, so billing never invoices them again. With htmx
// an invoice action answers the invoice's actions panel, re-rendered with
// the result; a plain form POST gets a 303 back to the invoice page, or an
// error page when the action was refused.

const (
	// maxInvoiceActionForm bounds an invoice action's body: a reason of 500
	// characters of up to 4 bytes each, percent-encoded, fits.
	maxInvoiceActionForm = 16 << 10
	// minReason and maxReason bound the reason, in characters.
	minReason = 3
	maxReason = 500
	// linkCallTimeout bounds one call to the payment provider; the call
	// completes even if the admin's browser goes away.
	linkCallTimeout = 15 * time.Second
	// maxLinksPerRequest and linksBudget bound the bulk action: the
	// request waits for each link, so a long backlog takes several clicks
	// (the billing cycle also works through it).
	maxLinksPerRequest = 10
	linksBudget        = 25 * time.Second
)

// invoiceClosing is what marking paid and voiding differ in.
type invoiceClosing struct {
	verb   string // "marked paid by hand", "voided"
	refuse string // why a closed invoice is refused
	audit  string
	close  func(store *db.DB, ctx context.Context, id int64, admin, reason string, now time.Time) (db.ClosedInvoice, error)
}

var (
	markPaidByHand = invoiceClosing{
		verb: "marked paid by hand", refuse: "only an open invoice can be marked paid by hand", audit: db.AuditInvoiceMarkedPaid,
		close: (*db.DB).MarkInvoicePaidByHand,
	}
	voidByHand = invoiceClosing{
		verb: "voided", refuse: "only an open invoice can be voided", audit: db.AuditInvoiceVoided,
		close: (*db.DB).VoidInvoice,
	}
)

func (s *Server) markInvoicePaid(w http.ResponseWriter, r *http.Request) {
	s.closeInvoice(w, r, markPaidByHand)
}

func (s *Server) voidInvoice(w http.ResponseWriter, r *http.Request) {
	s.closeInvoice(w, r, voidByHand)
}

// closeInvoice marks paid or voids the invoice of the route, in one
// transaction, then deactivates its payment link outside it.
func (s *Server) closeInvoice(w http.ResponseWriter, r *http.Request, how invoiceClosing) {
	inv, ok := s.invoiceForAction(w, r)
	if !ok {
		return
	}
	raw := r.PostForm.Get("reason")
	reason, problem := readReason(raw)
	if problem != "" {
		s.invoiceAnswer(w, r, inv, http.StatusUnprocessableEntity, "bad", problem, clipEcho(raw, maxReason))
		return
	}
	admin := userFrom(r.Context()).Email
	closed, err := how.close(s.store, context.WithoutCancel(r.Context()), inv.ID, admin, reason, s.now())
	var state *db.InvoiceStateError
	switch {
	case errors.As(err, &state):
		s.invoiceAnswer(w, r, s.reloadInvoice(r, inv), errorStatus(err), "bad",
			fmt.Sprintf("%s is %s: %s.", inv.NumberOrDraft(), state.Status, how.refuse), reason)
		return
	case err != nil:
		s.invoiceActionFailed(w, r, inv, err)
		return
	}
	s.audit(r, how.audit, invoiceTarget(closed.Number, closed.InvoiceID), closed.Amount.String()+"; reason: "+reason)
	s.refreshLive()
	kind, text := "ok", fmt.Sprintf("%s (%s) %s.", closed.Number, closed.Amount, how.verb)
	if note, failed := s.deactivateClosedLink(r, closed); note != "" {
		text += " " + note
		if failed {
			kind = "warn"
		}
	}
	s.invoiceAnswer(w, r, s.reloadInvoice(r, inv), http.StatusOK, kind, text, "")
}

// deactivateClosedLink turns off the payment link of an invoice just closed,
// so nobody pays it through Stripe; it says what happened, and whether the
// admin must act.
func (s *Server) deactivateClosedLink(r *http.Request, closed db.ClosedInvoice) (note string, failed bool) {
	if closed.PaymentLinkID == "" {
		return "", false
	}
	links := s.payments.Links
	if links == nil {
		return fmt.Sprintf("Its payment link %s is still active: deactivate it in the Stripe dashboard.", closed.PaymentLinkID), true
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), linkCallTimeout)
	defer cancel()
	if err := links.DeactivateLink(ctx, closed.PaymentLinkID); err != nil {
		s.log.Warn("closed invoice's payment link not deactivated", "invoice", closed.Number, "link", closed.PaymentLinkID, "err", err)
		return fmt.Sprintf("Its payment link %s could not be deactivated (logged): deactivate it in the Stripe dashboard.", closed.PaymentLinkID), true
	}
	return "Its payment link was deactivated.", false
}

// regenerateInvoiceLink creates the missing payment link of one open,
// unflagged invoice.
func (s *Server) regenerateInvoiceLink(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.invoiceForAction(w, r)
	if !ok {
		return
	}
	if !s.stripeOn() {
		s.invoiceAnswer(w, r, inv, http.StatusServiceUnavailable, "bad", stripeOffText, "")
		return
	}
	cand, err := s.store.PaymentLinkCandidateFor(r.Context(), inv.ID)
	var state *db.InvoiceStateError
	switch {
	case errors.As(err, &state):
		s.invoiceAnswer(w, r, inv, errorStatus(err), "bad", linkRefusal(state), "")
		return
	case err != nil:
		s.invoiceActionFailed(w, r, inv, err)
		return
	}
	link, err := s.createPaymentLink(r.Context(), cand)
	if err != nil {
		f := s.linkFailed(r.Context(), cand, err)
		s.refreshLive() // the invoice page's and the Stripe panel's last link error
		s.invoiceAnswer(w, r, inv, http.StatusBadGateway, "bad",
			fmt.Sprintf("No payment link was created for %s: %s", cand.Number, clipEcho(f.Text(), 300)), "")
		return
	}
	saved, err := s.store.SetInvoicePaymentLink(context.WithoutCancel(r.Context()), cand.InvoiceID, link.PriceID, link.PaymentLinkID, link.URL, s.now())
	switch {
	case err != nil:
		s.invoiceActionFailed(w, r, inv, err)
		return
	case !saved:
		s.invoiceAnswer(w, r, s.reloadInvoice(r, inv), http.StatusConflict, "bad",
			cand.Number+" changed meanwhile (paid, voided or given a link by billing): the new link was not stored.", "")
		return
	}
	s.audit(r, db.AuditInvoiceLinkCreated, invoiceTarget(cand.Number, cand.InvoiceID), link.PaymentLinkID+" "+link.URL)
	s.refreshLive()
	s.invoiceAnswer(w, r, s.reloadInvoice(r, inv), http.StatusOK, "ok", "Payment link created: "+link.URL, "")
}

// regenerateMissingLinks creates the payment links that open, unflagged
// invoices lack, oldest first, within a bounded time, and reports how many
// it made and how many failed. It answers like the control room's actions.
func (s *Server) regenerateMissingLinks(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxActionForm)
	if err := r.ParseForm(); err != nil {
		s.answerAction(w, r, actionRefused(http.StatusRequestEntityTooLarge, "The form could not be read: it is too large or malformed."))
		return
	}
	if !s.stripeOn() {
		s.answerAction(w, r, actionRefused(http.StatusServiceUnavailable, stripeOffText))
		return
	}
	cands, err := s.store.InvoicesNeedingPaymentLink(r.Context(), maxLinksPerRequest)
	if err != nil {
		s.log.Error("invoices without a payment link not read", "err", err)
		s.answerAction(w, r, actionRefused(http.StatusInternalServerError, "No link was created: the server hit an error and logged it. Try again."))
		return
	}
	if len(cands) == 0 {
		s.answerAction(w, r, actionDone("No open, unflagged invoice is missing a payment link."))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), linksBudget)
	defer cancel()
	created, failures, left := s.createMissingLinks(ctx, cands)
	out := linksResult(created, len(failures), left, len(cands) == maxLinksPerRequest)
	detail := out.text
	for _, f := range failures {
		detail += " " + f.Number + ": " + f.Error + "."
	}
	s.audit(r, db.AuditPaymentLinksCreated, "invoices", clipEcho(detail, 1000))
	if created > 0 || len(failures) > 0 {
		s.refreshLive() // the Stripe panel shows the new errors too
	}
	if isHXRequest(r) {
		s.render(w, r, out.status, views.LinksResult(out.kind, out.text, failures))
		return
	}
	if len(failures) > 0 {
		out.text = detail
	}
	s.answerAction(w, r, out)
}

// createMissingLinks creates and stores the links of cands until ctx ends;
// failures are the invoices that got none, with why; left counts the
// invoices not tried, or that changed meanwhile.
func (s *Server) createMissingLinks(ctx context.Context, cands []db.PaymentLinkCandidate) (created int, failures []views.LinkFailureRow, left int) {
	for i, c := range cands {
		if ctx.Err() != nil {
			return created, failures, left + len(cands) - i
		}
		link, err := s.createPaymentLink(ctx, c)
		if err != nil {
			f := s.linkFailed(ctx, c, err)
			failures = append(failures, views.LinkFailureRow{InvoiceID: c.InvoiceID, Number: c.Number, Error: clipEcho(f.Text(), 300)})
			continue
		}
		saved, err := s.store.SetInvoicePaymentLink(context.WithoutCancel(ctx), c.InvoiceID, link.PriceID, link.PaymentLinkID, link.URL, s.now())
		switch {
		case err != nil:
			s.log.Error("payment link not stored", "invoice", c.Number, "link", link.PaymentLinkID, "err", err)
			failures = append(failures, views.LinkFailureRow{InvoiceID: c.InvoiceID, Number: c.Number,
				Error: "the link was created but could not be stored (logged); the next try gets the same link back"})
		case saved:
			created++
		default:
			left++ // paid, voided or linked by billing meanwhile
		}
	}
	return created, failures, left
}

// linkFailed logs a failed link and keeps its error on the invoice (the
// invoice page and the Stripe panel show it), as billing does.
func (s *Server) linkFailed(ctx context.Context, c db.PaymentLinkCandidate, err error) agents.LinkFailure {
	f := agents.LinkFailureOf(err)
	s.log.Warn("payment link not created", "invoice", c.Number, "err", f.Text())
	if err := s.store.RecordLinkError(context.WithoutCancel(ctx), c.InvoiceID, f.Kind, f.Code, f.Message); err != nil {
		s.log.Error("payment-link error not recorded", "invoice", c.Number, "err", err)
	}
	return f
}

// linksResult is the bulk action's one sentence.
func linksResult(created, failed, left int, more bool) actionResult {
	text := fmt.Sprintf("%d %s created, %d failed.", created, pluralOf(created, "link", "links"), failed)
	if left > 0 {
		text += fmt.Sprintf(" %d not done this time.", left)
	}
	if more || left > 0 {
		text += " Run it again for the rest."
	}
	if failed > 0 {
		text += " Each invoice keeps its error (below, and on its page) until its link exists."
	}
	switch {
	case failed == 0:
		return actionDone(text)
	case created == 0:
		return actionRefused(http.StatusBadGateway, text)
	}
	return actionResult{http.StatusOK, "warn", text}
}

// stripeOffText answers a link action while online payment is off.
const stripeOffText = "Stripe is off (ENABLE_STRIPE is not set): no payment link can be created."

func (s *Server) stripeOn() bool { return s.links != nil && s.links.Enabled() }

// createPaymentLink asks the provider for invoice c's link exactly as the
// billing cycle does (agents/billing.go): the same idempotency key, so a
// click racing a billing run gets the same link back, and the same return
// page.
func (s *Server) createPaymentLink(ctx context.Context, c db.PaymentLinkCandidate) (agents.Link, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), linkCallTimeout)
	defer cancel()
	link, err := s.links.CreateLink(ctx, agents.LinkRequest{
		InvoiceID: c.InvoiceID, Number: c.Number, AmountCents: c.AmountCents,
		Currency: c.Currency, CustomerEmail: c.CustomerEmail,
		IdempotencyKey: fmt.Sprintf("invoice-%d-link", c.InvoiceID),
		ReturnURL:      s.publicBase() + agents.PaidReturnPath,
	})
	if err == nil && link.URL == "" {
		err = errors.New("the provider returned a link without a URL")
	}
	return link, err
}

// publicBase is BASE_URL without its trailing slash.
func (s *Server) publicBase() string {
	if s.cfg.BaseURL == nil {
		return "http://localhost:8080"
	}
	return strings.TrimRight(s.cfg.BaseURL.String(), "/")
}

// linkRefusal says why an invoice gets no payment link.
func linkRefusal(e *db.InvoiceStateError) string {
	if e.Number == "" {
		e.Number = "This draft invoice"
	}
	switch {
	case errors.Is(e, db.ErrInvoiceHasLink):
		return e.Number + " already has a payment link."
	case errors.Is(e, db.ErrInvoiceFlagged):
		return fmt.Sprintf("%s is flagged (%s): no payment link is created for a flagged invoice.", e.Number, clipEcho(e.Flag, 200))
	}
	return fmt.Sprintf("%s is %s: only an open invoice gets a payment link.", e.Number, e.Status)
}

// invoiceForAction reads the invoice of the route and the action's bounded
// form; false means it answered.
func (s *Server) invoiceForAction(w http.ResponseWriter, r *http.Request) (*db.Invoice, bool) {
	id, ok := recordID(r)
	if !ok {
		s.invoiceAnswer(w, r, nil, http.StatusNotFound, "bad", "There is no such invoice.", "")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxInvoiceActionForm)
	if err := r.ParseForm(); err != nil {
		s.invoiceAnswer(w, r, nil, http.StatusRequestEntityTooLarge, "bad", "The form could not be read: it is too large or malformed. Nothing was changed.", "")
		return nil, false
	}
	inv, err := s.store.Invoice(r.Context(), id)
	switch {
	case codeOf(err) == codeNotFound:
		s.invoiceAnswer(w, r, nil, errorStatus(err), "bad", fmt.Sprintf("There is no invoice %d.", id), "")
		return nil, false
	case err != nil:
		s.log.Error("invoice not read for an action", "invoice", id, "err", err)
		s.invoiceAnswer(w, r, nil, http.StatusInternalServerError, "bad", "Nothing was changed: the server hit an error and logged it. Try again.", "")
		return nil, false
	}
	return inv, true
}

// reloadInvoice reads inv again after an action; on error the copy read
// before it does.
func (s *Server) reloadInvoice(r *http.Request, inv *db.Invoice) *db.Invoice {
	fresh, err := s.store.Invoice(context.WithoutCancel(r.Context()), inv.ID)
	if err != nil {
		s.log.Warn("invoice not re-read after an action", "invoice", inv.ID, "err", err)
		return inv
	}
	return fresh
}

// invoiceActionFailed answers an unexpected store error in place.
func (s *Server) invoiceActionFailed(w http.ResponseWriter, r *http.Request, inv *db.Invoice, err error) {
	s.log.Error("invoice action failed", "invoice", inv.ID, "path", r.URL.Path, "err", err)
	s.invoiceAnswer(w, r, inv, http.StatusInternalServerError, "bad", "Nothing was changed: the server hit an error and logged it. Try again.", "")
}

// invoiceAnswer sends an invoice action's result: the actions panel with it
// to htmx (a bare result line when there is no invoice to show), otherwise
// a 303 back to the invoice page, or an error page for a refusal. reason
// is put back in the form after a refusal, so the admin need not retype it.
func (s *Server) invoiceAnswer(w http.ResponseWriter, r *http.Request, inv *db.Invoice, status int, kind, text, reason string) {
	switch {
	case isHXRequest(r) && inv == nil:
		s.render(w, r, status, views.AdminActionResult(kind, text))
	case isHXRequest(r):
		p := views.InvoiceActionsFor(invoiceView(*inv, s.now()))
		p.Result, p.ResultKind, p.Reason = text, kind, reason
		s.render(w, r, status, views.InvoiceActions(p))
	case status < http.StatusBadRequest && inv != nil:
		http.Redirect(w, r, "/admin/invoices/"+strconv.FormatInt(inv.ID, 10), http.StatusSeeOther)
	default:
		s.renderError(w, r, status, http.StatusText(status), text)
	}
}

// invoiceTarget names an invoice in the audit log the way its page's
// timeline looks entries up.
func invoiceTarget(number string, id int64) string {
	if number == "" {
		return "invoice " + strconv.FormatInt(id, 10)
	}
	return "invoice " + number
}

// readReason checks an action's reason: plain text of minReason to
// maxReason characters, its runs of white space made single spaces. A
// non-empty problem says what is wrong with it.
func readReason(raw string) (reason, problem string) {
	if !utf8.ValidString(raw) {
		return "", "The reason must be plain text."
	}
	reason = strings.Join(strings.Fields(raw), " ")
	if strings.IndexFunc(reason, unicode.IsControl) >= 0 {
		return "", "The reason must be plain text, without control characters."
	}
	switch n := utf8.RuneCountInString(reason); {
	case n < minReason:
		return "", fmt.Sprintf("Give a reason of at least %d characters: it is kept on the invoice and in the audit log.", minReason)
	case n > maxReason:
		return "", fmt.Sprintf("The reason is too long: at most %d characters, this one has %d.", maxReason, n)
	}
	return reason, ""
}
