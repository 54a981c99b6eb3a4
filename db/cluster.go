package db

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// Several instances on one PostgreSQL database (issue 14): one of them owns
// the agent engine, through an advisory lock held on a connection of its
// own, and all of them talk through LISTEN/NOTIFY. This file is the SQL of
// it; agents/cluster is the behaviour. None of it exists on SQLite, where
// one process owns the database through DATA_DIR's lock.

// The engine's advisory lock is lockEngine of postgres.go's lock space.
// Advisory locks are per database: two HossAgent databases on one server
// have an owner each.

// ClusterChannel is the one notification channel of the instances: events,
// admin commands to the owner, its answers and announcements (each payload
// says which). One channel keeps them in one order. NOTIFY is per database
// too.
const ClusterChannel = "hossagent_cluster"

// MaxNotifyPayload is the largest payload NOTIFY takes (PostgreSQL's limit
// is 8000 bytes in the default build), less a little room.
const MaxNotifyPayload = 7900

// ErrNotPostgres refuses the cluster calls on SQLite.
var ErrNotPostgres = errors.New("db: several instances need PostgreSQL (DATABASE_URL)")

// instanceIDPattern is what an instance id may hold: it goes into
// application_name, which PostgreSQL truncates at 63 bytes and in which it
// replaces non-ASCII bytes.
var instanceIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,49}$`)

// ValidInstanceID reports whether id can name an instance.
func ValidInstanceID(id string) bool { return instanceIDPattern.MatchString(id) }

// applicationPrefix starts the application_name of every session an instance
// opens for the cluster, so that LockOwner can tell who holds the lock.
const applicationPrefix = "hossagent "

// ClusterConn is how the cluster's dedicated connections are made.
type ClusterConn struct {
	// Instance is this instance's id (ValidInstanceID).
	Instance string
	// DeadAfter bounds how long PostgreSQL keeps the session of an instance
	// whose network was cut: server-side TCP keepalives (and a user timeout
	// for data left unacknowledged) end it, and with it the advisory lock,
	// within about this long. Whole seconds; at least 3 s.
	DeadAfter time.Duration
	// ConnectTimeout bounds one connection attempt (default 5 s).
	ConnectTimeout time.Duration
}

// connect opens a dedicated connection (not one of the pool's): the lock
// must live exactly as long as one session, and LISTEN holds its session.
func (d *DB) connect(ctx context.Context, c ClusterConn) (*pgx.Conn, error) {
	if !d.Postgres() {
		return nil, ErrNotPostgres
	}
	if !ValidInstanceID(c.Instance) {
		return nil, fmt.Errorf("db: %q cannot name an instance: use letters, digits, . _ : - (at most 50)", c.Instance)
	}
	cfg, err := pgx.ParseConfig(d.url.String())
	if err != nil {
		return nil, fmt.Errorf("db: DATABASE_URL %s is not a valid PostgreSQL URL", RedactURL(d.url))
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	cfg.ConnectTimeout = c.ConnectTimeout
	// The session names its instance: LockOwner reads it back from
	// pg_stat_activity, and an operator sees it there too.
	cfg.RuntimeParams["application_name"] = applicationPrefix + c.Instance
	cfg.RuntimeParams["timezone"] = "UTC"
	// PostgreSQL notices a dead peer only when TCP tells it. With the
	// server's defaults (the kernel's: 2 h of idleness) a lock held by an
	// instance whose network was cut would stay held for hours. These
	// session settings make the server probe after idle seconds, every
	// interval, and drop the session after count unanswered probes; the
	// user timeout does the same for data sent and never acknowledged.
	// Idle + interval × count = DeadAfter. (They apply to TCP only; a Unix
	// socket peer that dies is noticed at once anyway.)
	secs := max(3, int(c.DeadAfter/time.Second))
	idle, interval := secs/3, max(1, secs/6)
	count := max(1, (secs-idle)/interval)
	cfg.RuntimeParams["tcp_keepalives_idle"] = strconv.Itoa(idle)
	cfg.RuntimeParams["tcp_keepalives_interval"] = strconv.Itoa(interval)
	cfg.RuntimeParams["tcp_keepalives_count"] = strconv.Itoa(count)
	cfg.RuntimeParams["tcp_user_timeout"] = strconv.Itoa(secs * 1000)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: unable to connect to PostgreSQL at %s: %w", RedactURL(d.url), redactErr(err, d.url))
	}
	return conn, nil
}

// OwnerLock is the engine's advisory lock as one instance tries, holds and
// watches it, on a connection of its own. It is not safe for concurrent use:
// one goroutine (the instance's cluster service) drives it.
type OwnerLock struct {
	d    *DB
	c    ClusterConn
	conn *pgx.Conn
	held bool
}

// NewOwnerLock prepares the lock; it connects on the first Try.
func (d *DB) NewOwnerLock(c ClusterConn) (*OwnerLock, error) {
	if !d.Postgres() {
		return nil, ErrNotPostgres
	}
	if !ValidInstanceID(c.Instance) {
		return nil, fmt.Errorf("db: %q cannot name an instance: use letters, digits, . _ : - (at most 50)", c.Instance)
	}
	return &OwnerLock{d: d, c: c}, nil
}

// Try takes the lock if it is free, and reports whether this instance holds
// it. A broken connection is dropped (the next Try opens another).
func (l *OwnerLock) Try(ctx context.Context) (bool, error) {
	if l.held {
		return true, nil
	}
	if l.conn == nil || l.conn.IsClosed() {
		conn, err := l.d.connect(ctx, l.c)
		if err != nil {
			return false, err
		}
		l.conn = conn
	}
	// Session level, not transaction level: the lock lives as long as this
	// session, which is the point (it goes with the instance's death).
	var ok bool
	err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", lockSpace, lockEngine).Scan(&ok)
	if err != nil {
		l.drop()
		return false, fmt.Errorf("db: trying the owner lock: %w", err)
	}
	l.held = ok
	return ok, nil
}

// Ping proves that the session holding the lock is alive, within ctx's
// deadline. Any failure means the lock may be lost (the server ends the
// session and releases the lock of a peer it cannot reach): the holder must
// stop acting as owner at once. A session that lives holds its lock: only
// it could release it, and nothing here does but Close.
func (l *OwnerLock) Ping(ctx context.Context) error {
	if !l.held || l.conn == nil {
		return errors.New("db: the owner lock is not held")
	}
	if err := l.conn.Ping(ctx); err != nil {
		l.drop()
		return fmt.Errorf("db: the owner lock's session is gone: %w", err)
	}
	return nil
}

// PID is the server process of the lock's session (0 before the first
// connection): tests end it with pg_terminate_backend to play an instance
// whose session died.
func (l *OwnerLock) PID() uint32 {
	if l.conn == nil {
		return 0
	}
	return l.conn.PgConn().PID()
}

// Close releases the lock if it is held and ends the session. The unlock
// is explicit: a closed session's lock goes only once its server process
// has exited, a moment later, and a standby should find it free at once.
func (l *OwnerLock) Close() {
	if l.held && l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", lockSpace, lockEngine)
		cancel()
	}
	l.drop()
}

func (l *OwnerLock) drop() {
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = l.conn.Close(ctx)
		cancel()
	}
	l.conn, l.held = nil, false
}

// Holder is the instance holding the engine's lock, as PostgreSQL sees it.
type Holder struct {
	Instance string // from the session's application_name
	PID      int    // its server process
	Since    time.Time
}

// LockOwner tells who holds the engine's lock: ok is false while nobody does
// (between an owner's death and the takeover).
func (d *DB) LockOwner(ctx context.Context) (h Holder, ok bool, err error) {
	if !d.Postgres() {
		return Holder{}, false, ErrNotPostgres
	}
	// pg_locks lists the advisory lock with its two keys in classid/objid
	// and objsubid = 2 for the two-key form; it is per database, hence the
	// database filter (other HossAgent databases on the server have their
	// own owner). pg_stat_activity gives the session's application_name,
	// visible to every role; backend_start is when the session began,
	// which for a lock taken on a fresh session is about when it was taken.
	var app string
	var since time.Time
	var pid int
	err = d.bun.QueryRowContext(ctx, `
		SELECT a.application_name, a.pid, a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid::bigint = ? AND l.objid::bigint = ? AND l.objsubid = 2
		LIMIT 1`, lockSpace, lockEngine).Scan(&app, &pid, &since)
	if err = notFound(err); errors.Is(err, ErrNotFound) {
		return Holder{}, false, nil
	}
	if err != nil {
		return Holder{}, false, fmt.Errorf("store: unable to read the owner lock: %w", err)
	}
	return Holder{Instance: strings.TrimPrefix(app, applicationPrefix), PID: pid, Since: since.UTC()}, true, nil
}

// Notify sends payload (at most MaxNotifyPayload bytes) on ClusterChannel
// to every instance listening on this database, this one included.
func (d *DB) Notify(ctx context.Context, payload string) error {
	if !d.Postgres() {
		return ErrNotPostgres
	}
	if len(payload) > MaxNotifyPayload {
		return fmt.Errorf("db: a notification of %d bytes is over the %d the cluster sends", len(payload), MaxNotifyPayload)
	}
	// pg_notify rather than NOTIFY: it takes the channel and payload as
	// arguments. Autocommit: the notification leaves at once (a NOTIFY in
	// a transaction waits for its commit).
	if _, err := d.bun.ExecContext(ctx, "SELECT pg_notify(?, ?)", ClusterChannel, payload); err != nil {
		return fmt.Errorf("store: unable to notify the other instances: %w", err)
	}
	return nil
}

// Listener receives the notifications of ClusterChannel on a connection of
// its own, reconnecting after a loss.
type Listener struct {
	// Conn makes the connection.
	Conn ClusterConn
	// Handle is called for each notification, one at a time, in the order
	// PostgreSQL delivers them; it must not block for long.
	Handle func(payload string)
	// Connected is called each time the listener (re)connected and listens:
	// notifications sent while it was away are lost, so the caller catches
	// up then. Optional.
	Connected func()
	// Error is told each failure (a lost connection); the listener tries
	// again after RetryEvery. Optional.
	Error func(error)
	// RetryEvery is the pause before reconnecting (default 1 s).
	RetryEvery time.Duration
}

// Listen listens until ctx ends.
func (d *DB) Listen(ctx context.Context, l Listener) error {
	if !d.Postgres() {
		return ErrNotPostgres
	}
	if l.RetryEvery <= 0 {
		l.RetryEvery = time.Second
	}
	pl := &pgxlisten.Listener{
		Connect:        func(ctx context.Context) (*pgx.Conn, error) { return d.connect(ctx, l.Conn) },
		ReconnectDelay: l.RetryEvery,
		LogError: func(ctx context.Context, err error) {
			if l.Error != nil && ctx.Err() == nil {
				l.Error(err)
			}
		},
	}
	pl.Handle(ClusterChannel, handler(l))
	return pl.Listen(ctx)
}

// handler adapts a Listener to pgxlisten, which calls HandleBacklog after
// each (re)connection's LISTEN: the moment to catch up.
type handler Listener

func (h handler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	h.Handle(n.Payload)
	return nil
}

func (h handler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	if h.Connected != nil {
		h.Connected()
	}
	return nil
}
