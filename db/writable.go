package db

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// NotWritableError says that this process cannot write where the database
// lives: the data directory cannot be created or written, or a file the
// store writes (the database, its WAL and shared-memory files, the lock
// file) belongs to someone else.
type NotWritableError struct {
	Dir  string // the data directory
	Path string // what could not be written: Dir itself or a file in it
	Op   string // what was tried: "create", "create a file in", "open for writing"
	Err  error
	// Owner is the owner of Path, or of the nearest existing parent, as
	// the file system reports it: HasOwner is false where it could not be
	// read.
	OwnerUID, OwnerGID int
	Mode               fs.FileMode
	HasOwner           bool
}

func (e *NotWritableError) Error() string {
	cause := e.Err
	var pe *fs.PathError
	if errors.As(cause, &pe) {
		cause = pe.Err // the path is said once, below
	}
	s := fmt.Sprintf("data directory %s is not writable: cannot %s %s: %v", e.Dir, e.Op, e.Path, cause)
	if e.HasOwner {
		s += fmt.Sprintf(" (%s is owned by uid %d, gid %d, mode %s)", e.OwnerPath(), e.OwnerUID, e.OwnerGID, e.Mode)
	}
	return s
}

func (e *NotWritableError) Unwrap() error { return e.Err }

// OwnerPath is the path whose owner the error reports: Path, or its nearest
// parent that exists.
func (e *NotWritableError) OwnerPath() string {
	p := e.Path
	for {
		if _, err := os.Lstat(p); err == nil || p == filepath.Dir(p) {
			return p
		}
		p = filepath.Dir(p)
	}
}

// storeFiles are the files the store writes beside dbPath.
func storeFiles(dbPath string) []string {
	return []string{dbPath, dbPath + "-wal", dbPath + "-shm", filepath.Join(filepath.Dir(dbPath), LockFileName)}
}

// CheckWritable proves, before anything opens the store, that this process
// can create the directory of dbPath, create a file in it, and write every
// file the store keeps there that already exists. It changes nothing but a
// missing directory, which it creates (as Open would).
func CheckWritable(dbPath string) error {
	dir := filepath.Dir(dbPath)
	fail := func(path, op string, err error) error {
		e := &NotWritableError{Dir: dir, Path: path, Op: op, Err: err}
		if fi, serr := os.Lstat(e.OwnerPath()); serr == nil {
			e.Mode = fi.Mode()
			e.OwnerUID, e.OwnerGID, e.HasOwner = fileOwner(fi)
		}
		return e
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fail(dir, "create", err)
	}
	probe, err := os.CreateTemp(dir, ".hossagent-write-check-*")
	if err != nil {
		return fail(dir, "create a file in", err)
	}
	_, werr := probe.Write([]byte("ok\n"))
	cerr := probe.Close()
	rerr := os.Remove(probe.Name())
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fail(dir, "write a file in", err)
	}
	for _, path := range storeFiles(dbPath) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fail(path, "open for writing", err)
		}
		f.Close()
	}
	return nil
}
