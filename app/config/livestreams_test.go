package config

import (
	"strings"
	"testing"
)

func TestLiveStreamLimits(t *testing.T) {
	c, _, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.LiveStreams != DefaultLiveStreams() || c.LiveStreams.PerAddress != 8 || c.LiveStreams.PerUser != 16 || c.LiveStreams.Max != 10_000 {
		t.Errorf("defaults = %+v", c.LiveStreams)
	}
	env := map[string]string{"LIVE_STREAMS_PER_ADDRESS": "2", "LIVE_STREAMS_PER_USER": "5000", "LIVE_STREAMS_MAX": "20000"}
	c, _, err = Load(func(k string) string { return env[k] })
	if err != nil || c.LiveStreams != (LiveStreams{PerAddress: 2, PerUser: 5000, Max: 20_000}) {
		t.Errorf("set = %+v, %v", c.LiveStreams, err)
	}
	for _, bad := range []string{"0", "-1", "many"} {
		_, _, err := Load(func(k string) string {
			if k == "LIVE_STREAMS_MAX" {
				return bad
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "LIVE_STREAMS_MAX") {
			t.Errorf("LIVE_STREAMS_MAX=%s: %v, want refused by name", bad, err)
		}
	}
}
