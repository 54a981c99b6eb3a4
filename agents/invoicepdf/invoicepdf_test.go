package invoicepdf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

func sampleDoc() agents.InvoiceDocument {
	issued := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	return agents.InvoiceDocument{
		Company: agents.CompanyInfo{
			Name:          "Hoss Müller Consulting",
			PostalAddress: "12 Rue de l'Église\n75001 Paris\nFrance",
			BillingEmail:  "billing@hoss.example",
		},
		Client:   "Acme Brücken GmbH",
		ClientTo: "ap@acme.example",
		Number:   "INV-000042",
		Status:   db.InvoiceOpen,
		IssuedAt: issued,
		DueAt:    issued.AddDate(0, 0, 14),
		Lines: []agents.DocumentLine{
			{Title: "Market research brief", Description: "Ten competitors in the Lyon café market, with prices and reviews.", Amount: db.Money{Cents: 45000, Currency: "eur"}},
			{Title: "Landing page copy", Description: "Three variants.\nA/B ready.", Amount: db.Money{Cents: 123456, Currency: "eur"}},
		},
		Total:      db.Money{Cents: 168456, Currency: "eur"},
		PaymentURL: "https://buy.stripe.com/test_abc123",
		PortalURL:  "https://hoss.example/portal",
	}
}

func mustText(t *testing.T, pdf []byte) string {
	t.Helper()
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("output does not start with %%PDF-: %q", pdf[:min(len(pdf), 20)])
	}
	if !bytes.HasSuffix(bytes.TrimRight(pdf, "\r\n"), []byte("%%EOF")) {
		t.Fatalf("output does not end with %%%%EOF: %q", pdf[max(0, len(pdf)-20):])
	}
	text, err := Text(pdf)
	if err != nil {
		t.Fatalf("Text: %v", err)
	}
	return text
}

func wantAll(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q; text:\n%s", w, text)
		}
	}
}

func TestInvoiceText(t *testing.T) {
	d := sampleDoc()
	pdf, err := New().InvoicePDF(d)
	if err != nil {
		t.Fatal(err)
	}
	text := mustText(t, pdf)
	wantAll(t, text,
		"Invoice", "INV-000042", "2026-03-02", "2026-03-16", "OPEN",
		"Hoss Müller Consulting", "12 Rue de l'Église", "75001 Paris", "France", "billing@hoss.example",
		"Acme Brücken GmbH", "ap@acme.example",
		"Market research brief", "Ten competitors in the Lyon café market", "€450.00",
		"Landing page copy", "Three variants.", "A/B ready.", "€1,234.56",
		"Total (EUR)", "€1,684.56",
		"Pay online: https://buy.stripe.com/test_abc123",
		"Client portal: https://hoss.example/portal",
	)
	// Lines are separate strings: the address keeps its line breaks.
	if !strings.Contains(text, "12 Rue de l'Église\n75001 Paris\nFrance") {
		t.Errorf("address lines not kept apart:\n%s", text)
	}
	// The payment link is a link annotation too.
	if !bytes.Contains(pdf, []byte("/URI (https://buy.stripe.com/test_abc123)")) {
		t.Error("no link annotation for the payment URL")
	}
	// Nothing says overdue: it is not stored, and there is no clock.
	if strings.Contains(strings.ToUpper(text), "OVERDUE") {
		t.Error("the document says overdue")
	}
	// The PDF's dates are the issue date.
	if !bytes.Contains(pdf, []byte("/CreationDate (D:20260302093000)")) || !bytes.Contains(pdf, []byte("/ModDate (D:20260302093000)")) {
		t.Errorf("creation/modification dates are not the issue date")
	}
}

func TestInvoiceStatuses(t *testing.T) {
	paidAt := time.Date(2026, 3, 9, 15, 4, 5, 0, time.UTC)
	cases := []struct {
		status string
		paidAt time.Time
		want   []string
		not    []string
	}{
		{db.InvoiceOpen, time.Time{}, []string{"OPEN", "How to pay", "Pay online: "}, []string{"PAID"}},
		{db.InvoicePaid, paidAt, []string{"PAID on 2026-03-09", "Paid \u2014 thank you"}, []string{"Pay online", "OPEN"}},
		{db.InvoiceVoid, time.Time{}, []string{"VOID", "nothing is due"}, []string{"Pay online"}},
		{db.InvoiceRefunded, paidAt, []string{"REFUNDED", "refunded"}, []string{"Pay online"}},
		{db.InvoiceDraft, time.Time{}, []string{"DRAFT"}, nil},
	}
	seen := map[string]string{}
	for _, c := range cases {
		d := sampleDoc()
		d.Status, d.PaidAt = c.status, c.paidAt
		pdf, err := New().InvoicePDF(d)
		if err != nil {
			t.Fatalf("%s: %v", c.status, err)
		}
		text := mustText(t, pdf)
		wantAll(t, text, c.want...)
		for _, n := range c.not {
			if strings.Contains(text, n) {
				t.Errorf("%s: text has %q", c.status, n)
			}
		}
		wantAll(t, text, "Client portal: https://hoss.example/portal", "billing@hoss.example")
		sum := fmt.Sprintf("%x", sha256.Sum256(pdf))
		if other, ok := seen[sum]; ok {
			t.Errorf("%s renders the same bytes as %s", c.status, other)
		}
		seen[sum] = c.status
	}
}

func TestReceiptText(t *testing.T) {
	d := sampleDoc()
	d.Status = db.InvoicePaid
	d.PaidAt = time.Date(2026, 3, 9, 15, 4, 5, 0, time.UTC)
	d.PayerEmail = "cfo@acme.example"
	pdf, err := New().ReceiptPDF(d)
	if err != nil {
		t.Fatal(err)
	}
	text := mustText(t, pdf)
	wantAll(t, text,
		"Receipt", "INV-000042", "Amount paid", "€1,684.56", "Amount paid (EUR)", "2026-03-09", "cfo@acme.example",
		"Hoss Müller Consulting", "75001 Paris", "billing@hoss.example", "Acme Brücken GmbH",
		"Market research brief", "€450.00", "Landing page copy", "€1,234.56",
		"Paid \u2014 thank you",
	)
	if strings.Contains(text, "Pay online") {
		t.Error("a receipt asks to pay")
	}
	if !bytes.Contains(pdf, []byte("/CreationDate (D:20260309150405)")) {
		t.Error("receipt's creation date is not the payment date")
	}
	// Without a payer address, no "Paid by".
	d.PayerEmail = ""
	pdf2, err := New().ReceiptPDF(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(mustText(t, pdf2), "Paid by") {
		t.Error("Paid by without a payer address")
	}
	// A refunded invoice's receipt says so.
	d.Status = db.InvoiceRefunded
	pdf3, err := New().ReceiptPDF(d)
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, mustText(t, pdf3), "refunded")
}

func TestDeterministic(t *testing.T) {
	r := New()
	d := sampleDoc()
	a, err := r.InvoicePDF(d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New().InvoicePDF(sampleDoc())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two renderings of one invoice differ")
	}
	// The same instant in another zone is the same document.
	d.IssuedAt = d.IssuedAt.In(time.FixedZone("X", 5*3600))
	d.DueAt = d.DueAt.In(time.FixedZone("Y", -7*3600))
	c, err := r.InvoicePDF(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, c) {
		t.Error("the time zone of the dates changes the bytes")
	}
	// A receipt too, and open → paid changes the invoice.
	d = sampleDoc()
	d.Status, d.PaidAt = db.InvoicePaid, d.IssuedAt.Add(48*time.Hour)
	r1, err := r.ReceiptPDF(d)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := r.ReceiptPDF(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r1, r2) {
		t.Error("two renderings of one receipt differ")
	}
	paid, err := r.InvoicePDF(d)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(paid, a) {
		t.Error("open and paid invoices render the same bytes")
	}
	d.PaidAt = d.PaidAt.Add(24 * time.Hour)
	r3, err := r.ReceiptPDF(d)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(r1, r3) {
		t.Error("another payment date renders the same receipt")
	}
	// No dates at all: still no clock.
	d = sampleDoc()
	d.IssuedAt, d.DueAt, d.Status = time.Time{}, time.Time{}, db.InvoiceDraft
	z, err := r.ReceiptPDF(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(z, []byte("/CreationDate (D:19700101000000)")) {
		t.Error("a document without dates does not take the epoch")
	}
}

// goldenDocs are rendered in this process and in a child process with
// another time zone; both must give the same bytes.
func goldenDigests() string {
	r := New()
	d := sampleDoc()
	var out []string
	inv, err1 := r.InvoicePDF(d)
	d.Status, d.PaidAt, d.PayerEmail = db.InvoicePaid, d.IssuedAt.Add(time.Hour), "x@y.example"
	rec, err2 := r.ReceiptPDF(d)
	d.Lines = manyLines(60)
	many, err3 := r.InvoicePDF(d)
	for _, e := range []error{err1, err2, err3} {
		if e != nil {
			return "error: " + e.Error()
		}
	}
	for _, b := range [][]byte{inv, rec, many} {
		s := sha256.Sum256(b)
		out = append(out, hex.EncodeToString(s[:]))
	}
	return strings.Join(out, " ")
}

func TestDeterministicAcrossProcesses(t *testing.T) {
	if os.Getenv("INVOICEPDF_CHILD") == "1" {
		fmt.Printf("DIGESTS %s\n", goldenDigests())
		return
	}
	here := goldenDigests()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeterministicAcrossProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), "INVOICEPDF_CHILD=1", "TZ=Asia/Tokyo")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`DIGESTS ([^\n]*)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("child printed no digests:\n%s", out)
	}
	if string(m[1]) != here {
		t.Errorf("another process renders other bytes:\n here  %s\n child %s", here, m[1])
	}
}

func manyLines(n int) []agents.DocumentLine {
	var lines []agents.DocumentLine
	for i := range n {
		lines = append(lines, agents.DocumentLine{
			Title:       fmt.Sprintf("Task number %02d", i+1),
			Description: fmt.Sprintf("Deliverable %02d: %s", i+1, strings.Repeat("a fairly long description that wraps ", i%4+1)),
			Amount:      db.Money{Cents: int64(1000 + i), Currency: "usd"},
		})
	}
	return lines
}

func TestManyLinesFlowOntoPages(t *testing.T) {
	d := sampleDoc()
	d.Lines = manyLines(60)
	var sum int64
	for _, l := range d.Lines {
		sum += l.Amount.Cents
	}
	d.Total = db.Money{Cents: sum, Currency: "usd"}
	for name, render := range map[string]func(agents.InvoiceDocument) ([]byte, error){"invoice": New().InvoicePDF, "receipt": New().ReceiptPDF} {
		pdf, err := render(d)
		if err != nil {
			t.Fatal(err)
		}
		pages := bytes.Count(pdf, []byte("/Type /Page\n"))
		if pages < 3 {
			t.Errorf("%s: 60 lines on %d pages", name, pages)
		}
		text := mustText(t, pdf)
		for i, l := range d.Lines {
			wantAll(t, text, l.Title, fmt.Sprintf("Deliverable %02d: a fairly long", i+1), l.Amount.String())
		}
		wantAll(t, text, d.Total.String(), "(continued)")
		// The table header is on every page.
		if got := strings.Count(text, "\nDescription\n"); got != pages {
			t.Errorf("%s: table header %d times on %d pages", name, got, pages)
		}
		if got := strings.Count(text, "Page "); got != pages {
			t.Errorf("%s: %d page footers on %d pages", name, got, pages)
		}
	}
}

func TestHostileText(t *testing.T) {
	long := strings.Repeat("Supercalifragilistic", 40) // one 800-letter word
	d := sampleDoc()
	d.Company.Name = `Ωmega (Holdings) \ Ltd`
	d.Company.PostalAddress = "Bahnhofstrasse 1\r\n8001 Zürich\rSchweiz\n\n東京"
	d.Client = "Client (with) \\ backslash) (("
	d.ClientTo = "a@b.example\x00\x07"
	d.Number = "INV-(1)\\"
	d.Lines = []agents.DocumentLine{
		{Title: "Zürich Ωmega 東京", Description: long, Amount: db.Money{Cents: -500, Currency: "gbp"}},
		{Title: long, Description: "\xff\xfe invalid utf-8 \t tab ) ( \\ " + "\u2028sep", Amount: db.Money{Cents: 9223372036854775807, Currency: "zzz"}},
		{Title: "", Description: "", Amount: db.Money{}},
	}
	d.Total = db.Money{Cents: 1, Currency: "x\ny"}
	d.PaymentURL = "javascript:alert(1)"
	d.PortalURL = "https://portal.example/(x)"
	for name, render := range map[string]func(agents.InvoiceDocument) ([]byte, error){"invoice": New().InvoicePDF, "receipt": New().ReceiptPDF} {
		pdf, err := render(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		text := mustText(t, pdf)
		wantAll(t, text,
			`?mega (Holdings) \ Ltd`, "Bahnhofstrasse 1", "8001 Zürich", "Schweiz", "\n??\n",
			`Client (with) \ backslash) ((`, "INV-(1)\\",
			"Zürich ?mega ??", "-£5.00", "92,233,720,368,547,758.07 ZZZ",
			"?? invalid utf-8   tab ) ( \\ \n", "\nsep\n", " (X Y)", "0.01 X Y",
		)
		// The long word is broken across lines, all of it shown, in order.
		if !strings.Contains(strings.ReplaceAll(text, "\n", ""), long) {
			t.Errorf("%s: the long word is not all there", name)
		}
		if strings.Contains(text, "\x00") || strings.Contains(text, "\x07") {
			t.Errorf("%s: a control character reached the page", name)
		}
		if bytes.Contains(pdf, []byte("javascript:")) && bytes.Contains(pdf, []byte("/URI (javascript")) {
			t.Errorf("%s: a javascript: link annotation", name)
		}
	}
}

func TestEveryCP1252CharacterRoundTrips(t *testing.T) {
	var b strings.Builder
	for r := rune(0x20); r < 0x7f; r++ {
		b.WriteRune(r)
	}
	b.WriteString("€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ")
	for r := rune(0xa0); r <= 0xff; r++ {
		b.WriteRune(r)
	}
	all := b.String()
	d := sampleDoc()
	d.Lines = []agents.DocumentLine{{Title: "x", Description: all, Amount: db.Money{Cents: 1, Currency: "usd"}}}
	pdf, err := New().InvoicePDF(d)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(mustText(t, pdf), "\n", "")
	// Wrapping drops the space it breaks at; compare without spaces.
	if !strings.Contains(strings.ReplaceAll(text, " ", ""), strings.ReplaceAll(all, " ", "")) {
		t.Errorf("not every cp1252 character came back:\nwant %q\ntext %q", all, text)
	}
}

func TestTextRejectsGarbage(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("hello"), []byte("%PDF-1.3\n%%EOF"), []byte("%PDF-1.3\n3 0 obj\n<</Filter /FlateDecode /Length 5>>\nstream\nxxxxx\nendstream\n")} {
		if _, err := Text(in); err == nil {
			t.Errorf("Text(%q) = nil error", in)
		}
	}
}

func FuzzInvoicePDF(f *testing.F) {
	f.Add("Ten competitors", "Market research")
	f.Add("(((\\\\)))\x00\r\n\u2028 Zürich Ωmega 東京", "\xff")
	f.Add(strings.Repeat("W", 3000), strings.Repeat("x ", 200))
	r := New()
	f.Fuzz(func(t *testing.T, desc, title string) {
		d := sampleDoc()
		d.Lines = []agents.DocumentLine{{Title: title, Description: desc, Amount: db.Money{Cents: 100, Currency: "usd"}}}
		d.Company.PostalAddress = desc
		for _, render := range []func(agents.InvoiceDocument) ([]byte, error){r.InvoicePDF, r.ReceiptPDF} {
			pdf, err := render(d)
			if err != nil {
				t.Fatal(err)
			}
			text := mustText(t, pdf)
			if !strings.Contains(text, "INV-000042") || !strings.Contains(text, "$1.00") {
				t.Fatalf("number or amount missing:\n%s", text)
			}
		}
	})
}
