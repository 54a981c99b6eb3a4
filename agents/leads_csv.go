package agents

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hossagent/hossagent/db"
)

// CSV import limits: a file over either is refused whole, before any row is
// stored.
const (
	MaxCSVRows  = 5000
	MaxCSVBytes = 1 << 20 // 1 MiB
)

// ErrInvalidCSV is wrapped by every error about the file itself (too large,
// too many rows, no usable header); the web layer shows it as bad input.
var ErrInvalidCSV = errors.New("invalid CSV file")

// csvColumns are the columns the import reads; others are ignored.
var csvColumns = []string{"name", "email", "company", "website", "niche"}

// CSVRow is what became of one row of an import.
type CSVRow struct {
	Row    int    // line of the file where the row starts; the header is line 1
	Status string // created, duplicate or invalid
	Reason string // why it is not created
}

// CSVReport is the outcome of an import, row by row and in total.
type CSVReport struct {
	At                          time.Time
	Rows                        []CSVRow
	Created, Duplicate, Invalid int
}

// ImportLeadsCSV stores the leads of a CSV file with a header row naming its
// columns (name, email, company, website, niche; any order, any case). Each
// row is checked like a lead source's candidate and stored in its own
// transaction, so a bad row never costs a good one. source is recorded on
// the leads ("csv" when empty); now stamps the report.
func ImportLeadsCSV(ctx context.Context, store *db.DB, r io.Reader, source string, now time.Time) (CSVReport, error) {
	report := CSVReport{At: now}
	if source == "" {
		source = "csv"
	}
	recs, err := readLeadsCSV(r)
	if err != nil {
		return report, err
	}
	for _, rec := range recs {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		row := CSVRow{Row: rec.line, Status: LeadOutcomeInvalid, Reason: rec.problem}
		if rec.problem == "" {
			row.Status, row.Reason, err = addLead(ctx, store, rec.cand, source)
			if err != nil {
				return report, fmt.Errorf("csv import, line %d: %w", rec.line, err)
			}
		}
		report.Rows = append(report.Rows, row)
		switch row.Status {
		case LeadOutcomeCreated:
			report.Created++
		case LeadOutcomeDuplicate:
			report.Duplicate++
		default:
			report.Invalid++
		}
	}
	return report, nil
}

// csvRecord is one data row, read but not yet stored.
type csvRecord struct {
	line    int
	cand    LeadCandidate
	problem string // a row the CSV reader could not parse
}

// readLeadsCSV reads and checks the whole file before anything is stored, so
// that a file over a limit changes nothing.
func readLeadsCSV(r io.Reader) ([]csvRecord, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxCSVBytes+1))
	if err != nil {
		return nil, fmt.Errorf("csv import: unable to read the file: %w", err)
	}
	if len(data) > MaxCSVBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidCSV, MaxCSVBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if db.TextProblem(string(data)) != "" {
		return nil, csvTextError(data)
	}
	cr := newCSVReader(data)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: no header row (%v)", ErrInvalidCSV, err)
	}
	cols, err := csvHeader(header)
	if err != nil {
		return nil, err
	}
	var recs []csvRecord
	for {
		fields, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if len(recs) == MaxCSVRows {
			return nil, fmt.Errorf("%w: more than %d rows", ErrInvalidCSV, MaxCSVRows)
		}
		var perr *csv.ParseError
		switch {
		case errors.As(err, &perr):
			recs = append(recs, csvRecord{line: perr.StartLine, problem: "unreadable row: " + perr.Err.Error()})
		case err != nil:
			return nil, fmt.Errorf("csv import: unable to read the file: %w", err)
		default:
			line, _ := cr.FieldPos(0)
			recs = append(recs, csvRecord{line: line, cand: csvCandidate(cols, fields)})
		}
	}
}

func newCSVReader(data []byte) *csv.Reader {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.TrimLeadingSpace = true
	return cr
}

// csvTextError says where a file that is not text (db.TextProblem: a NUL
// byte, a control character, bytes that are not UTF-8) first goes wrong:
// the line and the column, by the header's name for it when that is text.
// Such a file is refused whole: it is almost always one saved in another
// encoding (UTF-16, Latin-1) or not a CSV file at all, and importing the
// rows that happen to be clean would be a half import nobody meant. No text
// of the file is echoed.
func csvTextError(data []byte) error {
	const hint = "; save the file as CSV UTF-8 text"
	cr := newCSVReader(data)
	var header []string
	for n := 0; ; n++ {
		fields, err := cr.Read()
		if err != nil {
			if _, ok := errors.AsType[*csv.ParseError](err); ok {
				continue // a malformed row: the scan of the bytes below names its line
			}
			break
		}
		if n == 0 {
			header = fields
		}
		for i, f := range fields {
			p := db.TextProblem(f)
			if p == "" {
				continue
			}
			line, _ := cr.FieldPos(i)
			col := fmt.Sprintf("column %d", i+1)
			if n > 0 && i < len(header) {
				if name := strings.TrimSpace(header[i]); name != "" && db.TextProblem(name) == "" && len(name) <= 40 {
					col = fmt.Sprintf("column %q", name)
				}
			}
			return fmt.Errorf("%w: line %d, %s holds %s%s", ErrInvalidCSV, line, col, p, hint)
		}
	}
	// The bad bytes are in no field the reader could read (a row it refused
	// as malformed): name the line they are on.
	if i, p := db.TextProblemAt(string(data)); p != "" {
		return fmt.Errorf("%w: line %d holds %s%s", ErrInvalidCSV, bytes.Count(data[:i], []byte("\n"))+1, p, hint)
	}
	return fmt.Errorf("%w: the file is not UTF-8 text%s", ErrInvalidCSV, hint)
}

// csvHeader maps each known column to its index in the header.
func csvHeader(header []string) (map[string]int, error) {
	cols := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		for _, known := range csvColumns {
			if h != known {
				continue
			}
			if _, dup := cols[h]; dup {
				return nil, fmt.Errorf("%w: column %q appears twice in the header", ErrInvalidCSV, h)
			}
			cols[h] = i
		}
	}
	_, email := cols["email"]
	_, website := cols["website"]
	if !email && !website {
		return nil, fmt.Errorf("%w: the header row must name the columns (name, email, company, website, niche) and include email or website", ErrInvalidCSV)
	}
	return cols, nil
}

func csvCandidate(cols map[string]int, fields []string) LeadCandidate {
	get := func(col string) string {
		if i, ok := cols[col]; ok && i < len(fields) {
			return fields[i]
		}
		return ""
	}
	return LeadCandidate{Name: get("name"), Email: get("email"), Company: get("company"), Website: get("website"), Niche: get("niche")}
}
