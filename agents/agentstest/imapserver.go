package agentstest

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// IMAPServer is go-imap v2's in-memory IMAP server on a loopback port, in
// the clear, with one user and its INBOX: the replies mailbox of tests
// that run the app.
type IMAPServer struct {
	Host     string
	Port     int
	User     string
	Password string

	user *imapmemserver.User
}

// IMAPServerOptions configure StartIMAPServer.
type IMAPServerOptions struct {
	// NoKeywords makes the mailbox keep system flags only (PERMANENTFLAGS
	// without \*), so that clients mark messages \Seen.
	NoKeywords bool
}

// StartIMAPServer serves until the test ends.
func StartIMAPServer(t *testing.T, o IMAPServerOptions) *IMAPServer {
	t.Helper()
	s := &IMAPServer{Host: "127.0.0.1", User: "replies@hossagent.test", Password: "Zq7-correct-horse-battery"}
	mem := imapmemserver.New()
	s.user = imapmemserver.NewUser(s.User, s.Password)
	if err := s.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(s.user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &memSession{Session: mem.NewSession(), o: o}, nil, nil
		},
		Caps:         goimap.CapSet{goimap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       discardIMAPLog{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Addr is host:port.
func (s *IMAPServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Append puts a message in INBOX, as a delivery would, and returns its UID.
func (s *IMAPServer) Append(t testing.TB, raw []byte) uint32 {
	t.Helper()
	d, err := s.user.Append("INBOX", bytes.NewReader(raw), &goimap.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return uint32(d.UID)
}

// Flags reads every message's flags from the server (over IMAP, directly,
// with BODY.PEEK semantics: reading changes nothing), by Message-ID
// without angle brackets.
func (s *IMAPServer) Flags(t testing.TB) map[string][]goimap.Flag {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", &goimap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]goimap.Flag{}
	if sel.NumMessages == 0 {
		return out
	}
	var all goimap.SeqSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &goimap.FetchOptions{Flags: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Envelope != nil {
			out[strings.Trim(m.Envelope.MessageID, "<>")] = m.Flags
		}
	}
	_ = c.Logout().Wait()
	return out
}

type discardIMAPLog struct{}

func (discardIMAPLog) Printf(string, ...any) {}
func (discardIMAPLog) Println(...any)        {}

// memSession is the memory server's session, optionally without keywords,
// with an IDLE that reports updates by polling its queue, so that an
// update queued at any moment is sent (the memory server misses one queued
// while its IDLE is starting).
type memSession struct {
	imapserver.Session
	o IMAPServerOptions
}

func (s *memSession) Select(name string, o *goimap.SelectOptions) (*goimap.SelectData, error) {
	d, err := s.Session.Select(name, o)
	if d != nil && s.o.NoKeywords {
		d.PermanentFlags = []goimap.Flag{goimap.FlagSeen, goimap.FlagAnswered, goimap.FlagFlagged, goimap.FlagDeleted, goimap.FlagDraft}
	}
	return d, err
}

func (s *memSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.Session.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}
