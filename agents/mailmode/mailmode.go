// Package mailmode names the ways outreach mail leaves HossAgent
// (EMAIL_MODE). It is the one definition: app/config validates the
// variable against it and the agents' mailers report it, and it imports
// nothing, so the configuration does not link the agents, the store or any
// mail library.
package mailmode

// The e-mail modes, as EMAIL_MODE spells them.
const (
	DryRun   = "DRY_RUN"  // recorded in the outbox, never sent (the default)
	SMTP     = "SMTP"     // sent through an SMTP server
	SendGrid = "SENDGRID" // sent through SendGrid's v3 API
)
