package db

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LockFileName is the file, beside the database in DATA_DIR, whose exclusive
// lock marks the one process that owns the database.
const LockFileName = "hossagent.lock"

// LockHolder is what a lock file says about the process holding its lock.
type LockHolder struct {
	PID     int
	Host    string
	Command string // the subcommand: serve, seed
	Started time.Time
}

// String describes the holder for an operator: "pid 41 on host web-1
// (serve, started 2026-01-02T03:04:05Z)".
func (h LockHolder) String() string {
	if h.PID == 0 {
		return "a process that has not written its details (it may be starting)"
	}
	s := "pid " + strconv.Itoa(h.PID)
	if h.Host != "" {
		s += " on host " + h.Host
	}
	var more []string
	if h.Command != "" {
		more = append(more, h.Command)
	}
	if !h.Started.IsZero() {
		more = append(more, "started "+h.Started.UTC().Format(time.RFC3339))
	}
	if len(more) > 0 {
		s += " (" + strings.Join(more, ", ") + ")"
	}
	return s
}

// encode is the lock file's content: one "key=value" line per field.
func (h LockHolder) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "pid=%d\nhost=%s\ncommand=%s\nstarted=%s\n",
		h.PID, oneLine(h.Host), oneLine(h.Command), h.Started.UTC().Format(time.RFC3339Nano))
	return b.Bytes()
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// parseLockHolder reads what encode wrote; unknown or broken lines are
// skipped, so a half-written file gives what it has.
func parseLockHolder(r io.Reader) LockHolder {
	var h LockHolder
	sc := bufio.NewScanner(io.LimitReader(r, 4096))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch key {
		case "pid":
			h.PID, _ = strconv.Atoi(value)
		case "host":
			h.Host = value
		case "command":
			h.Command = value
		case "started":
			h.Started, _ = time.Parse(time.RFC3339Nano, value)
		}
	}
	return h
}

// LockedError says that another process holds the lock of a data
// directory, and which.
type LockedError struct {
	Path   string // the lock file
	Holder LockHolder
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is locked by another HossAgent process: %s", e.Path, e.Holder)
}

// ErrLockUnsupported is returned where the operating system offers no
// flock(2).
var ErrLockUnsupported = errors.New("db: this operating system cannot lock the data directory")

// DirLock is the exclusive lock of a data directory, held from Lock until
// Release or the end of the process. The kernel drops it when the process
// dies, however it dies, so a lock is never stale and its file is never
// removed: whoever holds the lock owns the database beside it.
//
// Keep the DirLock reachable for as long as the lock must hold: an
// unreachable one is closed by the garbage collector, which releases it.
type DirLock struct {
	f    *os.File
	path string
}

// Lock takes the exclusive lock of the data directory dir without waiting,
// and writes holder into the lock file for whoever is refused next. When
// another process (or another Lock in this one) holds it, it returns a
// *LockedError naming that holder.
func Lock(dir string, holder LockHolder) (*DirLock, error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("db: unable to open the lock file: %w", err)
	}
	locked, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("db: unable to lock %s: %w", path, err)
	}
	if !locked {
		held := parseLockHolder(f)
		f.Close()
		return nil, &LockedError{Path: path, Holder: held}
	}
	l := &DirLock{f: f, path: path}
	if err := l.write(holder.encode()); err != nil {
		f.Close()
		return nil, fmt.Errorf("db: unable to write %s: %w", path, err)
	}
	return l, nil
}

func (l *DirLock) write(b []byte) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return err
	}
	return l.f.Sync()
}

// Path is the lock file.
func (l *DirLock) Path() string { return l.path }

// Release empties the lock file (its holder is gone) and drops the lock.
// The file stays: removing it would let a process that opened it before the
// removal and one that creates it afresh both hold "the" lock.
func (l *DirLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	terr := l.f.Truncate(0)
	cerr := l.f.Close() // closing the last descriptor drops the lock
	l.f = nil
	return errors.Join(terr, cerr)
}

// ReadLockHolder reads who holds, or last held, the lock of dir, without
// taking it.
func ReadLockHolder(dir string) (LockHolder, error) {
	f, err := os.Open(filepath.Join(dir, LockFileName))
	if err != nil {
		return LockHolder{}, err
	}
	defer f.Close()
	return parseLockHolder(f), nil
}
