// Package views holds the templ components of HossAgent's three surfaces:
// the owner's dashboard, the operators' control room and the clients'
// portal. Views only format the data they are handed; they query nothing.
package views

import (
	"strings"
	"time"
)

// Meta is what every full page needs from its handler.
type Meta struct {
	Title        string
	AssetVersion string // cache-busting suffix for /assets URLs
	Now          time.Time
	Currency     string // the default currency, for zero totals
	// SignedIn is the signed-in operator's e-mail, shown with a sign-out
	// button; "" on anonymous pages (portal, login, public dashboard).
	SignedIn string
	// LiveURL is the page's SSE stream; when set, the page connects to it
	// and its regions update in place.
	LiveURL string
}

// DashboardPage is the owner's dashboard at /.
type DashboardPage struct {
	Meta
	Stats      Stats
	RecentWork []TaskRow    // done tasks, newest completion first
	Invoices   []InvoiceRow // newest first
	Leads      []Lead       // newest first, one page
	LeadsPage  Page
	ShowAdmin  bool // link to the control room
	// Revenue is the money collected per day and Outstanding the open
	// money by the day it fell due, each the last 30 days against the 30
	// before, in the default currency (charts_data.go).
	Revenue, Outstanding BarChart
}

// AgentCard is one agent's card in the control room: the engine's live state
// merged with the persisted cycle log (which survives a restart).
type AgentCard struct {
	Name      string // "lead_source", "bizdev", …
	Title     string // "Lead source"
	State     string // idle, running, backoff, crashed, stopped
	LastRun   *AgentRun
	Runs      int64
	Failures  int64
	Restarts  int64
	LastError string
	Stack     string
	// LastErrorAt is when LastError happened (zero when unknown); Recovered
	// says the agent has run or restarted cleanly since, so the error is
	// history, shown grey.
	LastErrorAt time.Time
	Recovered   bool
	// RunningSince is when the running cycle started (zero unless State is
	// running); Running is how long it has run when the card was rendered.
	RunningSince time.Time
	Running      time.Duration
	// Controls shows the run / restart / stop|start buttons (an engine runs
	// in this process); CrashInjection adds the development-only crash button.
	Controls       bool
	CrashInjection bool
	// Spark is the sparkline of the agent's latest runs (charts.go).
	Spark Sparkline
	// Owner is the instance that runs the agent, when several instances
	// share a PostgreSQL database; nil on SQLite (this process runs it).
	Owner *AgentOwner
}

// AgentOwner names the instance owning an agent.
type AgentOwner struct {
	Instance string // "" while no instance owns it (a takeover under way)
	Here     bool   // it is the instance that rendered the page
}

// AdminPage is the control room at /admin.
type AdminPage struct {
	Meta
	ReleaseMode       string
	AutopilotEnabled  bool
	AutopilotInterval time.Duration
	EmailMode         string
	LeadSource        string
	StripeEnabled     bool
	Stats             Stats
	Agents            []AgentCard
	Runs              []AgentRun // cycle log, newest first
	Leads             []Lead
	LeadsPage         Page
	Customers         []CustomerRow
	CustomersPage     Page
	Tasks             []TaskRow
	TasksPage         Page
	Invoices          []InvoiceRow
	InvoicesPage      Page
	Audit             []AuditEntry
	Search            string // the current table search term
	// SearchIndexed says the search is answered from the full-text index;
	// a shorter term reads every row and its counts stop at SearchCountCap.
	SearchIndexed bool
	// AutopilotControls shows the autopilot switch, interval form and "run
	// full cycle now" (a coordinator runs in this process).
	AutopilotControls bool
	EmailHealth       EmailPanel
	LeadHealth        LeadSourcePanel
	StripeHealth      StripePanel
	ClientMail        AdminClientMailPanel
}

// LoginPage is the sign-in form at /login.
type LoginPage struct {
	Meta
	Email string // the e-mail typed last time, kept when the form comes back
	Next  string // where to go after signing in; already checked to be local
	Error string // why the last attempt failed, "" on first view
}

// ErrorPage is a plain error page (404, 500).
type ErrorPage struct {
	Meta
	Status  int
	Heading string
	Message string
}

// isPortalStream says whether a page's live stream is a client portal's:
// its session ends with a new link, not a sign-in.
func isPortalStream(liveURL string) bool { return strings.HasPrefix(liveURL, "/events/portal") }
