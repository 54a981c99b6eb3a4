package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// rssReader reads the server's resident memory in bytes.
type rssReader func(ctx context.Context) (int64, error)

// procRSS reads VmRSS of process pid from /proc.
func procRSS(pid int) rssReader {
	return func(context.Context) (int64, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		return parseVmRSS(b)
	}
}

// parseVmRSS reads the "VmRSS: N kB" line of a /proc status file.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// metricsRSS reads process_resident_memory_bytes from the server's
// /metrics, with the signed-in client.
func metricsRSS(c *http.Client, base string) rssReader {
	return func(ctx context.Context) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("/metrics: status %d", resp.StatusCode)
		}
		return parseMetricsRSS(resp.Body)
	}
}

// parseMetricsRSS finds process_resident_memory_bytes in a Prometheus text
// exposition.
func parseMetricsRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int64(f), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/metrics has no process_resident_memory_bytes")
}

// rssWatch samples a reader, keeping the peak and the last value.
type rssWatch struct {
	mu                sync.Mutex
	peak, last        int64
	samples, failures int
	lastErr           error
}

// sample reads once.
func (w *rssWatch) sample(ctx context.Context, read rssReader) {
	v, err := read(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failures++
		w.lastErr = err
		return
	}
	w.samples++
	w.peak, w.last = max(w.peak, v), v
}

// run samples every interval until ctx ends.
func (w *rssWatch) run(ctx context.Context, read rssReader, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.sample(ctx, read)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// raiseFileLimit lifts the soft limit on open files to at least need (up to
// the hard limit) and reports whether need fits.
func raiseFileLimit(need uint64) (limit uint64, ok bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	if rl.Cur < need && rl.Cur < rl.Max {
		rl.Cur = min(need, rl.Max)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur, rl.Cur >= need
}
