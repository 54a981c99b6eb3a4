package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Company is who the business is, on client e-mails, invoices and the
// portal.
type Company struct {
	Name          string // COMPANY_NAME; EMAIL_SENDER_NAME when unset
	PostalAddress string // COMPANY_POSTAL_ADDRESS (Email.PostalAddress)
	BillingEmail  string // BILLING_EMAIL; EMAIL_REPLY_TO or EMAIL_FROM when unset
}

// Collections configures the Collections agent: client e-mail and the
// links in it.
type Collections struct {
	// Schedule is DUNNING_SCHEDULE: the reminder steps, as offsets from an
	// invoice's due date, in order (default -3d, 0d, +7d, +14d).
	Schedule []time.Duration
	// MaxPerHour and MaxPerDay cap client e-mail on their own (outreach's
	// caps do not apply to it).
	MaxPerHour int
	MaxPerDay  int
	// LinkTTL is how long a portal link in a client e-mail opens the
	// portal (PORTAL_LINK_TTL, default 30 days).
	LinkTTL time.Duration
}

// DefaultDunningSchedule is 3 days before the due date, on the day, 7 and
// 14 days after.
const DefaultDunningSchedule = "-3d,0d,+7d,+14d"

const day = 24 * time.Hour

func (r *reader) collections(mail Email) (Company, Collections) {
	co := Company{
		Name:          r.text("COMPANY_NAME", mail.SenderName),
		PostalAddress: mail.PostalAddress,
		BillingEmail:  r.email("BILLING_EMAIL", ""),
	}
	if co.BillingEmail == "" {
		co.BillingEmail = mail.ReplyTo
	}
	if co.BillingEmail == "" {
		co.BillingEmail = mail.From
	}
	col := Collections{
		MaxPerHour: r.atLeastOne("COLLECTIONS_MAX_PER_HOUR", 100),
		MaxPerDay:  r.atLeastOne("COLLECTIONS_MAX_PER_DAY", 500),
		LinkTTL:    r.duration("PORTAL_LINK_TTL", 30*day, time.Hour, 365*day),
	}
	v, ok := r.raw("DUNNING_SCHEDULE")
	if !ok {
		v = DefaultDunningSchedule
	}
	steps, err := ParseDunningSchedule(v)
	if err != nil {
		r.fail("DUNNING_SCHEDULE", v, err.Error())
	}
	col.Schedule = steps
	return co, col
}

// ParseDunningSchedule reads a comma-separated list of day offsets from the
// due date ("-3d,0,+7d,+14d"; "none" for no reminders), at most 12 steps
// from -60 to +365 days, strictly increasing.
func ParseDunningSchedule(v string) ([]time.Duration, error) {
	const want = `want day offsets from the due date, comma-separated and increasing, such as "-3d,0d,+7d,+14d" (or "none")`
	if strings.EqualFold(strings.TrimSpace(v), "none") {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > 12 {
		return nil, fmt.Errorf("at most 12 steps: %s", want)
	}
	var out []time.Duration
	for _, p := range parts {
		p = strings.TrimSuffix(strings.TrimSpace(p), "d")
		n, err := strconv.Atoi(strings.TrimPrefix(p, "+"))
		if err != nil || n < -60 || n > 365 {
			return nil, fmt.Errorf("%s", want)
		}
		d := time.Duration(n) * day
		if len(out) > 0 && d <= out[len(out)-1] {
			return nil, fmt.Errorf("%s", want)
		}
		out = append(out, d)
	}
	return out, nil
}
