package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"
	"unicode/utf8"

	"github.com/hossagent/hossagent/agents/sendgrid"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// Fuzz targets of the two mail endpoints the outside world posts to, each
// through the real router on a real SQLite file (one per target, shared by
// its inputs). Run them with
//
//	go test -run '^$' -fuzz '^FuzzEmailInbound$' -fuzztime 5m -parallel 1 ./app/
//	go test -run '^$' -fuzz '^FuzzEmailEvents$' -fuzztime 5m -parallel 1 ./app/
//
// and as ordinary tests (the seed corpus) in go test.

// mailFuzzServer is the real handler over a real store for a fuzz target.
// Every input starts from the same rows (reset): with the rows of earlier
// inputs, the same input would take other paths (a reply already stored is
// a duplicate), its coverage would change from run to run, and the fuzzer,
// which re-runs an input to minimize it, would stall. SQLite's own paths
// matter too (modernc's SQLite is Go, instrumented like the rest): the
// store has one connection and an emptied WAL before each input, and the
// random source (multipart boundaries, ECDSA signatures) is fixed per input
// (cryptotest.SetGlobalRandom).
type mailFuzzServer struct {
	handler http.Handler
	store   *db.DB
}

func newMailFuzzServer(f *testing.F, env map[string]string, leads ...string) *mailFuzzServer {
	f.Helper()
	cfg, _, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(mailFuzzDir(f), "fuzz.db"), db.WithClock(mailFuzzNow))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	// One connection: with a pool, which connection (and which page cache)
	// serves a query would vary from run to run, and so SQLite's paths.
	store.Bun().SetMaxOpenConns(1)
	for _, email := range leads {
		domain := email[strings.IndexByte(email, '@')+1:]
		if _, err := store.CreateLead(ctx, nil, db.NewLead{Name: "Lead", Email: email, DomainKey: domain, Company: "Co " + domain, Source: "test"}); err != nil {
			f.Fatal(err)
		}
	}
	// No log: formatting a request's duration takes other paths each time.
	// A panic still shows, as the 500 recoverPanics answers.
	s := New(Deps{Config: cfg, Store: store, Logger: slog.New(slog.DiscardHandler), Now: mailFuzzNow, MailEvents: sendgrid.Events{}})
	return &mailFuzzServer{handler: s.Handler(), store: store}
}

func mailFuzzNow() time.Time { return testNow }

// mailFuzzDir is a folder for a fuzz target's database: in memory (/dev/shm)
// where there is one, since every input writes and checkpoints, else the
// test's temporary folder. Either way a real SQLite file.
func mailFuzzDir(f *testing.F) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "hossagent-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}

// reset puts the rows back as newMailFuzzServer left them, with every lead
// contacted: no reply, no suppression.
func (s *mailFuzzServer) reset(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		"DELETE FROM replies",
		"DELETE FROM suppressions",
		"UPDATE leads SET status = 'contacted', responded_at = NULL WHERE status <> 'contacted'",
		// An empty WAL each time: SQLite writes the same pages the same way.
		"PRAGMA wal_checkpoint(TRUNCATE)",
	} {
		if _, err := s.store.Bun().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

// post sends body to path and returns the status and answer.
func (s *mailFuzzServer) post(path, contentType string, body []byte, header map[string]string) (int, string) {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// scalar reads one number from the store.
func (s *mailFuzzServer) scalar(t *testing.T, query string) int64 {
	t.Helper()
	var n int64
	if err := s.store.Bun().NewRaw(query).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// state is what a mail event may change: every suppression and every lead's
// status, in one string.
func (s *mailFuzzServer) state(t *testing.T) string {
	t.Helper()
	var out string
	err := s.store.Bun().NewRaw(`SELECT (SELECT COUNT(*) || '/' || COALESCE(MAX(id), 0) FROM suppressions) || '|' ||
		(SELECT COALESCE(group_concat(id || ':' || status || ':' || updated_at, ','), '') FROM leads)`).Scan(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Inbound deliveries, as the fuzz target builds them from its inputs.
const (
	inboundURLEncoded = iota
	inboundMultipartForm
	inboundRawBody // the text field is the whole body, sent as a form
	inboundModes
)

// inboundRequest builds one Inbound Parse post.
func inboundRequest(mode uint8, from, subject, text, headers, charsets string) (string, []byte) {
	fields := [][2]string{{"from", from}, {"to", "outreach@hossagent.test"}, {"subject", subject}, {"text", text}, {"headers", headers}}
	if charsets != "" {
		fields = append(fields, [2]string{"charsets", charsets})
	}
	switch mode % inboundModes {
	case inboundMultipartForm:
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for _, f := range fields {
			_ = w.WriteField(f[0], f[1])
		}
		_ = w.Close()
		return w.FormDataContentType(), buf.Bytes()
	case inboundRawBody:
		return "application/x-www-form-urlencoded", []byte(text)
	}
	form := url.Values{}
	for _, f := range fields {
		form.Set(f[0], f[1])
	}
	return "application/x-www-form-urlencoded", []byte(form.Encode())
}

// FuzzEmailInbound posts replies to /email/inbound/{secret}, each twice.
// Properties: never a 5xx (SendGrid would retry it for days) nor a panic;
// a stored reply holds no NUL and only valid UTF-8; and the second,
// identical delivery stores nothing new and says so.
func FuzzEmailInbound(f *testing.F) {
	s := newMailFuzzServer(f, map[string]string{"EMAIL_INBOUND_SECRET": mailInboundSecret}, "jane@acme.example", "bob@bob.example")
	path := "/email/inbound/" + mailInboundSecret
	// The inputs and ordinary ones.
	f.Add(uint8(inboundURLEncoded), "Jane Doe <jane@acme.example>", "Re: a quick idea", "Sounds good, call me.", inboundHeaders("<m1@acme.example>"), "")
	f.Add(uint8(inboundMultipartForm), `"Jane" <Jane@ACME.example>`, "Re: hi", "Yes.\r\n\r\n> quoted", inboundHeaders("<m2@acme.example>"), `{"text":"UTF-8"}`)
	f.Add(uint8(inboundURLEncoded), "jane@acme.example", "Re: \x00NUL", "text with a NUL \x00 byte", "", "")
	f.Add(uint8(inboundMultipartForm), "jane@acme.example", "bad \xff\xfe UTF-8", "\xc3\x28 invalid \xed\xa0\x80", "Message-ID: <\x00\xff@x>\r\n", "")
	f.Add(uint8(inboundURLEncoded), "bob@bob.example", "no Message-ID", "a reply without a Message-ID", "Subject: x\r\n", "")
	f.Add(uint8(inboundURLEncoded), "bob@bob.example", "Latin-1", "Caf\xe9", "", `{"text":"iso-8859-1","subject":"latin1"}`)
	f.Add(uint8(inboundURLEncoded), "stranger@else.example", "Re: hi", "who is this", "", "")
	f.Add(uint8(inboundURLEncoded), "", "no sender", "x", "", "")
	f.Add(uint8(inboundURLEncoded), "=?x-unknown?q?J=E9?= <jane@acme.example>", "Re", "display name in an unknown charset", "", "{not json")
	f.Add(uint8(inboundRawBody), "", "", "from=jane%40acme.example&text=%00%FF&subject=%ZZ", "", "")
	f.Add(uint8(inboundMultipartForm), "jane@acme.example", strings.Repeat("long subject ", 100), strings.Repeat("body ", 2000), inboundHeaders(""), "")
	f.Fuzz(func(t *testing.T, mode uint8, from, subject, text, headers, charsets string) {
		cryptotest.SetGlobalRandom(t, 1)
		s.reset(t)
		ct, body := inboundRequest(mode, from, subject, text, headers, charsets)
		status, answer := s.post(path, ct, body, nil)
		if status >= 500 {
			t.Fatalf("first delivery = %d %s", status, answer)
		}
		last := s.scalar(t, "SELECT COALESCE(MAX(id), 0) FROM replies")
		if status == http.StatusOK && strings.Contains(answer, "recorded") {
			var r db.Reply
			if err := s.store.Bun().NewSelect().Model(&r).Where("id = ?", last).Scan(context.Background()); err != nil {
				t.Fatal(err)
			}
			for name, v := range map[string]string{"from": r.FromAddr, "subject": r.Subject, "body": r.Body} {
				if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
					t.Errorf("stored %s %q holds a NUL or invalid UTF-8", name, v)
				}
			}
		}
		again, answer2 := s.post(path, ct, body, nil)
		if again >= 500 {
			t.Fatalf("repeated delivery = %d %s", again, answer2)
		}
		if got := s.scalar(t, "SELECT COALESCE(MAX(id), 0) FROM replies"); got != last {
			t.Fatalf("the repeated delivery stored a reply (%d → %d): first %d %s, then %d %s", last, got, status, answer, again, answer2)
		}
		if status == http.StatusOK && strings.Contains(answer, "recorded") && !strings.Contains(answer2, "duplicate") {
			t.Errorf("the repeat of a recorded reply answered %d %s, want duplicate", again, answer2)
		}
	})
}

// mailFuzzSigner signs event batches like SendGrid, with a key the production
// servers of FuzzEmailEvents are configured with.
type mailFuzzSigner struct {
	key    *ecdsa.PrivateKey
	public string
}

func newMailFuzzSigner(f *testing.F) *mailFuzzSigner {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	return &mailFuzzSigner{key: key, public: base64.StdEncoding.EncodeToString(der)}
}

func (s *mailFuzzSigner) headers(t *testing.T, timestamp string, body []byte) map[string]string {
	h := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{sendgrid.SignatureHeader: base64.StdEncoding.EncodeToString(sig), sendgrid.TimestampHeader: timestamp}
}

// FuzzEmailEvents posts event batches to /email/events of three servers:
// PRODUCTION with a verification key, PRODUCTION without one, and
// DEVELOPMENT without one (which takes unsigned batches). Each batch goes
// signed with the input's timestamp offset (when the input says so), and
// unsigned. Properties: never a 5xx nor a panic; in PRODUCTION an unsigned
// batch never changes anything, nor a signed one whose timestamp is more
// than the window from now, nor anything at all without a key; and a
// batch delivered again changes nothing the second time.
func FuzzEmailEvents(f *testing.F) {
	signer := newMailFuzzSigner(f)
	leads := []string{"b@bounce.example", "s@spam.example", "u@unsub.example", "victim@target.example"}
	prod := productionEnv(map[string]string{"SENDGRID_WEBHOOK_VERIFICATION_KEY": signer.public})
	keyed := newMailFuzzServer(f, prod, leads...)
	keyless := newMailFuzzServer(f, productionEnv(nil), leads...)
	dev := newMailFuzzServer(f, nil, leads...)
	window := int64(sendgrid.EventWindow / time.Second)

	f.Add([]byte(mailEventBatch), int64(0), true)
	f.Add(unsubscribeBatch, int64(0), false)          // unsigned
	f.Add(unsubscribeBatch, int64(-11*60), true)      // stale
	f.Add(unsubscribeBatch, -window-1, true)          // just past the window
	f.Add(unsubscribeBatch, window, true)             // at its edge
	f.Add(unsubscribeBatch, int64(600), true)         // +600 s
	f.Add(unsubscribeBatch, int64(365*24*3600), true) // a year ahead
	f.Add([]byte(`[{"email":"victim@target.example","event":"bounce","type":"bounce"}]`), int64(-30), true)
	f.Add([]byte(`[{"email":"u\x00@unsub.example","event":"unsubscribe"},{"email":"\xff\xfe@x","event":"spamreport"}]`), int64(0), true)
	f.Add([]byte(`[{"email":"U@UNSUB.example","event":"dropped","reason":"Unsubscribed Address"}]`), int64(5), true)
	f.Add([]byte(`[{"email":"b@bounce.example","event":`), int64(0), true) // malformed
	f.Add([]byte(`{"event":"bounce"}`), int64(0), false)
	f.Add([]byte(`[1, null, "x", {"email": 5}]`), int64(0), true)
	f.Add([]byte(``), int64(0), false)
	f.Fuzz(func(t *testing.T, body []byte, offset int64, signed bool) {
		cryptotest.SetGlobalRandom(t, 1)
		for _, s := range []*mailFuzzServer{keyed, keyless, dev} {
			s.reset(t)
		}
		offset %= 2 * 365 * 24 * 3600 // a timestamp within two years either way
		ts := strconv.FormatInt(testNow.Unix()+offset, 10)
		var sig map[string]string
		if signed {
			sig = signer.headers(t, ts, body)
		}
		fresh := signed && offset <= window && -offset <= window

		for name, s := range map[string]*mailFuzzServer{"PRODUCTION with a key": keyed, "PRODUCTION without a key": keyless, "DEVELOPMENT without a key": dev} {
			for _, h := range []map[string]string{nil, sig} {
				if h == nil && signed {
					continue // the unsigned delivery is sent below, on its own
				}
				before := s.state(t)
				status, answer := s.post("/email/events", "application/json", body, h)
				if status >= 500 {
					t.Fatalf("%s: batch = %d %s", name, status, answer)
				}
				mayChange := s == dev || s == keyed && h != nil && fresh
				if after := s.state(t); !mayChange && after != before {
					t.Fatalf("%s: a batch (signed %v, offset %d s) changed the state: %d %s\n%s\n%s", name, h != nil, offset, status, answer, before, after)
				}
				// Delivered again, it changes nothing.
				mid := s.state(t)
				if again, answer := s.post("/email/events", "application/json", body, h); again >= 500 || again != status {
					t.Fatalf("%s: the repeat = %d %s, the first %d", name, again, answer, status)
				}
				if s.state(t) != mid {
					t.Fatalf("%s: the repeated batch changed the state again", name)
				}
			}
		}
		if signed {
			// The same batch unsigned: in PRODUCTION it changes nothing.
			for name, s := range map[string]*mailFuzzServer{"PRODUCTION with a key": keyed, "PRODUCTION without a key": keyless} {
				before := s.state(t)
				if status, answer := s.post("/email/events", "application/json", body, nil); status >= 500 {
					t.Fatalf("%s: unsigned = %d %s", name, status, answer)
				}
				if s.state(t) != before {
					t.Fatalf("%s: an unsigned batch changed the state", name)
				}
			}
		}
	})
}
