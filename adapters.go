package main

// The adapters main wires: one constructor per vendor package (SMTP,
// SendGrid, the lead search API, Stripe, OpenAI, the invoice PDFs), each chosen by the
// configuration, and buildAgents, which hands them to the cycles of
// agents.Registry under one supervisor tree. Only main imports the vendor
// adapters; app and agents see their ports.

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/imap"
	"github.com/hossagent/hossagent/agents/invoicepdf"
	"github.com/hossagent/hossagent/agents/openai"
	"github.com/hossagent/hossagent/agents/searchapi"
	"github.com/hossagent/hossagent/agents/sendgrid"
	"github.com/hossagent/hossagent/agents/smtp"
	"github.com/hossagent/hossagent/agents/stripe"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// builtAgents is what buildAgents wires: the engine and its coordinator,
// and what the web layer takes from the Collections agent (fresh portal
// links on request, the invoice documents).
type builtAgents struct {
	engine       *agents.Engine
	coordinator  *agents.Coordinator
	collections  *agents.CollectionsCycle
	invoiceFiles *agents.InvoiceFiles
	catalogues   *agents.Catalogues
	replies      *agents.RepliesCycle
	sequences    *agents.StoredSequences
}

// buildAgents wires every agent of agents.Registry to its adapters and puts them, with
// the coordinator, under one supervisor tree.
func buildAgents(cfg config.Config, store *db.DB, events agents.Publisher, mailer agents.Mailer, search *searchapi.Leads, payments *stripe.Payments, log *slog.Logger) (builtAgents, error) {
	var seed [16]byte
	if _, err := cryptorand.Read(seed[:]); err != nil {
		return builtAgents{}, err
	}
	env := agents.Env{
		Now:    time.Now,
		Random: cryptorand.Reader,
		Rand:   agents.NewLockedRand(rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))),
		Events: events,
	}

	var provider agents.LeadProvider = agents.NewSyntheticLeads(env.Rand)
	if search != nil {
		provider = search
	}
	leadSource := agents.NewLeadSourceCycle(store, env, provider, agents.LeadSourceOptions{MaxPerCycle: cfg.Leads.MaxPerCycle})

	// The follow-ups live in the store, editable in /admin/sequences; the
	// built-in ones seed an empty store.
	if _, err := agents.SeedSequences(context.Background(), store); err != nil {
		return builtAgents{}, err
	}
	sequences, err := agents.NewStoredSequences(context.Background(), store)
	if err != nil {
		return builtAgents{}, err
	}
	bizdev := agents.NewBizDevCycle(store, env, mailer, agents.BizDevOptions{
		MaxPerCycle: cfg.Email.MaxPerCycle, MaxPerHour: cfg.Email.MaxPerHour, MaxPerDay: cfg.Email.MaxPerDay,
		SendDelayMin: cfg.Email.SendDelayMin, SendDelayMax: cfg.Email.SendDelayMax,
		From: cfg.Email.From, SenderName: cfg.Email.SenderName, Offer: cfg.Email.Offer, Signature: cfg.Email.Signature,
		PostalAddress: cfg.Email.PostalAddress, BaseURL: cfg.BaseURL.String(),
		PauseAfterErrors: cfg.Email.PauseAfterErrors, SendWindow: cfg.Email.SendWindow, Location: cfg.Email.SendTimezone,
		Sequences: sequences, Review: cfg.Email.Review,
	})

	// The catalogue lives in the store, editable in /admin/plans; the
	// default one seeds an empty store. catalogues is the process's copy,
	// reloaded after each edit, for the kind titles clients read.
	catalogue := agents.DefaultCatalogue(cfg.Stripe.DefaultCurrency)
	if err := catalogue.Validate(); err != nil {
		return builtAgents{}, err
	}
	if _, err := agents.SeedCatalogue(context.Background(), store, catalogue); err != nil {
		return builtAgents{}, err
	}
	catalogues, err := agents.NewCatalogues(context.Background(), store)
	if err != nil {
		return builtAgents{}, err
	}
	// Replies are read from the IMAP mailbox when one is configured (SendGrid's
	// Inbound Parse and the simulator take the same sorting path).
	var box agents.Mailbox
	imapOpts := imap.Options{Host: cfg.IMAP.Host, Port: cfg.IMAP.Port, Username: cfg.IMAP.Username,
		Password: cfg.IMAP.Password, TLS: cfg.IMAP.TLS, Mailbox: cfg.IMAP.Mailbox}
	if cfg.IMAP.Enabled() {
		box = imap.New(imapOpts)
	}
	replyOpts := agents.RepliesOptions{Currency: cfg.Stripe.DefaultCurrency}
	var executor agents.Executor = &agents.BuiltinExecutor{CostCents: cfg.Exec.BuiltinCostCents}
	if cfg.Exec.Kind == config.ExecOpenAI {
		llm, err := openai.New(openai.Options{
			APIKey: cfg.Exec.OpenAIAPIKey, BaseURL: cfg.Exec.OpenAIBaseURL, Model: cfg.Exec.OpenAIModel,
			InputCentsPerMTok: cfg.Exec.OpenAIInputCentsPerMTok, OutputCentsPerMTok: cfg.Exec.OpenAIOutputCentsPerMTok,
			Timeout: cfg.Exec.OpenAITimeout,
		})
		if err != nil {
			return builtAgents{}, err
		}
		executor = llm
		// The LLM executor also gives the second opinion on the replies
		// its rules are unsure about, its cost in the tasks' currency.
		replyOpts.Classifier = llm
	}
	replies := agents.NewRepliesCycle(store, env, box, replyOpts)

	var onboarding agents.Cycle = agents.NewOnboardingCycle(store, env, catalogue, agents.OnboardingOptions{})
	// In development with synthetic leads and no real mail, nobody can
	// answer: the prospect simulator plays a share of the prospects (its
	// replies are labelled simulated) one autopilot interval after contact.
	if cfg.IsDevelopment() && cfg.Leads.Source == config.LeadSynthetic && cfg.Email.Mode == agents.MailModeDryRun {
		sim := agents.NewProspectSimulator(store, env, agents.SimulatorOptions{MinDelay: min(cfg.AutopilotInterval, 2*time.Minute), Replies: replies})
		onboarding = agents.Sequence(sim, onboarding)
		log.Info("prospect simulator on: a share of contacted leads will reply (labelled simulated)")
	}

	ops := agents.NewOpsCycle(store, env, executor, agents.OpsOptions{})
	var links agents.PaymentLinks = agents.DisabledPayments{}
	if payments != nil {
		links = payments
	}
	billing := agents.NewBillingCycle(store, env, links, agents.BillingOptions{
		Currency: cfg.Stripe.DefaultCurrency, MinAmountCents: cfg.Stripe.MinAmountCents, MaxAmountCents: cfg.Stripe.MaxAmountCents,
		BaseURL: cfg.BaseURL.String(),
	})

	// Collections writes to clients through the outreach mailer (one
	// account, one sender address) but with its own outbox and caps; an
	// invoice e-mail waits up to an hour for its payment link when Stripe
	// is on, so that it carries PAY NOW.
	company := agents.CompanyInfo{Name: cfg.Company.Name, PostalAddress: cfg.Company.PostalAddress, BillingEmail: cfg.Company.BillingEmail}
	docs := invoicepdf.New()
	var waitForLink time.Duration
	if payments != nil {
		waitForLink = time.Hour
	}
	collections := agents.NewCollectionsCycle(store, env, mailer, agents.CollectionsOptions{
		Company: company, BaseURL: cfg.BaseURL.String(), From: cfg.Email.From, Schedule: cfg.Collections.Schedule,
		Caps: db.ClientCaps{PerHour: cfg.Collections.MaxPerHour, PerDay: cfg.Collections.MaxPerDay}, LinkTTL: cfg.Collections.LinkTTL,
		WaitForLink: waitForLink, Titles: catalogues.Titles(), Plans: catalogues.Plans(), Docs: docs,
	})
	files := &agents.InvoiceFiles{Store: store, Docs: docs, Company: company, Titles: catalogues.Titles(),
		PortalURL: strings.TrimRight(cfg.BaseURL.String(), "/") + "/portal"}

	engine := agents.NewEngine(agents.EngineConfig{
		Store: store, Events: events, Logger: log, Now: time.Now,
		Cycles: map[string]agents.Cycle{
			agents.LeadSource: leadSource, agents.BizDev: bizdev, agents.Replies: replies, agents.Onboarding: onboarding,
			agents.Ops: ops, agents.Billing: billing, agents.Collections: collections,
		},
		AllowCrashInjection: cfg.IsDevelopment(),
	})
	if err := engine.Err(); err != nil {
		return builtAgents{}, err
	}
	coordinator := agents.NewCoordinator(agents.CoordinatorConfig{
		Engine: engine, Store: store, Events: events, Logger: log, Now: time.Now,
		Enabled: cfg.AutopilotEnabled, Interval: cfg.AutopilotInterval,
	})
	engine.Add(coordinator)
	if cfg.IMAP.Enabled() {
		// New mail wakes the Replies agent between ticks (IDLE on a
		// connection of its own; polling where the server has no IDLE),
		// through its mailbox, only while the autopilot is ON.
		engine.AddIsolated("watch:replies", agents.NewRepliesWatcher(agents.RepliesWatchConfig{
			Runner: engine, Logger: log, Now: time.Now,
			Autopilot: func(ctx context.Context) (bool, error) {
				on, _, err := coordinator.Autopilot(ctx)
				return on, err
			},
			Open: func() agents.MailWatch { return imap.New(imapOpts) },
		}))
	}
	return builtAgents{engine: engine, coordinator: coordinator, collections: collections, invoiceFiles: files, catalogues: catalogues, replies: replies, sequences: sequences}, nil
}

// newMailer is the outreach transport EMAIL_MODE names. A SendGrid event
// verification key that cannot be read stops the start too.
func newMailer(cfg config.Config) (agents.Mailer, error) {
	if k := cfg.Email.SendGridVerificationKey; k != "" {
		if _, err := sendgrid.NewEventVerifier(k); err != nil {
			return nil, fmt.Errorf("SENDGRID_WEBHOOK_VERIFICATION_KEY: %w", err)
		}
	}
	switch cfg.Email.Mode {
	case agents.MailModeSMTP:
		return smtp.New(smtp.Options{Host: cfg.Email.SMTPHost, Port: cfg.Email.SMTPPort,
			Username: cfg.Email.SMTPUsername, Password: cfg.Email.SMTPPassword, TLS: cfg.Email.SMTPTLS,
			From: cfg.Email.From, FromName: cfg.Email.SenderName, ReplyTo: cfg.Email.ReplyTo})
	case agents.MailModeSendGrid:
		return sendgrid.NewMailer(sendgrid.Options{APIKey: cfg.Email.SendGridAPIKey,
			APIBase: cfg.Email.SendGridAPIBase, Sandbox: cfg.Email.SendGridSandbox,
			From: cfg.Email.From, FromName: cfg.Email.SenderName, ReplyTo: cfg.Email.ReplyTo})
	}
	return agents.NewDryRunMailer(), nil
}

// newSearchAPI is the lead search API client when LEAD_SOURCE=search_api.
func newSearchAPI(cfg config.Config) *searchapi.Leads {
	if cfg.Leads.Source != config.LeadSearchAPI {
		return nil
	}
	return searchapi.New(agents.Env{Now: time.Now}, searchapi.Options{
		URL: cfg.Leads.SearchAPIURL, Key: cfg.Leads.SearchAPIKey, Niche: cfg.Leads.Niche, Geography: cfg.Leads.Geography,
		MinCompanySize: cfg.Leads.MinCompanySize, MaxCompanySize: cfg.Leads.MaxCompanySize,
	})
}

// newStripe is the Stripe client when ENABLE_STRIPE is on, else nil. Its
// install id (drawn once, kept in settings) scopes idempotency keys, so two
// installs on one Stripe account never share prices or links.
func newStripe(ctx context.Context, cfg config.Config, store *db.DB, log *slog.Logger) (*stripe.Payments, error) {
	if !cfg.Stripe.Enabled {
		return nil, nil
	}
	install, err := store.SettingOrInit(ctx, "install.id", func() (string, error) {
		_, hash, err := db.NewToken(cryptorand.Reader)
		return hash[:16], err
	})
	if err != nil {
		return nil, err
	}
	return stripe.New(stripe.Options{APIKey: cfg.Stripe.APIKey, APIBase: cfg.Stripe.APIBase,
		Logger: log, InstallID: "hoss-" + install}), nil
}
