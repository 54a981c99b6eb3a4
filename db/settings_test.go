package db

import (
	"context"
	"errors"
	"testing"
)

func TestEmailCapsAreSeededOnceAndValidated(t *testing.T) {
	ctx := context.Background()
	d, _ := outboxStore(t)
	caps, err := d.EmailCaps(ctx, EmailCaps{PerCycle: 10, PerHour: 50, PerDay: 200})
	if err != nil || caps != (EmailCaps{10, 50, 200}) {
		t.Fatalf("EmailCaps = %+v, %v", caps, err)
	}
	// Later defaults do not override what is stored.
	if caps, _ = d.EmailCaps(ctx, EmailCaps{PerCycle: 1, PerHour: 1, PerDay: 1}); caps != (EmailCaps{10, 50, 200}) {
		t.Fatalf("EmailCaps with other defaults = %+v", caps)
	}
	if err := d.SetEmailCaps(ctx, EmailCaps{PerCycle: 0, PerHour: 5, PerDay: 7}); err != nil {
		t.Fatal(err)
	}
	if caps, _ = d.EmailCaps(ctx, EmailCaps{}); caps != (EmailCaps{0, 5, 7}) {
		t.Fatalf("EmailCaps after SetEmailCaps = %+v", caps)
	}
	if err := d.SetEmailCaps(ctx, EmailCaps{PerCycle: -1}); err == nil {
		t.Fatal("negative cap accepted")
	}
	if err := d.SetSetting(ctx, SettingEmailMaxPerHour, "lots"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.EmailCaps(ctx, EmailCaps{}); err == nil {
		t.Fatal("a non-numeric stored cap was accepted")
	}
}

func TestSettingOrInitStoresTheFirstValue(t *testing.T) {
	ctx := context.Background()
	d, _ := outboxStore(t)
	calls := 0
	init := func() (string, error) { calls++; return "first", nil }
	for range 2 {
		if v, err := d.SettingOrInit(ctx, "k", init); err != nil || v != "first" {
			t.Fatalf("SettingOrInit = %q, %v", v, err)
		}
	}
	if calls != 1 {
		t.Fatalf("init called %d times", calls)
	}
	if _, err := d.SettingOrInit(ctx, "other", func() (string, error) { return "", errors.New("no entropy") }); err == nil {
		t.Fatal("init error swallowed")
	}
	if v, _ := d.Setting(ctx, "other", "unset"); v != "unset" {
		t.Fatalf("a failed init stored %q", v)
	}
}
