package agentstest

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// IMAPProxy is a TCP proxy in front of an IMAP server that reads the
// conversation as IMAP (lines and their literals), so that a test can see
// every command a client sends, refuse connections, and stop a
// conversation at an exact point: a command never forwarded, or a
// command's completion ("tag OK …") held back from the client. A stopped
// connection forwards nothing more in either direction until the client
// closes it (a killed process) and the proxy then closes the server's side.
type IMAPProxy struct {
	Host string
	Port int

	target string
	ln     net.Listener

	mu       sync.Mutex
	commands []string // every client command's first line, tag removed, in order
	refuse   int      // connections still to be closed at once
	accepted int
	rule     *ProxyRule
	changed  chan struct{} // a command was seen or a rule fired
	conns    []net.Conn
}

// ProxyAction is what a ProxyRule does to the matching command.
type ProxyAction int

const (
	// HoldCompletion forwards the command and the server's untagged
	// answers (a FETCH's messages), and holds back its tagged completion:
	// the client has the data but never hears that the command is done.
	HoldCompletion ProxyAction = iota
	// DropCommand never forwards the command: the server never sees it.
	DropCommand
)

// ProxyRule stops the first conversation that sends a command starting
// with Command (after the tag, case-insensitive, e.g. "UID FETCH").
type ProxyRule struct {
	Command string
	Action  ProxyAction
	// Match, when set, must also hold for the command line (tag removed).
	Match func(line string) bool

	fired bool
	line  string
}

// StartIMAPProxy proxies 127.0.0.1:<a free port> to target until the test ends.
func StartIMAPProxy(t *testing.T, target string) *IMAPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &IMAPProxy{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, target: target, ln: ln, changed: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// Refuse closes the next n connections as soon as they are accepted, as a
// server that drops its clients would.
func (p *IMAPProxy) Refuse(n int) {
	p.mu.Lock()
	p.refuse = n
	p.mu.Unlock()
}

// Accepted is how many connections the proxy accepted (refused ones too).
func (p *IMAPProxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Arm sets the rule that stops the next matching conversation (replacing
// any rule not yet fired).
func (p *IMAPProxy) Arm(r *ProxyRule) {
	p.mu.Lock()
	p.rule = r
	p.mu.Unlock()
}

// DropAll closes every connection, as a server restart would.
func (p *IMAPProxy) DropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Commands is every command line clients sent so far (tags removed).
func (p *IMAPProxy) Commands() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.commands...)
}

// WaitFired waits until rule r stopped a conversation and returns the
// command line it matched; it fails the test after timeout.
func (p *IMAPProxy) WaitFired(t testing.TB, timeout time.Duration, r *ProxyRule) string {
	t.Helper()
	var line string
	p.wait(t, timeout, "the proxy rule on "+r.Command, func() bool {
		line = r.line
		return r.fired
	})
	return line
}

// WaitCommand waits until clients sent count commands starting with prefix
// (case-insensitive, tag removed) in all; it fails the test after timeout.
func (p *IMAPProxy) WaitCommand(t testing.TB, timeout time.Duration, prefix string, count int) {
	t.Helper()
	p.wait(t, timeout, strconv.Itoa(count)+" "+prefix+" command(s)", func() bool {
		n := 0
		for _, c := range p.commands {
			if hasPrefixFold(c, prefix) {
				n++
			}
		}
		return n >= count
	})
}

// CountCommands is how many commands starting with prefix clients sent.
func (p *IMAPProxy) CountCommands(prefix string) int {
	n := 0
	for _, c := range p.Commands() {
		if hasPrefixFold(c, prefix) {
			n++
		}
	}
	return n
}

func (p *IMAPProxy) wait(t testing.TB, timeout time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ok, changed := done(), p.changed
		p.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("IMAP proxy: no %s within %s; commands seen: %q", what, timeout, p.Commands())
		}
	}
}

// notify wakes the waiters; p.mu is held.
func (p *IMAPProxy) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (p *IMAPProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted++
		refuse := p.refuse > 0
		if refuse {
			p.refuse--
		}
		p.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		go p.handle(c)
	}
}

// conversation is one proxied connection.
type conversation struct {
	p              *IMAPProxy
	client, server net.Conn
	mu             sync.Mutex
	hold           string // the tag whose completion is held back
	stopped        chan struct{}
	stopOnce       sync.Once
}

func (p *IMAPProxy) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, client, server)
	p.mu.Unlock()
	c := &conversation{p: p, client: client, server: server, stopped: make(chan struct{})}
	clientDone, serverDone := make(chan struct{}), make(chan struct{})
	go func() { c.fromClient(); close(clientDone) }()
	go func() { c.fromServer(); close(serverDone) }()
	select {
	case <-clientDone:
	case <-serverDone:
		// A stopped conversation waits for the client to go (the kill)
		// before the server's side closes; else the server went away.
		if !c.isStopped() {
			_ = client.Close()
		}
		<-clientDone
	}
	_ = client.Close()
	_ = server.Close()
	<-serverDone
}

func (c *conversation) stop() { c.stopOnce.Do(func() { close(c.stopped) }) }

func (c *conversation) isStopped() bool {
	select {
	case <-c.stopped:
		return true
	default:
		return false
	}
}

var literalRE = regexp.MustCompile(`\{(\d+)\+?\}\r?\n$`)

// relay copies IMAP from r to w, calling first with the first line of each
// message (command or response) before anything of it is forwarded; first
// returning false stops the conversation there. Once it is stopped, relay
// returns, or with drain reads on without forwarding until r ends.
func (c *conversation) relay(r io.Reader, w io.Writer, drain bool, first func(line string) bool) {
	br := bufio.NewReaderSize(r, 64<<10)
	continuation := false
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			if !c.isStopped() && !continuation && !first(strings.TrimRight(line, "\r\n")) {
				c.stop()
			}
			if c.isStopped() {
				if !drain {
					return
				}
				w = io.Discard
			}
			if _, werr := io.WriteString(w, line); werr != nil {
				return
			}
			continuation = false
			if m := literalRE.FindStringSubmatch(line); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				if _, err := io.CopyN(w, br, n); err != nil {
					return
				}
				continuation = true // the message goes on after its literal
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *conversation) fromClient() {
	c.relay(c.client, c.server, true, func(line string) bool {
		tag, cmd, ok := strings.Cut(line, " ")
		if !ok { // DONE, ending IDLE
			tag, cmd = "", line
		}
		p := c.p
		p.mu.Lock()
		defer p.mu.Unlock()
		p.commands = append(p.commands, cmd)
		defer p.notify()
		r := p.rule
		if r == nil || r.fired || !hasPrefixFold(cmd, r.Command) || (r.Match != nil && !r.Match(cmd)) {
			return true
		}
		switch r.Action {
		case DropCommand:
			r.fired, r.line = true, cmd
			return false
		default:
			c.mu.Lock()
			c.hold = tag
			c.mu.Unlock()
			r.line = cmd // fired once the completion comes
			return true
		}
	})
}

func (c *conversation) fromServer() {
	c.relay(c.server, c.client, false, func(line string) bool {
		c.mu.Lock()
		hold := c.hold
		c.mu.Unlock()
		if hold == "" || !strings.HasPrefix(line, hold+" ") {
			return true
		}
		p := c.p
		p.mu.Lock()
		defer p.mu.Unlock()
		if r := p.rule; r != nil && !r.fired {
			r.fired = true
		}
		p.notify()
		return false
	})
}
