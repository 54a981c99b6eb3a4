package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Setting returns a run-time setting, or def when it was never set.
func (d *DB) Setting(ctx context.Context, key, def string) (string, error) {
	var s Setting
	err := d.bun.NewSelect().Model(&s).Where("key = ?", key).Scan(ctx)
	if err = notFound(err); err == ErrNotFound {
		return def, nil
	}
	if err != nil {
		return "", fmt.Errorf("store: unable to read setting %s: %w", key, err)
	}
	return s.Value, nil
}

// SetSetting stores a run-time setting.
func (d *DB) SetSetting(ctx context.Context, key, value string) error {
	s := &Setting{Key: key, Value: value, UpdatedAt: d.Now()}
	_, err := d.bun.NewInsert().Model(s).
		On("CONFLICT (key) DO UPDATE").
		Set("value = EXCLUDED.value, updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to save setting %s: %w", key, err)
	}
	return nil
}

// SettingOrInit returns the stored value of key. When the key is unset it
// stores init's value first. Both happen in one transaction, so two callers
// racing on the first use agree on a single value (an install secret, a seed).
// On PostgreSQL two instances racing both read the key as unset; SERIALIZABLE
// aborts the later writer (40001) and RunInTx runs it again, when it reads
// the first one's value. init may run twice for that: its value is only
// returned once stored, so a discarded one is never seen.
func (d *DB) SettingOrInit(ctx context.Context, key string, init func() (string, error)) (string, error) {
	var value string
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		v, ok, err := settingIn(ctx, tx, key)
		if err != nil || ok {
			value = v
			return err
		}
		if value, err = init(); err != nil {
			return err
		}
		return putSetting(ctx, tx, key, value, d.Now())
	})
	if err != nil {
		return "", fmt.Errorf("store: unable to initialise setting %s: %w", key, err)
	}
	return value, nil
}

func settingIn(ctx context.Context, idb bun.IDB, key string) (string, bool, error) {
	var value string
	err := idb.NewSelect().Model((*Setting)(nil)).Column("value").Where("key = ?", key).Scan(ctx, &value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return value, err == nil, err
}

func putSetting(ctx context.Context, idb bun.IDB, key, value string, now time.Time) error {
	_, err := idb.NewInsert().Model(&Setting{Key: key, Value: value, UpdatedAt: now}).
		On("CONFLICT (key) DO UPDATE").
		Set("value = EXCLUDED.value, updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	return err
}

// Setting keys of the outreach caps. They live in the database so that an
// admin can change them at run time and they survive restarts.
const (
	SettingEmailMaxPerCycle = "email.max_per_cycle"
	SettingEmailMaxPerHour  = "email.max_per_hour"
	SettingEmailMaxPerDay   = "email.max_per_day"
)

// EmailCaps are the outreach sending limits. Zero means "send nothing":
// pausing outreach is a legitimate operator choice.
type EmailCaps struct {
	PerCycle, PerHour, PerDay int
}

// EmailCaps reads the persisted caps, first storing defaults for any that was
// never set (the configured values seed the table on the first start; from
// then on the table wins). A stored value that is not a whole number ≥ 0 is an
// error: sending under an unknown limit is worse than not sending.
func (d *DB) EmailCaps(ctx context.Context, defaults EmailCaps) (EmailCaps, error) {
	var caps EmailCaps
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		for _, f := range caps.fields(defaults) {
			v, ok, err := settingIn(ctx, tx, f.key)
			if err != nil {
				return err
			}
			if !ok {
				v = strconv.Itoa(max(f.def, 0))
				if err := putSetting(ctx, tx, f.key, v, d.Now()); err != nil {
					return err
				}
			}
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return fmt.Errorf("setting %s=%q is not a whole number ≥ 0", f.key, v)
			}
			*f.dst = n
		}
		return nil
	})
	if err != nil {
		return EmailCaps{}, fmt.Errorf("store: unable to read e-mail caps: %w", err)
	}
	return caps, nil
}

// SetEmailCaps stores new caps (the admin's run-time change).
func (d *DB) SetEmailCaps(ctx context.Context, caps EmailCaps) error {
	if caps.PerCycle < 0 || caps.PerHour < 0 || caps.PerDay < 0 {
		return fmt.Errorf("store: unable to save e-mail caps: caps must not be negative")
	}
	err := d.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		for _, f := range caps.fields(caps) {
			if err := putSetting(ctx, tx, f.key, strconv.Itoa(f.def), d.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: unable to save e-mail caps: %w", err)
	}
	return nil
}

type capField struct {
	key string
	def int
	dst *int
}

// fields pairs each cap of c with its setting key and its value in def.
func (c *EmailCaps) fields(def EmailCaps) []capField {
	return []capField{
		{SettingEmailMaxPerCycle, def.PerCycle, &c.PerCycle},
		{SettingEmailMaxPerHour, def.PerHour, &c.PerHour},
		{SettingEmailMaxPerDay, def.PerDay, &c.PerDay},
	}
}
