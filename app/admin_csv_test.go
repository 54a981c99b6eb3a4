package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/uptrace/bun"

	"github.com/hossagent/hossagent/db"
)

// exportCSV downloads one export and parses it.
func (f *fixture) exportCSV(t *testing.T, table string) (*http.Response, [][]string) {
	t.Helper()
	resp, err := f.client.Get(f.srv.URL + "/admin/export/" + table + ".csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	records, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatalf("export of %s is not CSV: %v", table, err)
	}
	return resp, records
}

// column maps a CSV header to column indexes.
func column(header []string) map[string]int {
	m := map[string]int{}
	for i, h := range header {
		m[h] = i
	}
	return m
}

func TestExportCSVHasEveryRowAndDefusesFormulas(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t) // 3 leads, one customer, two tasks, two invoices
	ctx := context.Background()
	hostile := []db.NewLead{
		{Name: "+cmd|' /C calc'!A0", Email: "f1@formula.example", Company: "=HYPERLINK(\"http://x.test\",\"click\")", DomainKey: "formula.example"},
		{Name: "@SUM(1+1)", Email: "f2@formula2.example", Company: "-2+3", DomainKey: "formula2.example", Niche: "\tTabbed"},
		{Name: "Quote \"Me\", please", Email: "f3@formula3.example", Company: "Line\r\nBreak, Inc", DomainKey: "formula3.example", Niche: "\rCR"},
	}
	err := f.store.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		for i := range 450 {
			in := db.NewLead{Name: "Bulk", Email: "bulk" + strconv.Itoa(i) + "@bulk.example", Company: "Bulk " + strconv.Itoa(i), Source: "test"}
			if i < len(hostile) {
				in = hostile[i]
				in.Source = "test"
			}
			if _, err := f.store.CreateLead(ctx, tx, in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	resp, records := f.exportCSV(t, "leads")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	disp, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || params["filename"] != "hossagent-leads-20261127T120000Z.csv" {
		t.Errorf("Content-Disposition = %q", resp.Header.Get("Content-Disposition"))
	}
	if len(records) != 1+453 { // header, 3 seeded, 450 added: more than two pages of 200
		t.Fatalf("rows = %d, want 454", len(records))
	}
	col := column(records[0])
	seen := map[string]bool{}
	byEmail := map[string][]string{}
	for _, r := range records[1:] {
		if seen[r[col["id"]]] {
			t.Errorf("lead %s exported twice", r[col["id"]])
		}
		seen[r[col["id"]]] = true
		byEmail[r[col["email"]]] = r
	}
	for email, want := range map[string][2]string{
		"f1@formula.example":  {"'=HYPERLINK(\"http://x.test\",\"click\")", "'+cmd|' /C calc'!A0"},
		"f2@formula2.example": {"'-2+3", "'@SUM(1+1)"},
		"f3@formula3.example": {"Line\nBreak, Inc", "Quote \"Me\", please"},
	} {
		r := byEmail[email]
		if r == nil {
			t.Fatalf("%s not exported", email)
		}
		if r[col["company"]] != want[0] || r[col["name"]] != want[1] {
			t.Errorf("%s: company %q name %q, want %q %q", email, r[col["company"]], r[col["name"]], want[0], want[1])
		}
	}
	if got := byEmail["f2@formula2.example"][col["niche"]]; got != "'\tTabbed" {
		t.Errorf("tab cell = %q", got)
	}
	if got := byEmail["f3@formula3.example"][col["niche"]]; got != "'\rCR" && got != "'\nCR" {
		t.Errorf("carriage-return cell = %q", got)
	}
	if got := byEmail["a@acme.example"][col["created_at"]]; got != "2026-11-27T12:00:00Z" {
		t.Errorf("created_at = %q", got)
	}

	// Money is a decimal string beside its currency; negative profit keeps
	// its sign.
	if _, err := f.store.Bun().NewUpdate().Model((*db.Task)(nil)).Set("cost_cents = 20000, profit_cents = reward_cents - 20000").
		Where("id = 2").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	_, records = f.exportCSV(t, "tasks")
	col = column(records[0])
	if len(records) != 3 {
		t.Fatalf("task rows = %d", len(records))
	}
	first, second := records[1], records[2]
	if first[col["currency"]] != "usd" || first[col["reward"]] != "150.00" || first[col["cost"]] != "12.34" || first[col["profit"]] != "137.66" {
		t.Errorf("task 1 money = %v", first)
	}
	if second[col["profit"]] != "-101.00" || second[col["result"]] != "Copy" {
		t.Errorf("task 2 = %v", second)
	}
	if !strings.Contains(first[col["result"]], evil) {
		t.Errorf("result = %q", first[col["result"]])
	}

	_, records = f.exportCSV(t, "invoices")
	col = column(records[0])
	if len(records) != 3 || records[1][col["number"]] != "INV-000001" || records[1][col["amount"]] != "150.00" || records[2][col["status"]] != "paid" {
		t.Errorf("invoices = %v", records)
	}
	_, records = f.exportCSV(t, "customers")
	col = column(records[0])
	if len(records) != 2 || records[1][col["company"]] != evil || records[1][col["contact_email"]] != "x@evil.example" {
		t.Errorf("customers = %v", records)
	}
	if _, ok := col["portal_token_hash"]; ok {
		t.Errorf("the export carries the portal token hash")
	}
	if got := f.auditCount(t, "export csv"); got != 4 {
		t.Errorf("export audit entries = %d, want 4", got)
	}
	if resp, _, _ := f.get(t, "/admin/export/users.csv"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown export = %d", resp.StatusCode)
	}
}

// upload posts a file as the import form does; htmx adds HX-Request.
func (f *fixture) upload(t *testing.T, field, name string, content []byte, htmx bool) (*http.Response, *goquery.Document) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if field != "" {
		w, err := mw.CreateFormFile(field, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Content-Type": mw.FormDataContentType(), "Origin": f.srv.URL}
	if htmx {
		h["HX-Request"] = "true"
	}
	resp, raw := f.do(t, f.client, http.MethodPost, "/admin/import/leads", &body, h)
	return resp, parseHTML(t, raw)
}

func countLeads(t *testing.T, f *fixture) int {
	t.Helper()
	n, err := f.store.Bun().NewSelect().Model((*db.Lead)(nil)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestImportLeadsCSVReportsEveryRow(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t) // a@acme.example exists
	file := "Name,Email,Company,Website,Niche\n" +
		"Ann,ann@newco.example,NewCo,https://newco.example,saas\n" +
		"Dup,A@Acme.example,Acme again,,agency\n" +
		"Nobody,,No Contact,,\n" +
		"Bob,bob@other.example,\"Other, Ltd\",,consulting\n" +
		"Ann Again,ann2@newco.example,NewCo,,saas\n"
	resp, doc := f.upload(t, "file", "leads.csv", []byte(file), true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, text(doc.Selection))
	}
	if doc.Find("html head title").Length() != 0 && doc.Find(".wrap").Length() != 0 {
		t.Errorf("htmx answer is a whole page, not a fragment")
	}
	assertContains(t, "summary", text(doc.Find("#import-report .result")), "leads.csv", "2 created", "2 duplicate", "1 invalid")
	var rows []string
	doc.Find("#import-report tbody tr").Each(func(_ int, s *goquery.Selection) {
		rows = append(rows, text(s.Find("td").Eq(0))+" "+text(s.Find("td").Eq(1)))
	})
	want := []string{"2 created", "3 duplicate", "4 invalid", "5 created", "6 duplicate"}
	if strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("rows = %v, want %v", rows, want)
	}
	if reason := text(doc.Find("#import-report tbody tr").Eq(1).Find("td").Eq(2)); !strings.Contains(reason, "e-mail") {
		t.Errorf("duplicate reason = %q", reason)
	}
	for _, email := range []string{"ann@newco.example", "bob@other.example"} {
		var l db.Lead
		if err := f.store.Bun().NewSelect().Model(&l).Where("l.email = ?", email).Scan(context.Background()); err != nil {
			t.Fatalf("%s not stored: %v", email, err)
		}
		if l.Source != "csv_import" {
			t.Errorf("%s source = %q", email, l.Source)
		}
	}
	if got := countLeads(t, f); got != 5 {
		t.Errorf("leads = %d, want 5", got)
	}
	if f.auditCount(t, "import leads") != 1 {
		t.Errorf("import not audited")
	}

	// Without htmx the report comes back as a whole page.
	resp, doc = f.upload(t, "file", "again.csv", []byte(file), false)
	if resp.StatusCode != http.StatusOK || doc.Find("main #import-report").Length() != 1 {
		t.Errorf("plain post: status %d", resp.StatusCode)
	}
	assertContains(t, "second import", text(doc.Find("#import-report .result")), "0 created", "4 duplicate", "1 invalid")
}

func TestImportLeadsRefusesBadFiles(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	big := append([]byte("name,email\n"), bytes.Repeat([]byte("x,y@z.example\n"), 80_000)...) // > 1 MiB
	cases := []struct {
		name    string
		field   string
		content []byte
		status  int
		message string
	}{
		{"oversized", "file", big, http.StatusRequestEntityTooLarge, "larger than 1024 KiB"},
		{"just over the limit", "file", append([]byte("email\n"), bytes.Repeat([]byte("a"), 1<<20)...), http.StatusRequestEntityTooLarge, "larger than"},
		{"no header", "file", []byte(""), http.StatusBadRequest, "not imported"},
		{"unknown columns", "file", []byte("foo,bar\n1,2\n"), http.StatusBadRequest, "must name the columns"},
		{"no file", "", nil, http.StatusBadRequest, "Choose a CSV file"},
		{"wrong field", "upload", []byte("email\na@b.example\n"), http.StatusBadRequest, "Choose a CSV file"},
	}
	for _, c := range cases {
		resp, doc := f.upload(t, c.field, "x.csv", c.content, true)
		if resp.StatusCode != c.status || !strings.Contains(text(doc.Find(".result.bad")), c.message) {
			t.Errorf("%s: status %d, message %q; want %d and %q", c.name, resp.StatusCode, text(doc.Find(".result.bad")), c.status, c.message)
		}
	}
	if got := countLeads(t, f); got != 0 {
		t.Errorf("refused files stored %d leads", got)
	}
	if got := f.auditCount(t, "import leads refused"); got != len(cases) {
		t.Errorf("refusals audited = %d, want %d", got, len(cases))
	}
	// A page from another site cannot post an import.
	resp, _ := f.do(t, f.client, http.MethodPost, "/admin/import/leads", strings.NewReader("x"),
		map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site import = %d, want 403", resp.StatusCode)
	}
}

func TestControlRoomLinksRecordsExportsAndImport(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	f.seed(t)
	_, doc, _ := f.get(t, "/admin")
	for sel, want := range map[string]string{
		"#admin-leads tbody tr:first-child td.num a":      "/admin/leads/3",
		"#admin-customers tbody td a":                     "/admin/customers/1",
		"#admin-tasks tbody td a":                         "/admin/tasks/2",
		"#admin-invoices tbody td a":                      "/admin/invoices/2",
		"#admin-leads .panel-links a[href^='/admin/act']": "/admin/activity?hours=24",
	} {
		if got := doc.Find(sel).First().AttrOr("href", ""); got != want {
			t.Errorf("%s href = %q, want %q", sel, got, want)
		}
	}
	for _, table := range []string{"leads", "customers", "tasks", "invoices"} {
		if doc.Find("#admin-"+table+" a[href='/admin/export/"+table+".csv']").Length() != 1 {
			t.Errorf("no export link on the %s table", table)
		}
	}
	form := doc.Find("#admin-leads #lead-import[hx-preserve] form")
	if form.AttrOr("hx-post", "") != "/admin/import/leads" || form.AttrOr("enctype", "") != "multipart/form-data" ||
		form.Find("input[type=file][name=file]").Length() != 1 {
		t.Errorf("import form missing or wrong")
	}
}

// TestImportLeadsRefusesFilesThatAreNotText: a file holding a NUL byte, a
// control character or bytes that are not UTF-8 (a UTF-16 or Latin-1
// export) is refused whole with a 400 that names the line and the column;
// nothing of it is stored, not even its clean rows, and nothing is a 500.
func TestImportLeadsRefusesFilesThatAreNotText(t *testing.T) {
	f := newFixture(t, nil)
	f.signInAs(t, db.RoleAdmin)
	good := "name,email,company\nAnn,ann@newco.example,NewCo\n"
	cases := []struct {
		name, file, says string
	}{
		{"NUL in a company", good + "Bob,bob@other.example,Oth\x00er\n", `line 3, column "company"`},
		{"NUL in an e-mail", good + "Bob,bob\x00@other.example,Other\n", `line 3, column "email"`},
		{"NUL in an ignored column", "name,email,notes\nAnn,ann@newco.example,a\x00b\n", `line 2, column "notes"`},
		{"NUL in the header", "name,em\x00ail\nAnn,ann@newco.example\n", "line 1, column 2"},
		{"Latin-1", good + "Jos\xe9,jose@other.example,Caf\xe9\n", `line 3, column "name"`},
		{"UTF-16", "\xff\xfen\x00a\x00m\x00e\x00\n\x00", "line 1"},
		{"control character", good + "Bob,bob@other.example,Other\x1b[31m\n", `line 3, column "company"`},
		{"NUL in a malformed row", good + "Bob,\"bob@other.example,Oth\x00er\n", "line 3"},
		{"NUL in a quoted multi-line field", good + "Bob,bob@other.example,\"Oth\ner\x00\"\n", `line 3, column "company"`},
	}
	for _, c := range cases {
		resp, doc := f.upload(t, "file", "bad.csv", []byte(c.file), true)
		msg := text(doc.Find(".result.bad"))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, c.says) || !strings.Contains(msg, "not imported") {
			t.Errorf("%s: status %d, message %q; want 400 saying %q", c.name, resp.StatusCode, msg, c.says)
		}
		if strings.Contains(msg, "\x00") || strings.Contains(msg, "Oth") {
			t.Errorf("%s: the message echoes the file: %q", c.name, msg)
		}
	}
	if got := countLeads(t, f); got != 0 {
		t.Errorf("refused files stored %d leads", got)
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Errorf("a bad file was logged as a server error:\n%s", f.logs.String())
	}
	// Tabs, CRLF line ends and non-ASCII text are ordinary text.
	resp, doc := f.upload(t, "file", "ok.csv", []byte("name,email,company\r\nJosé,jose@other.example,\"Café\tBar\"\r\n"), true)
	if resp.StatusCode != http.StatusOK || !strings.Contains(text(doc.Find("#import-report .result")), "1 created") {
		t.Errorf("a clean file: status %d %q", resp.StatusCode, text(doc.Find("#import-report .result")))
	}
}
