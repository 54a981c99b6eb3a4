//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db"
)

// childArgs, in the environment of the test binary, makes TestHelperChild
// run `hossagent <childArgs>` as a process of its own.
const childArgs = "HOSSAGENT_TEST_CHILD"

// TestHelperChild is no test: it is the child process the tests below
// start (the test binary run again), so that a second process can hold a
// data directory, be killed, or run as another user.
func TestHelperChild(t *testing.T) {
	args := os.Getenv(childArgs)
	if args == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, strings.Fields(args), os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// child is a running `hossagent` process.
type child struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	url    chan string // the address, once its log announces it
	done   chan int
}

// startChild runs `hossagent args` in a new process of the test binary
// bin, with exactly the environment env (and cred, when set, as its user).
func startChild(t *testing.T, bin, args string, env map[string]string, cred *syscall.Credential) *child {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^TestHelperChild$", "-test.count=1")
	cmd.Env = []string{childArgs + "=" + args, "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	c := &child{cmd: cmd, stderr: &syncBuffer{}, url: make(chan string, 1), done: make(chan int, 1)}
	cmd.Stdout = io.Discard
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the child process: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			fmt.Fprintln(c.stderr, sc.Text())
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil && len(c.url) == 0 {
				c.url <- m[1]
			}
		}
		_ = cmd.Wait() // after the last read, as StderrPipe requires
		c.done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case code := <-c.done:
			c.done <- code
		case <-time.After(10 * time.Second):
			t.Error("the child process did not end")
		}
	})
	return c
}

// serving waits until the child listens and returns its address.
func (c *child) serving(t *testing.T) string {
	t.Helper()
	select {
	case u := <-c.url:
		return u
	case code := <-c.done:
		c.done <- code
		t.Fatalf("the child exited %d before serving:\n%s", code, c.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the child did not announce its address:\n%s", c.stderr.String())
	}
	return ""
}

// wait is the child's exit code (-1 when a signal ended it).
func (c *child) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.done:
		c.done <- code // for the cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("the child process did not exit; its log:\n%s", c.stderr.String())
	}
	return 0
}

// testBinary is the running test binary.
func testBinary(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// A second serve on the same DATA_DIR is refused, naming the process that
// holds it; seed is refused too, while check and backup work beside it;
// once the first stops, a new start succeeds.
func TestSecondServeOnOneDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	env := envOf(map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false"})
	_, _, stop := serving(t, env)

	var out, errOut bytes.Buffer
	start := time.Now()
	if code := run(context.Background(), []string{"serve"}, env, &out, &errOut); code != 1 {
		t.Fatalf("second serve exited %d, want 1; log:\n%s", code, errOut.String())
	}
	host, _ := os.Hostname()
	for _, want := range []string{"another HossAgent process already owns the database", "pid " + strconv.Itoa(os.Getpid()), "host " + host, "(serve, started ", db.LockFileName} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("refusal does not say %q:\n%s", want, errOut.String())
		}
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the refusal took %s: it must not wait for the lock", time.Since(start))
	}
	if strings.Contains(errOut.String(), "HossAgent serving") {
		t.Error("the second process served")
	}

	errOut.Reset()
	if code := run(context.Background(), []string{"seed", "--leads", "20", "--customers", "2", "--tasks", "5", "--invoices", "1"}, env, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "seed: refused: another HossAgent process") {
		t.Errorf("seed beside the app: exit %d, %q", code, errOut.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"check"}, env, &out, &errOut); code != 0 {
		t.Errorf("check beside the app exited %d:\n%s", code, out.String())
	}
	if code := run(context.Background(), []string{"backup", filepath.Join(t.TempDir(), "b.db")}, env, &out, &errOut); code != 0 {
		t.Errorf("backup beside the app exited %d: %s", code, errOut.String())
	}

	stop()
	_, _, stop = serving(t, env)
	stop()
}

// A serve killed with SIGKILL leaves its lock file, but the kernel dropped
// its lock: while it ran, a second start was refused with its pid; after the
// kill, a new start succeeds at once.
func TestKilledServeLeavesNoStaleLock(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false"}
	c := startChild(t, testBinary(t), "serve", vars, nil)
	c.serving(t)

	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, envOf(vars), io.Discard, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "pid "+strconv.Itoa(c.cmd.Process.Pid)) {
		t.Fatalf("serve beside the child (pid %d): exit %d, %q", c.cmd.Process.Pid, code, errOut.String())
	}

	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != -1 {
		t.Fatalf("the killed child exited %d", code)
	}
	if h, err := db.ReadLockHolder(dir); err != nil || h.PID != c.cmd.Process.Pid {
		t.Errorf("lock file after the kill = %+v, %v; want the dead holder's details left in place", h, err)
	}
	_, logs, stop := serving(t, envOf(vars))
	if h, _ := db.ReadLockHolder(dir); h.PID != os.Getpid() {
		t.Errorf("lock file names %+v, want this process", h)
	}
	stop()
	if !strings.Contains(logs.String(), "stopped cleanly") {
		t.Errorf("the start after the kill:\n%s", logs.String())
	}
}

// A DATA_DIR under a regular file cannot be created: the start stops at
// once and says so, without a stack of later errors.
func TestDataDirThatCannotBeADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	env := envOf(map[string]string{"DATA_DIR": filepath.Join(file, "data"), "ADDR": "127.0.0.1:0"})
	if code := run(context.Background(), []string{"serve"}, env, io.Discard, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{"is not writable: cannot create", "DATA_DIR must name a directory"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, errOut.String())
		}
	}
}

// A DATA_DIR owned by root (a fresh volume) refuses an app that runs as
// another user, with the exact chown to run; so does a database file root
// created inside it; after that chown the app starts.
//
// Tests usually run as root, for whom permission bits stop nothing: then
// the app runs as a child process with the image's user (65532), the real
// situation. As another user, the directory is made read-only instead.
func TestDataDirNotWritableSaysWhatToRun(t *testing.T) {
	if os.Getuid() != 0 {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		var errOut bytes.Buffer
		env := envOf(map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0"})
		if code := run(context.Background(), []string{"serve"}, env, io.Discard, &errOut); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		want := fmt.Sprintf("chown -R %d:%d %s", os.Getuid(), os.Getgid(), dir)
		if !strings.Contains(errOut.String(), "is not writable") || !strings.Contains(errOut.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, errOut.String())
		}
		return
	}

	const uid, gid = 65532, 65532
	// The child runs as 65532: it needs a copy of the test binary and
	// directories it may enter.
	root := worldReadableTempDir(t)
	bin := filepath.Join(root, "hossagent.test")
	if err := copyFile(testBinary(t), bin); err != nil {
		t.Fatal(err)
	}
	cred := &syscall.Credential{Uid: uid, Gid: gid}
	probe := exec.Command(bin, "-test.run=^$")
	probe.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := probe.Run(); err != nil {
		t.Skipf("cannot run a process as uid %d here (%v): the permission case is not testable on this machine", uid, err)
	}

	// A fresh volume: owned by root, mode 0755.
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"DATA_DIR": data, "ADDR": "127.0.0.1:0", "AUTOPILOT_ENABLED": "false"}
	c := startChild(t, bin, "serve", vars, cred)
	if code := c.wait(t); code != 1 {
		t.Fatalf("serve on a root-owned DATA_DIR exited %d, want 1:\n%s", code, c.stderr.String())
	}
	chown := fmt.Sprintf("chown -R %d:%d %s", uid, gid, data)
	for _, want := range []string{"data directory " + data + " is not writable", "permission denied", "owned by uid 0, gid 0",
		"uid:gid 65532:65532", chown, "busybox " + chown, "fly machine update"} {
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("refusal does not say %q:\n%s", want, c.stderr.String())
		}
	}

	// The directory is the app's, but root made the database in it (a
	// command run from a root shell).
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	store, err := db.Open(context.Background(), filepath.Join(data, db.FileName))
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	c = startChild(t, bin, "serve", vars, cred)
	if code := c.wait(t); code != 1 {
		t.Fatalf("serve with a root-owned database exited %d, want 1:\n%s", code, c.stderr.String())
	}
	for _, want := range []string{"cannot open for writing " + filepath.Join(data, db.FileName), chown} {
		if !strings.Contains(c.stderr.String(), want) {
			t.Errorf("refusal does not say %q:\n%s", want, c.stderr.String())
		}
	}

	// Doing what it said makes the start work.
	if err := chownTree(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	c = startChild(t, bin, "serve", vars, cred)
	waitForBootstrap(t, c.serving(t))
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("serve after the chown exited %d:\n%s", code, c.stderr.String())
	}
}

// worldReadableTempDir is a temporary directory any user may enter, removed
// when the test ends (t.TempDir's parents are private to root).
func worldReadableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hossagent-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// chownTree is `chown -R uid:gid dir`.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
