// Package pgtest starts a throw-away PostgreSQL cluster for tests: initdb in a
// temporary directory, one postgres process listening on 127.0.0.1 and a free
// port, trust authentication, fsync off. It runs as the unprivileged
// "postgres" user when the tests run as root (PostgreSQL refuses root), and
// dies with the test process. Each test takes a fresh, empty database of
// its own with NewDatabase.
//
// HOSSAGENT_TEST_POSTGRES, when set, names a server to use instead (a URL
// whose user may create databases); PG_BIN names the directory of initdb
// and postgres when they are not in the usual Debian place.
//
// A test that needs PostgreSQL fails when it cannot have one under CI=true
// and is skipped, saying why, otherwise.
package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Server is a running PostgreSQL server the tests may create databases on.
type Server struct {
	admin *url.URL // the maintenance database, as a user that may create databases
	n     atomic.Int64
	db    *sql.DB
}

// startOnce starts one cluster per test process: initdb and start take a
// second or two, a database on a running cluster a few milliseconds. It is
// the package's only state, and test support only.
var startOnce = sync.OnceValues(start)

// Start returns the test process's PostgreSQL server, starting it on first
// use. It fails tb under CI=true when no server can run, and skips it
// otherwise.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := startOnce()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is needed and could not start: %v", err)
		}
		tb.Skipf("PostgreSQL is not available (install Debian's postgresql, or set HOSSAGENT_TEST_POSTGRES): %v", err)
	}
	return s
}

// NewDatabase creates an empty database for tb, dropped when tb ends, and
// returns its URL.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.n.Add(1))
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		// FORCE ends the connections a test left open (a killed instance's,
		// say) instead of failing the drop.
		if _, err := s.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u := *s.admin
	u.Path = "/" + name
	return u.String()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.admin.Host }

func start() (*Server, error) {
	var admin *url.URL
	if raw := os.Getenv("HOSSAGENT_TEST_POSTGRES"); raw != "" {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("HOSSAGENT_TEST_POSTGRES is not a URL: %w", err)
		}
		admin = u
	} else {
		u, err := startCluster()
		if err != nil {
			return nil, err
		}
		admin = u
	}
	db, err := sql.Open("pgx", admin.String())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("unable to reach %s: %w", admin.Redacted(), err)
	}
	return &Server{admin: admin, db: db}, nil
}

// binDir finds initdb and postgres: PG_BIN, the newest Debian
// /usr/lib/postgresql/N/bin, or the PATH.
func binDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (postgres, initdb) found in /usr/lib/postgresql/*/bin, PG_BIN or PATH")
}

func versionOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// credential is who runs the cluster: the current user, or "postgres" when
// that is root.
func credential() (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, os.Getuid(), os.Getgid(), nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
}

func startCluster() (*url.URL, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, uid, gid, err := credential()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", "hossagent-pg-")
	if err != nil {
		return nil, err
	}
	// The owner file lets a later run remove this directory once this
	// process is gone (it dies without running cleanups when killed).
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "--pgdata", data, "--username", "hossagent",
		"--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, tail(out))
	}
	var lastErr error
	for range 3 { // the free port may be taken between asking and listening
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if err := runPostgres(bin, data, port, cred); err != nil {
			lastErr = err
			continue
		}
		return &url.URL{Scheme: "postgres", User: url.User("hossagent"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Path: "/postgres", RawQuery: "sslmode=disable"}, nil
	}
	return nil, lastErr
}

// runPostgres starts the server and returns once its log says it accepts
// connections, or with the log's last lines when it exits first or takes
// more than 30 s.
func runPostgres(bin, data string, port int, cred *syscall.Credential) error {
	started := make(chan error, 1)
	go func() {
		// Pdeathsig is delivered when the thread that started the child
		// exits; this goroutine keeps its thread until the server is gone,
		// so the server dies exactly when the test process does.
		runtime.LockOSThread()
		log := newLogWatch()
		cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
			"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port), "-c", "unix_socket_directories=",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=400", "-c", "log_min_messages=warning")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-log.ready:
			started <- nil
		case <-done:
			started <- fmt.Errorf("postgres exited: %s", log.last())
			return
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			started <- fmt.Errorf("postgres did not become ready in 30 s: %s", log.last())
		}
		<-done
	}()
	return <-started
}

// logWatch is the server's log as it is written: ready is closed at "ready
// to accept connections"; last returns the latest lines.
type logWatch struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	ready   chan struct{}
	isReady bool
}

func newLogWatch() *logWatch { return &logWatch{ready: make(chan struct{})} }

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		w.lines = append(w.lines, line)
		if len(w.lines) > 20 {
			w.lines = w.lines[1:]
		}
		if !w.isReady && strings.Contains(line, "ready to accept connections") {
			w.isReady = true
			close(w.ready)
		}
	}
	return len(p), nil
}

func (w *logWatch) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeStale deletes the clusters of test processes that are gone.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "hossagent-pg-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}
