package config

import "testing"

func TestDeliverabilitySettings(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want Deliverability
	}{
		{nil, Deliverability{BouncePauseRate: 500, BounceWindow: 50, BounceMinSends: 20, WarmupDays: 14}},
		{map[string]string{"EMAIL_BOUNCE_PAUSE_RATE": "2.5", "EMAIL_BOUNCE_WINDOW": "200", "EMAIL_BOUNCE_MIN_SENDS": "40",
			"EMAIL_WARMUP_START": "20", "EMAIL_WARMUP_DAYS": "21"},
			Deliverability{BouncePauseRate: 250, BounceWindow: 200, BounceMinSends: 40, WarmupStart: 20, WarmupDays: 21}},
		{map[string]string{"EMAIL_BOUNCE_PAUSE_RATE": "0"}, Deliverability{BounceWindow: 50, BounceMinSends: 20, WarmupDays: 14}},
		{map[string]string{"EMAIL_BOUNCE_PAUSE_RATE": "0.25%"}, Deliverability{BouncePauseRate: 25, BounceWindow: 50, BounceMinSends: 20, WarmupDays: 14}},
		{map[string]string{"EMAIL_BOUNCE_PAUSE_RATE": "100"}, Deliverability{BouncePauseRate: 10000, BounceWindow: 50, BounceMinSends: 20, WarmupDays: 14}},
		// A small window lowers the default sample to itself.
		{map[string]string{"EMAIL_BOUNCE_WINDOW": "10"}, Deliverability{BouncePauseRate: 500, BounceWindow: 10, BounceMinSends: 10, WarmupDays: 14}},
	} {
		c, _, err := Load(env(tc.env))
		if err != nil || c.Email.Guard != tc.want {
			t.Errorf("%v: %+v, %v; want %+v", tc.env, c.Email.Guard, err, tc.want)
		}
	}
}

func TestDeliverabilitySettingsRefused(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"EMAIL_BOUNCE_PAUSE_RATE", "-1"},
		{"EMAIL_BOUNCE_PAUSE_RATE", "100.01"},
		{"EMAIL_BOUNCE_PAUSE_RATE", "2.555"},
		{"EMAIL_BOUNCE_PAUSE_RATE", "5."},
		{"EMAIL_BOUNCE_PAUSE_RATE", ".5"},
		{"EMAIL_BOUNCE_PAUSE_RATE", "five"},
		{"EMAIL_BOUNCE_PAUSE_RATE", "1e1"},
		{"EMAIL_BOUNCE_WINDOW", "0"},
		{"EMAIL_BOUNCE_WINDOW", "10001"},
		{"EMAIL_BOUNCE_MIN_SENDS", "0"},
		{"EMAIL_BOUNCE_MIN_SENDS", "51"},
		{"EMAIL_WARMUP_START", "-5"},
		{"EMAIL_WARMUP_DAYS", "0"},
		{"EMAIL_WARMUP_DAYS", "366"},
	} {
		if cerr := loadErr(t, map[string]string{tc.name: tc.value}); cerr.Var != tc.name {
			t.Errorf("%s=%s: error about %s (%v)", tc.name, tc.value, cerr.Var, cerr)
		}
	}
}
