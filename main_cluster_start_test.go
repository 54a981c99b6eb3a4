//go:build unix

package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hossagent/hossagent/db/pgtest"
)

// Instances started together on an empty database, as a first deploy of
// several machines does, all come up: the migrations are applied once while
// the others wait, the first admin is created once, and the admin can sign
// in on every instance. Three tries, since a race shows on some starts only.
func TestInstancesStartTogetherOnAnEmptyDatabase(t *testing.T) {
	for try := range 3 {
		dbURL := pgtest.Start(t).NewDatabase(t)
		f := newFleet(t, dbURL, map[string]string{"AUTOPILOT_ENABLED": "false"})
		var together []*member
		for range 3 {
			together = append(together, f.launch())
		}
		for _, m := range together {
			f.join(m)
		}
		for _, m := range together {
			if code := signInStatus(t, m.base, clusterAdmin, clusterPassword); code != http.StatusSeeOther {
				t.Errorf("try %d: sign-in on %s = %d, want 303", try, m.id, code)
			}
		}
		f.waitOwner(nil, 30*time.Second)
		var users int
		if err := f.store(t).Bun().NewRaw("SELECT COUNT(*) FROM users").Scan(context.Background(), &users); err != nil {
			t.Fatal(err)
		}
		if users != 1 {
			t.Errorf("try %d: %d users, want the one first admin", try, users)
		}
		for _, m := range f.running() {
			f.stop(m)
		}
	}
}
