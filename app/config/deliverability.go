package config

import (
	"strconv"
	"strings"
)

// Deliverability is outreach's deliverability guard: the bounce rate that
// pauses outreach and the warm-up ramp of the daily cap.
type Deliverability struct {
	// BouncePauseRate is EMAIL_BOUNCE_PAUSE_RATE in hundredths of a percent
	// (500 is 5%): a bounce rate above it, over the last BounceWindow real
	// sends, pauses outreach; 0 never pauses for bounces.
	BouncePauseRate int
	// BounceWindow is EMAIL_BOUNCE_WINDOW, the sends the rate is taken
	// over (default 50).
	BounceWindow int
	// BounceMinSends is EMAIL_BOUNCE_MIN_SENDS, the sends counted before
	// the rate can pause outreach (default 20, or the window when smaller).
	BounceMinSends int
	// WarmupStart is EMAIL_WARMUP_START, the daily cap on the first day of
	// the warm-up ramp; 0 (the default) is no ramp.
	WarmupStart int
	// WarmupDays is EMAIL_WARMUP_DAYS, the day the ramp reaches the daily
	// cap (default 14).
	WarmupDays int
}

// maxBounceWindow bounds EMAIL_BOUNCE_WINDOW: every bounce applied reads
// that many sends.
const maxBounceWindow = 10_000

// deliverability reads the EMAIL_BOUNCE_* and EMAIL_WARMUP_* variables.
func (r *reader) deliverability() Deliverability {
	d := Deliverability{
		BouncePauseRate: r.percent("EMAIL_BOUNCE_PAUSE_RATE", 500),
		BounceWindow:    r.atLeastOne("EMAIL_BOUNCE_WINDOW", 50),
		WarmupStart:     r.count("EMAIL_WARMUP_START", 0),
		WarmupDays:      r.atLeastOne("EMAIL_WARMUP_DAYS", 14),
	}
	_, minSet := r.raw("EMAIL_BOUNCE_MIN_SENDS")
	d.BounceMinSends = r.atLeastOne("EMAIL_BOUNCE_MIN_SENDS", 20)
	if r.err != nil {
		return d
	}
	switch {
	case d.BounceWindow > maxBounceWindow:
		r.fail("EMAIL_BOUNCE_WINDOW", r.getenv("EMAIL_BOUNCE_WINDOW"), "want a whole number from 1 to "+strconv.Itoa(maxBounceWindow))
	case d.BounceMinSends > d.BounceWindow && minSet:
		r.fail("EMAIL_BOUNCE_MIN_SENDS", r.getenv("EMAIL_BOUNCE_MIN_SENDS"), "must not be above EMAIL_BOUNCE_WINDOW ("+strconv.Itoa(d.BounceWindow)+")")
	case d.WarmupDays > 365:
		r.fail("EMAIL_WARMUP_DAYS", r.getenv("EMAIL_WARMUP_DAYS"), "want a whole number of days from 1 to 365")
	}
	d.BounceMinSends = min(d.BounceMinSends, d.BounceWindow)
	return d
}

// percent reads a percentage from 0 to 100 with at most two decimals ("5",
// "2.5", "0.25", a trailing "%" allowed), in hundredths of a percent.
func (r *reader) percent(name string, def int) int {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	if bp, ok := basisPoints(strings.TrimSpace(strings.TrimSuffix(v, "%"))); ok {
		return bp
	}
	r.fail(name, v, "want a percentage from 0 to 100 with at most two decimals, such as 5 or 2.5")
	return def
}

// basisPoints parses "12", "2.5" or "0.25" as hundredths of a percent.
func basisPoints(s string) (int, bool) {
	whole, frac, dotted := strings.Cut(s, ".")
	if whole == "" || len(whole) > 3 || len(frac) > 2 || dotted && frac == "" {
		return 0, false
	}
	for _, part := range []string{whole, frac} {
		for _, ch := range part {
			if ch < '0' || ch > '9' {
				return 0, false
			}
		}
	}
	w, _ := strconv.Atoi(whole)
	f := 0
	if frac != "" {
		f, _ = strconv.Atoi(frac)
		if len(frac) == 1 {
			f *= 10
		}
	}
	bp := w*100 + f
	return bp, bp <= 10_000
}
