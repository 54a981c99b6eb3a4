package db

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second Lock of the same directory is refused, even in the same process
// (flock belongs to each open file description), and names the holder;
// once released, the lock is free again and the file is kept.
func TestLockIsExclusiveAndNamesItsHolder(t *testing.T) {
	dir := t.TempDir()
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	first, err := Lock(dir, LockHolder{PID: 4242, Host: "web-1", Command: "serve", Started: started})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir, LockHolder{PID: 7, Host: "web-2", Command: "serve", Started: started})
	var locked *LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second Lock = %v, want a *LockedError", err)
	}
	if locked.Holder.PID != 4242 || locked.Holder.Host != "web-1" || !locked.Holder.Started.Equal(started) {
		t.Errorf("holder = %+v", locked.Holder)
	}
	for _, want := range []string{"pid 4242", "host web-1", "serve", "2026-01-02T03:04:05Z", filepath.Join(dir, LockFileName)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if h, err := ReadLockHolder(dir); err != nil || h.PID != 4242 {
		t.Errorf("ReadLockHolder = %+v, %v", h, err)
	}

	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFileName)); err != nil {
		t.Errorf("the lock file was removed: %v", err)
	}
	second, err := Lock(dir, LockHolder{PID: 7, Host: "web-2"})
	if err != nil {
		t.Fatalf("Lock after Release: %v", err)
	}
	defer second.Release()
	if h, _ := ReadLockHolder(dir); h.PID != 7 || h.Host != "web-2" {
		t.Errorf("holder after the second Lock = %+v", h)
	}
}

// A holder that has not written its details yet (or a file emptied by a
// clean stop) still gives a readable refusal.
func TestLockedErrorWithoutDetails(t *testing.T) {
	dir := t.TempDir()
	l, err := Lock(dir, LockHolder{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := os.Truncate(filepath.Join(dir, LockFileName), 0); err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir, LockHolder{PID: 1})
	if err == nil || !strings.Contains(err.Error(), "has not written its details") {
		t.Errorf("err = %v", err)
	}
}

func TestLockHolderSurvivesOddText(t *testing.T) {
	h := LockHolder{PID: 12, Host: "a\nb=c", Command: "serve", Started: time.Unix(1700000000, 5).UTC()}
	got := parseLockHolder(strings.NewReader(string(h.encode())))
	if got.PID != 12 || got.Host != "a b=c" || got.Command != "serve" || !got.Started.Equal(h.Started) {
		t.Errorf("round trip = %+v", got)
	}
	if got := parseLockHolder(strings.NewReader("garbage\npid=x\n\x00")); got.PID != 0 {
		t.Errorf("garbage = %+v", got)
	}
}

// As root, permission bits stop nothing, so these cases are what a test
// running as root can show: a data directory under a regular file cannot be
// created, and a store file that is a directory cannot be opened for
// writing. (main_test runs a child process as another user for the
// permission case.)
func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	if err := CheckWritable(filepath.Join(dir, "data", FileName)); err != nil {
		t.Fatalf("fresh directory: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "data")); len(entries) != 0 {
		t.Errorf("the check left files behind: %v", entries)
	}

	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckWritable(filepath.Join(file, "data", FileName))
	var nw *NotWritableError
	if !errors.As(err, &nw) || nw.Op != "create" || nw.Dir != filepath.Join(file, "data") {
		t.Fatalf("data dir under a file = %v", err)
	}
	if nw.OwnerPath() != file || !nw.HasOwner || !strings.Contains(err.Error(), "owned by uid") {
		t.Errorf("owner of %s: %+v (%v)", nw.OwnerPath(), nw, err)
	}

	wal := filepath.Join(dir, "data", FileName+"-wal")
	if err := os.Mkdir(wal, 0o755); err != nil {
		t.Fatal(err)
	}
	err = CheckWritable(filepath.Join(dir, "data", FileName))
	if !errors.As(err, &nw) || nw.Path != wal || nw.Op != "open for writing" {
		t.Errorf("unwritable WAL = %v", err)
	}
}
