// Command hossagent runs the HossAgent business engine: the web app, the
// agents and the store, in one binary. main only wires things together.
//
//	hossagent [serve]          start the app (the default)
//	hossagent check [--db F]   prove the invariants of the database
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: hossagent [serve] | check [--db PATH]")
		return 0
	}
	fmt.Fprintf(stderr, "hossagent: unknown command %q (want serve or check)\n", cmd)
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
	for _, w := range warnings {
		log.Warn("UNSAFE CONFIGURATION CORRECTED: " + w)
	}

	store, err := db.Open(ctx, cfg.DatabasePath(db.FileName))
	if err != nil {
		log.Error("cannot open database", "err", err)
		return 1
	}
	defer store.Close()

	server := app.New(app.Deps{Config: cfg, Store: store, Logger: log})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Addr, "err", err)
		return 1
	}
	httpServer := &http.Server{
		Handler:           server.Handler(),
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
		"stripe", cfg.Stripe.Enabled, "data", store.Path())

	select {
	case err := <-served:
		log.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", shutdownTimeout)
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := httpServer.Shutdown(stopCtx); err != nil {
		log.Error("requests not drained in time", "err", err)
		_ = httpServer.Close()
	}
	if err := store.Close(); err != nil {
		log.Error("closing database", "err", err)
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// check proves the eight invariants on a database file, printing each with
// OK or its violations. It exits 1 on any violation, 2 when it cannot check.
func check(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("db", "", "database file to check (default: $DATA_DIR/"+db.FileName+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		cfg, _, err := config.Load(getenv)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		*path = cfg.DatabasePath(db.FileName)
	}
	store, err := db.OpenExisting(ctx, *path)
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	defer store.Close()
	results, err := store.CheckInvariants(ctx, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 2
	}
	fmt.Fprintf(stdout, "checking %s\n", *path)
	failed := 0
	for _, r := range results {
		if r.OK() {
			fmt.Fprintf(stdout, "%d. %-58s OK\n", r.Number, r.Name)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "%d. %-58s VIOLATED (%d)\n", r.Number, r.Name, r.Count)
		for _, v := range r.Violations {
			fmt.Fprintf(stdout, "     - %s\n", v)
		}
		if r.Count > len(r.Violations) {
			fmt.Fprintf(stdout, "     … and %d more\n", r.Count-len(r.Violations))
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d invariants violated\n", failed, len(results))
		return 1
	}
	fmt.Fprintf(stdout, "all %d invariants hold\n", len(results))
	return 0
}
