package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

func TestInstanceIDDefaults(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	host := func(h string, err error) func() (string, error) { return func() (string, error) { return h, err } }
	cases := []struct {
		cfg  config.Config
		env  map[string]string
		host string
		err  error
		want string
	}{
		{config.Config{InstanceID: "web-1"}, map[string]string{"FLY_MACHINE_ID": "e2865d12"}, "box", nil, "web-1"},
		{config.Config{}, map[string]string{"FLY_MACHINE_ID": "e2865d12"}, "box", nil, "e2865d12"},
		{config.Config{}, nil, "box.example", nil, "box.example-42"},
		{config.Config{}, nil, "bad host_name!", nil, "bad-host-name-42"},
		{config.Config{}, nil, "", errors.New("no"), "hossagent-42"},
		{config.Config{}, nil, strings.Repeat("h", 80), nil, strings.Repeat("h", 38) + "-42"},
	}
	for _, c := range cases {
		got := instanceID(c.cfg, env(c.env), host(c.host, c.err), 42)
		if got != c.want {
			t.Errorf("instanceID(%+v, %v, %q) = %q, want %q", c.cfg.InstanceID, c.env, c.host, got, c.want)
		}
		if !db.ValidInstanceID(got) {
			t.Errorf("%q is not a valid instance id", got)
		}
	}
}
