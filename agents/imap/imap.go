// Package imap is HossAgent's IMAP adapter on go-imap v2: the
// agents.Mailbox that reads the replies mailbox (the IMAP_* settings).
//
// Handled messages. A message is "handled" once MarkHandled flagged it on
// the server. Where the mailbox lets clients keep keywords (its
// PERMANENTFLAGS hold \* or $HossHandled, as Dovecot, Cyrus, Gmail and
// Fastmail do), the flag is the keyword $HossHandled and \Seen is left as
// it is: an operator reading the mailbox in a mail client changes nothing.
// Otherwise the flag is \Seen, and a message someone read in a mail client
// before the agent fetched it is missed. Reading never sets \Seen (the body
// is fetched with BODY.PEEK). Point IMAP at a mailbox of its own: on the
// first start, every message in it not yet flagged is read once.
//
// Oversized messages. A message larger than agents.MaxInboundBytes is never
// downloaded whole (at most MaxInboundBytes+1 bytes of it are): Fetch marks
// it handled, counts it (Oversized) and calls Options.OnOversized, and
// returns the others. It is neither returned truncated nor retried.
//
// Connections. The connection is opened on the first call, kept between
// calls, and opened again on the next call after it dropped (a command that
// fails on a connection kept from an earlier call is retried once on a new
// one: every command here is safe to repeat). Every call is bounded by its
// context and by Options.Timeout; a call whose context ends closes the
// connection (an IMAP command cannot be abandoned halfway), and the next
// call reconnects. No error holds the password.
//
// A Mailbox runs one call at a time: concurrent calls wait for each other
// (Wait and Idle hold the connection while they idle). Close may be called
// at any time and ends a running Wait or Idle.
//
// The replies watcher (agents.RepliesWatcher) idles on a Mailbox of its own
// (Idle), so that the Replies cycle's Fetch and MarkHandled never wait for
// an IDLE to end.
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/hossagent/hossagent/agents"
)

// Transport security, as IMAP_TLS names it.
const (
	// ImplicitTLS speaks TLS from the first byte (port 993).
	ImplicitTLS = "tls"
	// StartTLS upgrades the connection with STARTTLS (port 143) and
	// refuses a server that does not offer it.
	StartTLS = "starttls"
	// NoTLS speaks in the clear: for a server on the same host or a test
	// server only, since the password travels in plain text too.
	NoTLS = "none"
)

// HandledKeyword is the keyword that marks a message handled where the
// mailbox keeps keywords.
const HandledKeyword = goimap.Flag("$HossHandled")

// defaultTimeout bounds one call (connection, login and commands) when
// Options.Timeout is 0.
const defaultTimeout = 30 * time.Second

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("imap: mailbox closed")

// Options configure the mailbox (the IMAP_* settings).
type Options struct {
	Host string
	// Port defaults to 993 for tls and 143 for starttls and none.
	Port               int
	Username, Password string
	// TLS is ImplicitTLS (the default), StartTLS or NoTLS.
	TLS string
	// Mailbox is the mailbox read; "" is INBOX.
	Mailbox string
	// Timeout bounds one call, connection included (for Wait: the start
	// and the end of IDLE, on top of its duration); 0 is 30 s.
	Timeout time.Duration
	// DialContext opens the TCP connection; nil is a net.Dialer's.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig replaces the default (system roots, server name Host);
	// tests trust their own certificate with it.
	TLSConfig *tls.Config
	// OnOversized, when set, is called (during Fetch) with each message
	// larger than agents.MaxInboundBytes that Fetch marked handled without
	// returning it; size is the server's RFC822.SIZE.
	OnOversized func(uid uint32, size int64)
}

// Mailbox is the agents.Mailbox of an IMAP server.
type Mailbox struct {
	opts Options
	addr string

	// noIdle makes Wait poll even where the server offers IDLE (tests).
	noIdle bool

	mu   sync.Mutex // one call at a time
	conn *session   // guarded by mu and connMu; nil when not connected
	// fetchedValidity is the UIDVALIDITY of the last Fetch: MarkHandled
	// refuses UIDs of a mailbox that was recreated since.
	fetchedValidity uint32

	connMu sync.Mutex // guards conn's pointer against Close, and closed
	closed bool

	// newMail holds a signal when the server reported new messages since
	// the last Fetch (EXISTS, seen during any command or IDLE).
	newMail   chan struct{}
	oversized atomic.Uint64
	dials     atomic.Uint64
}

var (
	_ agents.Mailbox   = (*Mailbox)(nil)
	_ agents.MailWatch = (*Mailbox)(nil)
)

// session is one connection, logged in, with the mailbox selected.
type session struct {
	raw         net.Conn
	c           *imapclient.Client
	flag        goimap.Flag // the handled flag: HandledKeyword or \Seen
	idle        bool        // the server offers IDLE
	uidValidity uint32
}

// New returns the mailbox; it connects on the first call. Invalid options
// are reported by that call.
func New(opts Options) *Mailbox {
	opts.Host = strings.TrimSpace(opts.Host)
	opts.TLS = strings.ToLower(strings.TrimSpace(opts.TLS))
	if opts.TLS == "" {
		opts.TLS = ImplicitTLS
	}
	if opts.Port == 0 {
		opts.Port = map[string]int{ImplicitTLS: 993, StartTLS: 143, NoTLS: 143}[opts.TLS]
	}
	if opts.Mailbox == "" {
		opts.Mailbox = "INBOX"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	return &Mailbox{
		opts:    opts,
		addr:    net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)),
		newMail: make(chan struct{}, 1),
	}
}

// Oversized is how many messages Fetch marked handled without returning
// them because they were larger than agents.MaxInboundBytes.
func (m *Mailbox) Oversized() uint64 { return m.oversized.Load() }

// HandledFlag is the flag MarkHandled sets on the current connection
// (HandledKeyword or \Seen), or "" when not connected.
func (m *Mailbox) HandledFlag() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		return ""
	}
	return string(m.conn.flag)
}

// Fetch returns up to limit messages without the handled flag, in
// ascending UID order (the order they arrived in the mailbox), each with
// its exact bytes. Messages larger than agents.MaxInboundBytes are marked
// handled and counted instead (see the package comment).
func (m *Mailbox) Fetch(ctx context.Context, limit int) ([]agents.InboundMail, error) {
	if limit < 1 {
		return nil, nil
	}
	var out []agents.InboundMail
	err := m.run(ctx, "fetch", func(s *session) error {
		// Everything the server reported so far is about to be read.
		select {
		case <-m.newMail:
		default:
		}
		var err error
		out, err = m.fetch(s, limit)
		if err == nil {
			m.fetchedValidity = s.uidValidity
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (m *Mailbox) fetch(s *session, limit int) ([]agents.InboundMail, error) {
	data, err := s.c.UIDSearch(&goimap.SearchCriteria{NotFlag: []goimap.Flag{s.flag}}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	uids := data.AllUIDs()
	slices.Sort(uids)
	if len(uids) > limit {
		uids = uids[:limit]
	}
	if len(uids) == 0 {
		return nil, nil
	}
	section := &goimap.FetchItemBodySection{Peek: true, Partial: &goimap.SectionPartial{Offset: 0, Size: agents.MaxInboundBytes + 1}}
	cmd := s.c.Fetch(goimap.UIDSetNum(uids...), &goimap.FetchOptions{UID: true, RFC822Size: true, BodySection: []*goimap.FetchItemBodySection{section}})
	type got struct {
		uid  goimap.UID
		size int64
		raw  []byte
		over bool
	}
	var msgs []got
	var readErr error
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var g got
		g.size = -1
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch item := item.(type) {
			case imapclient.FetchItemDataUID:
				g.uid = item.UID
			case imapclient.FetchItemDataRFC822Size:
				g.size = item.Size
			case imapclient.FetchItemDataBodySection:
				if item.Literal == nil {
					continue
				}
				b, err := io.ReadAll(io.LimitReader(item.Literal, agents.MaxInboundBytes+1))
				if err != nil && readErr == nil {
					readErr = err
				}
				g.raw = b
			}
		}
		if g.uid == 0 {
			continue // an unsolicited FETCH (a flag change) without its UID
		}
		g.over = g.size > agents.MaxInboundBytes || len(g.raw) > agents.MaxInboundBytes
		msgs = append(msgs, g)
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if readErr != nil {
		return nil, fmt.Errorf("fetch: %w", readErr)
	}
	slices.SortFunc(msgs, func(a, b got) int { return int(int64(a.uid) - int64(b.uid)) })
	var out []agents.InboundMail
	var over []goimap.UID
	for _, g := range msgs {
		if len(out) > 0 && goimap.UID(out[len(out)-1].UID) == g.uid {
			continue
		}
		if g.over {
			over = append(over, g.uid)
			continue
		}
		out = append(out, agents.InboundMail{UID: uint32(g.uid), Raw: g.raw})
	}
	if len(over) > 0 {
		if err := m.store(s, over); err != nil {
			return nil, err
		}
		for _, g := range msgs {
			if g.over {
				m.oversized.Add(1)
				if m.opts.OnOversized != nil {
					size := g.size
					if size < 0 {
						size = int64(len(g.raw))
					}
					m.opts.OnOversized(uint32(g.uid), size)
				}
			}
		}
	}
	return out, nil
}

// MarkHandled sets the handled flag on the messages (see the package
// comment); it is refused when the mailbox was recreated (a new
// UIDVALIDITY) since the Fetch that returned them.
func (m *Mailbox) MarkHandled(ctx context.Context, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	set := make([]goimap.UID, 0, len(uids))
	for _, u := range uids {
		if u == 0 {
			return errors.New("imap: mark handled: UID 0 is not a message")
		}
		set = append(set, goimap.UID(u))
	}
	return m.run(ctx, "mark handled", func(s *session) error {
		if m.fetchedValidity != 0 && s.uidValidity != m.fetchedValidity {
			return fmt.Errorf("mailbox %q was recreated (UIDVALIDITY %d, was %d): fetch again", m.opts.Mailbox, s.uidValidity, m.fetchedValidity)
		}
		return m.store(s, set)
	})
}

func (m *Mailbox) store(s *session, uids []goimap.UID) error {
	cmd := s.c.Store(goimap.UIDSetNum(uids...), &goimap.StoreFlags{Op: goimap.StoreFlagsAdd, Silent: true, Flags: []goimap.Flag{s.flag}}, nil)
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("store %s: %w", s.flag, err)
	}
	return nil
}

// Wait returns nil when the server reports new mail (at once if it did
// since the last Fetch) or when d passes, and ctx's error when ctx ends
// first. It idles (IDLE) where the server offers it, else it only sleeps.
func (m *Mailbox) Wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.newMail:
		// Still to be fetched: keep the signal for the next Wait until a
		// Fetch reads it.
		m.signal()
		return nil
	default:
	}
	if m.noIdle {
		return m.sleep(ctx, deadline.C)
	}
	var s *session
	err := m.runLocked(ctx, "idle", func(cs *session) error { s = cs; return nil })
	if err != nil {
		return err
	}
	if !s.idle {
		return m.sleep(ctx, deadline.C)
	}
	return m.idle(ctx, s, deadline.C)
}

func (m *Mailbox) sleep(ctx context.Context, deadline <-chan time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-deadline:
		return nil
	}
}

// idle runs IDLE until new mail, the deadline, ctx's end or the connection's.
func (m *Mailbox) idle(ctx context.Context, s *session, deadline <-chan time.Time) error {
	// Starting and ending IDLE are bounded by Timeout; ctx's end closes
	// the connection whenever it comes.
	stop := context.AfterFunc(ctx, func() { _ = s.raw.Close() })
	defer stop()
	start := time.AfterFunc(m.opts.Timeout, func() { _ = s.raw.Close() })
	cmd, err := s.c.Idle()
	start.Stop()
	if err != nil {
		m.drop(s)
		switch {
		case m.isClosed():
			return ErrClosed
		case ctx.Err() != nil:
			return ctx.Err()
		}
		return m.errorf("idle", err)
	}
	var result error
	select {
	case <-m.newMail:
		m.signal()
	case <-deadline:
	case <-ctx.Done():
		result = ctx.Err()
	case <-s.c.Closed():
	}
	end := time.AfterFunc(m.opts.Timeout, func() { _ = s.raw.Close() })
	defer end.Stop()
	err = cmd.Close()
	if err == nil {
		err = cmd.Wait()
	}
	if result != nil {
		m.drop(s)
		return result
	}
	if err != nil {
		m.drop(s)
		if m.isClosed() {
			return ErrClosed
		}
		return m.errorf("idle", err)
	}
	return nil
}

// ErrNoIdle is Idle's answer when the server does not offer IDLE: the
// caller polls instead.
var ErrNoIdle = fmt.Errorf("imap: %w", agents.ErrNoIdle)

// Idle holds the connection in IDLE until the server reports new mail
// (EXISTS): it returns nil then, at once if the server reported some since
// the last Idle. It is the call of the replies watcher, on a Mailbox of its
// own (it consumes the report of new mail, which a Fetch on the same
// Mailbox would otherwise do): the cycle's Mailbox stays free for Fetch and
// MarkHandled.
//
// ready, when set, is called once IDLE runs. When ctx ends, IDLE is ended
// with DONE and the connection kept (Close then logs out), and ctx's error
// returned; a server that does not answer DONE within Timeout has its
// connection closed. ErrNoIdle when the server does not offer IDLE; any
// other error is a failed connection, opened again on the next call.
func (m *Mailbox) Idle(ctx context.Context, ready func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.newMail:
		return nil
	default:
	}
	var s *session
	if err := m.runLocked(ctx, "idle", func(cs *session) error { s = cs; return nil }); err != nil {
		return err
	}
	if !s.idle || m.noIdle {
		return ErrNoIdle
	}
	// Starting IDLE is bounded by Timeout and by ctx.
	abort := context.AfterFunc(ctx, func() { _ = s.raw.Close() })
	start := time.AfterFunc(m.opts.Timeout, func() { _ = s.raw.Close() })
	cmd, err := s.c.Idle()
	start.Stop()
	if !abort() {
		if err == nil {
			_ = cmd.Close()
		}
		m.drop(s)
		if m.isClosed() {
			return ErrClosed
		}
		return ctx.Err()
	}
	if err != nil {
		m.drop(s)
		if m.isClosed() {
			return ErrClosed
		}
		return m.errorf("idle", err)
	}
	if ready != nil {
		ready()
	}
	var result error
	select {
	case <-m.newMail:
	case <-ctx.Done():
		result = ctx.Err()
	case <-s.c.Closed():
	}
	end := time.AfterFunc(m.opts.Timeout, func() { _ = s.raw.Close() })
	defer end.Stop()
	err = cmd.Close()
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		m.drop(s)
		if m.isClosed() {
			return ErrClosed
		}
		if result != nil {
			return result
		}
		return m.errorf("idle", err)
	}
	return result
}

func (m *Mailbox) signal() {
	select {
	case m.newMail <- struct{}{}:
	default:
	}
}

// Close logs out (briefly, when no call is running) and closes the
// connection; every later call returns ErrClosed.
func (m *Mailbox) Close() error {
	m.connMu.Lock()
	m.closed = true
	s := m.conn
	m.connMu.Unlock()
	if s == nil {
		return nil
	}
	if m.mu.TryLock() {
		t := time.AfterFunc(2*time.Second, func() { _ = s.raw.Close() })
		_ = s.c.Logout().Wait()
		t.Stop()
		m.mu.Unlock()
	}
	_ = s.raw.Close()
	_ = s.c.Close()
	return nil
}

func (m *Mailbox) isClosed() bool {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	return m.closed
}

// run runs fn on a connection (a new one when none is open or the open
// one dropped), bounded by ctx and Timeout.
func (m *Mailbox) run(ctx context.Context, op string, fn func(*session) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runLocked(ctx, op, fn)
}

func (m *Mailbox) runLocked(ctx context.Context, op string, fn func(*session) error) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		if m.isClosed() {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		s, reused := m.conn, true
		if s != nil {
			select {
			case <-s.c.Closed():
				m.drop(s)
				s = nil
			default:
			}
		}
		if s == nil {
			reused = false
			var err error
			if s, err = m.connect(ctx); err != nil {
				return err
			}
		}
		stop := context.AfterFunc(ctx, func() { _ = s.raw.Close() })
		err := fn(s)
		if !stop() {
			// ctx ended during the call and closed the connection.
			m.drop(s)
			return fmt.Errorf("imap: %s: %w", op, ctx.Err())
		}
		if err == nil {
			return nil
		}
		var server *goimap.Error
		if errors.As(err, &server) {
			// The server refused the command: the connection is fine.
			return m.errorf(op, err)
		}
		m.drop(s)
		if m.isClosed() {
			return ErrClosed
		}
		if !reused || attempt > 0 {
			return m.errorf(op, err)
		}
		// A connection kept from an earlier call may have dropped
		// meanwhile: try once more on a new one.
	}
}

// drop forgets and closes the connection s.
func (m *Mailbox) drop(s *session) {
	m.connMu.Lock()
	if m.conn == s {
		m.conn = nil
	}
	m.connMu.Unlock()
	_ = s.raw.Close()
	_ = s.c.Close()
}

// connect dials, secures, logs in and selects the mailbox.
func (m *Mailbox) connect(ctx context.Context) (*session, error) {
	o := m.opts
	switch {
	case o.Host == "":
		return nil, errors.New("imap: no host")
	case o.TLS != ImplicitTLS && o.TLS != StartTLS && o.TLS != NoTLS:
		return nil, fmt.Errorf("imap: TLS mode %q: want tls, starttls or none", o.TLS)
	case o.Port < 1 || o.Port > 65535:
		return nil, fmt.Errorf("imap: port %d out of range", o.Port)
	case o.Username == "" || o.Password == "":
		return nil, errors.New("imap: username and password are required")
	}
	dial := o.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	m.dials.Add(1)
	raw, err := dial(ctx, "tcp", m.addr)
	if err != nil {
		return nil, m.errorf("connect to "+m.addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	s, err := m.open(ctx, raw)
	if !stop() {
		if s != nil {
			_ = s.c.Close()
		}
		_ = raw.Close()
		return nil, fmt.Errorf("imap: connect to %s: %w", m.addr, ctx.Err())
	}
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if m.closed {
		_ = raw.Close()
		_ = s.c.Close()
		return nil, ErrClosed
	}
	m.conn = s
	return s, nil
}

func (m *Mailbox) tlsConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.opts.TLSConfig != nil {
		cfg = m.opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = m.opts.Host
	}
	return cfg
}

func (m *Mailbox) open(ctx context.Context, raw net.Conn) (*session, error) {
	o := m.opts
	copts := &imapclient.Options{
		TLSConfig: m.tlsConfig(),
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					m.signal()
				}
			},
		},
	}
	s := &session{raw: raw}
	var err error
	switch o.TLS {
	case ImplicitTLS:
		tc := tls.Client(raw, copts.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, m.errorf("TLS handshake with "+m.addr, err)
		}
		s.raw = tc
		s.c = imapclient.New(tc, copts)
	case StartTLS:
		if s.c, err = imapclient.NewStartTLS(raw, copts); err != nil {
			return nil, m.errorf("STARTTLS with "+m.addr, err)
		}
	default:
		s.c = imapclient.New(raw, copts)
	}
	fail := func(what string, err error) (*session, error) {
		_ = s.c.Close()
		return nil, m.errorf(what, err)
	}
	if err := s.c.WaitGreeting(); err != nil {
		return fail("greeting from "+m.addr, err)
	}
	if err := s.c.Login(o.Username, o.Password).Wait(); err != nil {
		return fail("login to "+m.addr+" as "+strconv.Quote(o.Username), err)
	}
	sel, err := s.c.Select(o.Mailbox, nil).Wait()
	if err != nil {
		return fail("select "+strconv.Quote(o.Mailbox), err)
	}
	s.uidValidity = sel.UIDValidity
	s.flag = goimap.FlagSeen
	for _, f := range sel.PermanentFlags {
		if f == goimap.FlagWildcard || strings.EqualFold(string(f), string(HandledKeyword)) {
			s.flag = HandledKeyword
		}
	}
	s.idle = s.c.Caps().Has(goimap.CapIdle)
	return s, nil
}

// errorf wraps err for op, with the password replaced wherever a server
// or a library might have echoed it.
func (m *Mailbox) errorf(op string, err error) error {
	return &Error{op: op, err: err, password: m.opts.Password}
}

// Error is a failed IMAP call. Its message never holds the password.
type Error struct {
	op       string
	err      error
	password string
}

func (e *Error) Error() string {
	msg := "imap: " + e.op + ": " + e.err.Error()
	if e.password != "" {
		msg = strings.ReplaceAll(msg, e.password, "…")
	}
	return msg
}

// Unwrap gives errors.Is and errors.As the cause (context errors, the
// server's *imap.Error).
func (e *Error) Unwrap() error { return e.err }
