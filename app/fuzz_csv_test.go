package app

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

var importCounts = regexp.MustCompile(`(\d+) created, (\d+) duplicate, (\d+) invalid`)

// FuzzCSVImport posts fuzzed files to the lead import, as an admin, over a
// real store, then imports the same file again straight through
// agents.ImportLeadsCSV. It holds that: no answer is a 5xx (a panic is a
// 500 through recoverPanics); a file is imported (200) or refused whole
// (400, 413) and a refused file stores nothing; a file that is not text (a
// NUL, a control character, bytes that are not UTF-8) is refused; the
// leads the report counts as created are exactly the leads stored; the
// report's rows add up to its totals, in file order; and importing the file
// again creates nothing (no row is imported twice).
func FuzzCSVImport(f *testing.F) {
	for _, seed := range []string{
		// The input: a NUL in a file.
		"name,email,company\nAnn,ann@nul.example,Nul\x00Co\n",
		"email\na\x00@nul.example\n",
		"name,email\nJos\xe9,jose@latin1.example\n",                        // Latin-1
		"\xff\xfen\x00a\x00m\x00e\x00,\x00e\x00m\x00a\x00i\x00l\x00\n\x00", // UTF-16
		"name,email,company\nBob,bob@ctl.example,Ctl\x1b[31mCo\n",
		"\uFEFFName,Email,Company,Website,Niche\nAnn,ann@newco.example,NewCo,https://newco.example,saas\n",
		"email,website\ndup@dup.example,\ndup@dup.example,\nDUP@dup.example,\n,https://www.dup.example/\n",
		"email,company\n\"a@q.example,\"\"\n\"multi\nline\",b@q.example\n",
		"website\nhttps://example.com\nhttp://[::1]/\nftp://x\n\n",
		"email,email\na@b.example,c@d.example\n",
		"", "\n", "email\n", "foo,bar\n1,2\n", "\"", "email\n\"",
		strings.Repeat("email,", 2000) + "\n" + strings.Repeat("x@y.example,", 2000) + "\n",
		"name,email,company\r\nJosé,jose@crlf.example,\"Café\tBar\"\r\n",
	} {
		f.Add([]byte(seed))
	}
	fs := newFuzzServer(f)
	ctx := context.Background()
	countLeads := func(t *testing.T) int {
		n, err := fs.store.Bun().NewSelect().Model((*db.Lead)(nil)).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		before := countLeads(t)
		rec := fs.serve(uploadRequest(file), true)
		after := countLeads(t)
		body := rec.Body.String()
		switch rec.Code {
		case http.StatusOK:
			m := importCounts.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("200 without a report: %.300q", body)
			}
			if created, _ := strconv.Atoi(m[1]); created != after-before {
				t.Fatalf("report says %d created, the store holds %d more leads", created, after-before)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if after != before {
				t.Fatalf("a refused file (%d) stored %d leads", rec.Code, after-before)
			}
		default:
			t.Fatalf("import answered %d: %.300q\n%s", rec.Code, body, fs.log.take())
		}
		if p := db.TextProblem(string(bytes.TrimPrefix(file, []byte("\uFEFF")))); p != "" && rec.Code != http.StatusBadRequest {
			t.Fatalf("a file holding %s answered %d, want 400", p, rec.Code)
		}

		// The same file again, through the import itself: nothing new.
		rep, err := agents.ImportLeadsCSV(ctx, fs.store, bytes.NewReader(file), "fuzz", testNow)
		switch {
		case errors.Is(err, agents.ErrInvalidCSV):
			if rec.Code == http.StatusOK {
				t.Fatalf("imported once, refused the second time: %v", err)
			}
			if len(rep.Rows) != 0 || rep.Created != 0 {
				t.Fatalf("a refused file reports rows: %+v", rep)
			}
		case err != nil:
			t.Fatalf("second import failed: %v", err)
		case rec.Code != http.StatusOK:
			t.Fatalf("refused once (%d), imported the second time: %+v", rec.Code, rep)
		}
		if rep.Created != 0 || countLeads(t) != after {
			t.Fatalf("importing the same file again created %d leads", rep.Created)
		}
		if rep.Created+rep.Duplicate+rep.Invalid != len(rep.Rows) {
			t.Fatalf("report totals %d+%d+%d for %d rows", rep.Created, rep.Duplicate, rep.Invalid, len(rep.Rows))
		}
		for i := 1; i < len(rep.Rows); i++ {
			if rep.Rows[i].Row <= rep.Rows[i-1].Row || rep.Rows[0].Row < 2 {
				t.Fatalf("rows out of file order: %+v", rep.Rows)
			}
		}
	})
}
