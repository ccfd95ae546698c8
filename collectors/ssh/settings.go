package ssh

import (
	"fmt"
	"path"

	"github.com/annexa-dev/annexa/collectors"
)

// Settings are the ssh collector's part of agent.yaml.
type Settings struct {
	// Config is the sshd configuration file (its Include files are read too).
	Config string `yaml:"config"`
}

// DefaultSettings implements collectors.Configurable.
func (Collector) DefaultSettings() collectors.Settings { return defaults() }

func defaults() *Settings { return &Settings{Config: "/etc/ssh/sshd_config"} }

// Validate implements collectors.Settings.
func (s *Settings) Validate() error {
	if !path.IsAbs(s.Config) {
		return fmt.Errorf("config: %q is not an absolute path", s.Config)
	}
	return nil
}
