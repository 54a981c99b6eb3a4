package db

import (
	"context"
	"fmt"
	"time"
)

// HourCount is what happened in one hour of an activity window.
type HourCount struct {
	Hour      time.Time // the hour's start, UTC
	Emails    int64     // outbox outcomes (sent, dry run, failed, suppressed), as Activity counts them
	TasksDone int64
}

// ActivityByHour counts, hour by hour from since's hour to until's, the
// e-mail outcomes and the tasks done (the same rows Activity counts over
// the window). It reads the instants of those rows only, which the
// caps bound (a day's e-mail is at most the daily cap) and the work done
// bounds, never the tables' history: the same range searches as Activity.
func (d *DB) ActivityByHour(ctx context.Context, since, until time.Time) ([]HourCount, error) {
	since, until = since.UTC(), until.UTC()
	first := since.Truncate(time.Hour)
	n := int(until.Truncate(time.Hour).Sub(first)/time.Hour) + 1
	if n < 1 || n > 24*31 {
		return nil, fmt.Errorf("store: an activity window of %d hours is not charted", n)
	}
	out := make([]HourCount, n)
	for i := range out {
		out[i].Hour = first.Add(time.Duration(i) * time.Hour)
	}
	add := func(query string, count func(*HourCount)) error {
		rows, err := d.bun.QueryContext(ctx, query, since, until)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var raw any
			if err := rows.Scan(&raw); err != nil {
				return err
			}
			at, err := instant(raw)
			if err != nil {
				return err
			}
			if i := int(at.UTC().Truncate(time.Hour).Sub(first) / time.Hour); i >= 0 && i < n {
				count(&out[i])
			}
		}
		return rows.Err()
	}
	if err := add(`SELECT COALESCE(sent_at, updated_at) FROM messages
		WHERE COALESCE(sent_at, updated_at) >= ?0 AND COALESCE(sent_at, updated_at) <= ?1`, func(h *HourCount) { h.Emails++ }); err != nil {
		return nil, fmt.Errorf("store: unable to count e-mails by hour: %w", err)
	}
	if err := add(`SELECT completed_at FROM tasks WHERE status = 'done' AND completed_at >= ?0 AND completed_at <= ?1`,
		func(h *HourCount) { h.TasksDone++ }); err != nil {
		return nil, fmt.Errorf("store: unable to count tasks by hour: %w", err)
	}
	return out, nil
}

// instant reads a stored time: the driver's time.Time for a column, the
// text SQLite keeps for an expression over columns (COALESCE).
func instant(raw any) (time.Time, error) {
	switch v := raw.(type) {
	case time.Time:
		return v, nil
	case string:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", time.RFC3339Nano, "2006-01-02 15:04:05"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("unreadable time %v", raw)
}
