package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/db"
)

// The operators' JSON API under /api/v1: read-only, paged views of the data
// the control room shows. It sits outside the session group of the router,
// so every request is authenticated here: a bearer API token, or else an
// admin's session cookie.

// API paging: per_page defaults to apiDefaultPerPage and may not exceed
// db.MaxPerPage.
const (
	apiDefaultPerPage = 50
	apiMaxPage        = 100000
)

// bearerChallenge is the WWW-Authenticate value of every 401 (RFC 6750).
const bearerChallenge = `Bearer realm="HossAgent API"`

// apiNotFound is the API's 404: JSON, like every API answer.
func apiNotFound(w http.ResponseWriter, _ *http.Request) {
	status, message := errorAnswer(codeNotFound)
	writeAPIError(w, status, message)
}

// apiMethodNotAllowed is the API's 405: it serves GET only.
func apiMethodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Allow", "GET")
	writeAPIError(w, http.StatusMethodNotAllowed, "The API is read-only: use GET.")
}

// apiAuth lets through requests that carry a live API token, or else the
// session cookie of an admin. A token wins over a cookie: a script that
// sends one means it.
func (s *Server) apiAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if header := r.Header.Get("Authorization"); header != "" {
			s.apiBearer(w, r, header, next)
			return
		}
		// The session is read exactly as the pages read it (loadSession);
		// only the answer to a missing or lesser operator differs.
		s.loadSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := userFrom(r.Context())
			switch {
			case u == nil:
				apiUnauthorized(w, "", "Send an API token (Authorization: Bearer <token>) or sign in as an admin.")
			case u.Role != db.RoleAdmin:
				writeAPIError(w, http.StatusForbidden, "The API is for admins; this account may only read the dashboard.")
			default:
				next.ServeHTTP(w, r)
			}
		})).ServeHTTP(w, r)
	})
}

// apiBearer checks an Authorization header and serves the request when it
// names a live API token.
func (s *Server) apiBearer(w http.ResponseWriter, r *http.Request, header string, next http.Handler) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		apiUnauthorized(w, "invalid_request", `The Authorization header must be "Bearer <token>".`)
		return
	}
	_, err := s.store.UseAPIToken(r.Context(), token, s.now())
	if codeOf(err) == codeNotFound { // no such token: the caller is not authenticated
		s.log.Warn("API token refused", "remote", s.clientIP(r))
		apiUnauthorized(w, "invalid_token", "The API token is unknown or revoked.")
		return
	}
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	next.ServeHTTP(w, r)
}

// apiUnauthorized answers 401 with the bearer challenge; code is the RFC
// 6750 error code, "" when no credentials were sent.
func apiUnauthorized(w http.ResponseWriter, code, message string) {
	challenge := bearerChallenge
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeAPIError(w, http.StatusUnauthorized, message)
}

// apiFail is fail for the API: the error goes to the log, a plain message
// to the client.
func (s *Server) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	code := codeOf(err)
	switch {
	case code == codeNotFound:
	case errors.Is(err, r.Context().Err()):
		return // the client went away
	default:
		s.log.Error("API request failed", "route", routeOf(r), "err", err)
		code = codeInternal
	}
	status, message := errorAnswer(code)
	writeAPIError(w, status, message)
}

// apiError is the body of every API error.
type apiError struct {
	Error string `json:"error"`
}

func writeAPIError(w http.ResponseWriter, status int, message string) {
	writeAPIJSON(w, status, apiError{Error: message})
}

// writeAPIJSON writes v with a status. Every API answer, errors included, is
// JSON that no cache may keep: the data is private to the operators. v is
// encoded into memory first, so an encoding failure still yields a clean
// 500.
func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"The answer could not be encoded."}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// apiList is the envelope of every list.
type apiList[T any] struct {
	Data    []T `json:"data"`
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
	Total   int `json:"total"`
}

// writeList writes one page of a list; data is never null, an empty page
// is [].
func writeList[T any](w http.ResponseWriter, data []T, pg db.Page) {
	if data == nil {
		data = []T{}
	}
	writeAPIJSON(w, http.StatusOK, apiList[T]{Data: data, Page: pg.Number, PerPage: pg.PerPage, Total: pg.Total})
}

// errAPIParam is a query parameter the API refuses; its text is shown.
type errAPIParam struct{ msg string }

func (e errAPIParam) Error() string { return e.msg }

// apiListQuery reads page, per_page, q and status; statuses lists the
// values status may take.
func apiListQuery(r *http.Request, statuses []string) (db.ListQuery, error) {
	q := db.ListQuery{Page: 1, PerPage: apiDefaultPerPage, Search: searchParam(r, "q")}
	var err error
	if q.Page, err = apiIntParam(r, "page", 1, 1, apiMaxPage); err != nil {
		return q, err
	}
	if q.PerPage, err = apiIntParam(r, "per_page", apiDefaultPerPage, 1, db.MaxPerPage); err != nil {
		return q, err
	}
	q.Status = strings.TrimSpace(r.URL.Query().Get("status"))
	if q.Status != "" && !slices.Contains(statuses, q.Status) {
		return q, errAPIParam{"status must be one of: " + strings.Join(statuses, ", ") + "."}
	}
	return q, nil
}

// apiIntParam reads an integer query parameter in [lo, hi]; absent is def.
func apiIntParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	raw := strings.TrimSpace(r.URL.Query().Get(name))
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, errAPIParam{name + " must be a whole number from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi) + "."}
	}
	return n, nil
}

// serveAPIList answers a list endpoint: it reads the query, runs list and
// converts each row with conv.
func serveAPIList[R, T any](s *Server, w http.ResponseWriter, r *http.Request, statuses []string,
	list func(context.Context, db.ListQuery) ([]R, db.Page, error), conv func(R) T) {
	q, err := apiListQuery(r, statuses)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, err.Error())
		return
	}
	rows, pg, err := list(r.Context(), q)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	data := make([]T, len(rows))
	for i, row := range rows {
		data[i] = conv(row)
	}
	writeList(w, data, pg)
}

func (s *Server) apiLeads(w http.ResponseWriter, r *http.Request) {
	serveAPIList(s, w, r, db.LeadStatuses, s.store.ListLeads, apiLeadOf)
}

func (s *Server) apiCustomers(w http.ResponseWriter, r *http.Request) {
	statuses := []string{db.CustomerActive, db.CustomerPaused, db.CustomerClosed}
	serveAPIList(s, w, r, statuses, s.store.ListCustomers, apiCustomerRowOf)
}

func (s *Server) apiTasks(w http.ResponseWriter, r *http.Request) {
	serveAPIList(s, w, r, db.TaskStatuses, s.store.ListTasks, apiTaskOf)
}

func (s *Server) apiInvoices(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	serveAPIList(s, w, r, db.InvoiceStatuses, s.store.ListInvoices, func(row db.InvoiceRow) apiInvoice {
		return apiInvoiceOf(row, now)
	})
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	outcomes := []string{db.RunRunning, db.RunOK, db.RunFailed, db.RunPanicked, db.RunSkipped, db.RunInterrupted}
	serveAPIList(s, w, r, outcomes, s.store.ListAgentRuns, apiRunOf)
}

// apiAgents lists the engine's agents, paged and filtered in memory: there
// are a handful. Without an engine the list is empty.
func (s *Server) apiAgents(w http.ResponseWriter, r *http.Request) {
	serveAPIList(s, w, r, apiAgentStateNames, s.apiAgentStates, apiAgentOf)
}

// apiRecord is the envelope of a single record.
type apiRecord[T any] struct {
	Data T `json:"data"`
}

// serveAPIRecord answers a single-record endpoint: it reads {id}, fetches the
// record with get and converts it with conv. A malformed id ("+1", "01")
// is as unknown as a missing one, as on the control room's pages
// (recordID).
func serveAPIRecord[D, T any](s *Server, w http.ResponseWriter, r *http.Request,
	get func(context.Context, int64) (D, error), conv func(D) T) {
	id, ok := recordID(r)
	if !ok {
		writeAPIError(w, http.StatusNotFound, "There is no record with this id.")
		return
	}
	rec, err := get(r.Context(), id)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeAPIJSON(w, http.StatusOK, apiRecord[T]{Data: conv(rec)})
}

func (s *Server) apiLead(w http.ResponseWriter, r *http.Request) {
	serveAPIRecord(s, w, r, s.store.LeadDetail, func(d *db.LeadDetail) apiLead { return apiLeadOf(d.Lead) })
}

func (s *Server) apiCustomer(w http.ResponseWriter, r *http.Request) {
	serveAPIRecord(s, w, r, s.store.CustomerDetail, func(d *db.CustomerDetail) apiCustomer {
		return apiCustomerOf(db.CustomerRow{Customer: d.Customer})
	})
}

func (s *Server) apiTask(w http.ResponseWriter, r *http.Request) {
	serveAPIRecord(s, w, r, s.store.TaskDetail, func(d *db.TaskDetail) apiTask {
		return apiTaskOf(db.TaskRow{Task: d.Task, Company: d.Customer.Company})
	})
}

func (s *Server) apiInvoice(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	serveAPIRecord(s, w, r, s.store.InvoiceDetail, func(d *db.InvoiceDetail) apiInvoiceWithLines {
		return apiInvoiceWithLinesOf(d, now)
	})
}

// apiAgentStateNames are the states an agent may be in, for ?status=.
var apiAgentStateNames = []string{agents.StateIdle, agents.StateRunning, agents.StateBackoff, agents.StateCrashed, agents.StateStopped}

// apiAgentStates is one page of the engine's agent states, filtered by state
// and by a name search; there are a handful, so this happens in memory.
func (s *Server) apiAgentStates(_ context.Context, q db.ListQuery) ([]agents.AgentState, db.Page, error) {
	var all []agents.AgentState
	if s.agents != nil {
		for _, st := range s.agents.States() {
			if (q.Status == "" || st.State == q.Status) &&
				(q.Search == "" || strings.Contains(strings.ToLower(st.Name), strings.ToLower(q.Search))) {
				all = append(all, st)
			}
		}
	}
	pg := db.Page{Number: q.Page, PerPage: q.PerPage, Total: len(all)}
	from := min((q.Page-1)*q.PerPage, len(all))
	return all[from:min(from+q.PerPage, len(all))], pg, nil
}
