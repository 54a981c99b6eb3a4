package main

import (
	"os"
	"strconv"
	"strings"

	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

// instanceID names this instance among those sharing a PostgreSQL
// database: INSTANCE_ID, else Fly's machine id (every machine has its
// own), else the host name and the process id, made fit for
// application_name (db.ValidInstanceID).
func instanceID(cfg config.Config, getenv func(string) string, hostname func() (string, error), pid int) string {
	if cfg.InstanceID != "" {
		return cfg.InstanceID
	}
	if id := getenv("FLY_MACHINE_ID"); db.ValidInstanceID(id) {
		return id
	}
	host, err := hostname()
	if err != nil || host == "" {
		host = "hossagent"
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, host)
	host = strings.Trim(host, "-.")
	if len(host) > 38 {
		host = host[:38]
	}
	if host == "" {
		host = "hossagent"
	}
	return host + "-" + strconv.Itoa(pid)
}

// osInstanceID is instanceID with this process's host name and pid.
func osInstanceID(cfg config.Config, getenv func(string) string) string {
	return instanceID(cfg, getenv, os.Hostname, os.Getpid())
}
