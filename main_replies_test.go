//go:build unix

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/db"
)

// The real app reads replies from a real IMAP server (go-imap's memory
// server, keeping no keywords, so that handled means \Seen) through a proxy
// the test controls, and is killed with SIGKILL at the worst moments: when
// it holds a FETCH's messages but has not heard the command complete (so
// it stored nothing yet), when it has stored the replies and sent UID
// STORE \Seen but the server never saw it, and when the server applied
// the STORE but its answer never came back. Started again each time, it
// ends with every reply stored exactly once (by Message-ID), none lost,
// and every message \Seen on the server; the last replies come through
// IDLE, with the autopilot's ticks a day apart.
func TestRepliesUnderSIGKILLLoseNoneAndStoreNoneTwice(t *testing.T) {
	const leads = 7
	sink := agentstest.StartMailSink(t, 0)
	mailbox := agentstest.StartIMAPServer(t, agentstest.IMAPServerOptions{NoKeywords: true})
	proxy := agentstest.StartIMAPProxy(t, mailbox.Addr())
	dir := t.TempDir()
	path := filepath.Join(dir, db.FileName)
	ctx := context.Background()
	store, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, leads)
	for i := range leads {
		addrs[i] = fmt.Sprintf("owner@prospect-%02d.com", i)
		in, err := agents.PrepareLead(agents.LeadCandidate{Name: fmt.Sprintf("Owner %02d", i), Email: addrs[i],
			Company: fmt.Sprintf("Prospect %02d", i), Niche: "B2B SaaS"}, "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.CreateLead(ctx, nil, in); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	// One tick at each start, the next a day later: replies read after the
	// start come through the watcher's IDLE.
	vars := map[string]string{
		"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "RELEASE_MODE": "DEVELOPMENT", "AUTOPILOT_INTERVAL": "24h",
		"EMAIL_MODE": "SMTP", "SMTP_HOST": sink.Host, "SMTP_PORT": strconv.Itoa(sink.Port), "SMTP_TLS": "none",
		"EMAIL_SEND_DELAY_MIN": "0", "EMAIL_SEND_DELAY_MAX": "0", "MAX_NEW_LEADS_PER_CYCLE": "0",
		"IMAP_HOST": "127.0.0.1", "IMAP_PORT": strconv.Itoa(proxy.Port), "IMAP_TLS": "none",
		"IMAP_USERNAME": mailbox.User, "IMAP_PASSWORD": mailbox.Password,
	}
	bin := testBinary(t)
	const wait = 30 * time.Second

	reader := func() *db.DB {
		r, err := db.OpenExisting(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	count := func(r *db.DB, q string, args ...any) int {
		var n int
		if err := r.Bun().NewRaw(q, args...).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var replyIDs []string // Message-IDs of the replies in the mailbox, in order
	placeReplies := func(first, n int) {
		for i := first; i < first+n; i++ {
			out := sink.WaitFor(t, wait, "outreach to "+addrs[i], func(m agentstest.ReceivedMail) bool { return m.To[0] == addrs[i] })
			id := fmt.Sprintf("<reply-%02d@prospect-%02d.com>", i, i)
			replyIDs = append(replyIDs, id)
			mailbox.Append(t, []byte(strings.ReplaceAll(fmt.Sprintf(`From: Owner %02[1]d <%[2]s>
To: hello@hossagent.example
Subject: Re: %[3]s
Message-ID: %[4]s
In-Reply-To: %[5]s
References: %[5]s
Date: Mon, 02 Jun 2025 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

Sounds good, let's talk next week.

> %[3]s
`, i, addrs[i], out.Subject, id, out.Header.Get("Message-Id")), "\n", "\r\n")))
		}
	}
	seen := func(ids []string) (n int) {
		flags := mailbox.Flags(t)
		for _, id := range ids {
			if slices.Contains(flags[strings.Trim(id, "<>")], goimap.FlagSeen) {
				n++
			}
		}
		return n
	}
	kill := func(c *child) {
		t.Helper()
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		c.wait(t)
	}

	// 1. The first start sends the outreach. Replies come while the
	// watcher idles; the app is killed holding the FETCH's messages, the
	// command's completion held back: nothing is stored yet.
	c := startChild(t, bin, "serve", vars, nil)
	c.serving(t)
	sink.WaitFor(t, wait, "outreach to every lead", func(agentstest.ReceivedMail) bool { return len(sink.Mails()) >= leads })
	r := reader()
	waitFor(t, wait, "the outreach recorded as sent", func() bool {
		return count(r, "SELECT COUNT(*) FROM messages WHERE status = 'sent'") == leads
	})
	proxy.WaitCommand(t, wait, "IDLE", 1)
	fetch := &agentstest.ProxyRule{Command: "UID FETCH", Action: agentstest.HoldCompletion}
	proxy.Arm(fetch)
	placeReplies(0, 2)
	proxy.WaitFired(t, wait, fetch)
	if n := count(r, "SELECT COUNT(*) FROM replies"); n != 0 {
		t.Fatalf("%d replies stored before the FETCH completed", n)
	}
	kill(c)

	// 2. At the next start the tick reads them, stores them, and is killed
	// at UID STORE \Seen, which never reaches the server.
	store1 := &agentstest.ProxyRule{Command: "UID STORE", Action: agentstest.DropCommand}
	proxy.Arm(store1)
	c = startChild(t, bin, "serve", vars, nil)
	c.serving(t)
	if line := proxy.WaitFired(t, wait, store1); !strings.Contains(line, `\Seen`) {
		t.Fatalf("the STORE the proxy stopped: %q", line)
	}
	if n := count(r, "SELECT COUNT(*) FROM replies"); n != 2 {
		t.Fatalf("%d replies stored before the mark, want 2", n)
	}
	if n := seen(replyIDs); n != 0 {
		t.Fatalf("%d messages \\Seen though the STORE never reached the server", n)
	}
	kill(c)

	// 3. Two more come while the app is down. The next start reads all
	// four and is killed after the server applied the STORE, before its
	// answer reached the app.
	placeReplies(2, 2)
	store2 := &agentstest.ProxyRule{Command: "UID STORE", Action: agentstest.HoldCompletion}
	proxy.Arm(store2)
	c = startChild(t, bin, "serve", vars, nil)
	c.serving(t)
	proxy.WaitFired(t, wait, store2)
	if n := count(r, "SELECT COUNT(*) FROM replies"); n != 4 {
		t.Fatalf("%d replies stored, want 4", n)
	}
	if n := seen(replyIDs); n != 4 {
		t.Fatalf("%d of 4 messages \\Seen after the server applied the STORE", n)
	}
	kill(c)

	// 4. Nothing is left at this start; two come while the watcher idles,
	// and the app is killed holding the FETCH again.
	idles := proxy.CountCommands("IDLE")
	fetch2 := &agentstest.ProxyRule{Command: "UID FETCH", Action: agentstest.HoldCompletion}
	proxy.Arm(fetch2)
	c = startChild(t, bin, "serve", vars, nil)
	c.serving(t)
	proxy.WaitCommand(t, wait, "IDLE", idles+1)
	placeReplies(4, 2)
	proxy.WaitFired(t, wait, fetch2)
	if n := count(r, "SELECT COUNT(*) FROM replies"); n != 4 {
		t.Fatalf("%d replies stored before the FETCH completed, want 4", n)
	}
	kill(c)

	// 5. The last start finishes; one more reply comes while it idles.
	// It is stopped cleanly and logs out.
	proxy.Arm(nil)
	idles = proxy.CountCommands("IDLE")
	c = startChild(t, bin, "serve", vars, nil)
	c.serving(t)
	proxy.WaitCommand(t, wait, "IDLE", idles+1)
	placeReplies(6, 1)
	waitFor(t, wait, "every reply stored and \\Seen", func() bool {
		return count(r, "SELECT COUNT(*) FROM replies") == leads && seen(replyIDs) == leads
	})
	logouts := proxy.CountCommands("LOGOUT")
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("the last serve exited %d:\n%s", code, c.stderr.String())
	}
	if proxy.CountCommands("LOGOUT") <= logouts {
		t.Error("the watcher did not log out on SIGTERM")
	}

	// Every reply once, by its Message-ID; each lead answered once; every
	// message \Seen; the store's invariants hold.
	if n := count(r, "SELECT COUNT(*) FROM replies"); n != leads {
		t.Errorf("%d replies stored, want %d", n, leads)
	}
	for _, id := range replyIDs {
		sum := sha256.Sum256([]byte(strings.Trim(id, "<>")))
		if n := count(r, "SELECT COUNT(*) FROM replies WHERE dedupe_key = ?", "mid:"+hex.EncodeToString(sum[:])); n != 1 {
			t.Errorf("reply %s stored %d times", id, n)
		}
	}
	for _, a := range addrs {
		if n := count(r, "SELECT COUNT(*) FROM replies JOIN leads ON leads.id = replies.lead_id WHERE leads.email = ? AND replies.message_id IS NOT NULL", a); n != 1 {
			t.Errorf("lead %s has %d replies matched to its outreach, want 1", a, n)
		}
	}
	if n := seen(replyIDs); n != leads {
		t.Errorf("%d of %d messages \\Seen on the server", n, leads)
	}
	results, err := r.CheckInvariants(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range results {
		if !res.OK() {
			t.Errorf("invariant %d (%s): %q", res.Number, res.Name, res.Violations)
		}
	}
}

// waitFor polls done (the database, the server) until it holds; it fails
// the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond) // a poll, bounded by the deadline
	}
}
