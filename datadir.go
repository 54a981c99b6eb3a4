package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// imageUser is the user the Docker image runs as (its USER line, distroless
// "nonroot"); a test keeps the two equal. It is what a fix names when this
// process cannot say who it runs as.
const imageUser = "65532:65532"

// takeDataDir makes sure this process may own the database at dbPath: the
// data directory is writable, and no other process holds its lock. The lock
// is held until Release or the end of the process (the kernel drops it on a
// crash). cmd names the holder in the lock file (serve, seed).
func takeDataDir(dbPath, cmd string, now time.Time) (*db.DirLock, error) {
	if err := db.CheckWritable(dbPath); err != nil {
		var nw *db.NotWritableError
		if errors.As(err, &nw) {
			return nil, fmt.Errorf("%w. %s", err, writableFix(nw, os.Getuid(), os.Getgid()))
		}
		return nil, err
	}
	host, _ := os.Hostname()
	dir := filepath.Dir(dbPath)
	lock, err := db.Lock(dir, db.LockHolder{PID: os.Getpid(), Host: host, Command: cmd, Started: now})
	var locked *db.LockedError
	if errors.As(err, &locked) {
		return nil, fmt.Errorf("another HossAgent process already owns the database in %s: %s; lock file %s. "+
			"SQLite has one writer and every process runs its own autopilot: stop that process first, or give this one another DATA_DIR. "+
			"check, backup and reconcile may run beside it", dir, locked.Holder, locked.Path)
	}
	return lock, err
}

// writableFix says what to run so that the data directory becomes this
// process's: the exact chown for the user it runs as, and how to run it
// where the image has no shell.
func writableFix(nw *db.NotWritableError, uid, gid int) string {
	if errors.Is(nw.Err, syscall.EROFS) {
		return "The file system is mounted read-only: mount a writable volume at DATA_DIR."
	}
	if errors.Is(nw.Err, syscall.ENOTDIR) || errors.Is(nw.Err, fs.ErrExist) {
		return "DATA_DIR must name a directory (or a path that can become one), not a file."
	}
	user := imageUser
	if uid >= 0 && gid >= 0 {
		user = fmt.Sprintf("%d:%d", uid, gid)
	}
	dir := nw.Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	chown := fmt.Sprintf("chown -R %s %s", user, dir)
	return fmt.Sprintf("It must belong to the user this process runs as (uid:gid %s). Run as root where it is mounted: %s. "+
		"Docker (a named volume): docker run --rm -v VOLUME:%s busybox %s. "+
		"Fly.io (the image has no shell): fly machine update MACHINE_ID --image busybox --command %q, then fly deploy",
		user, chown, dir, chown, chown)
}

// storeMode is how a command opens the store.
type storeMode int

const (
	// storeMigrate creates the database if needed and applies pending
	// migrations (serve, seed, reconcile).
	storeMigrate storeMode = iota
	// storeReadOnly opens an existing database without changing it (check).
	storeReadOnly
	// storeWritable opens an existing database for writing without
	// migrating it (repairs, user), beside a running app.
	storeWritable
)

// databaseOf is where the configured data is: DATABASE_URL when it names a
// PostgreSQL server, else the SQLite file under DATA_DIR.
func databaseOf(cfg config.Config) string {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL
	}
	return cfg.DatabasePath(db.FileName)
}

// openStore opens the store at where: a postgres:// URL or a SQLite file.
func openStore(ctx context.Context, where string, mode storeMode, opts ...db.Option) (*db.DB, error) {
	if db.IsPostgresURL(where) {
		switch mode {
		case storeReadOnly:
			return db.OpenPostgresExisting(ctx, where, opts...)
		case storeWritable:
			return db.OpenPostgresWritable(ctx, where, opts...)
		}
		return db.OpenPostgres(ctx, where, opts...)
	}
	switch mode {
	case storeReadOnly:
		return db.OpenExisting(ctx, where, opts...)
	case storeWritable:
		return db.OpenExistingWritable(ctx, where, opts...)
	}
	return db.Open(ctx, where, opts...)
}
