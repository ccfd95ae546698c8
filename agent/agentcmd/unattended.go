package agentcmd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/agent"
	"github.com/annexa-dev/annexa/agent/config"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/collectors/inventory"
)

// DefaultEnrollFile is where fleet tools (Ansible, Jamf, Intune, GPO, the
// Windows MSI) drop the enrollment settings for the first start: beside the
// config on Unix, in the state directory on Windows (which the MSI locks to
// SYSTEM and Administrators). It is deleted after use.
var DefaultEnrollFile = defaultEnrollFile()

// enrollSettings are the unattended enrollment inputs: ANNEXA_ENROLL_SERVER,
// ANNEXA_ENROLL_TOKEN and ANNEXA_ENROLL_CA, from flags, the environment or
// the enroll file, in that order.
type enrollSettings struct {
	server, token, ca string
	fromFile          string
}

func parseEnvFile(b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			// An INI section: the MSI's IniFile table writes one.
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return out, sc.Err()
}

func findEnrollSettings(flagServer, flagToken, flagCA, file string) (*enrollSettings, error) {
	s := &enrollSettings{server: flagServer, token: flagToken, ca: flagCA}
	fill := func(get func(string) string) {
		if s.server == "" {
			s.server = get("ANNEXA_ENROLL_SERVER")
		}
		if s.token == "" {
			s.token = get("ANNEXA_ENROLL_TOKEN")
		}
		if s.ca == "" {
			s.ca = get("ANNEXA_ENROLL_CA")
		}
	}
	fill(os.Getenv)
	if s.token == "" || s.server == "" {
		b, err := os.ReadFile(file)
		switch {
		case err == nil:
			env, err := parseEnvFile(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			fill(func(k string) string { return env[k] })
			s.fromFile = file
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}
	if s.token == "" && s.server == "" {
		return nil, nil
	}
	if s.token == "" || s.server == "" {
		return nil, errors.New("unattended enrollment needs both ANNEXA_ENROLL_SERVER and ANNEXA_ENROLL_TOKEN")
	}
	return s, nil
}

// managedEnrollment falls back to a configuration profile's enrollment
// token when flags, environment and enroll file gave nothing: the server
// and CA are the profile's (already laid over the config in cfg).
func managedEnrollment(s *enrollSettings, m *config.Managed, cfg *config.Config) (*enrollSettings, error) {
	if s != nil || m == nil || m.EnrollmentToken == "" {
		return s, nil
	}
	if cfg.Server == "" {
		return nil, fmt.Errorf("%s has an %s but no server", m.Path, config.ManagedEnrollmentToken)
	}
	return &enrollSettings{server: cfg.Server, token: m.EnrollmentToken, ca: cfg.CA}, nil
}

// enrollUnattended enrols if settings are found and the agent is not
// enrolled yet. It reports whether it enrolled.
func enrollUnattended(ctx context.Context, cfg *config.Config, s *enrollSettings, out io.Writer) (bool, error) {
	if _, err := agent.LoadIdentity(cfg.StateDir); err == nil {
		return false, nil
	}
	id, err := enrollThisHost(ctx, agent.EnrollOptions{Server: s.server, Token: s.token, CAFile: s.ca, StateDir: cfg.StateDir})
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "enrolled as %s with %s (state in %s)\n", id.AgentID, id.Server, cfg.StateDir)
	if s.fromFile != "" {
		// The token is a secret and has done its job.
		if err := os.Remove(s.fromFile); err != nil {
			fmt.Fprintf(out, "warning: could not delete %s: %v\n", s.fromFile, err)
		}
	}
	return true, nil
}

// enrollThisHost enrols with this host's facts (hostname, OS, …) and, unless
// o names one, its hostname, within a minute: what both the interactive and
// the unattended enrollment send.
func enrollThisHost(ctx context.Context, o agent.EnrollOptions) (*agent.Identity, error) {
	facts, err := inventory.HostFacts(ctx, host.Live())
	if err != nil {
		facts = inventory.Facts{}
	}
	if o.Hostname == "" {
		o.Hostname = facts["hostname"]
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	o.Facts = facts
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return agent.Enroll(ctx, o)
}
