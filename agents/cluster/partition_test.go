package cluster_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents/cluster"
	"github.com/hossagent/hossagent/db/pgtest"
)

// proxy forwards TCP connections to PostgreSQL until it is frozen: then it
// forwards nothing more and closes nothing, as a network cut looks to both
// ends (neither gets a reset).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen chan struct{}
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, frozen: make(chan struct{})}
	t.Cleanup(p.close)
	go p.accept()
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies until the proxy freezes, then stops reading: what was in
// flight is lost, and the sockets stay open.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) freeze() { close(p.frozen) }

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestCutOffOwnerStopsBeforeAnotherStarts: the owner's network is cut. It
// notices on its own, within a ping period and a ping timeout, and stops
// its engine; PostgreSQL, which cannot see the cut here (the proxy's
// sockets stay up; on a real network its keepalives drop the session, see
// db.ClusterConn), is told by pg_terminate_backend; the other instance takes
// over after its takeover wait, so it starts only after the cut-off owner
// stopped.
func TestCutOffOwnerStopsBeforeAnotherStarts(t *testing.T) {
	raw := pgtest.Start(t).NewDatabase(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = p.ln.Addr().String()

	a := startInstance(t, viaProxy.String(), "cut-a")
	a.waitOwner(t, a.id)
	b := startInstance(t, raw, "cut-b")
	b.waitOwner(t, a.id)
	holder, ok, err := b.store.LockOwner(context.Background())
	if err != nil || !ok || holder.Instance != a.id {
		t.Fatalf("LockOwner = %+v %v %v", holder, ok, err)
	}

	cut := time.Now()
	p.freeze()
	var stopped time.Time
	select {
	case err := <-a.done:
		a.done <- err
		stopped = time.Now()
		if !errors.Is(err, cluster.ErrOwnershipLost) {
			t.Fatalf("the cut-off owner's Run ended with %v, want ErrOwnershipLost", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("the cut-off owner did not notice the cut")
	}
	if a.svc.Owning() {
		t.Error("the cut-off owner still serves its engine")
	}
	noticed := stopped.Sub(cut)
	if noticed > time.Second+1250*time.Millisecond+500*time.Millisecond {
		t.Errorf("the cut-off owner stopped %s after the cut, want within a ping period and timeout (2.25 s)", noticed)
	}
	// What PostgreSQL's keepalives do after DeadAfter on a real network.
	if _, err := b.store.Bun().ExecContext(context.Background(), "SELECT pg_terminate_backend(?)", holder.PID); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	started := b.waitOwner(t, b.id)
	if !started.After(stopped) {
		t.Error("the new owner started before the cut-off one stopped")
	}
	t.Logf("MEASURED: cut-off owner stopped its engine %s after the cut; the standby owned the agents %s after the lock was released",
		noticed.Round(time.Millisecond), started.Sub(released).Round(time.Millisecond))
}
