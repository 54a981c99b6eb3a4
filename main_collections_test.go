//go:build unix

package main

import (
	"context"
	"fmt"
	"net/mail"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hossagent/hossagent/agents"
	"github.com/hossagent/hossagent/agents/agentstest"
	"github.com/hossagent/hossagent/agents/invoicepdf/pdftext"
	"github.com/hossagent/hossagent/db"
)

// The real app, sending over SMTP to a real server, is killed with SIGKILL
// again and again while Collections writes to its clients: the moment each
// kill lands is the moment the server has a message but the app has not yet
// heard that it was accepted, the worst one. Afterwards no recipient got any
// message twice, every client e-mail is either sent or waiting for an
// operator's review (never resent), each invoice e-mail carries its PDF, and
// the store passes every invariant.
func TestCollectionsUnderSIGKILLSendsNothingTwice(t *testing.T) {
	const customers = 12
	sink := agentstest.StartMailSink(t, 30*time.Millisecond)
	dir := t.TempDir()
	path := filepath.Join(dir, db.FileName)
	ctx := context.Background()
	store, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range customers {
		c, _, err := store.CreateCustomer(ctx, nil, db.NewCustomer{
			Company: fmt.Sprintf("Client %02d", i), ContactEmail: fmt.Sprintf("ap@client%02d.example", i), Plan: agents.PlanStarter,
		}, agentstest.NewRand(uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		task := &db.Task{CustomerID: c.ID, Kind: agents.KindMarketResearch, Description: "Market research brief for " + c.Company,
			Status: db.TaskDone, Currency: "usd", RewardCents: 15000 + int64(i), CostCents: 100, ProfitCents: 14900 + int64(i),
			Attempts: 1, StartedAt: &now, CompletedAt: &now, Result: "delivered", CreatedAt: now, UpdatedAt: now}
		if _, err := store.Bun().NewInsert().Model(task).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	vars := map[string]string{
		"DATA_DIR": dir, "ADDR": "127.0.0.1:0", "RELEASE_MODE": "DEVELOPMENT",
		"EMAIL_MODE": "SMTP", "SMTP_HOST": sink.Host, "SMTP_PORT": strconv.Itoa(sink.Port), "SMTP_TLS": "none",
		"EMAIL_SEND_DELAY_MIN": "0", "EMAIL_SEND_DELAY_MAX": "0", "AUTOPILOT_INTERVAL": "1s",
		"COMPANY_NAME": "Hoss Services", "BILLING_EMAIL": "billing@hoss.example",
	}
	bin := testBinary(t)
	clientMail := func() int {
		n := 0
		for _, m := range sink.Mails() {
			if strings.Contains(m.To[0], "@client") {
				n++
			}
		}
		return n
	}
	for round := range 6 {
		before := clientMail()
		c := startChild(t, bin, "serve", vars, nil)
		c.serving(t)
		if before >= 2*customers {
			break
		}
		// Killed as soon as the server holds one more client message: its
		// answer is held back, so the app does not know yet that it left.
		sink.WaitFor(t, 30*time.Second, fmt.Sprintf("client e-mail %d (round %d)", before+1, round), func(agentstest.ReceivedMail) bool {
			return clientMail() > before
		})
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		c.wait(t)
	}

	// A last start finishes the work; it is stopped cleanly once the client
	// outbox is empty and every job is done.
	c := startChild(t, bin, "serve", vars, nil)
	c.serving(t)
	reader, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	count := func(q string) int {
		var n int
		if err := reader.Bun().NewRaw(q).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for count("SELECT COUNT(*) FROM collection_jobs WHERE kind IN ('welcome','invoice')")+
		count("SELECT COUNT(*) FROM client_messages WHERE status IN ('queued','failed') OR (status = 'sending' AND NOT needs_review)") > 0 || count("SELECT COUNT(*) FROM invoices") < customers {
		if time.Now().After(deadline) {
			t.Fatalf("collections did not finish:\n%s", c.stderr.String())
		}
		time.Sleep(100 * time.Millisecond) // a poll of the database, bounded by the deadline
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("the last serve exited %d:\n%s", code, c.stderr.String())
	}

	seen := map[string]int{}
	for _, m := range sink.Mails() {
		key := strings.Join(m.To, ",") + " | " + m.Subject
		if seen[key]++; seen[key] > 1 {
			t.Errorf("received twice: %s", key)
		}
	}
	var msgs []db.ClientMessage
	if err := reader.Bun().NewSelect().Model(&msgs).OrderExpr("cm.id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	review := 0
	for _, m := range msgs {
		got := seen[m.ToAddr+" | "+m.Subject]
		switch {
		case m.Status == db.MessageSent && got == 1:
		case m.Status == db.MessageSending && m.NeedsReview && got <= 1:
			review++
		default:
			t.Errorf("client message %d (%s, %s): status %s review %v, received %d times", m.ID, m.Kind, m.ToAddr, m.Status, m.NeedsReview, got)
		}
	}
	if len(msgs) != 2*customers {
		t.Errorf("client messages = %d, want a welcome and an invoice e-mail for each of %d customers", len(msgs), customers)
	}
	t.Logf("%d client messages, %d left for review after the kills, %d e-mails at the server", len(msgs), review, len(sink.Mails()))

	var invs []db.Invoice
	if err := reader.Bun().NewSelect().Model(&invs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, inv := range invs {
		for _, m := range sink.Mails() {
			if !strings.HasPrefix(m.Subject, "Invoice "+*inv.Number+" ") {
				continue
			}
			if len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/pdf" {
				t.Fatalf("invoice e-mail %q attachments %+v", m.Subject, m.Attachments)
			}
			text, err := pdftext.Text(m.Attachments[0].Content)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, *inv.Number) || !strings.Contains(text, inv.Amount().String()) || !strings.Contains(text, "Hoss Services") {
				t.Errorf("invoice %s PDF text:\n%s", *inv.Number, text)
			}
			if a, err := mail.ParseAddress(m.Header.Get("Reply-To")); err != nil || a.Address != "billing@hoss.example" {
				t.Errorf("invoice e-mail Reply-To = %q", m.Header.Get("Reply-To"))
			}
		}
	}
	results, err := reader.CheckInvariants(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("invariant %d (%s): %q", r.Number, r.Name, r.Violations)
		}
	}
}
