package app

import (
	"math"
	"sync"
	"time"
)

// Sign-in limits: who may have a password checked, and which failures reach
// the audit log.
//
// Only failures count. A correct password costs one bcrypt like a wrong
// one, but only someone who knows it can send one: an office of operators
// behind one address, or the load tool opening hundreds of sessions, is not
// guessing. An attempt still holds a token of each bucket while its password
// is checked (handed back when it was right), so a burst of concurrent
// guesses cannot run more bcrypts than the buckets hold.
//
// Three buckets decide, each refilled evenly:
//
//   - per client address (an IPv6 /64 is one client, see clientKey):
//     failures from it on any account. Stops one machine guessing, or
//     spraying one password over many accounts: signInAddressBurst, then
//     one every signInAddressRefill.
//   - per (address, account): failures on one account from one address,
//     signInPairBurst, then one every signInPairRefill.
//   - per account: failures on it from every address. This one never
//     refuses a password check by itself. An account-wide lockout is what
//     the attacker wants: from anywhere, a few wrong passwords a minute
//     would keep the operator out for ever. When the bucket is empty the
//     account is under attack from many addresses (credential stuffing, a
//     botnet), and then an address may try it only while it has failed on
//     it fewer than signInAttackTries times within signInAttackCooldown. Each guessing address gets a few
//     guesses and then one per cooldown, K addresses about 4K guesses an
//     hour instead of K·signInPairBurst a minute, while the operator's own
//     address, which has not been guessing, is checked as always and a
//     correct password signs in. An attack that never ends (one guess every
//     few minutes from rotating addresses) keeps the account "under attack"
//     for good, so the operator who mistypes then still has
//     signInAttackTries-1 more tries before waiting out the cooldown.
//
// No refusal reveals whether an account exists: the per-account bucket is
// kept for any e-mail typed, known or not.
//
// Memory: a bucket is kept from a key's first failure until it has
// refilled. bcrypt bounds the failures a server can check to a few per
// second per core, so the maps hold tens of thousands of keys at the very
// most; past maxSignInKeys a new key is not kept (its bucket is treated as
// full), so a flood cannot grow them further.
const (
	signInAddressBurst   = 10
	signInAddressRefill  = time.Minute / signInAddressBurst
	signInPairBurst      = 5
	signInPairRefill     = time.Minute / signInPairBurst
	signInAccountBurst   = 20
	signInAccountRefill  = 3 * time.Minute
	signInAttackCooldown = 15 * time.Minute
	signInAttackTries    = 3
	maxSignInKeys        = 100_000
)

// Failed sign-ins are audited, but the audit log is never pruned (its rows
// are a kept total), so what an attacker can write to it is bounded: at
// most signInAuditBurst entries per client address, refilled at one every
// signInAuditRefill (ten an hour), and signInAuditAllBurst from all
// addresses together, refilled at one every signInAuditAllRefill (a hundred
// an hour). Past either, a failure is still logged (the log says
// audited=false) but not written to the audit log: a guesser with a
// botnet adds at most ~2,400 rows a day, an operator's mistyping always
// shows.
const (
	signInAuditBurst     = 10
	signInAuditRefill    = time.Hour / signInAuditBurst
	signInAuditAllBurst  = 100
	signInAuditAllRefill = time.Hour / signInAuditAllBurst
	auditLoginFailed     = "login failed"
)

// The limit that refused a sign-in, for the log.
const (
	limitAddress            = "address"
	limitAddressAccount     = "address and account"
	limitAccountUnderAttack = "account under attack"
)

// signInLimiter holds the sign-in buckets.
type signInLimiter struct {
	now func() time.Time

	mu                               sync.Mutex
	address, pair, account, cooldown tokenBuckets
	auditAddress, auditAll           tokenBuckets
	swept                            time.Time
}

func newSignInLimiter(now func() time.Time) *signInLimiter {
	return &signInLimiter{
		now:          now,
		address:      newTokenBuckets(signInAddressRefill, signInAddressBurst),
		pair:         newTokenBuckets(signInPairRefill, signInPairBurst),
		account:      newTokenBuckets(signInAccountRefill, signInAccountBurst),
		cooldown:     newTokenBuckets(signInAttackCooldown, signInAttackTries),
		auditAddress: newTokenBuckets(signInAuditRefill, signInAuditBurst),
		auditAll:     newTokenBuckets(signInAuditAllRefill, signInAuditAllBurst),
	}
}

// signInAttempt is one password check that begin let through.
type signInAttempt struct {
	l                *signInLimiter
	address, account string
	cooled           bool // took the cooldown token: the account was under attack
}

// begin decides whether the client at address (a clientKey) may have a
// password for account checked. It returns the attempt, which the caller
// ends with failed or succeeded, or nil with how long to wait and which
// limit refused.
func (l *signInLimiter) begin(address, account string) (*signInAttempt, time.Duration, string) {
	now := l.now()
	pair := address + "\x00" + account
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	if w := l.address.wait(address, now); w > 0 {
		return nil, w, limitAddress
	}
	if w := l.pair.wait(pair, now); w > 0 {
		return nil, w, limitAddressAccount
	}
	underAttack := l.account.wait(account, now) > 0
	if underAttack {
		if w := l.cooldown.wait(pair, now); w > 0 {
			return nil, w, limitAccountUnderAttack
		}
		l.cooldown.take(pair, now)
	}
	l.address.take(address, now)
	l.pair.take(pair, now)
	return &signInAttempt{l: l, address: address, account: account, cooled: underAttack}, 0, ""
}

// succeeded ends an attempt whose password was right (or that was never
// checked): every token it held goes back.
func (a *signInAttempt) succeeded() {
	l, now := a.l, a.l.now()
	pair := a.address + "\x00" + a.account
	l.mu.Lock()
	defer l.mu.Unlock()
	l.address.give(a.address, now)
	l.pair.give(pair, now)
	if a.cooled {
		l.cooldown.give(pair, now)
	}
}

// failed ends an attempt whose password was wrong: its tokens stay taken,
// the account and the address's cooldown on it take one more, and it
// reports whether the failure may be written to the audit log.
func (a *signInAttempt) failed() (audit bool) {
	l, now := a.l, a.l.now()
	pair := a.address + "\x00" + a.account
	l.mu.Lock()
	defer l.mu.Unlock()
	l.account.take(a.account, now)
	if !a.cooled {
		l.cooldown.take(pair, now)
	}
	if l.auditAll.wait("", now) > 0 || l.auditAddress.wait(a.address, now) > 0 {
		return false
	}
	l.auditAll.take("", now)
	l.auditAddress.take(a.address, now)
	return true
}

// sweep forgets full buckets, at most once a minute.
func (l *signInLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for _, b := range []*tokenBuckets{&l.address, &l.pair, &l.account, &l.cooldown, &l.auditAddress, &l.auditAll} {
		b.sweep(now)
	}
}

// size is the number of buckets kept, for tests.
func (l *signInLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, b := range []*tokenBuckets{&l.address, &l.pair, &l.account, &l.cooldown, &l.auditAddress, &l.auditAll} {
		n += len(b.keys)
	}
	return n
}

// tokenBuckets is a token bucket per key: burst tokens, refilled at one
// every every. A key without a bucket has a full one. Unlike rate.Limiter,
// a token taken can be given back at any later time, and a bucket can be
// taken from when empty (it stays at zero): a failure is recorded even when
// it was let through on another bucket's say. Not safe for concurrent use;
// its owner locks.
type tokenBuckets struct {
	every time.Duration
	burst float64
	keys  map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

func newTokenBuckets(every time.Duration, burst int) tokenBuckets {
	return tokenBuckets{every: every, burst: float64(burst), keys: map[string]*tokenBucket{}}
}

// level is key's tokens at now.
func (b *tokenBuckets) level(key string, now time.Time) float64 {
	tb, ok := b.keys[key]
	if !ok {
		return b.burst
	}
	elapsed := now.Sub(tb.at)
	if elapsed <= 0 {
		return tb.tokens
	}
	return math.Min(b.burst, tb.tokens+float64(elapsed)/float64(b.every))
}

// wait is how long until key holds a whole token: 0 when it does now.
func (b *tokenBuckets) wait(key string, now time.Time) time.Duration {
	missing := 1 - b.level(key, now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(missing * float64(b.every)))
}

// take removes one token from key's bucket, down to zero.
func (b *tokenBuckets) take(key string, now time.Time) {
	b.set(key, math.Max(0, b.level(key, now)-1), now)
}

// give puts one token back, up to burst.
func (b *tokenBuckets) give(key string, now time.Time) {
	if _, ok := b.keys[key]; !ok {
		return // already full (or never kept)
	}
	b.set(key, math.Min(b.burst, b.level(key, now)+1), now)
}

func (b *tokenBuckets) set(key string, tokens float64, now time.Time) {
	if tb, ok := b.keys[key]; ok {
		if tokens >= b.burst {
			delete(b.keys, key) // full: the same as none
			return
		}
		tb.tokens, tb.at = tokens, now
		return
	}
	if tokens >= b.burst || len(b.keys) >= maxSignInKeys {
		return
	}
	b.keys[key] = &tokenBucket{tokens: tokens, at: now}
}

// sweep forgets the buckets that have refilled: a full bucket behaves like
// none.
func (b *tokenBuckets) sweep(now time.Time) {
	for key := range b.keys {
		if b.level(key, now) >= b.burst {
			delete(b.keys, key)
		}
	}
}

// retryAfterSeconds is a wait as a Retry-After value: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
