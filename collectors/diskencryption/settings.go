package diskencryption

import (
	"fmt"
	"path"

	"github.com/annexa-dev/annexa/collectors"
)

// Settings are the disk_encryption collector's part of agent.yaml.
type Settings struct {
	// ExemptMounts are mount points whose volumes need no encryption
	// (scratch space), listed in the observations as exempt.
	ExemptMounts []string `yaml:"exempt_mounts"`
}

// DefaultSettings implements collectors.Configurable.
func (Collector) DefaultSettings() collectors.Settings { return defaults() }

func defaults() *Settings { return &Settings{} }

// Validate implements collectors.Settings.
func (s *Settings) Validate() error {
	for _, m := range s.ExemptMounts {
		if !path.IsAbs(m) {
			return fmt.Errorf("exempt_mounts: %q is not an absolute path", m)
		}
	}
	return nil
}
