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
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\uFEFF"))))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.TrimLeadingSpace = true
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
