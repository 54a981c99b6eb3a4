package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// publishedPrefix starts the SSE comment the server stamps each live
// message with: the Unix time in nanoseconds its first change was published.
var publishedPrefix = []byte(": published ")

// streamStats is what every client of one SSE path measured.
type streamStats struct {
	path                                  string
	clients                               int
	connects, errors, messages, unstamped atomic.Int64
	refused                               atomic.Int64 // 429 or 503: over the server's stream limits
	heartbeats                            atomic.Int64
	delays                                Sample
}

// report is the stats as they stand.
func (s *streamStats) report() SSEReport {
	return SSEReport{Path: s.path, Clients: s.clients, Connects: s.connects.Load(), Errors: s.errors.Load(), Refused: s.refused.Load(),
		Messages: s.messages.Load(), Unstamped: s.unstamped.Load(), Heartbeats: s.heartbeats.Load(), Delay: s.delays.Summary()}
}

// event is what the reader needs of one SSE message: whether it carried
// data, and its publish stamp when it had one.
type event struct {
	data    bool
	stamped bool
	stamp   int64 // Unix nanoseconds
	comment bool
}

// record counts a finished message that arrived at now.
func (s *streamStats) record(ev event, now time.Time) {
	switch {
	case ev.data && ev.stamped:
		s.messages.Add(1)
		s.delays.Add(max(0, time.Duration(now.UnixNano()-ev.stamp)))
	case ev.data:
		s.messages.Add(1)
		s.unstamped.Add(1)
	case ev.comment:
		s.heartbeats.Add(1)
	}
}

// readEvents reads an event stream until it ends, calling emit with each
// message and the time its closing blank line arrived. Lines are looked at
// only as far as their first few kilobytes: a fragment's data lines can be
// long, and only their prefix matters.
func readEvents(body io.Reader, now func() time.Time, emit func(event, time.Time)) error {
	br := bufio.NewReaderSize(body, 16<<10)
	var ev event
	for {
		line, err := readLinePrefix(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(line) == 0 {
			if ev != (event{}) {
				emit(ev, now())
			}
			ev = event{}
			continue
		}
		parseLine(line, &ev)
	}
}

// parseLine applies one non-empty line to the message being read.
func parseLine(line []byte, ev *event) {
	switch {
	case bytes.HasPrefix(line, []byte("data:")):
		ev.data = true
	case bytes.HasPrefix(line, publishedPrefix):
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line[len(publishedPrefix):])), 10, 64)
		if err == nil {
			ev.stamp, ev.stamped = n, true
		}
	case line[0] == ':':
		ev.comment = true
	}
}

// readLinePrefix returns the start of the next line (at most the reader's
// buffer), without its line ending, and skips the rest of the line.
func readLinePrefix(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		prefix := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		if err != nil {
			return nil, err
		}
		return prefix, nil
	}
	if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// streamOnce opens one event stream and reads it until it ends.
func streamOnce(ctx context.Context, client *http.Client, url string, st *streamStats) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			st.refused.Add(1)
		}
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	st.connects.Add(1)
	return readEvents(resp.Body, time.Now, st.record)
}

// streamClient keeps one event stream open until ctx ends, reconnecting a
// second after a stream that failed or ended.
func streamClient(ctx context.Context, client *http.Client, url string, st *streamStats) {
	for ctx.Err() == nil {
		if err := streamOnce(ctx, client, url, st); err != nil && ctx.Err() == nil {
			st.errors.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
