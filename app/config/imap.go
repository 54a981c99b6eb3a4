package config

// IMAP is the replies mailbox read over IMAP (the reply agent); Host is
// empty when no mailbox is configured.
type IMAP struct {
	// Host is IMAP_HOST; empty turns the IMAP reply agent off.
	Host string
	// Port is IMAP_PORT: 993 by default with TLS=tls, 143 with starttls
	// or none.
	Port int
	// Username and Password are IMAP_USERNAME and IMAP_PASSWORD (a
	// secret); both are required when Host is set.
	Username, Password string
	// TLS is IMAP_TLS: "tls" (implicit TLS, the default), "starttls"
	// (required STARTTLS) or "none" (plain: a server on the same host or a
	// test server only; PRODUCTION refuses it for another host).
	TLS string
	// Mailbox is IMAP_MAILBOX, the mailbox read (default INBOX).
	Mailbox string
}

// Enabled reports whether a mailbox is configured.
func (m IMAP) Enabled() bool { return m.Host != "" }

// imap reads the IMAP_* variables. prod refuses IMAP_TLS=none to a host
// that is not a loopback address: the password would cross the network in
// clear text.
func (r *reader) imap(prod bool) IMAP {
	m := IMAP{
		Host:     r.text("IMAP_HOST", ""),
		Username: r.text("IMAP_USERNAME", ""),
		Password: r.text("IMAP_PASSWORD", ""),
		TLS:      r.oneOf("IMAP_TLS", "tls", "tls", "starttls", "none"),
		Mailbox:  r.text("IMAP_MAILBOX", "INBOX"),
	}
	defPort := 993
	if m.TLS != "tls" {
		defPort = 143
	}
	m.Port = r.port("IMAP_PORT", defPort)
	if r.err != nil || m.Host == "" {
		return m
	}
	switch {
	case m.Username == "":
		r.fail("IMAP_USERNAME", "", "is required when IMAP_HOST is set")
	case m.Password == "":
		r.fail("IMAP_PASSWORD", "", "is required when IMAP_HOST is set")
	case prod && m.TLS == "none" && !isLoopbackHost(m.Host):
		r.fail("IMAP_TLS", m.TLS, "none would send IMAP_PASSWORD in clear text to an IMAP_HOST that is not a loopback address: use tls or starttls in PRODUCTION")
	}
	return m
}
