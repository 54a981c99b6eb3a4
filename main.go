// Command hossagent runs the HossAgent business engine: the web app, the
// agents and the store, in one binary. main only wires things together.
//
//	hossagent [serve]          start the app (the default)
//	hossagent check [--db F]   prove the invariants of the database
//	hossagent reconcile        apply Stripe payments whose webhook was lost
//	hossagent backup PATH      consistent copy of the database
//	hossagent seed [flags]     fill an empty development database with made-up data
//
// serve and seed own the database: each takes the exclusive lock of
// DATA_DIR/hossagent.lock and refuses to run while another process holds
// it. check, backup and reconcile take no lock and run beside the app.
package main

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/cluster"
	"github.com/hossagent/hossagent/agents/sendgrid"
	"github.com/hossagent/hossagent/agents/stripe"
	"github.com/hossagent/hossagent/app"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// shutdownTimeout bounds a graceful stop: requests drained, database closed.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main with its inputs made explicit, so tests can drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "check":
		return check(ctx, args, getenv, stdout, stderr)
	case "reconcile":
		return reconcile(ctx, args, getenv, stdout, stderr)
	case "backup":
		return backup(ctx, args, getenv, stdout, stderr)
	case "seed":
		return seed(ctx, args, getenv, stdout, stderr)
	case "user":
		return userCmd(ctx, args, getenv, cryptorand.Reader, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: hossagent [serve] | check [--db PATH] | reconcile | backup PATH | seed [--leads N --customers N --tasks N --invoices N --seed N --now T --db PATH] | user add|reset|remove|list")
		return 0
	}
	fmt.Fprintf(stderr, "hossagent: unknown command %q (want serve, check, reconcile, backup, seed or user)\n", cmd)
	return 2
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, warnings, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := newLogger(cfg.LogFormat, stderr)
	tuneGC(getenv)
	for _, w := range warnings {
		log.Warn("CONFIGURATION: " + w)
	}

	// One process owns the database: DATA_DIR must be writable, and its
	// lock free. The lock is held until serve returns, or by the kernel
	// until the process dies; the crash recovery below relies on it.
	// On PostgreSQL several instances share the database and no file lock
	// applies.
	where := databaseOf(cfg)
	if cfg.DatabaseURL == "" {
		lock, err := takeDataDir(where, "serve", time.Now())
		if err != nil {
			log.Error("cannot start: " + err.Error())
			return 1
		}
		defer lock.Release()
	}

	store, err := openStore(ctx, where, storeMigrate, db.WithGuard(app.DeliverabilityGuard(cfg.Email)))
	if err != nil {
		log.Error("cannot open database", "err", err)
		return 1
	}
	defer store.Close()

	// A crash may have left tasks, outbox messages and cycle-log runs in
	// flight: the agents settle them before anything runs (a failure is
	// logged there). On PostgreSQL another instance may own them and be
	// running: only the instance that takes them over settles them
	// (agents/cluster), never one that starts.
	if !store.Postgres() {
		if err := agents.RecoverAfterCrash(ctx, store, time.Now(), log); err != nil {
			return 1
		}
	}

	// Hashing the first admin's password takes a good part of a second: it
	// runs while the server starts listening, and a sign-in that comes
	// before it is done waits for it. A failure still stops the start.
	boot := app.StartBootstrapAdmin(ctx, store, cfg.AdminEmail, cfg.AdminPassword, cryptorand.Reader, stdout)

	bus := agents.NewBus()
	// On PostgreSQL every event also crosses to the other instances
	// (cluster.Outbox), so that each one's live pages see every change.
	var events agents.Publisher = bus
	var outbox *cluster.Outbox
	if store.Postgres() {
		outbox = cluster.NewOutbox(bus)
		events = outbox
	}
	mailer, err := newMailer(cfg)
	if err != nil {
		log.Error("cannot set up e-mail", "err", err)
		return 1
	}
	payments, err := newStripe(ctx, cfg, store, log)
	if err != nil {
		log.Error("cannot set up Stripe", "err", err)
		return 1
	}
	search := newSearchAPI(cfg)
	built, err := buildAgents(cfg, store, events, mailer, search, payments, log)
	engine, coordinator := built.engine, built.coordinator
	if err != nil {
		log.Error("cannot build the agents", "err", err)
		return 1
	}
	// On SQLite this process runs the agents. On PostgreSQL the instance
	// holding the agents' lock does; the others stand by to take over, and
	// their control rooms act through the owner (agents/cluster).
	var control app.AgentControl = engine
	var autopilot app.AutopilotControl = coordinator
	runAgents := engine.Serve
	var ownershipLost <-chan error // nil on SQLite: never ready
	if outbox != nil {
		svc := cluster.New(cluster.Config{Store: store, Instance: osInstanceID(cfg, getenv), Engine: engine, Coordinator: coordinator,
			Outbox: outbox, Logger: log, Now: time.Now, Takeover: cfg.TakeoverTimeout,
			// An admin's edit on another instance: this one's copies follow.
			Reload: map[string]func(context.Context) error{
				agents.EventSequencesEdited: built.sequences.Reload,
				agents.EventCatalogueEdited: built.catalogues.Reload,
			}})
		control, autopilot, runAgents = svc, svc, svc.Run
		log.Info("several instances: standing by for the agents' lock", "instance", svc.Instance(), "takeover_timeout", cfg.TakeoverTimeout)
	}
	agentsCtx, stopAgents := context.WithCancel(context.Background())
	defer stopAgents()
	agentsDone := make(chan error, 1)
	go func() { agentsDone <- runAgents(agentsCtx) }()
	if outbox != nil {
		// The cluster service ends early only when this instance lost the
		// agents' lock (or could not take them over): the process stops,
		// and its platform starts it again as a standby.
		ownershipLost = agentsDone
	}

	deps := app.Deps{Config: cfg, Store: store, Logger: log, Agents: control, Autopilot: autopilot,
		Live: app.NewHub(bus), Events: events, Mailer: mailer, ClientIPHeader: cfg.ClientIPHeader, StripeInstallID: payments.InstallID(),
		PaymentEvents: stripe.Webhook{}, MailEvents: sendgrid.Events{},
		InvoiceFiles: built.invoiceFiles, PortalLinks: built.collections, Catalogues: built.catalogues, Replies: built.replies, Sequences: built.sequences}
	if payments != nil {
		deps.Payments, deps.Links = payments, payments // never a typed nil in the interface
	}
	if search != nil {
		deps.LeadSourceHealth = app.SearchAPIHealth(search)
	}
	server := app.New(deps)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Addr, "err", err)
		return 1
	}
	httpServer := &http.Server{
		Handler:           boot.HoldSignIns(server.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(ln) }()
	log.Info("HossAgent serving", "url", "http://"+ln.Addr().String(), "base_url", cfg.BaseURL.String(),
		"release_mode", cfg.ReleaseMode, "email_mode", cfg.Email.Mode, "lead_source", cfg.Leads.Source,
		"stripe", cfg.Stripe.Enabled, "data", store.Where())

	code, bootDone := 0, boot.Done()
	agentsEnded := false
	for waiting := true; waiting; {
		select {
		case err := <-served:
			log.Error("server stopped", "err", err)
			return 1
		case err := <-ownershipLost:
			log.Error("the agents stopped; stopping so that this instance starts again as a standby", "err", err)
			code, waiting, agentsEnded = 1, false, true
		case <-bootDone:
			bootDone = nil // reported once
			if err := boot.Err(); err != nil && ctx.Err() == nil {
				log.Error("cannot create the first admin", "err", err)
				code, waiting = 1, false
			}
		case <-ctx.Done():
			waiting = false
		}
	}
	log.Info("shutting down", "timeout", shutdownTimeout)
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	bus.Close() // ends live streams so that draining does not wait for them
	if err := httpServer.Shutdown(stopCtx); err != nil {
		log.Error("requests not drained in time", "err", err)
		_ = httpServer.Close()
	}
	server.Wait() // portal links being queued after their answer
	// The bootstrap uses the store: it ends before the store is closed. One
	// that failed while the signal came is reported too.
	if err := boot.Wait(stopCtx); err != nil && code == 0 && !errors.Is(err, context.Canceled) {
		log.Error("cannot create the first admin", "err", err)
		code = 1
	}
	stopAgents()
	if !agentsEnded {
		select {
		case err := <-agentsDone:
			if err != nil {
				log.Error("agents stopped with an error", "err", err)
			}
		case <-stopCtx.Done():
			log.Error("agents did not stop in time")
		}
	}
	if err := store.Close(); err != nil {
		log.Error("closing database", "err", err)
		return 1
	}
	if code != 0 {
		return code
	}
	log.Info("stopped cleanly")
	return 0
}

// defaultGCPercent is the collector's target unless GOGC says otherwise.
// Each open live stream holds about 40 KB that the collector cannot free
// (net/http's buffers, two goroutines' stacks); with Go's default of 100 the
// heap may then grow to twice what is live before a collection. At 50 it
// grows by half: 5,000 streams fit in under 300 MB, for a few percent more
// of one core spent collecting (BENCHMARKS.md).
const defaultGCPercent = 50

// tuneGC applies defaultGCPercent when the operator did not set GOGC.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
