package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/agents/clocktest"
	"github.com/hossagent/hossagent/db"
)

// loginFrom posts the sign-in form as the client at ip (through the
// trusted proxy header) and returns the status and Retry-After.
func (f *fixture) loginFrom(t *testing.T, ip, email, password string) (int, string) {
	t.Helper()
	resp, _ := f.post(t, newClient(t), "/login", url.Values{"email": {email}, "password": {password}},
		map[string]string{testClientIPHeader: ip})
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestSignInGuessesElsewhereDoNotLockOutTheAdmin: an attacker guessing the
// admin's password from one address, then from many (credential stuffing),
// is stopped, while the admin signing in from an address that has not been
// guessing still gets in with the right password.
func TestSignInGuessesElsewhereDoNotLockOutTheAdmin(t *testing.T) {
	f := newFixture(t, nil, func(d *Deps) { d.ClientIPHeader = testClientIPHeader })
	const admin, attacker, home = "ops@example.com", "203.0.113.66", "198.51.100.7"
	f.createUser(t, admin, db.RoleAdmin)

	// One address guessing: refused (429, before any password is
	// checked) once it has failed signInPairBurst times on the account.
	for i := range signInPairBurst {
		if status, _ := f.loginFrom(t, attacker, admin, "guess "+strconv.Itoa(i)); status != http.StatusUnauthorized {
			t.Fatalf("guess %d = %d, want 401", i+1, status)
		}
	}
	status, retry := f.loginFrom(t, attacker, admin, testPassword)
	if status != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("the guessing address, right password = %d (Retry-After %q), want 429", status, retry)
	}
	// ... and the admin, elsewhere, is not.
	if status, _ := f.loginFrom(t, home, admin, testPassword); status != http.StatusSeeOther {
		t.Fatalf("admin from another address = %d, want 303", status)
	}

	// Many addresses guessing, a few guesses each: the account is under
	// attack once signInAccountBurst failures came in.
	bot := func(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }
	for i := range signInAccountBurst {
		if status, _ := f.loginFrom(t, bot(i), admin, "stuffed"); status != http.StatusUnauthorized {
			t.Fatalf("stuffing attempt %d = %d, want 401", i+1, status)
		}
	}
	// Under attack, each address may have failed signInAttackTries times
	// within the cooldown (its guess before the attack counts), then it
	// waits ...
	for i := range signInAttackTries - 1 {
		if status, _ := f.loginFrom(t, bot(0), admin, "stuffed again "+strconv.Itoa(i)); status != http.StatusUnauthorized {
			t.Errorf("a stuffing address, guess %d under attack = %d, want 401", i+1, status)
		}
	}
	if status, retry := f.loginFrom(t, bot(0), admin, "stuffed once more"); status != http.StatusTooManyRequests {
		t.Errorf("a stuffing address, past its tries under attack = %d, want 429", status)
	} else if n, _ := strconv.Atoi(retry); n < 60 {
		t.Errorf("under attack, Retry-After = %q, want the cooldown", retry)
	}
	// ... so an operator who mistypes during an attack that never ends
	// still signs in with the right password, from an address that had not
	// been guessing.
	if status, _ := f.loginFrom(t, "192.0.2.200", admin, "typo"); status != http.StatusUnauthorized {
		t.Errorf("a new address under attack, wrong password = %d, want 401", status)
	}
	if status, _ := f.loginFrom(t, "192.0.2.200", admin, testPassword); status != http.StatusSeeOther {
		t.Errorf("that address again, right password under attack = %d, want 303", status)
	}
	if status, _ := f.loginFrom(t, home, admin, testPassword); status != http.StatusSeeOther {
		t.Errorf("admin from home under attack = %d, want 303", status)
	}
	// Another account is not under attack.
	f.createUser(t, "viewer@example.com", db.RoleViewer)
	if status, _ := f.loginFrom(t, bot(0), "viewer@example.com", testPassword); status != http.StatusSeeOther {
		t.Errorf("other account from a stuffing address = %d, want 303", status)
	}

	// Time heals: after the cooldown every address may try again.
	f.clock.Advance(signInAttackCooldown)
	f.clock.Advance(signInAccountBurst * signInAccountRefill)
	if status, _ := f.loginFrom(t, bot(0), admin, testPassword); status != http.StatusSeeOther {
		t.Errorf("after the attack, a former stuffing address = %d, want 303", status)
	}
	if status, _ := f.loginFrom(t, attacker, admin, testPassword); status != http.StatusSeeOther {
		t.Errorf("after the attack, the guessing address = %d, want 303", status)
	}
	if !strings.Contains(f.logs.String(), "sign-in rate limited") {
		t.Error("refusals are not logged")
	}
}

// TestSignInLimitPerAddress: one address spraying guesses over many
// accounts is stopped after signInAddressBurst failures; its correct
// sign-ins do not count, so an office (or the load tool) signing in often
// from one address is not refused.
func TestSignInLimitPerAddress(t *testing.T) {
	f := newFixture(t, nil, func(d *Deps) { d.ClientIPHeader = testClientIPHeader })
	const ip = "2001:db8:7:7::1"
	f.createUser(t, "ops@example.com", db.RoleAdmin)
	for i := range signInAddressBurst { // known accounts: an unknown one costs a full-strength bcrypt
		f.createUser(t, fmt.Sprintf("user%d@example.com", i), db.RoleViewer)
	}
	for range 3 * signInAddressBurst {
		if status, _ := f.loginFrom(t, ip, "ops@example.com", testPassword); status != http.StatusSeeOther {
			t.Fatalf("correct sign-in = %d, want 303", status)
		}
	}
	for i := range signInAddressBurst {
		if status, _ := f.loginFrom(t, ip, fmt.Sprintf("user%d@example.com", i), "spray"); status != http.StatusUnauthorized {
			t.Fatalf("spray %d = %d, want 401", i+1, status)
		}
	}
	// The same /64 is the same client.
	status, retry := f.loginFrom(t, "2001:db8:7:7::ffff", "ops@example.com", testPassword)
	if status != http.StatusTooManyRequests || retry == "" {
		t.Errorf("past the address's burst = %d (Retry-After %q), want 429", status, retry)
	}
	if status, _ := f.loginFrom(t, "2001:db8:7:8::1", "ops@example.com", testPassword); status != http.StatusSeeOther {
		t.Errorf("the next /64 = %d, want 303", status)
	}
	f.clock.Advance(signInAddressRefill)
	if status, _ := f.loginFrom(t, ip, "ops@example.com", testPassword); status != http.StatusSeeOther {
		t.Errorf("after one refill = %d, want 303", status)
	}
}

// TestFailedSignInsAreAuditedBounded: every failed sign-in is logged, and
// the audit log records them too, but at most signInAuditBurst per address
// (refilled hourly) and signInAuditAllBurst overall: a guesser cannot fill
// the audit log.
func TestFailedSignInsAreAuditedBounded(t *testing.T) {
	f := newFixture(t, nil, func(d *Deps) { d.ClientIPHeader = testClientIPHeader })
	f.createUser(t, "ops@example.com", db.RoleAdmin)
	if status, _ := f.loginFrom(t, "198.51.100.1", "Ops@Example.com", "Hunter2-Secret"); status != http.StatusUnauthorized {
		t.Fatalf("wrong password = %d", status)
	}
	var e db.AuditEntry
	if err := f.store.Bun().NewSelect().Model(&e).Where("action = ?", auditLoginFailed).Scan(context.Background()); err != nil {
		t.Fatalf("no audit entry for a failed sign-in: %v", err)
	}
	if e.Actor != "anonymous" || e.Target != "sign-in as ops@example.com" || e.RemoteAddr != "198.51.100.1" || !e.CreatedAt.Equal(testNow) ||
		e.Detail == "" || strings.Contains(e.Detail, "Hunter2") {
		t.Errorf("audit entry = %+v", e)
	}

	// One address: spread over time so the sign-in limits let every guess
	// through; the audit log takes signInAuditBurst, then one per refill.
	const ip = "203.0.113.5"
	for i := range 4 * signInAuditBurst { // known accounts: an unknown one costs a full-strength bcrypt
		f.createUser(t, fmt.Sprintf("u%d@example.com", i), db.RoleViewer)
	}
	for i := range 4 * signInAuditBurst {
		if status, _ := f.loginFrom(t, ip, fmt.Sprintf("u%d@example.com", i), "wrong"); status != http.StatusUnauthorized {
			t.Fatalf("guess %d = %d", i+1, status)
		}
		f.clock.Advance(signInAddressRefill)
	}
	elapsed := 4 * signInAuditBurst * signInAddressRefill
	want := 1 + signInAuditBurst + int(elapsed/signInAuditRefill)
	if got := f.auditCount(t, auditLoginFailed); got != want {
		t.Errorf("audit entries = %d, want %d", got, want)
	}
	if got := strings.Count(f.logs.String(), "sign-in failed"); got != 1+4*signInAuditBurst {
		t.Errorf("failed sign-ins logged = %d, want every one (%d)", got, 1+4*signInAuditBurst)
	}

	// Many addresses: the overall budget holds.
	before := f.auditCount(t, auditLoginFailed)
	for i := range 2 * signInAuditAllBurst {
		ip := fmt.Sprintf("10.%d.%d.1", i/250, i%250)
		if status, _ := f.loginFrom(t, ip, "ops@example.com", "wrong"); status != http.StatusUnauthorized && status != http.StatusTooManyRequests {
			t.Fatalf("guess from %s = %d", ip, status)
		}
	}
	if got := f.auditCount(t, auditLoginFailed) - before; got > signInAuditAllBurst {
		t.Errorf("audit entries from many addresses = %d, want at most %d", got, signInAuditAllBurst)
	}
}

// TestSignInLimiterHoldsAndForgets: attempts in flight hold their tokens
// (a burst of concurrent guesses runs no more bcrypts than the bucket
// holds), a correct one gives them back, and buckets that have refilled are
// dropped, so memory follows recent failures only.
func TestSignInLimiterHoldsAndForgets(t *testing.T) {
	clock := clocktest.New(testNow)
	l := newSignInLimiter(clock.Now)
	var inFlight []*signInAttempt
	for i := range signInPairBurst {
		a, _, _ := l.begin("192.0.2.1", "ops@example.com")
		if a == nil {
			t.Fatalf("attempt %d in flight refused", i+1)
		}
		inFlight = append(inFlight, a)
	}
	if a, wait, limit := l.begin("192.0.2.1", "ops@example.com"); a != nil || wait != signInPairRefill || limit != limitAddressAccount {
		t.Fatalf("one more in flight = %v, wait %v, limit %q; want refused for %v", a, wait, limit, signInPairRefill)
	}
	for _, a := range inFlight {
		a.succeeded()
	}
	if l.size() != 0 {
		t.Errorf("buckets after every attempt succeeded = %d, want 0", l.size())
	}
	for i := range 50 {
		a, _, _ := l.begin(fmt.Sprintf("192.0.2.%d", i+1), "ops@example.com")
		if a == nil {
			t.Fatalf("attempt from address %d refused", i+1)
		}
		a.failed()
		if i == signInAccountBurst-1 && l.account.wait("ops@example.com", clock.Now()) == 0 {
			t.Fatalf("account bucket not empty after %d failures", signInAccountBurst)
		}
	}
	if l.size() == 0 {
		t.Fatal("no bucket kept")
	}
	clock.Advance(signInAttackCooldown + signInAccountBurst*signInAccountRefill + signInAuditAllBurst*signInAuditAllRefill)
	if a, _, _ := l.begin("198.51.100.1", "x@example.com"); a == nil {
		t.Fatal("refused")
	} else {
		a.succeeded()
	}
	if n := l.size(); n != 0 {
		t.Errorf("buckets after everything refilled = %d, want 0", n)
	}
}
