// Package app is HossAgent's HTTP layer: the chi router with every route in
// one place, the middleware every request passes through, and one file per
// area (dashboard, admin, portal, health).
package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/assets"
	"github.com/hossagent/hossagent/db"
)

// Deps is everything the HTTP layer is built from. main wires it.
type Deps struct {
	Config config.Config
	Store  *db.DB
	Logger *slog.Logger
	// Now is the clock pages read ("overdue", "last run 3 min ago").
	Now func() time.Time
	// Agents is the running agent engine and its coordinator; nil serves
	// the pages from the cycle log alone.
	Agents AgentControl
	// Autopilot is the coordinator; nil hides the autopilot controls.
	Autopilot AutopilotControl
	// Live is the SSE hub fed by the agents' event bus; nil disables the
	// live streams (they answer 503).
	Live *Hub
	// Assets is the static file tree served under /assets/ (assets.FS in
	// production).
	Assets fs.FS
	// ClientIPHeader names the header a trusted reverse proxy puts the
	// client's address in ("Fly-Client-IP" on Fly.io), for sign-in rate
	// limits and the audit log. Empty uses the connection's address; set it
	// only behind a proxy that overwrites the header, or clients can forge it.
	ClientIPHeader string
	// LeadSourceHealth reports the search API lead provider's last error and
	// success for the lead source health panel (SearchAPIHealth wraps the
	// provider); nil for the other sources.
	LeadSourceHealth func() LeadSourceStatus
	// Payments deactivates the payment link of an invoice the Stripe
	// webhook marked paid (*stripe.Payments); nil (never a nil
	// pointer) leaves it to the link's own one-payment restriction.
	Payments agents.LinkDeactivator
	// PaymentEvents verifies and reads the Stripe webhook's events
	// (stripe.Webhook); nil answers 503, as without STRIPE_WEBHOOK_SECRET.
	PaymentEvents agents.PaymentEvents
	// StripeInstallID is this install's id as its payment links' metadata
	// carry it (stripe.Payments.InstallID): the webhook applies a
	// session not paid through an invoice's own link only when its metadata
	// names this install. "" when Stripe is off: then only sessions of an
	// invoice's own link apply.
	StripeInstallID string
	// Links creates the payment links an admin regenerates for open
	// invoices without one (the billing cycle's *stripe.Payments);
	// nil, or one not Enabled, answers "Stripe is off".
	Links agents.PaymentLinks
	// Events is the agents' event bus: the webhook tells it when money
	// moved, so the live views update; nil tells nobody.
	Events agents.Publisher
	// Mailer sends the control room's test e-mail (the one outreach uses);
	// nil answers "no mailer configured".
	Mailer agents.Mailer
	// Unsubscribe checks the tokens of unsubscribe links
	// (agents.LoadUnsubscribeTokens); nil loads them from Store on first use.
	Unsubscribe *agents.UnsubscribeTokens
	// MailEvents verifies and reads the batches of SendGrid's event webhook
	// (sendgrid.Events), with SENDGRID_WEBHOOK_VERIFICATION_KEY; nil turns
	// /email/events off (404), as in PRODUCTION without a key.
	MailEvents agents.MailEvents
	// InvoiceFiles renders invoice and receipt PDFs for the portal's and
	// the admin's downloads (*agents.InvoiceFiles); nil answers 503.
	InvoiceFiles InvoiceFiles
	// Replies sorts and applies an inbound reply (the Replies cycle): the
	// SendGrid Inbound Parse post takes the mailbox's path; nil records it
	// unsorted, the lead responded.
	Replies ReplyApplier
	// PortalLinks mails a fresh portal link to a client who asks for one on
	// the portal's sign-in page (the Collections cycle); nil: the page says
	// links cannot be mailed now.
	PortalLinks agents.PortalLinkRequester
	// Catalogues is the process's copy of the stored catalogue
	// (agents.NewCatalogues), reloaded after each edit in /admin/plans so
	// that the kind titles it gives (Catalogues.Titles) follow; nil
	// reloads nothing (the cycles read the store at every run anyway).
	Catalogues *agents.Catalogues
	// Sequences is the process's copy of the stored follow-ups
	// (agents.NewStoredSequences), the one BizDev reads, reloaded after each
	// edit in /admin/sequences; nil reloads nothing.
	Sequences *agents.StoredSequences
	// KindTitles names task kinds as the portal shows them; nil: the
	// titles of Catalogues, or without it of the default catalogue
	// (agents.DefaultCatalogue).
	KindTitles agents.KindTitles
	// PasswordCost is the bcrypt cost of passwords set in the admin; 0 is
	// db.DefaultPasswordCost. Only tests pass less.
	PasswordCost int
}

// ReplyApplier sorts, matches, stores and acts on one inbound reply
// (*agents.RepliesCycle).
type ReplyApplier interface {
	ApplyParsed(ctx context.Context, p agents.ParsedReply, simulated bool) (string, error)
}

// InvoiceFiles renders an invoice's documents (*agents.InvoiceFiles).
type InvoiceFiles interface {
	InvoicePDF(ctx context.Context, id int64) ([]byte, error)
	ReceiptPDF(ctx context.Context, id int64) ([]byte, error)
}

// AgentControl is what the web layer asks of the agent engine: states for
// the control room, readiness, and the operators' actions (*agents.Engine).
type AgentControl interface {
	Ready(ctx context.Context) error
	States() []agents.AgentState
	Ask(ctx context.Context, name, trigger string, timeout time.Duration) (agents.RunResult, error)
	Restart(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	Start(ctx context.Context, name string) error
	InjectPanic(ctx context.Context, name string) error
}

// AutopilotControl is the coordinator as the control room drives it
// (*agents.Coordinator).
type AutopilotControl interface {
	Autopilot(ctx context.Context) (enabled bool, interval time.Duration, err error)
	SetAutopilot(ctx context.Context, enabled bool, interval time.Duration) error
	RunFullCycle(ctx context.Context) ([]agents.RunResult, error)
	Running() bool
}

// Server serves HossAgent's pages.
type Server struct {
	cfg          config.Config
	store        *db.DB
	log          *slog.Logger
	now          func() time.Time
	agents       AgentControl
	autopilot    AutopilotControl
	hub          *Hub
	pages        *pageCache // rendered dashboards and control rooms, between changes
	assets       fs.FS
	assetVersion string

	random         io.Reader       // session tokens, generated passwords
	passwordCost   int             // bcrypt cost of passwords set here; 0 is the store's default
	signIns        *signInLimiter  // failed sign-ins per address, per (address, account), per account (login_limits.go)
	portalVisits   *attemptLimiter // portal pages and streams per client address
	clientIPHeader string

	leadSourceHealth func() LeadSourceStatus
	payments         *agents.PaymentLedger // the Stripe webhook applies events through it
	paymentEvents    agents.PaymentEvents  // the Stripe webhook verifies and reads events with it
	links            agents.PaymentLinks   // admin_invoices.go: missing payment links
	mail             *mailEndpoints        // unsubscribe, inbound mail, SendGrid events, test e-mail (email.go)
	invoiceFiles     InvoiceFiles          // invoice and receipt PDFs (portal, admin)
	replies          ReplyApplier          // inbound replies' sorting path (email.go)
	portalLinks      agents.PortalLinkRequester
	catalogues       *agents.Catalogues // reloaded after catalogue edits (admin_plans.go)
	portalLinkAsks   *attemptLimiter    // the sign-in page's "send me a link", per client address
	kindTitles       agents.KindTitles  // task kinds as clients read them
	// followUps is reloaded after follow-up edits (admin_sequences.go).
	followUps *agents.StoredSequences
	// background counts the work requests leave behind them (a requested
	// portal link being queued); Wait waits for it.
	background sync.WaitGroup
	// runWait is how long a manual agent run may hold its request before it
	// answers "running — see the cycle log" (admin_actions.go).
	runWait time.Duration
	// peers tells the other instances on a shared PostgreSQL database of an
	// admin's edits (Deps.Events when it is an agents.PeerPublisher); nil
	// alone on SQLite.
	peers agents.PeerPublisher
}

// New builds the server from its dependencies.
func New(d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Assets == nil {
		d.Assets = assets.FS
	}
	s := &Server{
		cfg:          d.Config,
		store:        d.Store,
		log:          d.Logger,
		now:          d.Now,
		agents:       d.Agents,
		autopilot:    d.Autopilot,
		hub:          d.Live,
		pages:        newPageCache(d.Live),
		assets:       d.Assets,
		assetVersion: assets.Version(),

		random:         rand.Reader,
		passwordCost:   d.PasswordCost,
		signIns:        newSignInLimiter(d.Now),
		portalVisits:   newAttemptLimiter(portalRefillEach, portalBurst, d.Now),
		clientIPHeader: d.ClientIPHeader,

		leadSourceHealth: d.LeadSourceHealth,
		payments:         &agents.PaymentLedger{Store: d.Store, InstallID: d.StripeInstallID, Links: d.Payments, Events: d.Events, Logger: d.Logger, Now: d.Now},
		paymentEvents:    d.PaymentEvents,
		links:            d.Links,
		mail:             newMailEndpoints(d),
		invoiceFiles:     d.InvoiceFiles,
		replies:          d.Replies,
		portalLinks:      d.PortalLinks,
		catalogues:       d.Catalogues,
		followUps:        d.Sequences,
		portalLinkAsks:   newAttemptLimiter(portalAskRefillEach, portalAskBurst, d.Now),
		kindTitles:       d.KindTitles,
		runWait:          defaultRunWait,
	}
	if p, ok := d.Events.(agents.PeerPublisher); ok {
		s.peers = p
	}
	if s.kindTitles == nil {
		// The stored catalogue's titles when the process holds it, else
		// the default catalogue's.
		if d.Catalogues != nil {
			s.kindTitles = d.Catalogues.Titles()
		} else {
			s.kindTitles = agents.DefaultCatalogue(d.Config.Stripe.DefaultCurrency).Titles()
		}
	}
	if s.hub != nil {
		s.hub.setAccessCheck(s.streamAccess)
		s.hub.setStreamLimits(d.Config.LiveStreams)
	}
	return s
}

// Wait waits for the work requests left behind them (portal links being
// queued); main calls it before closing the store, tests before reading it.
func (s *Server) Wait() { s.background.Wait() }

// Handler returns the router: every route of the app, one line each, with
// the middleware each group of routes passes through. The handlers live in
// one file per area; no route is registered anywhere else.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverPanics, s.logRequests, securityHeaders, s.pages.invalidateOnChange,
		// Every POST, PUT, PATCH and DELETE from a browser on another site
		// is refused, except on the server-to-server endpoints, which are
		// called by Stripe and the mail provider and verify their callers.
		s.crossOriginProtection(
			"POST /stripe/webhook",
			"POST /email/inbound",
			"POST /email/inbound/{secret}",
			"POST /email/events",
			"POST /unsubscribe/{token}",
		),
		// Every query, path and form value must be text (no NUL, control
		// character or broken UTF-8), except where Stripe and the mail
		// provider send it: those endpoints clean their own. Form bodies are
		// read up to their route's limit (formLimit, middleware.go).
		s.refuseBadText(r, "POST /stripe/webhook", "POST /email/inbound/{secret}", "POST /email/events"))

	// Public: no session is read.
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Post("/stripe/webhook", s.stripeWebhook) // verified by its Stripe signature
	r.Get("/unsubscribe/{token}", s.unsubscribePage)
	r.Post("/unsubscribe/{token}", s.unsubscribe)
	r.Post("/email/inbound/{secret}", s.emailInbound) // the secret in the path is the credential
	r.Post("/email/events", s.emailEvents)            // verified by SendGrid's signature when a key is set
	r.Handle("/assets/*", s.assetHandler())           // GET and HEAD; other methods 405
	r.Get("/portal", s.portal)                        // the client's portal behind its session cookie, else the sign-in page
	r.Get("/portal/link/{token}", s.openPortalLink)   // an e-mailed link: exchanged for a session cookie, then 303 /portal
	r.Get("/portal/{token}", s.openOperatorLink)      // the operator's link: the same exchange
	r.Post("/portal/link", s.requestPortalLink)       // the sign-in page: mail me a fresh link
	r.Post("/portal/logout", s.portalLogout)          // ends the portal session
	r.Get("/portal/invoices/{id}", s.portalInvoice)   // the session customer's invoices only
	r.Get("/portal/invoices/{id}/invoice.pdf", s.portalInvoicePDF)
	r.Get("/portal/invoices/{id}/receipt.pdf", s.portalReceiptPDF)
	r.Get("/events/portal", s.portalEvents) // the portal's live stream, by the session cookie
	r.Get("/paid", s.paid)                  // where Stripe sends a payer back (?session_id=cs_…)

	// The JSON API authenticates each request itself (apiAuth): a bearer API
	// token, or else an admin's session. Read-only; its errors are JSON.
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(s.apiAuth)
		r.NotFound(apiNotFound)
		r.MethodNotAllowed(apiMethodNotAllowed)
		r.Get("/leads", s.apiLeads)
		r.Get("/customers", s.apiCustomers)
		r.Get("/tasks", s.apiTasks)
		r.Get("/invoices", s.apiInvoices)
		r.Get("/agents", s.apiAgents)
		r.Get("/runs", s.apiRuns)
		r.Get("/leads/{id}", s.apiLead)
		r.Get("/customers/{id}", s.apiCustomer)
		r.Get("/tasks/{id}", s.apiTask)
		r.Get("/invoices/{id}", s.apiInvoice)
	})
	r.With(s.apiAuth).Get("/metrics", s.metricsHandler().ServeHTTP) // Prometheus, same authentication as the API

	// Operator pages: the session cookie is read.
	r.Group(func(r chi.Router) {
		r.Use(s.loadSession)
		r.Get("/login", s.loginForm)
		r.Post("/login", s.login)
		r.Post("/logout", s.logout)
		r.Get("/", s.dashboard) // any operator; anyone when DASHBOARD_PUBLIC
		r.Get("/events/dashboard", s.dashboardEvents)
		r.With(s.requireSignIn).Get("/account/password", s.passwordForm)
		r.With(s.requireSignIn).Post("/account/password", s.changePassword)

		// Admins only: the control room, its records and every admin
		// action. The catch-all keeps paths that have no route behind the
		// sign-in too (404 for an admin); a route's other methods also
		// fall through to it (404), except the control room's actions.
		r.Group(func(r chi.Router) {
			r.Use(s.requireAdmin)
			r.Get("/admin", s.admin)
			r.Get("/events/admin", s.adminEvents)
			r.Get("/events/admin/{kind}/{id}", s.recordEvents) // a record page's live regions (admin_records_live.go)

			// Records: detail pages, activity, CSV, portal links, API tokens.
			r.Get("/admin/leads/{id}", s.leadDetail)
			r.Get("/admin/customers/{id}", s.customerDetail)
			r.Get("/admin/tasks/{id}", s.taskDetail)
			r.Get("/admin/invoices/{id}", s.invoiceDetail)
			r.Get("/admin/activity", s.activity)
			r.Get("/admin/export/leads.csv", s.exportCSV("leads"))
			r.Get("/admin/export/customers.csv", s.exportCSV("customers"))
			r.Get("/admin/export/tasks.csv", s.exportCSV("tasks"))
			r.Get("/admin/export/invoices.csv", s.exportCSV("invoices"))
			r.With(s.refuseBadFormText(maxImportBody)).Post("/admin/import/leads", s.importLeads) // its form text is checked after the sign-in
			r.Post("/admin/customers/{id}/portal/rotate", s.rotatePortalLink)
			r.Post("/admin/customers/{id}/portal/revoke", s.revokePortalLink)
			r.Post("/admin/customers/{id}/mail-flag/clear", s.clearMailFlag)
			r.Get("/admin/client-mail", s.clientMail)
			r.Get("/admin/client-mail/{id}", s.clientMessage)
			r.Get("/admin/client-mail/{id}/attachments/{aid}", s.clientAttachment)
			r.Get("/admin/invoices/{id}/invoice.pdf", s.adminInvoicePDF)
			r.Get("/admin/invoices/{id}/receipt.pdf", s.adminReceiptPDF)
			r.Get("/admin/api-tokens", s.apiTokens)
			r.Post("/admin/api-tokens", s.createAPIToken)
			r.Post("/admin/api-tokens/{id}/revoke", s.revokeAPIToken)
			r.Get("/admin/runs", s.adminRuns) // issue 13: the cycle log and audit log pages
			r.Get("/events/admin/runs", s.adminRunsEvents)
			r.Get("/admin/audit", s.adminAudit)
			r.Get("/events/admin/audit", s.adminAuditEvents)
			r.Get("/admin/users", s.users)
			r.Post("/admin/users", s.addUser)
			r.Post("/admin/users/{id}/reset", s.userAction("reset"))
			r.Post("/admin/users/{id}/role", s.userAction("role"))
			r.Post("/admin/users/{id}/remove", s.userAction("remove"))
			r.Get("/admin/suppressions", s.suppressions) // the list; ?q= a prefix, ?p= the page
			r.Post("/admin/suppressions", s.addSuppression)
			r.Get("/admin/plans", s.plans) // the catalogue editor; its actions are below
			// The follow-up editor; its action is below.
			r.Get("/admin/sequences", s.sequences)
			// The review queue (OUTREACH_REVIEW); its actions are below.
			r.Get("/admin/outreach/drafts", s.drafts)

			// The control room's actions (agents, autopilot, outreach,
			// invoices): POST only. Each is registered for every method and
			// postOnly answers any other with 405 and Allow: POST, where the
			// catch-all would answer 404.
			r.Group(func(r chi.Router) {
				r.Use(s.postOnly)
				r.HandleFunc("/admin/agents/{name}/run", s.agentRun)
				r.HandleFunc("/admin/agents/{name}/restart", s.agentRestart)
				r.HandleFunc("/admin/agents/{name}/stop", s.agentStop)
				r.HandleFunc("/admin/agents/{name}/start", s.agentStart)
				if s.cfg.IsDevelopment() {
					// Crash injection exists only in development: elsewhere
					// the route is not there at all (404) and the button is
					// not rendered.
					r.HandleFunc("/admin/agents/{name}/crash", s.agentCrash)
				}
				r.HandleFunc("/admin/autopilot", s.autopilotSwitch)
				r.HandleFunc("/admin/autopilot/interval", s.autopilotInterval)
				r.HandleFunc("/admin/cycle", s.fullCycle)
				r.HandleFunc("/admin/outreach/requeue-dry-run", s.requeueDryRun)
				r.HandleFunc("/admin/outreach/caps", s.saveEmailCaps)
				r.HandleFunc("/admin/outreach/resume", s.resumeOutreach) // after a pause on provider errors
				r.HandleFunc("/admin/outreach/test-mail", s.sendTestMail)
				r.HandleFunc("/admin/outreach/drafts/approve", s.approveShown) // the ids the page showed, no others
				r.HandleFunc("/admin/outreach/drafts/{id}/approve", s.approveDraft)
				r.HandleFunc("/admin/outreach/drafts/{id}/reject", s.rejectDraft)
				r.With(s.refuseBadFormText(maxDraftForm)).HandleFunc("/admin/outreach/drafts/{id}/edit", s.editDraft) // its form text is checked after the sign-in
				r.HandleFunc("/admin/replies/{id}/class", s.changeReplyClass)
				r.HandleFunc("/admin/leads/{id}/sequence/stop", s.stopSequence)
				r.HandleFunc("/admin/invoices/{id}/mark-paid", s.markInvoicePaid)
				r.HandleFunc("/admin/invoices/{id}/void", s.voidInvoice)
				r.HandleFunc("/admin/invoices/{id}/regenerate-link", s.regenerateInvoiceLink)
				r.HandleFunc("/admin/invoices/regenerate-links", s.regenerateMissingLinks)
				r.HandleFunc("/admin/kinds/{kind}/edit", s.editKind)
				r.HandleFunc("/admin/plans/add", s.addPlan)
				r.HandleFunc("/admin/plans/{name}/edit", s.editPlan)
				r.HandleFunc("/admin/plans/{name}/deactivate", s.deactivatePlan)
				r.HandleFunc("/admin/plans/{name}/activate", s.activatePlan)
				r.HandleFunc("/admin/customers/{id}/plan", s.setCustomerPlan)
				r.With(s.refuseBadFormText(maxSequenceForm)).HandleFunc("/admin/sequences/{pack}", s.saveSequence) // its form text is checked after the sign-in
				// Fixing data (admin_fixdata.go): each confirmed, audited in
				// its transaction, and live.
				r.HandleFunc("/admin/leads/mark-dead", s.markLeads(db.LeadDead)) // the ticked rows of the leads table, no others
				r.HandleFunc("/admin/leads/mark-responded", s.markLeads(db.LeadResponded))
				r.HandleFunc("/admin/leads/{id}/mark-dead", s.markLead(db.LeadDead))
				r.HandleFunc("/admin/leads/{id}/mark-responded", s.markLead(db.LeadResponded))
				r.HandleFunc("/admin/tasks/retry", s.retryTasks) // the failed rows the tasks table shows, no others
				r.HandleFunc("/admin/tasks/{id}/retry", s.retryTask)
				r.HandleFunc("/admin/messages/{id}/retry", s.retryMessage)
				r.HandleFunc("/admin/customers/{id}/edit", s.editCustomer)
				r.HandleFunc("/admin/suppressions/{id}/remove", s.removeSuppression)
			})
			r.HandleFunc("/admin/*", s.notFound)
		})
	})

	r.NotFound(s.notFound)
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This address does not accept "+r.Method+" requests.")
	})
	return r
}

// assetHandler serves the embedded assets. URLs carry a content hash
// (?v=…), so every file may be cached for a year. It serves files only: a
// directory, a path that is not in canonical form ("vendor/", "css/.",
// "a//b", "x/../y") or a missing file is the plain 404 page, never a
// listing of what is there (http.FileServerFS would list a directory and
// redirect non-canonical paths to it), and only to GET and HEAD (405 with
// Allow for any other method).
func (s *Server) assetHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "Files here are read with GET.")
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/assets/")
		if !ok || !fs.ValidPath(name) || name == "." {
			s.notFound(w, r)
			return
		}
		f, err := s.assets.Open(name)
		if err != nil {
			s.notFound(w, r)
			return
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil || !info.Mode().IsRegular() {
			s.notFound(w, r)
			return
		}
		content, ok := f.(io.ReadSeeker)
		if !ok { // every embed.FS file seeks; another fs.FS (tests) may not
			b, err := io.ReadAll(f)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			content = bytes.NewReader(b)
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		http.ServeContent(w, r, info.Name(), info.ModTime(), content)
	})
}
