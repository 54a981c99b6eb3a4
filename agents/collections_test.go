package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// fakeDocs renders a document as a short text that names its state, so a
// test can tell which state an attachment was made from.
type fakeDocs struct{}

func (fakeDocs) InvoicePDF(d InvoiceDocument) ([]byte, error) {
	return []byte(fmt.Sprintf("%%PDF-invoice %s %s %s lines=%d", d.Number, d.Status, d.Total, len(d.Lines))), nil
}

func (fakeDocs) ReceiptPDF(d InvoiceDocument) ([]byte, error) {
	return []byte(fmt.Sprintf("%%PDF-receipt %s %s paid=%s", d.Number, d.Total, d.PaidAt.Format(time.DateOnly))), nil
}

var testSchedule = []time.Duration{-3 * 24 * time.Hour, 0, 7 * 24 * time.Hour, 14 * 24 * time.Hour}

func (w *fulfilmentWorld) collections(mailer Mailer, opts CollectionsOptions) *CollectionsCycle {
	opts.Company = CompanyInfo{Name: "Hoss Services", PostalAddress: "1 Main St\nSpringfield", BillingEmail: "billing@hoss.example"}
	opts.BaseURL = "https://hoss.example"
	opts.From = "billing@hoss.example"
	if opts.Schedule == nil {
		opts.Schedule = testSchedule
	}
	opts.Docs = fakeDocs{}
	opts.Titles = DefaultCatalogue("usd").Titles()
	opts.Plans = DefaultCatalogue("usd").Plan
	return NewCollectionsCycle(w.store, w.env, mailer, opts)
}

func (w *fulfilmentWorld) clientMessages() []db.ClientMessage {
	w.t.Helper()
	var out []db.ClientMessage
	if err := w.store.Bun().NewSelect().Model(&out).OrderExpr("cm.id").Scan(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	return out
}

// issue bills one done task of customer c through the billing cycle and
// returns the invoice.
func (w *fulfilmentWorld) issue(c *db.Customer, reward int64) db.Invoice {
	w.t.Helper()
	w.task(c.ID, db.TaskDone, reward, 100)
	w.run(w.billing(&fakePayments{}, BillingOptions{}))
	invs := w.invoices()
	return invs[len(invs)-1]
}

func TestCollectionsWelcomesANewCustomerOnceWithALinkThatIsNotStored(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{})
	c := w.customer(1)
	w.task(c.ID, db.TaskPending, 15000, 0)

	wantFulfilmentCounts(t, w.run(cycle), Counts{"queued": 1, "welcome": 1, "sent": 1})
	wantFulfilmentCounts(t, w.run(cycle), Counts{"queued": 0, "sent": 0})
	if len(mailer.sent) != 1 {
		t.Fatalf("sent %d mails", len(mailer.sent))
	}
	m := mailer.sent[0]
	if m.To != c.ContactEmail || m.Subject != "Welcome to Hoss Services" || m.FromName != "Hoss Services" {
		t.Errorf("mail = %+v", m)
	}
	_, token, ok := strings.Cut(m.Body, "https://hoss.example/portal/link/")
	if !ok {
		t.Fatalf("no portal link in %q", m.Body)
	}
	token = strings.Fields(token)[0]
	if !strings.Contains(m.HTML, "https://hoss.example/portal/link/"+token) || !strings.Contains(m.Body, "Market research brief") ||
		!strings.Contains(m.Body, "Your plan, Starter, includes:") {
		t.Errorf("HTML lacks the link or the body the plan: %q", m.Body)
	}
	// The database holds the link's hash, never its token.
	if n := w.count("SELECT COUNT(*) FROM portal_links WHERE token_hash = ? AND customer_id = ?", db.HashToken(token), c.ID); n != 1 {
		t.Errorf("portal_links rows for the token's hash = %d", n)
	}
	stored := w.clientMessages()
	if len(stored) != 1 || strings.Contains(stored[0].BodyText+stored[0].BodyHTML, token) || !strings.Contains(stored[0].BodyText, PortalLinkPlaceholder) {
		t.Errorf("stored message holds the token or lacks the placeholder: %+v", stored)
	}
	if stored[0].Status != db.MessageSent || stored[0].DedupeKey != fmt.Sprintf("welcome:%d", c.ID) {
		t.Errorf("stored = %+v", stored[0])
	}
}

func TestCollectionsSendsTheInvoiceWithItsPDFAndSchedulesReminders(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{})
	c := w.customer(1)
	w.run(cycle) // the welcome
	inv := w.issue(c, 15000)

	wantFulfilmentCounts(t, w.run(cycle), Counts{"queued": 1, "invoice": 1, "sent": 1})
	m := mailer.sent[len(mailer.sent)-1]
	if !strings.HasPrefix(m.Subject, "Invoice "+*inv.Number+" from Hoss Services: $150.00 due ") {
		t.Errorf("subject = %q", m.Subject)
	}
	for _, want := range []string{*inv.Number, "$150.00", "PAY NOW: https://pay.example/", "Market research brief", "https://hoss.example/portal/link/"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	if len(m.Attachments) != 1 || m.Attachments[0].Filename != "invoice-"+*inv.Number+".pdf" ||
		string(m.Attachments[0].Content) != "%PDF-invoice "+*inv.Number+" open $150.00 lines=1" {
		t.Errorf("attachments = %+v", m.Attachments)
	}
	jobs, err := w.store.PendingCollectionJobs(w.ctx, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, j := range jobs {
		steps = append(steps, j.Step+"@"+j.RunAt.Sub(*inv.DueAt).String())
	}
	if got := strings.Join(steps, " "); got != "-3d@-72h0m0s 0d@0s +7d@168h0m0s +14d@336h0m0s" {
		t.Errorf("reminder jobs = %s", got)
	}
}

// Sixty days of injected time, one Collections run an hour: each reminder
// step goes out once, at its time, and none after the invoice is paid; the
// payment brings exactly one receipt.
func TestCollectionsReminderScheduleOverSixtyDays(t *testing.T) {
	for _, tc := range []struct {
		paidOnDay int // 0: never paid
		want      string
	}{
		// Billing's default: due 14 days after issue.
		{0, "welcome@0 invoice@0 reminder:-3d@11 reminder:0d@14 reminder:+7d@21 reminder:+14d@28"},
		{20, "welcome@0 invoice@0 reminder:-3d@11 reminder:0d@14 receipt@20"},
	} {
		t.Run(fmt.Sprintf("paid on day %d", tc.paidOnDay), func(t *testing.T) {
			w := newFulfilmentWorld(t)
			mailer := &outreachMailer{mode: MailModeSMTP}
			cycle := w.collections(mailer, CollectionsOptions{})
			c := w.customer(1)
			inv := w.issue(c, 15000)
			start := w.clock.Now()
			var got []string
			for hour := 0; hour <= 60*24; hour++ {
				if tc.paidOnDay > 0 && hour == tc.paidOnDay*24 {
					if _, err := w.store.MarkInvoicePaidByHand(w.ctx, inv.ID, "admin@hoss.example", "cheque", w.clock.Now()); err != nil {
						t.Fatal(err)
					}
				}
				before := len(mailer.sent)
				w.run(cycle)
				for _, m := range mailer.sent[before:] {
					kind := ""
					switch {
					case strings.HasPrefix(m.Subject, "Welcome"):
						kind = "welcome"
					case strings.HasPrefix(m.Subject, "Receipt"):
						kind = "receipt"
					case strings.HasPrefix(m.Subject, "Reminder:"):
						kind = "reminder:-3d"
					case strings.HasSuffix(m.Subject, "is due today"):
						kind = "reminder:0d"
					case strings.HasPrefix(m.Subject, "Overdue:"):
						kind = "reminder:overdue"
					case strings.HasPrefix(m.Subject, "Invoice"):
						kind = "invoice"
					}
					day := int(w.clock.Now().Sub(start) / (24 * time.Hour))
					if kind == "reminder:overdue" {
						kind = map[int]string{21: "reminder:+7d", 28: "reminder:+14d"}[day]
					}
					got = append(got, fmt.Sprintf("%s@%d", kind, day))
				}
				w.clock.Advance(time.Hour)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("sent:\n got %s\nwant %s", strings.Join(got, " "), tc.want)
			}
			// Every message at most once by its key, and nothing left to do.
			if n := w.count("SELECT COUNT(*) FROM client_messages WHERE status <> 'sent'"); n != 0 {
				t.Errorf("%d client messages not sent", n)
			}
			if n := w.count("SELECT COUNT(*) FROM collection_jobs"); n != 0 {
				t.Errorf("%d collection jobs left", n)
			}
		})
	}
}

func TestCollectionsSkipsRemindersOfAVoidInvoiceAndWritesNothingToAFlaggedAddress(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{})
	c := w.customer(1)
	inv := w.issue(c, 15000)
	w.run(cycle)
	if _, err := w.store.VoidInvoice(w.ctx, inv.ID, "admin@hoss.example", "wrong customer", w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(30 * 24 * time.Hour)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 0, "skipped": 4})

	d := w.customer(2)
	if ok, err := w.store.FlagCustomerMail(w.ctx, d.ContactEmail, "hard bounce: 550 no such user"); err != nil || !ok {
		t.Fatalf("FlagCustomerMail = %v, %v", ok, err)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"queued": 1, "sent": 0, "suppressed": 1})
	if got := w.clientMessages(); got[len(got)-1].Status != db.MessageSuppressed || !strings.Contains(got[len(got)-1].Error, "flagged") {
		t.Errorf("flagged customer's welcome = %+v", got[len(got)-1])
	}
}

func TestCollectionsInDryRunRecordsEveryMessageAndMakesNoLink(t *testing.T) {
	w := newFulfilmentWorld(t)
	cycle := w.collections(NewDryRunMailer(), CollectionsOptions{})
	c := w.customer(1)
	w.issue(c, 15000)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"queued": 2, "dry_run": 2})
	if n := w.count("SELECT COUNT(*) FROM portal_links"); n != 0 {
		t.Errorf("portal links made in DRY_RUN = %d", n)
	}
	if n := w.count("SELECT COUNT(*) FROM client_attachments"); n != 1 {
		t.Errorf("attachments = %d", n)
	}
}

func TestCollectionsNeverResendsAMessageWhoseOutcomeIsUnknown(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP, fail: func(call int, _ OutgoingMail) error {
		if call == 1 {
			return &MailError{Provider: "smtp", Unknown: true, Err: errors.New("connection dropped after DATA")}
		}
		return nil
	}}
	cycle := w.collections(mailer, CollectionsOptions{})
	w.customer(1)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"needs_review": 1, "sent": 0})
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 0})
	if mailer.callCount() != 1 {
		t.Errorf("mailer called %d times", mailer.callCount())
	}
	if m := w.clientMessages()[0]; m.Status != db.MessageSending || !m.NeedsReview {
		t.Errorf("message = %+v", m)
	}
}

func TestCollectionsRespectsItsOwnCapsNotOutreachs(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{Caps: db.ClientCaps{PerHour: 2, PerDay: 3}})
	for i := range 5 {
		w.customer(i + 1)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"queued": 5, "sent": 2, "capped": 3})
	w.clock.Advance(time.Hour + time.Second)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 1, "capped": 2})
	w.clock.Advance(24 * time.Hour)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 2})
}

func TestCollectionsWaitsForThePaymentLinkAWhile(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{WaitForLink: time.Hour})
	c := w.customer(1)
	w.task(c.ID, db.TaskDone, 15000, 100)
	w.run(w.billing(DisabledPayments{}, BillingOptions{})) // no link yet
	// Ticks of five minutes: the wait is counted from the issue, which a
	// postponement does not move.
	for tick := 0; tick < 12; tick++ {
		wantFulfilmentCounts(t, w.run(cycle), Counts{"postponed": 1, "invoice": 0})
		w.clock.Advance(5 * time.Minute)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoice": 1})
	last := mailer.sent[len(mailer.sent)-1]
	if strings.Contains(last.Body, "PAY NOW") || !strings.Contains(last.Body, "pay it from your client portal") {
		t.Errorf("an invoice without a link: %q", last.Body)
	}
}

func TestRequestPortalLinkQueuesOnePerSlotAndNothingForStrangers(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{})
	c := w.customer(1)
	w.run(cycle) // the welcome
	ctx := context.Background()
	for range 3 {
		if err := cycle.RequestPortalLink(ctx, "  "+strings.ToUpper(c.ContactEmail)+" "); err != nil {
			t.Fatal(err)
		}
		if err := cycle.RequestPortalLink(ctx, "nobody@stranger.example"); err != nil {
			t.Fatal(err)
		}
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 1})
	w.clock.Advance(PortalLinkSlot)
	if err := cycle.RequestPortalLink(ctx, c.ContactEmail); err != nil {
		t.Fatal(err)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 1})
	if got := mailer.sentTo(); got[c.ContactEmail] != 3 || len(got) != 1 {
		t.Errorf("sent to %v", got)
	}
	if n := w.count("SELECT COUNT(*) FROM portal_links WHERE customer_id = ?", c.ID); n != 3 {
		t.Errorf("links = %d", n)
	}
}

func TestCollectionsFlagsAClientAddressTheProviderRefusesEveryTime(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP, fail: func(int, OutgoingMail) error {
		return &MailError{Provider: "smtp", Permanent: true, Code: 550, Err: errors.New("550 5.1.1 no such user")}
	}}
	cycle := w.collections(mailer, CollectionsOptions{})
	c := w.customer(1)
	for range db.MaxSendAttempts {
		wantFulfilmentCounts(t, w.run(cycle), Counts{"failed": 1})
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"failed": 0})
	var got db.Customer
	if err := w.store.Bun().NewSelect().Model(&got).Where("c.id = ?", c.ID).Scan(w.ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.MailFlag, "hard bounce: smtp: permanent 550") || got.MailFlaggedAt == nil {
		t.Errorf("flag = %q at %v", got.MailFlag, got.MailFlaggedAt)
	}
	if n := w.count("SELECT COUNT(*) FROM portal_links WHERE revoked_at IS NULL"); n != 0 {
		t.Errorf("%d links of failed sends still live", n)
	}
}

// failingDocs fails to render the invoice of one number.
type failingDocs struct {
	fakeDocs
	number string
}

func (f failingDocs) InvoicePDF(d InvoiceDocument) ([]byte, error) {
	if d.Number == f.number {
		return nil, errors.New("font table broken")
	}
	return f.fakeDocs.InvoicePDF(d)
}

func TestCollectionsGoesOnPastAJobItCannotWrite(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{})
	a := w.customer(1)
	inv := w.issue(a, 15000)
	cycle.opts.Docs = failingDocs{number: *inv.Number}
	w.customer(2)
	counts, err := cycle.Run(w.ctx)
	if err == nil || !strings.Contains(err.Error(), "font table broken") {
		t.Errorf("Run = %v, want the render error reported", err)
	}
	wantFulfilmentCounts(t, counts, Counts{"job_failed": 1, "welcome": 2, "sent": 2})
	var job db.CollectionJob
	if err := w.store.Bun().NewSelect().Model(&job).Where("j.invoice_id = ?", inv.ID).Scan(w.ctx); err != nil {
		t.Fatal(err)
	}
	if job.Attempts != 1 || !strings.Contains(job.LastError, "font table broken") || !job.RunAt.After(w.clock.Now()) {
		t.Errorf("failed job = %+v", job)
	}
	cycle.opts.Docs = fakeDocs{}
	w.clock.Advance(jobRetryAfter)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"invoice": 1, "sent": 1})
}

// Collections stopped from day 10 to day 22: the next run sends the
// latest due reminder only, not the three that came due meanwhile.
func TestCollectionsAfterAPauseSendsOnlyTheLatestDueReminder(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{})
	c := w.customer(1)
	w.issue(c, 15000)
	w.run(cycle)
	w.clock.Advance(22 * 24 * time.Hour)
	before := len(mailer.sent)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 1, "skipped": 2})
	if got := mailer.sent[before:]; len(got) != 1 || !strings.HasPrefix(got[0].Subject, "Overdue:") {
		t.Errorf("after the pause: %v", got)
	}

	// An invoice e-mail written late schedules no reminder already past.
	d := w.customer(2)
	inv := w.issue(d, 9000)
	if _, err := w.store.Bun().NewRaw("UPDATE collection_jobs SET run_at = ? WHERE invoice_id = ?", w.clock.Now(), inv.ID).Exec(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(16 * 24 * time.Hour) // past the due date
	w.run(cycle)
	jobs, err := w.store.PendingCollectionJobs(w.ctx, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].Step != "+7d" || jobs[1].Step != "+14d" {
		t.Errorf("reminders of a late invoice e-mail = %+v", jobs)
	}
}

func TestCollectionsHoldsRemindersOfAnInvoiceWhosePaymentWaitsForTheOperator(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{})
	c := w.customer(1)
	inv := w.issue(c, 15000)
	w.run(cycle)
	if _, err := w.store.Bun().NewRaw("UPDATE invoices SET flag = ? WHERE id = ?",
		"payment amount mismatch: Stripe session cs_1 paid $100.00, the invoice is $150.00", inv.ID).Exec(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(12 * 24 * time.Hour)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 0, "suppressed": 1})
}

func TestClearingAMailFlagSendsWhatTheFlagHeldBack(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{})
	c := w.customer(1)
	if _, err := w.store.FlagCustomerMail(w.ctx, c.ContactEmail, "complaint"); err != nil {
		t.Fatal(err)
	}
	w.issue(c, 15000)
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 0, "suppressed": 2})
	if err := w.store.ClearCustomerMailFlag(w.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 2})
}

func TestPortalLinkRequestsCannotUseUpTheInvoiceCaps(t *testing.T) {
	w := newFulfilmentWorld(t)
	mailer := &outreachMailer{mode: MailModeSMTP}
	cycle := w.collections(mailer, CollectionsOptions{Caps: db.ClientCaps{PerHour: 3, PerDay: 10, LinksPerHour: 2, LinksPerDay: 5}})
	var customers []*db.Customer
	for i := range 3 {
		customers = append(customers, w.customer(i+1))
	}
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 3}) // the welcomes
	w.clock.Advance(time.Hour + time.Second)
	for _, c := range customers {
		if err := cycle.RequestPortalLink(w.ctx, c.ContactEmail); err != nil {
			t.Fatal(err)
		}
	}
	w.issue(customers[0], 15000)
	// Two links (their own cap), and the invoice e-mail all the same.
	wantFulfilmentCounts(t, w.run(cycle), Counts{"sent": 3, "capped": 1})
	if last := mailer.sent[len(mailer.sent)-1]; !strings.HasPrefix(last.Subject, "Invoice ") {
		t.Errorf("last sent %q", last.Subject)
	}
}

func TestCleanRemovesEveryPlaceholderEvenNested(t *testing.T) {
	for _, in := range []string{PortalLinkPlaceholder, "[[portal" + PortalLinkPlaceholder + "-link]]", "a[[portal-[[portal-link]]link]]b"} {
		if got := clean(in); strings.Contains(got, PortalLinkPlaceholder) {
			t.Errorf("clean(%q) = %q", in, got)
		}
	}
}
