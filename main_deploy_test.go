package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// fly.toml's health check is /readyz (200 only when the database answers
// and the agents run), so a release whose agents never start fails its
// health gate; /healthz answers while the process is up at all.
func TestFlyHealthCheckIsReadiness(t *testing.T) {
	b, err := os.ReadFile("fly.toml")
	if err != nil {
		t.Fatal(err)
	}
	var section string
	var paths []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if section == "[[http_service.checks]]" {
			if m := regexp.MustCompile(`^path\s*=\s*"([^"]*)"`).FindStringSubmatch(line); m != nil {
				paths = append(paths, m[1])
			}
		}
	}
	if len(paths) != 1 || paths[0] != "/readyz" {
		t.Errorf("fly.toml health check paths = %q, want [/readyz]", paths)
	}
}

// The user the data directory advice names when it cannot tell who it runs
// as is the image's: the Dockerfile runs as it and gives it /data.
func TestDockerfileUserIsTheOneTheAdviceNames(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if m := regexp.MustCompile(`(?m)^USER\s+(\S+)\s*$`).FindAllStringSubmatch(df, -1); len(m) != 1 || m[0][1] != imageUser {
		t.Errorf("Dockerfile USER lines = %q, want one USER %s", m, imageUser)
	}
	if !strings.Contains(df, "chown "+imageUser+" /out/data") || !strings.Contains(df, "--chown="+imageUser+" /out/data /data") {
		t.Errorf("the Dockerfile does not give /data to %s", imageUser)
	}
}
